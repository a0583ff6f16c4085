"""An attached container or exec session: the hijacked connection, raw terminal, window-size forwarding,
signal proxying, and the exit-status waiter registered before the container starts."""

from __future__ import annotations

import _thread  # `threading` imports functools and collections; a lock and a bare thread suffice
import sys

from gorae.cli.context import Cli, StatusError
from gorae.cli.streaming import Detached, pump
from gorae.cli.terminal import DEFAULT_DETACH_KEYS, RawTerminal, detach_key_bytes, get_winsize, on_resize
from gorae.client.api import q
from gorae.client.errors import APIError
from gorae.client.fastjson import loads
from gorae.client.streams import Hijacked
from gorae.client.transport import Connection

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal  # typeshed has no `_signal`; `signal` re-exports its functions and constants
    from typing import Any
else:
    import _signal as signal  # the C module: `signal` imports enum

PROXIED_SIGNALS = (
    "SIGINT",
    "SIGTERM",
    "SIGHUP",
    "SIGQUIT",
    "SIGUSR1",
    "SIGUSR2",
    "SIGALRM",
    "SIGCONT",
    "SIGPIPE",
)


class Waiter:
    """POST /containers/{id}/wait sent (and its response head read) now; the status is collected later."""

    def __init__(self, cli: Cli, cid: str, condition: str) -> None:
        api = cli.api
        self.conn = Connection(api.host)
        self.status: int = 125
        self.error: str | None = None
        self.conn.send_request(
            "POST", api.url(f"/containers/{q(cid)}/wait", {"condition": condition}), {}, None
        )
        self.resp = self.conn.read_response("POST")
        if self.resp.status >= 400:
            body = self.resp.read()
            try:
                msg = loads(body).get("message", "")
            except ValueError:
                msg = body.decode(errors="replace")
            raise APIError(self.resp.status, msg)
        self.done = _thread.allocate_lock()
        self.done.acquire()
        _thread.start_new_thread(self._collect, ())

    def _collect(self) -> None:
        try:
            self._collect_status()
        finally:
            self.done.release()

    def _collect_status(self) -> None:
        try:
            doc = self.resp.json() or {}
            self.status = int(doc.get("StatusCode", 125))
            err = doc.get("Error")
            if err and err.get("Message"):
                self.error = err["Message"]
        except Exception as e:  # noqa: BLE001 - reported as docker does, status 125
            self.error = str(e)
        finally:
            self.conn.close()

    def result(self) -> int:
        with self.done:  # released when the status is in
            pass
        if self.error:
            sys.stderr.write(f"Error waiting for container: {self.error}\n")
        return self.status


class AttachSession:
    """Attach to a container (or an exec) and carry its I/O until the output ends or the user detaches."""

    def __init__(
        self,
        cli: Cli,
        cid: str,
        *,
        tty: bool,
        stdin: bool,
        stdout: bool = True,
        stderr: bool = True,
        detach_keys: str | None = None,
        sig_proxy: bool = True,
        exec_id: str | None = None,
    ) -> None:
        self.cli = cli
        self.cid = cid
        self.exec_id = exec_id
        self.tty = tty
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.sig_proxy = sig_proxy and not tty
        keys = detach_keys or cli.config.get("detachKeys") or DEFAULT_DETACH_KEYS
        try:
            self.detach_bytes = detach_key_bytes(keys)
        except ValueError as e:
            raise StatusError(125, str(e)) from None
        self.user_keys = detach_keys or cli.config.get("detachKeys") or None  # the daemon scans for them
        self.conn: Hijacked | None = None

    def open(self, exec_body: dict[str, Any] | None = None) -> None:
        api = self.cli.api
        if self.exec_id is not None:
            self.conn = api.hijack(
                f"/exec/{self.exec_id}/start", body=exec_body or {"Detach": False, "Tty": self.tty}
            )
            return
        params: dict[str, Any] = {
            "stream": 1,
            "stdin": int(self.stdin),
            "stdout": int(self.stdout),
            "stderr": int(self.stderr),
        }
        if self.user_keys:
            params["detachKeys"] = self.user_keys
        self.conn = api.hijack(f"/containers/{q(self.cid)}/attach", params)

    def wait_for_exit(self, condition: str) -> Waiter:
        return Waiter(self.cli, self.cid, condition)

    def resize(self) -> None:
        size = get_winsize(1) or get_winsize(0)
        if not size:
            return
        path = f"/exec/{self.exec_id}/resize" if self.exec_id else f"/containers/{q(self.cid)}/resize"
        try:
            self.cli.api.post(path, {"h": size[0], "w": size[1]})
        except (APIError, OSError):
            pass

    def _proxy(self, signum: int, _frame: Any) -> None:
        try:
            self.cli.api.post(f"/containers/{q(self.cid)}/kill", {"signal": str(signum)})
        except (APIError, OSError):
            pass

    def run(self) -> bool:
        """Carry I/O; returns True when the user detached."""
        assert self.conn is not None
        restore_sigs: list[tuple[int, Any]] = []
        uninstall_winch = None
        raw = RawTerminal(0) if self.tty and self.stdin and sys.stdin.isatty() else None
        try:
            if self.tty:
                self.resize()
                if sys.stdout.isatty():
                    uninstall_winch = on_resize(self.resize)
            if self.sig_proxy and self.exec_id is None:
                for name in PROXIED_SIGNALS:
                    sig = getattr(signal, name)
                    restore_sigs.append((sig, signal.signal(sig, self._proxy)))
            elif self.tty and raw is None and self.exec_id is None:
                # a tty without the keyboard (`run -t`, `attach --no-stdin`): docker proxies nothing and its
                # CLI only counts interrupts, giving up at the third
                seen = [0]

                def count(_signum: int, _frame: Any) -> None:
                    seen[0] += 1
                    if seen[0] >= 3:
                        raise StatusError(1, "\ngot 3 SIGTERM/SIGINTs, forcefully exiting")

                for sig in (signal.SIGINT, signal.SIGTERM):
                    restore_sigs.append((sig, signal.signal(sig, count)))
            if raw is not None:
                raw.__enter__()
            sys.stdout.flush()
            pump(
                self.conn, tty=self.tty, stdin=self.stdin, detach_keys=self.detach_bytes if self.tty else b""
            )
            return False
        except Detached:
            return True
        finally:
            if raw is not None:
                raw.restore()
            if uninstall_winch:
                uninstall_winch()
            for sig, old in restore_sigs:
                signal.signal(sig, old)
            self.close()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
