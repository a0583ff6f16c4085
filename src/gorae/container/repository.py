"""`ContainerRepository`: the container records, their id/name/prefix index, persistence, events and waiters.

Owns the one commit point for state changes: `transition(ct, event, **fields)` applies the state table,
persists the record, publishes the event and wakes the waiters in one call, so none of the four can be
forgotten (moby's State setters that notify their waiters). `destroyed(ct)` is the same for removal.
Listeners (`on_event`) hear every container action the repository publishes (execs forget a container's
sessions on "die" and "destroy" this way). Never touches the runtime, snapshots or networks.

A full disk never fails a state change or a removal: the store first draws on the disk reserve, and when
even that is gone the change stays in memory (the record is what the API shows and what the waiters get)
and is written by `retry_pending` once space returns. Only a new record (`add`) or a rename fails with
`DiskFull`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from gorae.container import state as cs
from gorae.container.names import random_name, validate_name
from gorae.container.record import KIND, Container
from gorae.container.state import Event
from gorae.container.types import EventSink, RecordStore
from gorae.errors import Conflict, DiskFull, InvalidParameter, NotFound

log = logging.getLogger("gorae.containers")

WAIT_CONDITIONS = ("not-running", "next-exit", "removed")
Listener = Callable[[Container, str], None]


class ContainerRepository:
    def __init__(self, store: RecordStore, publish: EventSink) -> None:
        self._store = store
        self._publish = publish
        self._by_id: dict[str, Container] = {}
        self._names: dict[str, str] = {}  # "/name" -> id, of indexed records
        # "/name" -> id of a create in flight: held from `reserve_name` until `add` or `release_name`, so two
        # creates (or a create and a rename) can never both take one name (moby's name registrar)
        self._reserved: dict[str, str] = {}
        self._listeners: list[Listener] = []
        self._unsaved: set[str] = set()  # ids whose latest state a full disk kept from the store
        self._undeleted: set[str] = set()  # ids of removed containers whose record a full disk kept

    # ---- lookup ------------------------------------------------------------------------------

    def get(self, ref: str) -> Container:
        """By full id, name ("/x" or "x"), or unique id prefix; NotFound "No such container: ref"."""
        if not ref:
            raise NotFound("No such container: ")
        ct = self._by_id.get(ref)
        if ct is not None:
            return ct
        cid = self._names.get(ref if ref.startswith("/") else "/" + ref)
        if cid is not None:
            return self._by_id[cid]
        matches = [c for i, c in self._by_id.items() if i.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidParameter(f"multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def all(self) -> list[Container]:
        return list(self._by_id.values())

    def load(self) -> list[Container]:
        """Every persisted record into the index (daemon start)."""
        for doc in self._store.list(KIND):
            if not isinstance(doc, dict) or "Id" not in doc:
                continue
            ct = Container.from_doc(doc)
            self._by_id[ct.id] = ct
            self._names[ct.name] = ct.id
        return self.all()

    # ---- names -------------------------------------------------------------------------------

    def reserve_name(self, name: str | None, cid: str) -> str:
        """Reserve the canonical "/name" for the container `cid` being created: the given one if free (else
        Conflict in docker's words), else a random free one. Held until `add` indexes the record or
        `release_name` gives it back; a name is never taken from another container or create."""
        if name:
            canon = validate_name(name)
            self._check_free(canon, "")
        else:
            for attempt in range(64):
                canon = "/" + random_name(attempt)
                if not self._taken_by(canon):
                    break
            else:
                canon = "/" + cid[:12]
        self._reserved[canon] = cid
        return canon

    def release_name(self, canon: str, cid: str) -> None:
        """A create that failed gives its reserved name back (only its own reservation)."""
        if self._reserved.get(canon) == cid:
            del self._reserved[canon]

    def _taken_by(self, canon: str) -> str | None:
        return self._names.get(canon) or self._reserved.get(canon)

    def _check_free(self, canon: str, prefix: str) -> None:
        other = self._taken_by(canon)
        if other is not None:
            raise Conflict(
                f'{prefix}Conflict. The container name "{canon}" is already in use by container "{other}". '
                "You have to remove (or rename) that container to be able to reuse that name."
            )

    def add(self, ct: Container) -> None:
        """Index and persist a new record under its reserved name (nothing is indexed when persisting fails;
        the reservation is then kept for the caller to release)."""
        owner = self._taken_by(ct.name)
        if owner is not None and owner != ct.id:
            self._check_free(ct.name, "")
        self._by_id[ct.id] = ct
        self._names[ct.name] = ct.id
        try:
            self._put(ct)
        except BaseException:
            self._by_id.pop(ct.id, None)
            if self._names.get(ct.name) == ct.id:
                del self._names[ct.name]
            raise
        self.release_name(ct.name, ct.id)
        self.event(ct, "create")

    def rename(self, ct: Container, new_name: str) -> str:
        """Give `ct` a new name (validated, unique), persisted; the old name."""
        canon = validate_name(new_name)
        old = ct.name
        if canon == old:
            raise InvalidParameter("Renaming a container with the same name as its current name")
        self._check_free(canon, "Error when allocating new name: ")
        self._names.pop(old, None)
        self._names[canon] = ct.id
        ct.doc["Name"] = canon
        try:
            self._put(ct)
        except BaseException:
            if self._names.get(canon) == ct.id:
                del self._names[canon]
            self._names[old] = ct.id
            ct.doc["Name"] = old
            raise
        self.event(ct, "rename", {"oldName": old})
        return old

    # ---- persistence, events, the commit point -----------------------------------------------

    def save(self, ct: Container) -> None:
        """Persist a record whose status did not change (config, bookkeeping, network settings); with a full
        disk, later (`retry_pending`)."""
        if ct.removed:
            return
        try:
            self._put(ct)
        except DiskFull as e:
            if ct.id not in self._unsaved:
                log.warning("container %s: state kept in memory until space returns: %s", ct.id[:12], e)
            self._unsaved.add(ct.id)

    def _put(self, ct: Container) -> None:
        """(The store lets an update of an existing record draw on the disk reserve, a new record not.)"""
        self._store.put(KIND, ct.id, ct.to_doc(), name=ct.name.lstrip("/"))
        self._unsaved.discard(ct.id)

    @property
    def pending(self) -> int:
        """How many records a full disk kept from the store."""
        return len(self._unsaved) + len(self._undeleted)

    def retry_pending(self) -> int:
        """Write what a full disk kept from the store (space returned); how many are still pending."""
        for cid in sorted(self._undeleted):
            try:
                self._store.delete(KIND, cid)
            except NotFound:
                pass
            except DiskFull:
                return self.pending
            self._undeleted.discard(cid)
        for cid in sorted(self._unsaved):
            ct = self._by_id.get(cid)
            if ct is None or ct.removed:
                self._unsaved.discard(cid)
                continue
            try:
                self._put(ct)
            except DiskFull:
                return self.pending
        return self.pending

    def event(self, ct: Container, action: str, extra: dict[str, str] | None = None) -> None:
        self._publish("container", action, ct.id, ct.attributes(extra))
        for listener in self._listeners:
            try:
                listener(ct, action)
            except Exception:
                log.exception("listener of %s on %s", action, ct.id[:12])

    def publish(self, type_: str, action: str, actor: str, attributes: dict[str, str]) -> None:
        """An event that is not a container's own (prune, network connect)."""
        self._publish(type_, action, actor, attributes)

    def on_event(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def transition(
        self,
        ct: Container,
        event: Event,
        *,
        action: str | None = None,
        attrs: dict[str, str] | None = None,
        **fields: Any,
    ) -> None:
        """Apply `event` (with State `fields`), persist, publish `action` (if any), wake the waiters."""
        ct.doc["State"] = cs.apply(ct.state, event, ct.id, **fields)
        self.save(ct)
        if action:
            self.event(ct, action, attrs)
        if event in cs.WAKES_EXIT_WAITERS:
            _resolve(ct.exit_waiters, ct.exit_result())

    def delete_record(self, ct: Container) -> None:
        """Removal's last step on disk: the record goes (nothing saves it again); with a full disk, later."""
        ct.removed = True
        self._unsaved.discard(ct.id)
        try:
            self._store.delete(KIND, ct.id)
        except NotFound:
            pass
        except DiskFull as e:
            log.warning("container %s: record removed when space returns: %s", ct.id[:12], e)
            self._undeleted.add(ct.id)

    def destroyed(self, ct: Container) -> None:
        """The container is gone: drop it from the index, publish "destroy", wake every waiter."""
        ct.removed = True
        self._by_id.pop(ct.id, None)
        if self._names.get(ct.name) == ct.id:
            self._names.pop(ct.name, None)
        self.event(ct, "destroy")
        # dockerd answers `removed` waiters without the start error (the docker CLI's `run --rm` would log
        # "Error waiting for container" next to the start error it reports itself)
        _resolve(ct.removed_waiters, {**ct.exit_result(), "Error": None})
        _resolve(ct.exit_waiters, ct.exit_result())

    # ---- waiters -----------------------------------------------------------------------------

    def wake_exit_waiters(self, ct: Container) -> None:
        """Answer the exit waiters with the record as it is (the last resort when recording an exit failed)."""
        _resolve(ct.exit_waiters, ct.exit_result())

    def wait(self, ct: Container, condition: str = "not-running") -> asyncio.Future[dict[str, Any]]:
        """A future registered now (so an exit right after cannot be missed), answered by the commit point.

        Conditions as docker: `not-running` (now, if not running), `next-exit`, `removed`."""
        if condition in ("", None):
            condition = "not-running"
        if condition not in WAIT_CONDITIONS:
            raise InvalidParameter(f"invalid condition: {condition!r}")
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if condition == "not-running" and not ct.state.get("Running"):
            fut.set_result(ct.exit_result())
        elif condition == "removed":
            ct.removed_waiters.append(fut)
        else:
            ct.exit_waiters.append(fut)
        return fut


def _resolve(waiters: list[asyncio.Future[dict[str, Any]]], result: dict[str, Any]) -> None:
    for fut in waiters:
        if not fut.done():
            fut.set_result(dict(result))
    waiters.clear()
