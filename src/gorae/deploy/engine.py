"""One deploy, over the Engine API: build `<name>:<sha7>` from the pushed commit, start it in a new container
without published ports, wait until it is healthy (its healthcheck, else its ports answering on the container's
address), then swap. On gorae the swap is a port handover (`POST /containers/{new}/ports/take?from={old}`): the
daemon keeps the host ports held and points the forwarding rules at the new container in one iptables
transaction, so no request meets a closed port; the old container gets DRAIN seconds to finish what it
accepted, then stops and goes (its image is kept for rollback). Without a running old container (the first
deploy) or on an engine without the handover, the old one stops and a container publishing the ports starts.

Any failure before the swap leaves the old version untouched; a failure during it puts the old one back.
`swap.json` records a swap in progress so the next run (or this one, once the daemon answers again) finishes or
undoes it: after any crash one version serves.
"""

from __future__ import annotations

import base64
import json
import socket
import tempfile
import time

from gorae.client.api import q
from gorae.client.errors import APIError, ConnectionFailed, ProtocolError
from gorae.deploy import gitrepo

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, TextIO

    from gorae.client.api import APIClient
    from gorae.deploy.state import App
    from gorae.deploy.target import Target

LABEL_APP = "org.gorae.deploy.app"
LABEL_SEQ = "org.gorae.deploy.seq"
LABEL_REVISION = "org.opencontainers.image.revision"
LABEL_SOURCE = "org.opencontainers.image.source"
LABEL_REF = "org.opencontainers.image.ref.name"
POLL = 0.1  # seconds between two looks at a starting container
DRAIN = 1.0  # seconds the old container keeps running after the handover (its open connections finish)


class DeployError(Exception):
    """A deploy that did not happen; the old version (if any) still serves."""


def sha7(commit: str) -> str:
    return commit[:7]


