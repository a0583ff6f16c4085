"""A deploy as a Swarm service (`deploy init --service`): the first deploy creates the service `<name>` and
waits until its replicas run (healthy: a task with a healthcheck only becomes running once it is); every later
one (a push or a rollback) is `service update --image <image>` with a start-first, failure-action-rollback
update policy, and waits — as the docker CLI's `--detach=false` does — until the update has converged
(`completed`) or was rolled back / paused. The service's published ports go through the routing mesh, so the
swarm itself keeps them open: an old task is retired only once its replacement runs.

With `--registry`, the service's image is the registry's copy (`<registry>/<name>:<sha7>`), pushed by the
build, so tasks on other nodes can pull it.
"""

from __future__ import annotations

import json
import time

from gorae.client.api import q
from gorae.client.errors import APIError, ConnectionFailed, ProtocolError
from gorae.deploy.engine import Deployer, DeployError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

POLL = 0.25  # seconds between two looks at the service
# the UpdateStatus states an update ends in, and what they mean for the deploy
DONE = {"completed"}
FAILED = {"rollback_completed", "paused", "rollback_paused"}
UPDATE_CONFIG = {"Parallelism": 1, "Delay": 0, "FailureAction": "rollback", "Monitor": 5_000_000_000,
                 "MaxFailureRatio": 0, "Order": "start-first"}  # fmt: skip
ROLLBACK_CONFIG = {"Parallelism": 1, "Delay": 0, "FailureAction": "pause", "Monitor": 5_000_000_000,
                   "MaxFailureRatio": 0, "Order": "start-first"}  # fmt: skip


