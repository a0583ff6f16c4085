"""Writing tar entries to disk: layer application (`apply_layer`) and `docker cp` extraction (`extract_to`).

This is the first security boundary of the engine. It owns reading a tar stream entry by entry with
`TarFile.next()` (stream mode, the input need not be seekable) and creating each entry itself:

- every name is cleaned as if rooted at `/` and its parent is resolved with `inroot.Root.walk`: an
  fd-relative `O_NOFOLLOW` walk that interprets symlinks inside the root (RESOLVE_IN_ROOT semantics in
  userspace), so a symlink in the archive or already on disk may point anywhere but nothing is ever
  written through one to outside the root;
- the final component is never followed: existing entries are unlinked (or removed as a tree with
  fd-relative `archive.tree.remove_tree`, at any depth) and recreated with `O_EXCL|O_NOFOLLOW`/`*at` calls on the parent's fd;
- hardlink targets are resolved the same way, so they are clamped inside the root; a target that does
  not exist there (or is a directory) is refused;
- ownership/mode/times/xattrs go through the file's own fd, an `O_PATH` fd checked not to be a symlink,
  or `lchown`/`utimensat(AT_SYMLINK_NOFOLLOW)` for symlinks (which are never chmodded: Linux has no
  lchmod);
- whiteouts act only inside their own directory; the uncompressed size is capped and hashed in the
  same pass (`streams.DigestingReader`), or by the caller of `apply_tar` (a layer ingest hashes in its
  decompression thread while this one writes files).

Entries are read with `tarfile`'s header parsing in random-access mode over a forward-only
`chunks.ChunkReader` (never its stream mode, whose buffer handling is quadratic in small entries), and
regular file bodies are written straight from the chunks (`ChunkReader.copy_to`), sparse ones excepted.
The member list tarfile keeps is cleared after each entry, so memory stays flat whatever the entry count.

Must never: call `tarfile.extract*`, follow a symlink with the kernel while writing, or take overlayfs'
own xattrs (trusted.overlay.*) from an archive.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO, Literal

from gorae.archive.chunks import ChunkReader, ChunkSource
from gorae.archive.inroot import MountSpec, Root
from gorae.archive.names import (
    OVERLAY_OPAQUE_XATTR,
    OVERLAY_XATTR_PREFIXES,
    WHITEOUT_META_PREFIX,
    WHITEOUT_OPAQUE,
    WHITEOUT_PREFIX,
    clean_parts,
    whiteout_target,
)
from gorae.archive.streams import BUF, DEFAULT_MAX, DigestingReader
from gorae.archive.tree import remove_tree
from gorae.errors import GoraeError, InvalidParameter, SystemError_

Whiteouts = Literal["overlay", "remove", "none"]
_SYSTEM_ERRNOS = (
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EIO,
    errno.EROFS,
    errno.EMFILE,
    errno.ENFILE,
    errno.ENOMEM,
)
_XATTR_PAX = "SCHILY.xattr."


@dataclass
class ApplyResult:
    diff_id: str  # "sha256:<hex>" of the *uncompressed* tar stream as read
    size: int  # bytes of content written (sum of regular file sizes)


class _Unpacker:
    """Creates the entries of one tar stream under `prefix` (canonical parts) inside `root`."""

    def __init__(
        self,
        root: Root,
        *,
        prefix: list[str],
        whiteouts: Whiteouts,
        max_bytes: int,
        no_overwrite_dir_non_dir: bool = False,
        owner: tuple[int, int] | None = None,
    ) -> None:
        self.root = root
        self.owner = owner  # every entry's uid/gid, instead of the header's (docker cp's copyUIDGID)
        self.prefix = prefix
        self.whiteouts = whiteouts
        self.max_bytes = max_bytes
        self.no_overwrite = no_overwrite_dir_non_dir
        self.size = 0
        self.is_root = os.geteuid() == 0
        self._parent: tuple[tuple[str, ...], int] | None = None  # cache: (cleaned parent parts, fd)
        self._parent_canon: list[str] = []  # the cached parent's canonical parts in the root
        self._dir_times: list[tuple[list[str], int]] = []
        self._created: set[tuple[str, ...]] = set()  # paths this stream made (opaque must keep them)
        self._src = ChunkReader(lambda: b"")  # the stream being read (set by `run`)

    # ---- parent directory, cached across consecutive entries --------------------------------------

    def _parent_fd(self, parts: list[str]) -> int:
        key = tuple(parts)
        if self._parent is not None and self._parent[0] == key:
            return self._parent[1]
        self._forget_parent()
        w = self.root.walk(parts, create=True)
        if w.rest:
            os.close(w.fd)
            raise InvalidParameter(f"cannot create {'/'.join(parts)!r}: a parent is not a directory")
        try:
            self.root.check_writable(w.parts)
        except BaseException:
            os.close(w.fd)
            raise
        self._parent = (key, w.fd)
        self._parent_canon = w.parts
        return w.fd

    def _mount_point(self, parts: list[str], is_dir: bool) -> bool:
        """True when the entry `parts` is where a directory is mounted and a directory comes (kept as it
        is); EBUSY for anything else at a mount point (the root's own entry under a mount is never touched)."""
        self._parent_fd(parts[:-1])
        m = self.root.mount_at([*self._parent_canon, parts[-1]])
        if m is None:
            return False
        if m.is_dir and is_dir:
            return True
        raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))

    def _forget_parent(self) -> None:
        """Any removal or new symlink may change how paths resolve: drop the cached parent fd."""
        if self._parent is not None:
            os.close(self._parent[1])
            self._parent = None

    def close(self) -> None:
        self._forget_parent()

    # ---- the loop ----------------------------------------------------------------------------------

    def run(self, tf: tarfile.TarFile, src: ChunkReader) -> None:
        self._src = src
        while True:
            member = tf.next()
            if member is None:
                break
            forget_members(tf)
            if self.owner is not None:
                member.uid, member.gid = self.owner
            try:
                self._entry(tf, member)
            except GoraeError:
                raise
            except OSError as e:
                reason = e.strerror or str(e)
                msg = f"failed to extract {member.name!r}: {reason}"
                if e.errno in _SYSTEM_ERRNOS:
                    raise SystemError_(msg) from e
                raise InvalidParameter(f"invalid archive: {msg}") from e
            except (OverflowError, ValueError) as e:
                raise InvalidParameter(f"invalid archive: bad header for {member.name!r}: {e}") from e
        self._forget_parent()
        self._set_dir_times()

    def _entry(self, tf: tarfile.TarFile, m: tarfile.TarInfo) -> None:
        rel = clean_parts(m.name)
        if not rel:
            return  # the root itself ("./"): its metadata belongs to whoever made the root
        parts = self.prefix + rel
        base = parts[-1]
        if self.whiteouts != "none" and base.startswith(WHITEOUT_PREFIX):
            self._whiteout(parts[:-1], base)
            return
        if self.root.has_mounts and self._mount_point(parts, m.isdir()):
            return
        if m.isreg():
            self._regular(tf, m, parts)
        elif m.isdir():
            self._directory(m, parts)
        elif m.issym():
            self._symlink(m, parts)
        elif m.islnk():
            self._hardlink(m, parts)
        elif m.ischr() or m.isblk() or m.isfifo():
            self._device(m, parts)
        else:
            raise InvalidParameter(f"invalid archive: unsupported entry type {m.type!r} for {m.name!r}")
        self._created.add(tuple(parts))

    # ---- making room -------------------------------------------------------------------------------

    def _clear(self, dfd: int, name: str, *, new_is_dir: bool, where: list[str]) -> bool:
        """Remove what is at `name` unless it is a directory and a directory comes; True when kept."""
        try:
            st = os.lstat(name, dir_fd=dfd)
        except FileNotFoundError:
            return False
        is_dir = stat.S_ISDIR(st.st_mode)
        if is_dir and new_is_dir:
            return True
        path = "/" + "/".join(where)
        if self.no_overwrite and is_dir and not new_is_dir:
            raise InvalidParameter(f"cannot overwrite directory {path!r} with non-directory")
        if self.no_overwrite and new_is_dir and not is_dir:
            raise InvalidParameter(f"cannot overwrite non-directory {path!r} with directory")
        self._remove(dfd, name, is_dir)
        return False

    def _remove(self, dfd: int, name: str, is_dir: bool) -> None:
        parent = self._parent
        if is_dir:
            # the cached parent fd (== dfd) survives: only paths below `name` change
            remove_tree(name, dir_fd=dfd)
        else:
            os.unlink(name, dir_fd=dfd)
        if parent is None or parent[1] != dfd:
            self._forget_parent()

    # ---- entry kinds -------------------------------------------------------------------------------

    def _regular(self, tf: tarfile.TarFile, m: tarfile.TarInfo, parts: list[str]) -> None:
        if self.size + m.size > self.max_bytes:
            raise InvalidParameter(f"archive exceeds the maximum size of {self.max_bytes} bytes")
        dfd = self._parent_fd(parts[:-1])
        name = parts[-1]
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:  # the name is free in the common case: no lstat first
            fd = os.open(name, flags, 0o600, dir_fd=dfd)
        except FileExistsError:  # whatever is there (a symlink included) goes first
            self._clear(dfd, name, new_is_dir=False, where=parts)
            fd = os.open(name, flags, 0o600, dir_fd=dfd)
        try:
            if m.sparse is None:  # the body as it is in the stream, straight from the chunks
                if self._src.tell() != m.offset_data:
                    self._src.seek(m.offset_data)
                if self._src.copy_to(fd, m.size) != m.size:
                    raise InvalidParameter(f"invalid archive: {m.name!r} is truncated")
            else:  # GNU sparse: tarfile maps the data blocks and the holes
                self._sparse_body(tf, m, fd)
            self.size += m.size
            self._meta_fd(fd, m)
        finally:
            os.close(fd)

    def _sparse_body(self, tf: tarfile.TarFile, m: tarfile.TarInfo, fd: int) -> None:
        src = tf.extractfile(m)
        left = m.size
        while left > 0 and src is not None:
            chunk = src.read(min(BUF, left))
            if not chunk:
                raise InvalidParameter(f"invalid archive: {m.name!r} is truncated")
            view = memoryview(chunk)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            left -= len(chunk)

    def _directory(self, m: tarfile.TarInfo, parts: list[str]) -> None:
        dfd = self._parent_fd(parts[:-1])
        name = parts[-1]
        if not self._clear(dfd, name, new_is_dir=True, where=parts):
            os.mkdir(name, 0o700, dir_fd=dfd)
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        try:
            self._meta_fd(fd, m, times=False)
        finally:
            os.close(fd)
        self._dir_times.append((parts, _ns(m.mtime)))

    def _symlink(self, m: tarfile.TarInfo, parts: list[str]) -> None:
        if not m.linkname:
            raise InvalidParameter(f"invalid archive: symlink {m.name!r} has an empty target")
        dfd = self._parent_fd(parts[:-1])
        name = parts[-1]
        self._clear(dfd, name, new_is_dir=False, where=parts)
        os.symlink(m.linkname, name, dir_fd=dfd)
        try:
            if self.is_root:
                os.chown(name, m.uid, m.gid, dir_fd=dfd, follow_symlinks=False)
            ns = _ns(m.mtime)
            os.utime(name, ns=(ns, ns), dir_fd=dfd, follow_symlinks=False)
        finally:
            self._forget_parent()  # a new symlink can change how later names resolve

    def _hardlink(self, m: tarfile.TarInfo, parts: list[str]) -> None:
        target = self.prefix + clean_parts(m.linkname)
        if len(target) <= len(self.prefix):
            raise InvalidParameter(f"invalid archive: hardlink {m.name!r} points to the root")
        tw = self.root.walk(target[:-1])
        try:
            if tw.rest:
                raise InvalidParameter(f"invalid archive: hardlink {m.name!r} to missing {m.linkname!r}")
            tname = target[-1]
            try:
                tst = os.lstat(tname, dir_fd=tw.fd)
            except FileNotFoundError:
                raise InvalidParameter(
                    f"invalid archive: hardlink {m.name!r} to missing {m.linkname!r}"
                ) from None
            if stat.S_ISDIR(tst.st_mode):
                raise InvalidParameter(f"invalid archive: hardlink {m.name!r} to directory {m.linkname!r}")
            dfd = self._parent_fd(parts[:-1])
            name = parts[-1]
            try:
                dst = os.lstat(name, dir_fd=dfd)
                if (dst.st_dev, dst.st_ino) == (tst.st_dev, tst.st_ino):
                    return  # already that very file
            except FileNotFoundError:
                pass
            self._clear(dfd, name, new_is_dir=False, where=parts)
            os.link(tname, name, src_dir_fd=tw.fd, dst_dir_fd=dfd, follow_symlinks=False)
        finally:
            os.close(tw.fd)

    def _device(self, m: tarfile.TarInfo, parts: list[str]) -> None:
        dfd = self._parent_fd(parts[:-1])
        name = parts[-1]
        self._clear(dfd, name, new_is_dir=False, where=parts)
        kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
        dev = os.makedev(m.devmajor, m.devminor) if kind != stat.S_IFIFO else 0
        os.mknod(name, kind | 0o600, dev, dir_fd=dfd)
        self._meta_path(dfd, name, m)

    # ---- whiteouts ---------------------------------------------------------------------------------

    def _whiteout(self, dir_parts: list[str], base: str) -> None:
        if base == WHITEOUT_OPAQUE:
            self._opaque(dir_parts)
            return
        if base.startswith(WHITEOUT_META_PREFIX):
            return  # other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): not content
        target = whiteout_target(base)
        if self.whiteouts == "overlay":
            dfd = self._parent_fd(dir_parts)
            self._clear(dfd, target, new_is_dir=False, where=dir_parts + [target])
            os.mknod(target, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=dfd)
            self._created.add(tuple(dir_parts + [target]))
            return
        # "remove": delete what the lower layers had there; a missing parent means nothing to remove
        w = self.root.walk(dir_parts)
        try:
            if w.rest:
                return
            try:
                st = os.lstat(target, dir_fd=w.fd)
            except FileNotFoundError:
                return
            self._forget_parent()
            if stat.S_ISDIR(st.st_mode):
                remove_tree(target, dir_fd=w.fd)
            else:
                os.unlink(target, dir_fd=w.fd)
        finally:
            os.close(w.fd)

    def _opaque(self, dir_parts: list[str]) -> None:
        if len(dir_parts) <= len(self.prefix):
            return  # an opaque root would hide every lower layer: not a thing a layer may ask
        if self.whiteouts == "overlay":
            dfd = self._parent_fd(dir_parts)
            fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dfd)
            try:
                os.setxattr(fd, OVERLAY_OPAQUE_XATTR, b"y")
            finally:
                os.close(fd)
            return
        w = self.root.walk(dir_parts)
        try:
            if w.rest:
                return
            self._forget_parent()
            with os.scandir(w.fd) as it:
                names = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
            for name, is_dir in names:
                if tuple(w.parts + [name]) in self._created:
                    continue  # made by this very layer: the opaque marker hides only lower content
                if is_dir:
                    remove_tree(name, dir_fd=w.fd)
                else:
                    os.unlink(name, dir_fd=w.fd)
        finally:
            os.close(w.fd)

    # ---- metadata ----------------------------------------------------------------------------------

    def _xattrs(self, m: tarfile.TarInfo) -> list[tuple[str, bytes]]:
        out = []
        for key, value in m.pax_headers.items():
            if not key.startswith(_XATTR_PAX):
                continue
            name = key[len(_XATTR_PAX) :]
            if not name or name.startswith(OVERLAY_XATTR_PREFIXES):
                continue
            out.append((name, value.encode("utf-8", "surrogateescape")))
        return out

    def _meta_fd(self, fd: int, m: tarfile.TarInfo, *, times: bool = True) -> None:
        """Owner, mode (after chown, which clears setuid bits), xattrs and times through an open fd."""
        if self.is_root:
            os.fchown(fd, m.uid, m.gid)
        os.fchmod(fd, m.mode & 0o7777)
        for name, value in self._xattrs(m):
            _set_xattr(fd, name, value)
        if times:
            ns = _ns(m.mtime)
            os.utime(fd, ns=(ns, ns))

    def _meta_path(self, dfd: int, name: str, m: tarfile.TarInfo) -> None:
        """Same for a device node or fifo, through an O_PATH fd (never opened for I/O, never a symlink)."""
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        try:
            if stat.S_ISLNK(os.fstat(fd).st_mode):
                raise InvalidParameter(f"{m.name!r} changed while it was extracted")
            proc = f"/proc/self/fd/{fd}"
            if self.is_root:
                os.chown(proc, m.uid, m.gid)
            os.chmod(proc, m.mode & 0o7777)
            for xname, value in self._xattrs(m):
                _set_xattr(proc, xname, value)
            ns = _ns(m.mtime)
            os.utime(proc, ns=(ns, ns))
        finally:
            os.close(fd)

    def _set_dir_times(self) -> None:
        """Directory mtimes last: creating their children changed them."""
        for parts, ns in reversed(self._dir_times):
            try:
                w = self.root.walk(parts[:-1])
            except (GoraeError, OSError):
                continue
            try:
                if not w.rest:
                    fd = os.open(
                        parts[-1], os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=w.fd
                    )
                    try:
                        os.utime(fd, ns=(ns, ns))
                    finally:
                        os.close(fd)
            except OSError:
                pass
            finally:
                os.close(w.fd)


