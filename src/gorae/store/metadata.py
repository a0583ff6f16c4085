"""The metadata store: JSON documents by (kind, id) with an optional unique name, plus the event log.

One SQLite connection in WAL mode guarded by a lock. `synchronous=FULL`: every committed transaction is
fsynced to the WAL before `put` returns, so neither a `kill -9` of the daemon nor a power cut loses a
committed document (NORMAL would survive the kill but could lose the last commits on power loss; an fsync
costs well under a millisecond here). Schema changes are numbered migrations recorded in `schema_version`.

A full disk (SQLITE_FULL) is a `DiskFull` error ("no space left on device"), never a bare sqlite3 error.
Deletes and updates of existing documents (state changes that must not fail: an exit, a stop, an address
released, a removal) may draw on the disk reserve (`store.reserve`): on SQLITE_FULL the store calls `on_full`
(which releases the reserve) and retries the transaction once. Inserts of new documents do not (unless
`reserve=True`), so that creating objects cannot eat the space the state changes need.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from gorae.errors import Conflict, DiskFull, InvalidParameter, NotFound

T = TypeVar("T")
OnFull = Callable[[], bool]  # give space back (release the reserve); whether any was given

# Each entry upgrades the schema from version i to i+1.
_MIGRATIONS: list[list[str]] = [
    [
        "CREATE TABLE docs (kind TEXT NOT NULL, id TEXT NOT NULL, name TEXT, doc TEXT NOT NULL,"
        " PRIMARY KEY (kind, id))",
        "CREATE UNIQUE INDEX docs_name ON docs (kind, name) WHERE name IS NOT NULL",
        "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, time_nano INTEGER NOT NULL,"
        " doc TEXT NOT NULL)",
        "CREATE INDEX events_time ON events (time_nano)",
    ],
]

EVENTS_KEPT = 10_000


class MetadataStore:
    def __init__(self, path: str, *, on_full: OnFull | None = None) -> None:
        self.path = path
        self.on_full = on_full
        self._lock = threading.RLock()
        self._depth = 0
        self._events_added = 0
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        with self.transaction():
            self._db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = self._db.execute("SELECT version FROM schema_version").fetchone()
            version = row[0] if row else 0
            if row is None:
                self._db.execute("INSERT INTO schema_version (version) VALUES (0)")
            if version > len(_MIGRATIONS):
                raise RuntimeError(
                    f"{self.path}: schema version {version} is newer than this gorae ({len(_MIGRATIONS)})"
                )
            for stmts in _MIGRATIONS[version:]:
                for stmt in stmts:
                    self._db.execute(stmt)
            self._db.execute("UPDATE schema_version SET version = ?", (len(_MIGRATIONS),))

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT version FROM schema_version").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Several puts/deletes atomically. Nests: only the outermost block commits."""
        with self._lock:
            outer = self._depth == 0
            if outer:
                self._db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield
                if outer:
                    self._db.execute("COMMIT")
            except BaseException as e:
                self._depth -= 1
                if outer:
                    with contextlib.suppress(sqlite3.Error):  # a failed COMMIT may have rolled back already
                        self._db.execute("ROLLBACK")
                    if _is_full(e):
                        raise DiskFull(f"write {self.path}: no space left on device") from None
                raise
            self._depth -= 1

    def _write(self, body: Callable[[], T], *, reserve: bool) -> T:
        """`body` in a transaction; with `reserve`, retried once after `on_full` gave space back."""
        with self._lock:
            if self._depth or not reserve or self.on_full is None:
                with self.transaction():
                    return body()
            try:
                with self.transaction():
                    return body()
            except DiskFull:
                if not self.on_full():
                    raise
            with self.transaction():
                return body()

    # ---- documents -----------------------------------------------------------------------------

    def put(
        self, kind: str, id: str, doc: dict[str, Any], *, name: str | None = None, reserve: bool | None = None
    ) -> None:
        """Insert or replace; a name already used by another document of the kind is a Conflict.
        `reserve`: whether a full disk may draw on the disk reserve; by default an update of an existing
        document (a state change: an exit, an address released) may, a new document may not."""
        if not kind or not id:
            raise InvalidParameter("kind and id must not be empty")
        if reserve is None:
            reserve = self.exists(kind, id)
        data = json.dumps(doc, separators=(",", ":"))

        def body() -> None:
            try:
                self._db.execute(
                    "INSERT INTO docs (kind, id, name, doc) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (kind, id) DO UPDATE SET name = excluded.name, doc = excluded.doc",
                    (kind, id, name, data),
                )
            except sqlite3.IntegrityError:
                raise Conflict(f"the {kind} name {name!r} is already in use") from None

        self._write(body, reserve=reserve)

    def get(self, kind: str, id: str) -> dict[str, Any]:
        with self._lock:
            row = self._db.execute("SELECT doc FROM docs WHERE kind = ? AND id = ?", (kind, id)).fetchone()
        if row is None:
            raise NotFound(f"No such {kind}: {id}")
        doc: dict[str, Any] = json.loads(row[0])
        return doc

    def exists(self, kind: str, id: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM docs WHERE kind = ? AND id = ?", (kind, id)).fetchone()
        return row is not None

    def find_id(self, kind: str, id_or_name_or_prefix: str) -> str:
        """The id of the document with this exact id, else this exact name, else this unique id prefix."""
        key = id_or_name_or_prefix
        if not key:
            raise NotFound(f"No such {kind}: {key}")
        with self._lock:
            row = self._db.execute("SELECT id FROM docs WHERE kind = ? AND id = ?", (kind, key)).fetchone()
            if row is None:
                row = self._db.execute(
                    "SELECT id FROM docs WHERE kind = ? AND name = ?", (kind, key)
                ).fetchone()
            if row is not None:
                return str(row[0])
            # prefix match on the primary key: id >= key AND id < key + U+10FFFF (no LIKE escaping needed)
            rows = self._db.execute(
                "SELECT id FROM docs WHERE kind = ? AND id >= ? AND id < ? LIMIT 2",
                (kind, key, key + "\U0010ffff"),
            ).fetchall()
        if len(rows) == 1:
            return str(rows[0][0])
        if len(rows) > 1:
            raise InvalidParameter(f"multiple IDs found with provided prefix: {key}")
        raise NotFound(f"No such {kind}: {key}")

    def find(self, kind: str, id_or_name_or_prefix: str) -> dict[str, Any]:
        return self.get(kind, self.find_id(kind, id_or_name_or_prefix))

    def list(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT doc FROM docs WHERE kind = ? ORDER BY rowid", (kind,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def items(self, kind: str) -> builtins.list[tuple[str, dict[str, Any]]]:
        """(id, doc) pairs of a kind, for kinds whose docs do not carry their own id."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, doc FROM docs WHERE kind = ? ORDER BY rowid", (kind,)
            ).fetchall()
        return [(str(r[0]), json.loads(r[1])) for r in rows]

    def delete(self, kind: str, id: str) -> None:
        """Removals may always draw on the disk reserve: they are how space is freed."""
        cur = self._write(
            lambda: self._db.execute("DELETE FROM docs WHERE kind = ? AND id = ?", (kind, id)), reserve=True
        )
        if cur.rowcount == 0:
            raise NotFound(f"No such {kind}: {id}")

    # ---- events --------------------------------------------------------------------------------

    def add_event(self, ev: dict[str, Any]) -> None:
        nano = int(ev.get("timeNano") or 0)
        with self.transaction():
            self._db.execute(
                "INSERT INTO events (time_nano, doc) VALUES (?, ?)",
                (nano, json.dumps(ev, separators=(",", ":"))),
            )
            self._events_added += 1
            if self._events_added % 1000 == 0:
                self._db.execute(
                    "DELETE FROM events WHERE seq <= (SELECT MAX(seq) FROM events) - ?", (EVENTS_KEPT,)
                )

    def events_since(self, since_nano: int, until_nano: int | None = None) -> builtins.list[dict[str, Any]]:
        """Stored events with since_nano <= timeNano <= until_nano, oldest first."""
        with self._lock:
            if until_nano is None:
                rows = self._db.execute(
                    "SELECT doc FROM events WHERE time_nano >= ? ORDER BY time_nano, seq", (since_nano,)
                ).fetchall()
            else:
                rows = self._db.execute(
                    "SELECT doc FROM events WHERE time_nano >= ? AND time_nano <= ? ORDER BY time_nano, seq",
                    (since_nano, until_nano),
                ).fetchall()
        return [json.loads(r[0]) for r in rows]


def _is_full(e: BaseException) -> bool:
    """SQLite's "database or disk is full" (SQLITE_FULL: the disk, or a file at its size limit)."""
    if not isinstance(e, sqlite3.OperationalError):
        return False
    code = getattr(e, "sqlite_errorcode", None)
    if code is not None:
        return bool(code & 0xFF == sqlite3.SQLITE_FULL)
    return "disk is full" in str(e)
