"""The daemon's C allocator settings (glibc): large buffers kept on the heap and reused between requests.

By default glibc hands out each allocation over 128 KiB (then over the last such size freed, up to 32 MiB)
as its own fresh mapping, and gives heap memory back to the kernel as soon as more than twice that is free
at its top. The daemon moves bulk data in ~1 MiB pieces (request bodies: a build context, `docker load`, an
image import), so under that policy every piece of every request is a fresh mapping whose pages fault in
(zeroed by the kernel) and are unmapped again when it is dropped: a 50 MiB build context cost ~70 ms of
page faults on this 2-core machine. With allocations up to `MMAP_THRESHOLD` from the heap and up to
`TRIM_THRESHOLD` of free heap kept, the next request reuses pages already mapped. The cost: up to
`TRIM_THRESHOLD` of freed memory stays in the daemon's RSS. Left alone when the user set glibc's own
`MALLOC_MMAP_THRESHOLD_`/`MALLOC_TRIM_THRESHOLD_`, or when the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 4 << 20
TRIM_THRESHOLD = 64 << 20


def tune() -> bool:
    """Apply the settings above; whether they were applied."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
