"""The build context as received, indexed without writing it out: every entry's type, mode, link target and
content digest, read once from the (spooled) tar. A build whose COPY/ADD steps all come from the cache never
extracts the context; the first step that needs its files extracts it (`context.extract_context`). Path
resolution here follows the same in-root rules as `context.resolve_in`, so both agree on what a source is."""

from __future__ import annotations

import hashlib
import io
import posixpath
import tarfile
from dataclasses import dataclass
from typing import Any, BinaryIO

from blake3 import blake3

from gorae import dockerignore
from gorae.builder.context import walk_links
from gorae.dockerignore import compile_pattern
from gorae.errors import InvalidParameter, NotFound

MAX_TEXT = 10 << 20
STREAM_MEMBERS = 4096  # past this many members the rest is indexed after the upload, in a thread


@dataclass(frozen=True)
class Entry:
    kind: str  # "file", "dir", "link" (symlink), "other"
    mode: int
    target: str = ""  # a symlink's target, a hard link's source
    digest: str = ""  # a file's content digest (`content_hash`)


def content_hash(data: bytes | memoryview = b"") -> blake3:
    """A hash object for a context file's content: BLAKE3 (256 bits, collision resistant like SHA-256, about
    2.5x as fast as SHA-256 with the SHA extensions here: 12 vs 30 ms CPU for 50 MiB). Every byte of the
    context is hashed on every build, cached or not, so this is most of a cached build's cost. Digests only
    key the build cache (and name COPY sources in history, `file:<hex>`), so the function is gorae's own
    choice; dockerd's tarsum (SHA-256 of header and content) differs from gorae's key either way."""
    return blake3(data)


