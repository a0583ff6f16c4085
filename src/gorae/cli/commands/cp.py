"""`gorae cp`: copy between a container (GET/PUT /containers/{id}/archive) and the local filesystem or a tar
stream on stdin/stdout, with docker's rules for "copy into a directory" versus "copy as this name".

Local extraction uses tarfile's "data" filter (no absolute paths, no escapes through links or `..`, no
device files), except that symbolic links keep their targets as docker does (nothing is ever written
through one), into a temporary directory next to the destination, then renames into place.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import posixpath
import shutil
import sys
import tarfile
import tempfile
from typing import Any

from gorae.cli.context import Cli, StatusError
from gorae.cli.flags import O, Spec
from gorae.cli.output import human_size
from gorae.client.api import q
from gorae.client.errors import APIError

CP = Spec(
    "cp",
    "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tgorae cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
    "Copy files/folders between a container and the local filesystem\n\nUse '-' as the source to read a tar archive from stdin\n"
    "and extract it to a directory destination in a container.\nUse '-' as the destination to stream a tar archive of a\n"
    "container source to stdout.",
    [
        O("archive", "a", help="Archive mode (copy all uid/gid information)"),
        O("follow-link", "L", help="Always follow symbol link in SRC_PATH"),
        O(
            "quiet",
            "q",
            help="Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached",
        ),
    ],
    min_args=2,
    max_args=2,
    exact_args=True,
)


def split_spec(arg: str) -> tuple[str | None, str]:
    """ "ctr:/path" → ("ctr", "/path"); local paths (absolute, ./relative, or without a colon) → (None, path)."""
    if arg.startswith("/") or arg.startswith(".") or ":" not in arg:
        return None, arg
    ctr, _, path = arg.partition(":")
    return ctr, path


def _stat(cli: Cli, ctr: str, path: str) -> dict[str, Any] | None:
    resp = cli.api.request("HEAD", f"/containers/{q(ctr)}/archive", {"path": path}, ok=(404,))
    resp.read()
    if resp.status == 404:
        return None
    raw = resp.headers.get("x-docker-container-path-stat")
    if not raw:
        return {}
    try:
        stat: dict[str, Any] = json.loads(base64.b64decode(raw))
        return stat
    except ValueError:
        return {}


def _is_dir_mode(mode: int) -> bool:
    return bool(mode & (1 << 31))  # Go os.ModeDir


def _follow(cli: Cli, ctr: str, src: str) -> tuple[str, str | None]:
    """`cp -L`: a symlink source is replaced by its target (relative targets against the link's directory),
    the copy keeping the link's name (docker's rebase name)."""
    st = _stat(cli, ctr, src)
    if not st or not int(st.get("mode", 0)) & (1 << 27):  # Go os.ModeSymlink
        return src, None
    target = str(st.get("linkTarget") or "")
    if not target.startswith("/"):
        target = posixpath.join(posixpath.dirname(src.rstrip("/")) or "/", target)
    return target, posixpath.basename(src.rstrip("/"))


def copy_from(cli: Cli, ctr: str, src: str, dest: str, v: dict[str, Any]) -> None:
    if not src:
        raise StatusError(1, "filepath cannot be empty")
    if dest != "-":  # docker's ValidateOutputPath, before asking the daemon
        parent = os.path.dirname(os.path.normpath(os.path.abspath(dest)))
        if parent and not os.path.exists(parent):
            raise StatusError(1, f'invalid output path: directory "{parent}" does not exist')
    rebase: str | None = None
    if v["follow_link"]:
        src, rebase = _follow(cli, ctr, src)
    try:
        resp = cli.api.request("GET", f"/containers/{q(ctr)}/archive", {"path": src})
    except APIError as e:  # named after what was asked for last (a followed link: its target, as docker)
        if e.status == 404 and "No such container" not in e.message:
            raise StatusError(1, f"Error response from daemon: Could not find the file {src} in container {ctr}") from None
        raise
    if dest == "-":
        out = sys.stdout.buffer
        for c in resp.iter_chunks():
            out.write(c)
        out.flush()
        return
    with tempfile.TemporaryFile() as spool:
        for c in resp.iter_chunks():
            spool.write(c)
        size = spool.tell()
        spool.seek(0)
        _extract_local(spool, src, dest, v["archive"], rebase)
    if not v["quiet"] and sys.stderr.isatty():
        cli.eprint(f"Successfully copied {human_size(size)} to {dest}")


class _Refused(tarfile.TarError):
    """A member the CLI will not write: outside the destination, through a link, or a special file."""


# Members are checked by _Guard before extraction, so tarfile's own filter (3.11.4+; the default from 3.14)
# must not check them again. Debian 12's python3 (3.11.2) has no filter argument at all.
_NO_FILTER: dict[str, Any] = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}


class _Guard:
    """What tarfile's "data" filter checks, written out so that it works on every 3.11 (Debian 12 ships
    3.11.2, before the filters), except that symbolic links may point anywhere (docker keeps `/x` as is): no
    member is ever written through a link the archive made, none lands outside the extraction directory,
    hard links point inside it, special files are refused, set-id/sticky and group/other write bits dropped.
    Owners: the member's with `-a` (docker's archive mode), else the caller's."""

    def __init__(self, archive: bool) -> None:
        self.archive = archive
        self.links: set[str] = set()

    def _inside(self, member: tarfile.TarInfo, dest: str, name: str) -> None:
        target = os.path.realpath(os.path.join(dest, name))
        if os.path.commonpath([target, dest]) != dest:
            raise _Refused(f"{member.name!r} would be extracted to {target!r}, which is outside the destination")

    def __call__(self, member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
        dest = os.path.realpath(path)
        name = posixpath.normpath(member.name.lstrip("/"))
        parts = name.split("/")
        if any("/".join(parts[:i]) in self.links for i in range(1, len(parts) + 1)):
            raise _Refused(f"{member.name!r} would be extracted through a link in the archive")
        self._inside(member, dest, name)
        out = copy.copy(member)
        out.name = name
        if member.issym():
            self.links.add(name)
        elif member.islnk():
            out.linkname = posixpath.normpath(member.linkname.lstrip("/"))
            self._inside(member, dest, out.linkname)
        elif not (member.isreg() or member.isdir()):
            raise _Refused(f"{member.name!r} is a special file")
        mode = member.mode & 0o755
        if member.isreg() or member.islnk():
            if not mode & 0o100:
                mode &= ~0o111
            mode |= 0o600
        elif member.isdir():
            mode |= 0o700  # later members go into it, also for a caller who is not root
        out.mode = mode
        if not self.archive:
            out.uid, out.gid = os.getuid(), os.getgid()
        out.uname = out.gname = ""
        return out


def _extract_local(tar_stream: Any, src: str, dest: str, archive: bool, rebase: str | None = None) -> None:
    """docker's CopyTo: SRC into an existing directory DEST (its contents with SRC ending in `/.`), or as
    DEST itself when DEST does not exist (its parent must)."""
    copy_contents = src.endswith("/.") or src == "."
    dest_is_dir = os.path.isdir(dest)
    parent = dest if dest_is_dir else (os.path.dirname(os.path.abspath(dest.rstrip("/"))) or "/")
    if not os.path.isdir(parent):
        raise StatusError(1, f"destination directory {os.path.dirname(dest.rstrip('/'))!r} must exist")
    tmp = tempfile.mkdtemp(prefix=".gorae-cp-", dir=parent)
    try:
        guard = _Guard(archive)
        top: str | None = None
        try:
            with tarfile.open(fileobj=tar_stream, mode="r|*") as tf:
                for member in tf:
                    safe = guard(member, tmp)  # its name normalised: relative, no `..`
                    if top is None:
                        top = safe.name.split("/")[0]
                    tf.extract(safe, tmp, numeric_owner=True, **_NO_FILTER)
        except (tarfile.TarError, KeyError, ValueError, EOFError) as e:  # KeyError: a hardlink to nothing
            raise StatusError(1, f"invalid archive from the daemon: {e}") from None
        if top is None:
            return
        item = tmp if top == "." else os.path.join(tmp, top)
        if not os.path.lexists(item):
            return
        name = rebase or (os.path.basename(src.rstrip("/")) if top == "." else top)
        is_dir = os.path.isdir(item) and not os.path.islink(item)
        if dest_is_dir:
            if copy_contents and is_dir:
                for inner in os.listdir(item):
                    _move(os.path.join(item, inner), os.path.join(dest, inner))
            else:
                _move(item, os.path.join(dest, name))
            return
        if os.path.lexists(dest):
            if is_dir:
                raise StatusError(1, "cannot copy a directory to a file")
            _move(item, dest.rstrip("/"))
            return
        if dest.endswith("/") and not is_dir:
            raise StatusError(1, f"destination directory {dest!r} must exist")
        if item == tmp:
            os.makedirs(dest.rstrip("/"))
            for inner in os.listdir(tmp):
                _move(os.path.join(tmp, inner), os.path.join(dest.rstrip("/"), inner))
        else:
            _move(item, dest.rstrip("/"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _move(src: str, target: str) -> None:
    if os.path.isdir(target) and not os.path.islink(target) and os.path.isdir(src) and not os.path.islink(src):
        for inner in os.listdir(src):
            _move(os.path.join(src, inner), os.path.join(target, inner))
        return
    if os.path.lexists(target) and not (os.path.isdir(target) and not os.path.islink(target)):
        os.unlink(target)
    os.replace(src, target)


def copy_to(cli: Cli, src: str, ctr: str, dest: str, v: dict[str, Any]) -> None:
    if not dest:
        raise StatusError(1, "filepath cannot be empty")
    api = cli.api
    if src == "-":
        params = {"path": dest, **({"copyUIDGID": "true"} if v["archive"] else {})}
        resp = api.request("PUT", f"/containers/{q(ctr)}/archive", params, data=sys.stdin.buffer)
        resp.read()
        return
    local = src.rstrip("/") if src not in ("/",) else src
    if v["follow_link"]:
        local = os.path.realpath(local)
    if not os.path.lexists(local):
        raise StatusError(1, f"lstat {os.path.abspath(local)}: no such file or directory")
    st = _stat(cli, ctr, dest)
    copy_contents = src.endswith("/.")
    if st is not None and (_is_dir_mode(int(st.get("mode", 0))) if st else True):
        target_dir, arcname = dest, os.path.basename(os.path.abspath(local))
    else:
        if st is None and dest.endswith("/"):
            raise StatusError(
                1, f"Error response from daemon: Could not find the file {dest} in container {ctr}"
            )
        target_dir, arcname = (os.path.dirname(dest.rstrip("/")) or "/"), os.path.basename(dest.rstrip("/"))
    with tempfile.TemporaryFile() as spool:
        with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tf:
            if copy_contents and os.path.isdir(local):
                for name in sorted(os.listdir(local)):
                    tf.add(os.path.join(local, name), arcname=name)
            else:
                tf.add(local, arcname=arcname)
        size = spool.tell()
        spool.seek(0)
        # the local owners travel in the tar (the daemon keeps them); with -a the daemon gives the files to
        # the container's user instead (docker's copyUIDGID)
        params = {"path": target_dir, **({"copyUIDGID": "true"} if v["archive"] else {})}
        resp = cli.api.request("PUT", f"/containers/{q(ctr)}/archive", params, data=spool)
        resp.read()
    if not v["quiet"] and sys.stderr.isatty():
        cli.eprint(f"Successfully copied {human_size(size)} to {ctr}:{dest}")


def cmd_cp(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    (sc, sp), (dc, dp) = split_spec(args[0]), split_spec(args[1])
    if sc and dc:
        raise StatusError(1, "copying between containers is not supported")
    if not sc and not dc:
        raise StatusError(1, "must specify at least one container source")
    try:
        if sc:
            copy_from(cli, sc, sp, dp, v)
        else:
            assert dc is not None
            copy_to(cli, sp, dc, dp, v)
    except APIError as e:
        if e.status == 404 and "No such container" not in e.message and sc:
            raise StatusError(
                1, f"Error response from daemon: Could not find the file {sp} in container {sc}"
            ) from None
        raise
    except OSError as e:
        raise StatusError(1, str(e)) from None
    return 0


COMMANDS = {"cp": (CP, cmd_cp)}
