"""`GET /containers/{id}/attach/ws`: websocket attach against real containers, with a wsproto client on
the daemon's unix socket (handshake, raw output as binary messages, stdin from client messages, detach
by close frame, 400 without the websocket headers)."""

from __future__ import annotations

import json
import socket
import time
import uuid

import pytest
from conftest import GoraeDaemon
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    RejectConnection,
    Request,
    TextMessage,
)


def _name() -> str:
    return f"ws-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def cleanup(gorae_daemon: GoraeDaemon):  # type: ignore[no-untyped-def]
    names: list[str] = []
    yield names
    for n in names:
        gorae_daemon.docker("rm", "-f", n, check=False)


class WSClient:
    def __init__(self, d: GoraeDaemon, target: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(10)
        self.sock.connect(d.socket)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(Request(host="localhost", target=target)))
        self.binary: list[bool] = []
        self.closed = False
        self.pending: list[bytes] = []
        while True:
            for ev in self._events():
                if isinstance(ev, AcceptConnection):
                    return
                if isinstance(ev, RejectConnection):
                    raise AssertionError(f"rejected: {ev.status_code}")

    def _events(self) -> list[object]:
        data = self.sock.recv(65536)
        self.ws.receive_data(data or None)
        out: list[object] = []
        for ev in self.ws.events():
            if isinstance(ev, Message):
                self.binary.append(isinstance(ev, BytesMessage))
                self.pending.append(ev.data.encode() if isinstance(ev, TextMessage) else ev.data)
            elif isinstance(ev, CloseConnection):
                self.closed = True
            out.append(ev)
        if not data:
            self.closed = True
        return out

    def send(self, data: bytes) -> None:
        self.sock.sendall(self.ws.send(BytesMessage(data=data)))

    def recv_until(self, want: bytes, timeout: float = 10) -> bytes:
        deadline = time.monotonic() + timeout
        got = b""
        while want not in got and time.monotonic() < deadline and not self.closed:
            if not self.pending:
                self._events()
            got += b"".join(self.pending)
            self.pending.clear()
        got += b"".join(self.pending)
        return got

    def close(self) -> None:
        self.sock.sendall(self.ws.send(CloseConnection(code=1000)))
        # the server answers the close frame
        while not self.closed:
            self._events()
        self.sock.close()


def _create(d: GoraeDaemon, name: str, tty: bool, cmd: list[str]) -> str:
    api = d.client().api
    body = {"Image": "busybox", "Cmd": cmd, "OpenStdin": True, "StdinOnce": False, "Tty": tty}
    body |= {"AttachStdin": True, "AttachStdout": True, "AttachStderr": True}
    resp = api._post_json(api._url("/containers/create"), data=body, params={"name": name})
    return api._result(resp, True)["Id"]  # docker-py's create would force StdinOnce


def test_attach_ws_stdin_stdout_roundtrip(gorae_daemon: GoraeDaemon, cleanup: list[str]) -> None:
    name = _name()
    cleanup.append(name)
    cid = _create(gorae_daemon, name, False, ["cat"])
    api = gorae_daemon.client().api
    api.start(cid)
    c = WSClient(gorae_daemon, f"/containers/{cid}/attach/ws?stdin=1&stdout=1&stream=1")
    c.send(b"hello\n")
    assert c.recv_until(b"hello\n") == b"hello\n"  # raw, no 8-byte multiplex header
    assert all(c.binary)
    c.close()  # detaches: the container keeps running, stdin stays open
    time.sleep(0.3)
    assert api.inspect_container(cid)["State"]["Running"] is True
    c2 = WSClient(gorae_daemon, f"/containers/{cid}/attach/ws?stdin=1&stdout=1&stream=1")
    c2.send(b"again\n")
    assert c2.recv_until(b"again\n") == b"again\n"
    c2.close()
    api.kill(cid)


def test_attach_ws_tty_echo(gorae_daemon: GoraeDaemon, cleanup: list[str]) -> None:
    name = _name()
    cleanup.append(name)
    cid = _create(gorae_daemon, name, True, ["sh", "-c", "read x; echo got:$x"])
    api = gorae_daemon.client().api
    api.start(cid)
    c = WSClient(gorae_daemon, f"/containers/{cid}/attach/ws?stdin=1&stdout=1&stderr=1&stream=1")
    c.send(b"hi\n")
    out = c.recv_until(b"got:hi")
    assert b"got:hi" in out  # the tty echoes the input too
    # the container exits: the server ends the stream with a close frame
    deadline = time.monotonic() + 10
    while not c.closed and time.monotonic() < deadline:
        c._events()
    assert c.closed
    assert api.wait(cid, timeout=10)["StatusCode"] == 0


def test_attach_ws_without_websocket_headers_is_400(gorae_daemon: GoraeDaemon, cleanup: list[str]) -> None:
    name = _name()
    cleanup.append(name)
    cid = _create(gorae_daemon, name, False, ["cat"])
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(gorae_daemon.socket)
        s.sendall(f"GET /containers/{cid}/attach/ws?stdout=1&stream=1 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(4096)
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400")
        length = int(
            next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length:")).split(b":")[1]
        )
        while len(body) < length:
            body += s.recv(4096)
        assert "websocket" in json.loads(body)["message"]


def test_attach_ws_unknown_container_is_404(gorae_daemon: GoraeDaemon) -> None:
    with pytest.raises(AssertionError, match="404"):
        WSClient(gorae_daemon, "/containers/nope-does-not-exist/attach/ws?stdout=1&stream=1")


def test_attach_ws_logs_replay_is_raw(gorae_daemon: GoraeDaemon, cleanup: list[str]) -> None:
    name = _name()
    cleanup.append(name)
    cid = _create(gorae_daemon, name, False, ["sh", "-c", "echo out; echo err >&2"])
    api = gorae_daemon.client().api
    api.start(cid)
    assert api.wait(cid, timeout=10)["StatusCode"] == 0
    c = WSClient(gorae_daemon, f"/containers/{cid}/attach/ws?logs=1&stdout=1&stderr=1")
    got = c.recv_until(b"err\n")
    assert got == b"out\nerr\n"  # no 8-byte multiplex headers
    while not c.closed:
        c._events()