class ContextIndex:
    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self.texts: dict[str, bytes] = {}  # the small files asked for (Dockerfile, .dockerignore)

    @staticmethod
    def read(stream: BinaryIO, keep: set[str]) -> ContextIndex:
        """Index an uncompressed or compressed context tar; the contents of the `keep` names are kept.

        A context received in memory (io.BytesIO, the usual case) and not compressed is hashed straight from
        its buffer, tarfile only walking the headers; anything else is read as a stream."""
        if isinstance(stream, io.BytesIO) and stream.tell() == 0:
            with stream.getbuffer() as view:
                if _is_plain_tar(view):
                    try:
                        return ContextIndex._read_buffer(stream, view, keep)
                    finally:
                        stream.seek(0)
        return ContextIndex._read_stream(stream, keep)

    @staticmethod
    def _read_buffer(stream: BinaryIO, view: memoryview, keep: set[str]) -> ContextIndex:
        idx = ContextIndex()
        try:
            with tarfile.open(fileobj=stream, mode="r:") as tf:
                for m in tf:
                    if m.isreg() and not m.issparse():
                        end = m.offset_data + m.size
                        if end > len(view):  # cut short: what the stream reader does at its end
                            break
                        data = view[m.offset_data : end]
                        name = idx._note(m)
                        if not name:
                            continue
                        h = content_hash()
                        for i in range(0, len(data), 1 << 22):  # big slices: the GIL is let go while hashing
                            h.update(data[i : i + (1 << 22)])
                        if name in keep and m.size <= MAX_TEXT:
                            idx.texts[name] = bytes(data)
                        idx.entries[name] = Entry("file", m.mode & 0o7777, digest=h.hexdigest())
                    elif m.isreg():  # sparse: tarfile puts the holes back
                        name = idx._note(m)
                        f = tf.extractfile(m)
                        h = content_hash()
                        while f is not None and (chunk := f.read(1 << 20)):
                            h.update(chunk)
                        if name:
                            idx.entries[name] = Entry("file", m.mode & 0o7777, digest=h.hexdigest())
                    else:
                        idx._note(m)
        except (tarfile.TarError, EOFError, OSError) as e:
            if "unexpected end of data" not in str(e):
                raise InvalidParameter(f"invalid archive: {e}") from None
        return idx

    def _note(self, m: tarfile.TarInfo) -> str:
        """Enter `m` (and its parent directories) except a regular file's digest; its normalised name."""
        name = posixpath.normpath("/" + m.name).lstrip("/")
        if not name or name == ".":
            return ""
        for i in range(1, name.count("/") + 1):
            parent = name.rsplit("/", i)[0]
            self.entries.setdefault(parent, Entry("dir", 0o755))
        if m.isreg():
            pass
        elif m.isdir():
            self.entries[name] = Entry("dir", m.mode & 0o7777)
        elif m.issym():
            self.entries[name] = Entry("link", 0o777, target=m.linkname)
        elif m.islnk():
            src = posixpath.normpath("/" + m.linkname).lstrip("/")
            e = self.entries.get(src)
            self.entries[name] = e if e is not None else Entry("other", m.mode & 0o7777)
        else:
            self.entries[name] = Entry("other", m.mode & 0o7777)
        return name

    @staticmethod
    def _read_stream(stream: BinaryIO, keep: set[str]) -> ContextIndex:
        idx = ContextIndex()
        try:
            with tarfile.open(fileobj=stream, mode="r|*") as tf:
                for m in tf:
                    name = idx._note(m)
                    if name and m.isreg():
                        f = tf.extractfile(m)
                        h = content_hash()
                        kept = bytearray()
                        want = name in keep and m.size <= MAX_TEXT
                        if f is not None:
                            while chunk := f.read(1 << 20):
                                h.update(chunk)
                                if want:
                                    kept += chunk
                        if want:
                            idx.texts[name] = bytes(kept)
                        idx.entries[name] = Entry("file", m.mode & 0o7777, digest=h.hexdigest())
        except (tarfile.TarError, EOFError, OSError) as e:
            if "unexpected end of data" not in str(e):  # the docker CLI's unterminated tar (see context)
                raise InvalidParameter(f"invalid archive: {e}") from None
        return idx

    def drop_ignored(self, patterns: list[dockerignore.Pattern]) -> None:
        for name in list(self.entries):
            if name in ("Dockerfile", ".dockerignore"):
                continue
            if dockerignore.excluded(patterns, name):
                e = self.entries[name]
                if e.kind == "dir" and dockerignore.may_hold_inclusions(patterns, name):
                    continue
                del self.entries[name]

    def resolve(self, path: str) -> str:
        """The context-relative name `path` leads to, symlinks followed inside the context ("" = the root)."""

        def link_target(components: list[str], last: bool) -> str | None:
            e = self.entries.get("/".join(components))
            return e.target if e is not None and e.kind == "link" else None

        return "/".join(walk_links(path, link_target))

    def match(self, pattern: str) -> list[str]:
        clean = posixpath.normpath("/" + pattern).lstrip("/") or "."
        if not any(ch in clean for ch in "*?["):
            rel = self.resolve(clean)
            if rel and rel not in self.entries:
                raise NotFound(
                    "COPY failed: file not found in build context or excluded by .dockerignore: "
                    f"stat {clean}: file does not exist"
                )
            return [rel or "."]
        rx = compile_pattern(clean)
        found = sorted(n for n in self.entries if rx.match(n))
        if not found:
            raise NotFound("COPY failed: no source files were specified")
        return found

    def checksum(self, rel: str) -> str:
        """`file:<sha256>` or `dir:<sha256>` of what `rel` names (its tree for a directory)."""
        rel = self.resolve(rel) if rel != "." else ""
        e = self.entries.get(rel) if rel else Entry("dir", 0o755)
        if e is None:
            raise NotFound(f"stat {rel}: file does not exist")
        if e.kind != "dir":
            return "file:" + self._entry_hash(e)
        h = hashlib.sha256()
        prefix = rel + "/" if rel else ""
        for name in sorted(n for n in self.entries if n.startswith(prefix)):
            h.update(name[len(prefix) :].encode(errors="surrogateescape") + b"\0")
            h.update(self._entry_hash(self.entries[name]).encode())
        return "dir:" + h.hexdigest()

    @staticmethod
    def _entry_hash(e: Entry) -> str:
        return hashlib.sha256(f"{e.kind}:{e.mode:o}:{e.target}:{e.digest}".encode()).hexdigest()


def _is_plain_tar(view: memoryview) -> bool:
    """An uncompressed ustar/pax/GNU tar (what the docker CLI and docker-py send); compressed or odder ones
    take the stream path."""
    return len(view) >= 512 and bytes(view[257:262]) == b"ustar"


_META_TYPES = (
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
)


class _HeaderSource:
    """What `tarfile.TarInfo.fromtarfile` reads a member's header blocks from: the blocks of one member (its
    pax/GNU long-name blocks and its own header), with the archive's global pax headers kept across members."""

    def __init__(self) -> None:
        self.fileobj: io.BytesIO = io.BytesIO()
        self.encoding = tarfile.ENCODING
        self.errors = "surrogateescape"
        self.pax_headers: dict[str, str] = {}
        self.offset = 0