def forget_members(tf: tarfile.TarFile) -> None:
    """Drop the headers tarfile keeps of every entry read (memory would grow with the entry count)."""
    members: list[tarfile.TarInfo] = vars(tf)["members"]
    members.clear()


def _ns(mtime: float) -> int:
    """A tar mtime as nanoseconds the kernel takes (absurd values clamp instead of failing)."""
    try:
        ns = int(mtime * 1_000_000_000)
    except (OverflowError, ValueError):
        return 0
    return max(-(2**62), min(ns, 2**62))


def _set_xattr(target: int | str, name: str, value: bytes) -> None:
    try:
        os.setxattr(target, name, value)
    except OSError as e:
        if e.errno not in (errno.ENOTSUP, errno.EPERM, errno.EACCES, errno.EINVAL, errno.ERANGE):
            raise


def _unpack(
    root_path: str,
    source: ChunkSource,
    *,
    prefix_path: str | None,
    whiteouts: Whiteouts,
    max_bytes: int,
    no_overwrite_dir_non_dir: bool = False,
    mounts: Sequence[MountSpec] = (),
    readonly: bool = False,
    owner: tuple[int, int] | None = None,
) -> int:
    """Create the entries of the uncompressed tar `source` gives; returns the bytes of file content written.
    The stream is read to its end (what follows the end-of-archive marker included)."""
    src = ChunkReader(source)
    with Root(root_path, mounts, readonly=readonly) as root:
        prefix: list[str] = []
        if prefix_path is not None:
            w = root.open_dir(clean_parts(prefix_path))
            os.close(w.fd)
            prefix = w.parts
            root.check_writable(prefix)
        unpacker = _Unpacker(
            root,
            prefix=prefix,
            whiteouts=whiteouts,
            max_bytes=max_bytes,
            no_overwrite_dir_non_dir=no_overwrite_dir_non_dir,
            owner=owner,
        )
        try:
            try:
                tf = tarfile.open(fileobj=src, mode="r:")  # type: ignore[call-overload]
            except tarfile.ReadError as e:
                raise InvalidParameter(f"invalid archive: {e}") from e
            with tf:
                unpacker.run(tf, src)
            src.drain()
        except (tarfile.TarError, EOFError, UnicodeError) as e:
            raise InvalidParameter(f"invalid archive: {e}") from e
        finally:
            unpacker.close()
    return unpacker.size