class Deployer:
    def __init__(self, api: APIClient, app: App, target: Target, out: TextIO) -> None:
        self.api, self.app, self.t, self.out = api, app, target, out

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    # -- the steps ----------------------------------------------------------------------------------
    def build(self, git_dir: str, commit: str, ref: str) -> str:
        """Build the committed tree of `commit` as `<name>:<sha7>`; the image's reference."""
        image = f"{self.t.name}:{sha7(commit)}"
        labels = {
            LABEL_REVISION: commit,
            LABEL_SOURCE: git_dir,
            LABEL_REF: ref,
            LABEL_APP: self.t.name,
        }
        params: list[tuple[str, Any]] = [("t", image), ("labels", json.dumps(labels)), ("rm", 1)]
        if self.t.dockerfile:
            params.append(("dockerfile", self.t.dockerfile))
        self.say(f"gorae deploy: building {image} from {commit} ({ref})")
        with tempfile.TemporaryFile() as ctx:
            try:
                gitrepo.archive(git_dir, commit, ctx)
            except gitrepo.GitError as e:
                raise DeployError(str(e)) from None
            ctx.seek(0)
            try:
                resp = self.api.request(
                    "POST", "/build", params, data=ctx, headers={"Content-Type": "application/x-tar"}
                )
            except APIError as e:
                raise DeployError(f"build failed: {e}") from None
            self._stream(resp.iter_json(), "build failed")
        if self.t.registry:
            self.push(image)
        return image

    def push(self, image: str) -> None:
        repo, _, tag = image.rpartition(":")
        remote = f"{self.t.registry.rstrip('/')}/{repo}"
        self.say(f"gorae deploy: pushing {remote}:{tag}")
        auth = base64.urlsafe_b64encode(b"{}").decode()
        try:
            self.api.post(f"/images/{q(image)}/tag", {"repo": remote, "tag": tag})
            resp = self.api.request(
                "POST", f"/images/{q(remote)}/push", {"tag": tag}, headers={"X-Registry-Auth": auth}
            )
        except APIError as e:
            raise DeployError(f"push failed: {e}") from None
        self._stream(resp.iter_json(), "push failed")

    def _stream(self, msgs: Iterator[Any], what: str) -> None:
        for m in msgs:
            if not isinstance(m, dict):
                continue
            if m.get("error") or m.get("errorDetail"):
                detail = m.get("errorDetail") or {}
                raise DeployError(f"{what}: {m.get('error') or detail.get('message')}")
            if isinstance(m.get("stream"), str):
                self.out.write(m["stream"])
            elif isinstance(m.get("status"), str):
                self.out.write(f"{m.get('id', '') + ': ' if m.get('id') else ''}{m['status']}\n")
            self.out.flush()

    def release(self, image: str, commit: str, kind: str) -> str:
        """Check `image` in a new container, then swap it in. Returns the final line; raises DeployError with
        the old version still serving."""
        seq = self.app.next_seq()
        self.recover()
        cur = self.app.current()
        entry = {"seq": seq, "commit": commit, "image": image, "kind": kind}
        try:
            new = self._start_checked(image, commit, seq)
            line = self._swap(new, image, commit, seq, cur)
        except DeployError as e:
            self.app.record({**entry, "result": "failed", "error": str(e)})
            raise
        except (ConnectionFailed, ProtocolError) as e:
            self.app.record({**entry, "result": "failed", "error": f"daemon connection lost: {e}"})
            if self._wait_daemon(60):
                self.recover()
            raise DeployError(f"daemon connection lost: {e}") from None
        self.app.record({**entry, "result": "rolled back" if kind == "rollback" else "deployed"})
        self.prune()
        return line

    # -- the new container --------------------------------------------------------------------------
    def _create(self, image: str, commit: str, seq: int, *, published: bool, suffix: str = "") -> str:
        body = json.loads(json.dumps(self.t.body))  # a deep copy
        body["Image"] = image
        body["Labels"] = {**(body.get("Labels") or {}), LABEL_APP: self.t.name, LABEL_SEQ: str(seq),
                          LABEL_REVISION: commit}  # fmt: skip
        hc = body.setdefault("HostConfig", {})
        hc.setdefault(
            "Init", True
        )  # tini as pid 1: the app gets SIGTERM's default action, so `stop` is quick
        hc.setdefault("RestartPolicy", {"Name": "unless-stopped", "MaximumRetryCount": 0})
        if not published:
            hc.pop("PortBindings", None)
        net = self.t.network
        if net and net not in ("bridge", "default", "host", "none") and not net.startswith("container:"):
            body["NetworkingConfig"] = {"EndpointsConfig": {net: {"Aliases": [self.t.name]}}}
        name = f"{self.t.name}-{sha7(commit)}-{seq}{suffix}"
        cid: str = self.api.post_json("/containers/create", {"name": name}, body)["Id"]
        return cid

    def _start_checked(self, image: str, commit: str, seq: int) -> str:
        """The new version's container, started without published ports and healthy; removed on failure."""
        cid = self._create(image, commit, seq, published=False)
        try:
            self.api.post(f"/containers/{cid}/start")
            self.say(f"gorae deploy: started {image} ({cid[:12]}), waiting until it is healthy")
            took = self._wait_ready(cid, published=False)
            self.say(f"gorae deploy: {image} is healthy after {took:.1f}s")
            return cid
        except DeployError as e:
            tail = self._logs(cid)
            self._remove(cid)
            raise DeployError(
                f"{image} is not healthy: {e}" + (f"\n--- its last output:\n{tail}" if tail else "")
            ) from None
        except APIError as e:
            self._remove(cid)
            raise DeployError(f"{image} did not start: {e}") from None

    def _wait_ready(self, cid: str, published: bool, timeout: float | None = None) -> float:
        """Wait until the container is healthy (its healthcheck) or, without one, until its ports accept TCP
        connections (on the container's address, or through the published ports); the seconds it took."""
        start = time.monotonic()
        deadline = start + (self.t.health_timeout if timeout is None else timeout)
        while True:
            info = self.api.get_json(f"/containers/{cid}/json")
            st = info.get("State") or {}
            if not st.get("Running"):
                raise DeployError(f"the container exited (code {st.get('ExitCode')})")
            health = st.get("Health")
            if health and not published:
                status = health.get("Status")
                if status == "healthy":
                    return time.monotonic() - start
                if status == "unhealthy":
                    logs = health.get("Log") or []
                    last = (logs[-1].get("Output") or "").strip() if logs else ""
                    raise DeployError("its health check failed" + (f": {last}" if last else ""))
            else:
                addrs = _published_addrs(info) if published else _container_addrs(info)
                if all(_answers(a) for a in addrs) and (addrs or time.monotonic() - start >= 1.0):
                    return time.monotonic() - start
            if time.monotonic() >= deadline:
                raise DeployError(f"not healthy after {deadline - start:g}s")
            time.sleep(POLL)

    # -- the swap -----------------------------------------------------------------------------------
    def _swap(self, new: str, image: str, commit: str, seq: int, cur: dict[str, Any] | None) -> str:
        """Make the checked container `new` the serving one. With published ports and an old container that
        runs, gorae's port handover moves them in one step (no moment closed); otherwise (the first deploy, or an
        engine without the handover) the old container stops and a container publishing the ports starts."""
        old = cur.get("container") if cur else None
        if old and not self._running(str(old)):
            old = None
        ports = bool(self.t.body.get("HostConfig", {}).get("PortBindings"))
        self.app.begin_swap({"old": old, "new": new, "image": image, "commit": commit, "ports": ports})
        t0 = time.monotonic()
        how = "handed over"
        if ports and old and self.t.port_handover and self._take_ports(new, str(old)):
            try:
                self._wait_ready(new, published=True, timeout=10)
            except DeployError as e:
                self._take_ports(str(old), new)
                self._remove(new)
                self.app.end_swap()
                raise DeployError(f"{image} did not answer on the published ports: {e}") from None
            gap = time.monotonic() - t0
            if old:
                time.sleep(DRAIN)  # requests the old one accepted before the handover are answered
                self.api.post(f"/containers/{old}/stop", {"t": self.t.stop_timeout}, ok=(304,))
        else:
            how = "restarted"
            if old:
                self.api.post(f"/containers/{old}/stop", {"t": self.t.stop_timeout}, ok=(304,))
            if ports:
                checked, new = new, ""
                try:
                    new = self._create(image, commit, seq, published=True, suffix="-p")
                    self.app.begin_swap(
                        {"old": old, "new": new, "image": image, "commit": commit, "ports": ports}
                    )
                    self.api.post(f"/containers/{new}/start")
                    self._wait_ready(new, published=True)
                except (DeployError, APIError) as e:
                    for c in (new, checked):
                        if c:
                            self._remove(c)
                    if old:
                        self.api.post(f"/containers/{old}/start", ok=(304,))
                    self.app.end_swap()
                    raise DeployError(
                        f"{image} did not take over: {e}; the previous version serves again"
                    ) from None
                self._remove(checked)
            gap = time.monotonic() - t0
        self.app.set_current(
            {"container": new, "image": image, "commit": commit, "seq": seq, "time": time.time()}
        )
        self.app.end_swap()
        if old:
            self._remove(str(old))
        self.say(f"gorae deploy: swapped in {gap * 1000:.0f} ms ({how}: from the swap's start to the ports answering)")
        published = self.t.published()
        where = f"now serving on {', '.join(published)}" if published else "now running"
        prev = cur.get("image") if cur else None
        tail = f", previous {prev} kept" if prev and prev != image and self.t.keep > 0 else ""
        return f"{image} healthy, {where}{tail}"

    def _take_ports(self, new: str, old: str) -> bool:
        """gorae's handover (`POST /containers/{new}/ports/take?from={old}`); False on an engine without it."""
        try:
            self.api.post(f"/containers/{new}/ports/take", {"from": old})
            return True
        except APIError as e:
            if e.status in (404, 405) and "page not found" in str(e).lower():
                return False
            if e.status == 404 and "no such container" not in str(e).lower():
                return False
            raise DeployError(f"port handover failed: {e}") from None

    def recover(self) -> None:
        """Undo what a crashed deploy left: a swap in progress is finished when its new container runs (and
        holds the published ports), else undone (the old one started again); then every container of the app
        but the serving one goes."""
        sw = self.app.swap()
        if sw is not None:
            new, old = str(sw.get("new") or ""), str(sw.get("old") or "")
            won = bool(new) and self._running(new)
            if won and sw.get("ports"):
                won = bool(self._inspect(new).get("HostConfig", {}).get("PortBindings"))
            if won:
                self.app.set_current({"container": new, "image": sw.get("image"), "commit": sw.get("commit"),
                                      "time": time.time()})  # fmt: skip
                self.say(f"gorae deploy: finished an interrupted swap to {sw.get('image')}")
            else:
                if new:
                    self._remove(new)
                if old and self._exists(old) and not self._running(old):
                    self.api.post(f"/containers/{old}/start", ok=(304,))
                self.say("gorae deploy: undid an interrupted swap; the previous version serves")
            self.app.end_swap()
        keep = str((self.app.current() or {}).get("container") or "")
        for c in self._containers():
            if c["Id"] != keep:
                self._remove(c["Id"])

    # -- images kept --------------------------------------------------------------------------------
    def prune(self) -> list[str]:
        """Keep the serving image and the `keep` most recently served others; untag the rest. The tags gone."""
        cur = self.app.current() or {}
        order: list[str] = []
        for h in reversed(self.app.history()):
            img = h.get("image")
            if h.get("result") in ("deployed", "rolled back") and isinstance(img, str) and img not in order:
                order.append(img)
        kept_prev = [i for i in order if i != cur.get("image")][: max(self.t.keep, 0)]
        keep = {cur.get("image"), *kept_prev}
        flt = json.dumps({"label": [f"{LABEL_APP}={self.t.name}"]})
        removed = []
        for img in self.api.get_json("/images/json", {"filters": flt}) or []:
            tags = [
                t for t in img.get("RepoTags") or [] if t.rpartition(":")[0].rpartition("/")[2] == self.t.name
            ]
            mine = [t for t in tags if t.startswith(f"{self.t.name}:")]
            if not mine or any(t in keep for t in mine):
                continue
            for tag in tags:
                try:
                    self.api.request("DELETE", f"/images/{q(tag)}").read()
                    removed.append(tag)
                except APIError as e:
                    self.say(f"gorae deploy: could not remove {tag}: {e}")
        if removed:
            self.say(f"gorae deploy: pruned {', '.join(sorted(removed))} (keeping {self.t.keep} previous)")
        return removed

    # -- helpers ------------------------------------------------------------------------------------
    def _containers(self) -> list[dict[str, Any]]:
        flt = json.dumps({"label": [f"{LABEL_APP}={self.t.name}"]})
        return list(self.api.get_json("/containers/json", {"all": 1, "filters": flt}) or [])

    def _exists(self, cid: str) -> bool:
        try:
            self.api.get_json(f"/containers/{cid}/json")
            return True
        except APIError as e:
            if e.status == 404:
                return False
            raise

    def _inspect(self, cid: str) -> dict[str, Any]:
        try:
            doc = self.api.get_json(f"/containers/{cid}/json")
        except APIError:
            return {}
        return doc if isinstance(doc, dict) else {}

    def _running(self, cid: str) -> bool:
        try:
            return bool((self.api.get_json(f"/containers/{cid}/json").get("State") or {}).get("Running"))
        except APIError:
            return False

    def _remove(self, cid: str) -> None:
        try:
            self.api.request("DELETE", f"/containers/{cid}", {"force": 1, "v": 1}).read()
        except APIError as e:
            if e.status != 404:
                self.say(f"gorae deploy: could not remove container {cid[:12]}: {e}")

    def _logs(self, cid: str) -> str:
        try:
            raw = self.api.request(
                "GET", f"/containers/{cid}/logs", {"stdout": 1, "stderr": 1, "tail": 20}
            ).read()
        except APIError:
            return ""
        return demux(raw).decode("utf-8", "replace").rstrip()

    def _wait_daemon(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.api.ping()
                return True
            except (ConnectionFailed, ProtocolError, APIError, OSError):
                time.sleep(0.5)
        return False


def demux(raw: bytes) -> bytes:
    """The body of a non-tty logs answer: 8-byte frame headers (stream, 0, 0, 0, big-endian size) dropped."""
    out, i = bytearray(), 0
    while i + 8 <= len(raw) and raw[i] in (0, 1, 2) and raw[i + 1 : i + 4] == b"\0\0\0":
        size = int.from_bytes(raw[i + 4 : i + 8], "big")
        out += raw[i + 8 : i + 8 + size]
        i += 8 + size
    return bytes(out) if i else raw


def _container_addrs(info: dict[str, Any]) -> list[tuple[str, int]]:
    ports = [k for k in ((info.get("Config") or {}).get("ExposedPorts") or {}) if k.endswith("/tcp")]
    ns = info.get("NetworkSettings") or {}
    ip = ""
    for net in (ns.get("Networks") or {}).values():
        if (net or {}).get("IPAddress"):
            ip = net["IPAddress"]
            break
    ip = ip or ns.get("IPAddress") or ""
    if not ip:  # host network or none: the ports are the host's
        ip = "127.0.0.1"
    return [(ip, int(k.split("/")[0])) for k in ports]


def _published_addrs(info: dict[str, Any]) -> list[tuple[str, int]]:
    out = []
    for key, lst in ((info.get("NetworkSettings") or {}).get("Ports") or {}).items():
        if not key.endswith("/tcp"):
            continue
        for b in lst or []:
            ip = b.get("HostIp") or ""
            if ":" in ip:
                continue
            out.append((ip if ip not in ("", "0.0.0.0") else "127.0.0.1", int(b.get("HostPort") or 0)))
    return out or _container_addrs(info)


def _answers(addr: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(addr, timeout=1.0):
            return True
    except OSError:
        return False