class ServiceDeployer(Deployer):
    """Deploys `target` as the Swarm service `target.name` (Target.service holds the ServiceSpec fragment)."""

    def service_image(self, image: str) -> str:
        """The reference the service runs: the registry's copy when the build pushes there."""
        return f"{self.t.registry.rstrip('/')}/{image}" if self.t.registry else image

    def release(self, image: str, commit: str, kind: str) -> str:
        seq = self.app.next_seq()
        cur = self.app.current()
        entry = {"seq": seq, "commit": commit, "image": image, "kind": kind}
        try:
            existing = self._service()
            if existing is None:
                line = self._create_service(image, commit)
            else:
                line = self._update_service(existing, image, commit, cur)
        except DeployError as e:
            self.app.record({**entry, "result": "failed", "error": str(e)})
            raise
        except (ConnectionFailed, ProtocolError) as e:
            self.app.record({**entry, "result": "failed", "error": f"daemon connection lost: {e}"})
            raise DeployError(f"daemon connection lost: {e}") from None
        except APIError as e:
            self.app.record({**entry, "result": "failed", "error": str(e)})
            raise DeployError(str(e)) from None
        self.app.set_current({"service": self.t.name, "image": image, "commit": commit, "seq": seq,
                              "time": time.time()})  # fmt: skip
        self.app.record({**entry, "result": "rolled back" if kind == "rollback" else "deployed"})
        self.prune()
        return line

    # -- the spec -----------------------------------------------------------------------------------
    def _spec(self, image: str, commit: str, base: dict[str, Any] | None) -> dict[str, Any]:
        """The ServiceSpec for `image`: the app's settings over `base` (the service's current spec)."""
        want: dict[str, Any] = json.loads(json.dumps(self.t.service))
        spec: dict[str, Any] = json.loads(json.dumps(base)) if base else {}
        spec["Name"] = self.t.name
        spec["Labels"] = {**(spec.get("Labels") or {}), "org.gorae.deploy.app": self.t.name}
        task = spec.setdefault("TaskTemplate", {})
        cs = task.setdefault("ContainerSpec", {})
        wcs = want.get("ContainerSpec") or {}
        for key in ("Env", "Mounts", "Healthcheck"):
            if wcs.get(key):
                cs[key] = wcs[key]
            else:
                cs.pop(key, None)
        cs["Image"] = self.service_image(image)
        cs["Labels"] = {**(cs.get("Labels") or {}), "org.gorae.deploy.app": self.t.name,
                        "org.opencontainers.image.revision": commit}  # fmt: skip
        cs.setdefault("Init", True)  # as container mode: the app gets SIGTERM's default action
        if want.get("Networks"):
            task["Networks"] = [{**n, "Target": self._network_id(n["Target"])} for n in want["Networks"]]
        else:
            task.pop("Networks", None)
        spec["Mode"] = {"Replicated": {"Replicas": int(want.get("Replicas") or 1)}}
        spec["EndpointSpec"] = {"Mode": "vip", "Ports": want.get("Ports") or []}
        spec["UpdateConfig"] = dict(UPDATE_CONFIG)
        spec["RollbackConfig"] = dict(ROLLBACK_CONFIG)
        return spec

    def _network_id(self, name: str) -> str:
        try:
            return str(self.api.get_json(f"/networks/{q(name)}")["Id"])
        except APIError as e:
            raise DeployError(f"network {name}: {e}") from None

    # -- create -------------------------------------------------------------------------------------
    def _create_service(self, image: str, commit: str) -> str:
        spec = self._spec(image, commit, None)
        self.say(f"gorae deploy: creating service {self.t.name} ({self._replicas()} replicas of {image})")
        try:
            sid = str(self.api.post_json("/services/create", None, spec)["ID"])
        except APIError as e:
            raise DeployError(f"service create failed: {e}") from None
        try:
            took = self._wait_running(sid, self.service_image(image))
        except DeployError as e:
            self._remove_service(sid)
            raise DeployError(f"{image} is not healthy: {e}; service {self.t.name} removed") from None
        self.say(f"gorae deploy: service {self.t.name} converged after {took:.1f}s")
        return self._line(image, None)

    def _wait_running(self, sid: str, ref: str) -> float:
        """Wait until the service has its replicas running `ref`; a task that fails repeatedly, or the ready
        timeout, fails the deploy with the last task error."""
        start = time.monotonic()
        deadline = start + self.t.health_timeout
        want = self._replicas()
        shown = ""
        while True:
            tasks = self._tasks(sid)
            live = [t for t in tasks if (t.get("DesiredState") == "running")]
            running = [t for t in live if (t.get("Status") or {}).get("State") == "running"
                       and _task_image(t) == ref]  # fmt: skip
            failed = [t for t in tasks if (t.get("Status") or {}).get("State") in ("failed", "rejected")]
            text = f"{len(running)}/{want} tasks running"
            if text != shown:
                self.say(f"gorae deploy: {self.t.name}: {text}")
                shown = text
            if len(running) >= want:
                return time.monotonic() - start
            if len(failed) >= 2 * want:
                raise DeployError(_task_error(failed))
            if time.monotonic() >= deadline:
                err = _task_error(failed)
                raise DeployError(f"not converged after {deadline - start:g}s" + (f" ({err})" if err else ""))
            time.sleep(POLL)

    # -- update -------------------------------------------------------------------------------------
    def _update_service(
        self, svc: dict[str, Any], image: str, commit: str, cur: dict[str, Any] | None
    ) -> str:
        sid = str(svc["ID"])
        before = (svc.get("UpdateStatus") or {}).get("StartedAt")
        spec = self._spec(image, commit, svc.get("Spec"))
        self.say(
            f"gorae deploy: updating service {self.t.name} to {image} (start-first, rollback on failure)"
        )
        try:
            self.api.post_json(f"/services/{sid}/update", {"version": svc["Version"]["Index"]}, spec)
        except APIError as e:
            raise DeployError(f"service update failed: {e}") from None
        took = self._wait_update(sid, before, image)
        self.say(f"gorae deploy: service {self.t.name} converged after {took:.1f}s")
        return self._line(image, cur)

    def _wait_update(self, sid: str, before: Any, image: str) -> float:
        """Follow the update as `docker service update --detach=false`: progress lines until UpdateStatus is
        `completed` (the seconds it took) or the update was rolled back or paused (DeployError, with why)."""
        ref = self.service_image(image)
        start = time.monotonic()
        deadline = start + max(self.t.health_timeout, 30.0) * 2 + 30  # the update, then perhaps its rollback
        shown: tuple[str, str] = ("", "")
        why = ""
        lost = False
        while True:
            try:
                svc = self.api.get_json(f"/services/{sid}")
                counts = self._progress(sid, ref)
            except (ConnectionFailed, ProtocolError, APIError) as e:
                # the daemon restarts (or lost its quorum for a moment): the swarm carries the update on, so
                # wait for it to answer again and go on following the update
                if isinstance(e, APIError) and e.status != 503:
                    raise
                if not lost:
                    self.say(f"gorae deploy: lost the daemon ({e}); waiting for it to answer again")
                lost = True
                if time.monotonic() >= deadline or not self._wait_daemon(
                    max(deadline - time.monotonic(), 1.0)
                ):
                    raise DeployError(f"daemon connection lost: {e}") from None
                time.sleep(POLL)
                continue
            if lost:
                self.say("gorae deploy: the daemon answers again; following the update")
                lost = False
            st = svc.get("UpdateStatus") or {}
            state, msg = str(st.get("State") or ""), str(st.get("Message") or "")
            if st.get("StartedAt") == before and state in DONE | FAILED:
                state, msg = "updating", "update in progress"  # the previous update's status: not ours yet
            if state in ("rollback_started", "paused") or (state in FAILED and not why):
                why = msg
            if (state, counts) != shown:
                self.say(f"gorae deploy: {self.t.name}: {state or 'updating'}: {counts}")
                shown = (state, counts)
            if state in DONE:
                return time.monotonic() - start
            if state in FAILED:
                failed = [t for t in self._tasks(sid) if _task_image(t) == ref
                          and (t.get("Status") or {}).get("State") in ("failed", "rejected")]  # fmt: skip
                err = _task_error(failed)
                raise DeployError(
                    f"{image} is not healthy" + (f": {err}" if err else "") + f"; {why or msg} ({state})"
                )
            if time.monotonic() >= deadline:
                raise DeployError(f"the update did not converge in {deadline - start:g}s ({state}: {msg})")
            time.sleep(POLL)

    def _progress(self, sid: str, ref: str) -> str:
        tasks = [t for t in self._tasks(sid) if t.get("DesiredState") == "running"]
        new = sum(
            1 for t in tasks if _task_image(t) == ref and (t.get("Status") or {}).get("State") == "running"
        )
        return f"{new}/{self._replicas()} tasks running {ref.rpartition('/')[2]}"

    # -- helpers ------------------------------------------------------------------------------------
    def _replicas(self) -> int:
        return int(self.t.service.get("Replicas") or 1)

    def _service(self) -> dict[str, Any] | None:
        try:
            doc = self.api.get_json(f"/services/{q(self.t.name)}")
        except APIError as e:
            if e.status == 404:
                return None
            raise DeployError(f"service {self.t.name}: {e}") from None
        return doc if isinstance(doc, dict) else None

    def _tasks(self, sid: str) -> list[dict[str, Any]]:
        flt = json.dumps({"service": [sid]})
        return list(self.api.get_json("/tasks", {"filters": flt}) or [])

    def _remove_service(self, sid: str) -> None:
        try:
            self.api.request("DELETE", f"/services/{sid}").read()
        except APIError as e:
            self.say(f"gorae deploy: could not remove service {self.t.name}: {e}")

    def _line(self, image: str, cur: dict[str, Any] | None) -> str:
        ports = [
            str(p.get("PublishedPort")) for p in self.t.service.get("Ports") or [] if p.get("PublishedPort")
        ]
        where = f"now serving on {', '.join(':' + p for p in ports)}" if ports else "now running"
        n = self._replicas()
        prev = cur.get("image") if cur else None
        tail = f", previous {prev} kept" if prev and prev != image and self.t.keep > 0 else ""
        return f"{image} healthy, {where} (service {self.t.name}, {n} {'replica' if n == 1 else 'replicas'}){tail}"

    def recover(self) -> None:
        """Nothing to undo: the swarm keeps the service's state (an update cut short goes on, or rolls back)."""


def _task_image(task: dict[str, Any]) -> str:
    return str(((task.get("Spec") or {}).get("ContainerSpec") or {}).get("Image") or "")


def _task_error(tasks: list[dict[str, Any]]) -> str:
    if not tasks:
        return ""
    last = max(tasks, key=lambda t: str((t.get("Status") or {}).get("Timestamp") or ""))
    st = last.get("Status") or {}
    return str(st.get("Err") or st.get("Message") or st.get("State") or "")