class StreamIndex:
    """A `ContextIndex` built while the context arrives: `feed` each received piece (on the event loop: the
    tar headers are parsed as they complete, each file's bytes hashed as they pass), `finish` at the end.

    Only the plain tars the docker CLI and docker-py send are indexed this way (ustar/GNU/pax headers); at the
    first thing it does not handle the same way as `ContextIndex.read` (compression, sparse files, a damaged
    or cut-short archive) it stops, and `finish` answers None: the caller indexes the whole context with
    `ContextIndex.read`, which gives the answer (or the error) as before. So that the event loop is never held
    long, it also stops past `STREAM_MEMBERS` members (many small files cost more in tar headers than in
    hashing) and past a member whose extended headers exceed `MAX_TEXT`."""

    def __init__(self, keep: set[str]) -> None:
        self._keep = keep
        self._idx = ContextIndex()
        self._src = _HeaderSource()
        self._head = bytearray()  # header blocks of the next member, not yet complete
        self._scan = 0  # where in _head the first header block not yet walked by _need starts
        self._members = 0
        self._left = 0  # bytes of the current member's data still to come
        self._skip = 0  # padding (or data of a member not hashed) still to pass over
        self._member: tarfile.TarInfo | None = None
        self._name = ""
        self._hash: Any = None
        self._text: bytearray | None = None
        self._started = False
        self._ended = False  # the end-of-archive block was seen: the rest is ignored
        self.failed = False

    def feed(self, chunk: bytes | memoryview) -> None:
        if self.failed or self._ended or not chunk:
            return
        try:
            self._feed(memoryview(chunk))
        except Exception:  # anything tarfile refuses or this index does not follow: ContextIndex.read decides
            self._give_up()

    def _give_up(self) -> None:
        self.failed = True
        self._head = bytearray()
        self._hash = self._text = None

    def _feed(self, view: memoryview) -> None:
        while view and not self.failed and not self._ended:
            if self._left:
                part = view[: self._left]
                self._hash.update(part)
                if self._text is not None:
                    self._text += part
                self._left -= len(part)
                view = view[len(part) :]
                if not self._left:
                    self._file_done()
            elif self._skip:
                n = min(self._skip, len(view))
                self._skip -= n
                view = view[n:]
            else:
                view = self._header(view)

    def _header(self, view: memoryview) -> memoryview:
        """Take header bytes from `view` until a member's headers are complete; the rest of `view`."""
        head = self._head
        need = self._need()
        while need > len(head):
            take = min(need - len(head), len(view))
            if not take:
                return view
            head += view[:take]
            view = view[take:]
            need = self._need()
        if need == 0:  # the end-of-archive block
            self._ended = True
            self._head = bytearray()
            return view
        self._member_from(bytes(head))
        self._head = bytearray()
        self._scan = 0
        return view

    def _need(self) -> int:
        """How many bytes the pending member's header blocks take (so far known); 0 at the end of the
        archive."""
        head = self._head
        p = self._scan
        while True:
            if len(head) < p + tarfile.BLOCKSIZE:
                return p + tarfile.BLOCKSIZE
            block = head[p : p + tarfile.BLOCKSIZE]
            if p == 0 and block.count(0) == tarfile.BLOCKSIZE:
                if not self._started:
                    raise ValueError("an empty archive")
                return 0
            if not self._started and bytes(block[257:262]) != b"ustar":
                raise ValueError("not a plain ustar/pax/GNU tar")
            kind = bytes(block[156:157])
            if kind not in _META_TYPES:
                return p + tarfile.BLOCKSIZE
            size = tarfile.TarInfo.frombuf(bytes(block), tarfile.ENCODING, "surrogateescape").size
            p += tarfile.BLOCKSIZE + -(-size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
            if size < 0 or p > MAX_TEXT:
                raise ValueError("extended headers out of bounds")
            self._scan = p  # walked: the next call starts from here

    def _member_from(self, blocks: bytes) -> None:
        src = self._src
        src.fileobj = io.BytesIO(blocks)
        m = tarfile.TarInfo.fromtarfile(src)  # type: ignore[arg-type]  # reads only src's attributes
        if m.offset_data != len(blocks) or m.issparse() or m.size < 0:
            raise ValueError("a member this index does not follow")
        self._started = True
        self._members += 1
        if self._members > STREAM_MEMBERS:
            raise ValueError("more members than indexed on the loop")
        data = m.size if (m.isreg() or m.type not in tarfile.SUPPORTED_TYPES) else 0
        pad = -data % tarfile.BLOCKSIZE
        name = self._idx._note(m)
        if m.isreg() and name:
            self._member, self._name = m, name
            self._hash = content_hash()
            self._text = bytearray() if name in self._keep and m.size <= MAX_TEXT else None
            self._left, self._skip = data, pad
            if not data:
                self._file_done()
        else:
            self._skip = data + pad

    def _file_done(self) -> None:
        assert self._member is not None
        if self._text is not None:
            self._idx.texts[self._name] = bytes(self._text)
        self._idx.entries[self._name] = Entry(
            "file", self._member.mode & 0o7777, digest=self._hash.hexdigest()
        )
        self._member, self._hash, self._text = None, None, None

    def finish(self) -> ContextIndex | None:
        """The index of everything fed, or None when it gave up (or the archive was cut short)."""
        if self.failed or not self._started or self._left or self._head:
            return None
        if self._skip and not self._ended:
            return None  # cut inside padding or an unhashed member's data: tarfile's answer may differ
        return self._idx