def apply_layer(
    root: str,
    stream: BinaryIO,
    *,
    whiteouts: Literal["overlay", "remove"] = "overlay",
    max_bytes: int = DEFAULT_MAX,
) -> ApplyResult:
    """Apply a layer tar (plain, gzip, zstd, bzip2 or xz; sniffed) into the existing directory `root`.

    "overlay": `.wh.NAME` becomes a 0:0 char device NAME and `.wh..wh..opq` the xattr
    trusted.overlay.opaque=y on its directory (for an overlay snapshot's empty `diff` dir);
    "remove": `.wh.NAME` removes NAME and `.wh..wh..opq` empties its directory of lower content.
    Returns the sha256 of the uncompressed tar as read and the bytes of file content written.
    InvalidParameter for a malformed or hostile archive.
    """
    if whiteouts not in ("overlay", "remove"):
        raise InvalidParameter(f"unknown whiteout mode {whiteouts!r}")
    reader = DigestingReader(stream, max_bytes)
    size = _unpack(root, _chunks_of(reader), prefix_path=None, whiteouts=whiteouts, max_bytes=max_bytes)
    return ApplyResult(reader.digest(), size)


def apply_tar(
    root: str,
    source: ChunkSource,
    *,
    whiteouts: Literal["overlay", "remove"] = "overlay",
    max_bytes: int = DEFAULT_MAX,
) -> int:
    """`apply_layer` for a tar that is already uncompressed, given as chunks (`source()` returns the next,
    b"" at the end), whose digest and size cap are the caller's (a layer ingest decompresses and hashes in
    another thread, `chunks.ChunkSource`). Reads `source` to its end; returns the bytes of file content
    written (capped at `max_bytes`). The same guards as `apply_layer`; InvalidParameter for a hostile tar."""
    if whiteouts not in ("overlay", "remove"):
        raise InvalidParameter(f"unknown whiteout mode {whiteouts!r}")
    return _unpack(root, source, prefix_path=None, whiteouts=whiteouts, max_bytes=max_bytes)


def _chunks_of(reader: DigestingReader) -> ChunkSource:
    return lambda: reader.read(BUF)


def extract_to(
    root: str,
    path: str,
    stream: BinaryIO,
    *,
    no_overwrite_dir_non_dir: bool = False,
    mounts: Sequence[MountSpec] = (),
    readonly: bool = False,
    owner: tuple[int, int] | None = None,
) -> None:
    """`docker cp` into a container: extract a tar (maybe compressed) under the directory `path`,
    resolved inside `root` and its `mounts` as the container would see it. Entry names and hardlink
    targets are relative to `path`; `.wh.` names are ordinary files here, as in docker. NotFound when
    `path` does not exist, InvalidParameter when it is not a directory, the archive is hostile, or a
    write would land on a read-only mount (or outside every mount of a `readonly` root). `owner`: the
    uid/gid every entry gets (default: the header's)."""
    _unpack(
        root,
        _chunks_of(DigestingReader(stream, DEFAULT_MAX)),
        prefix_path=path,
        whiteouts="none",
        max_bytes=DEFAULT_MAX,
        no_overwrite_dir_non_dir=no_overwrite_dir_non_dir,
        mounts=mounts,
        readonly=readonly,
        owner=owner,
    )
