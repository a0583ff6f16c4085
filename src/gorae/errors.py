"""The error types of gorae, in one tree.

Every subsystem raises one of these; the API layer maps them to HTTP statuses in one place
(`gorae.api.errors`), and the CLI prints their message as docker does. A subprocess failure
carries the command's stderr in its message.
"""

from __future__ import annotations

import errno


class GoraeError(Exception):
    """Base of all gorae errors. `status` is the HTTP status the API answers with."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameter(GoraeError):
    """The caller gave a bad value (400)."""

    status = 400


class Unauthorized(GoraeError):
    status = 401


class Forbidden(GoraeError):
    status = 403


class NotFound(GoraeError):
    """No such object (404): container, image, exec, volume, network, path."""

    status = 404


class Conflict(GoraeError):
    """The object exists or is in a state that forbids the request (409)."""

    status = 409


class PayloadTooLarge(GoraeError):
    """A request body larger than the API reads whole (413)."""

    status = 413


class NotModified(GoraeError):
    """Nothing to do: container already started/stopped (304)."""

    status = 304


class NotImplementedYet(GoraeError):
    """A route or option gorae does not serve (yet). Honest 501."""

    status = 501


class Unavailable(GoraeError):
    status = 503


class SystemError_(GoraeError):
    """An internal failure (500)."""

    status = 500


class DiskFull(SystemError_):
    """A write found the disk full (ENOSPC, SQLITE_FULL): docker's "no space left on device" (500)."""


def no_space(e: OSError | None = None, path: str = "") -> DiskFull | None:
    """`DiskFull` in docker's words ("write <path>: no space left on device") when `e` is ENOSPC (or, with no
    `e`, for `path`); None for any other error."""
    if e is not None and e.errno != errno.ENOSPC:
        return None
    where = (e.filename if e is not None and e.filename else "") or path
    return DiskFull(f"write {where}: no space left on device" if where else "no space left on device")


class CommandFailed(SystemError_):
    """A subprocess exited non-zero; its stderr is part of the message."""

    def __init__(self, argv: list[str], returncode: int, stderr: str) -> None:
        msg = f"{argv[0]} {' '.join(argv[1:3])}: exit status {returncode}: {stderr.strip()}"
        super().__init__(msg)
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr
