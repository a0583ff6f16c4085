"""The disk reserve (a leaf): preallocated space on the data root's filesystem that the metadata stores give
back when a write finds the disk full, so that the state change or removal being recorded still goes through.

With a full disk every state change (an exit, a stop, an unpause, a removal) needs a few SQLite pages in the
WAL, and nothing in the API could free space without them. The reserve is one file, `<data-root>/reserve`,
allocated up front (fallocate: no data is written); `release()` deletes it when a store hits SQLITE_FULL
(`MetadataStore(on_full=...)`), and the store retries its transaction once. `replenish()` makes it again once
the filesystem has room for it and a margin; the daemon calls it periodically while it is released, and then
retries the writes that were deferred meanwhile. Thread-safe: the stores write from worker threads too.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading

log = logging.getLogger("gorae.store")

MIN_SIZE = 1 << 20
MAX_SIZE = 16 << 20
FILE_NAME = "reserve"


def reserve_size(directory: str) -> int:
    """1/64 of the filesystem, between 1 and 16 MiB (a removal needs a few dozen pages; 64 MiB gives 1 MiB)."""
    st = os.statvfs(directory)
    total = st.f_blocks * st.f_frsize
    return max(MIN_SIZE, min(MAX_SIZE, total // 64))


class DiskReserve:
    def __init__(self, directory: str, size: int | None = None) -> None:
        self.path = os.path.join(directory, FILE_NAME)
        self.size = size if size is not None else reserve_size(directory)
        self._lock = threading.Lock()
        self._held = os.path.exists(self.path) and os.path.getsize(self.path) >= self.size

    @property
    def held(self) -> bool:
        return self._held

    def release(self) -> bool:
        """Give the reserved space back to the filesystem; False when there was nothing to give."""
        with self._lock:
            if not self._held:
                return False
            self._held = False
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                return False
            log.warning("the disk of %s is full: released the %d-byte reserve", self.path, self.size)
            return True

    def free_bytes(self) -> int:
        st = os.statvfs(os.path.dirname(self.path))
        return st.f_bavail * st.f_frsize

    def replenish(self) -> bool:
        """Make the reserve when it is not held and the filesystem has room for it twice; whether it is held."""
        with self._lock:
            if self._held:
                return True
            if self.free_bytes() < 2 * self.size:
                return False
            tmp = self.path + ".tmp"
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
                try:
                    os.posix_fallocate(fd, 0, self.size)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, self.path)
            except OSError as e:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                log.warning("could not make the disk reserve %s: %s", self.path, e)
                return False
            self._held = True
            return True
