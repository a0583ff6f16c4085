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
from typing import BinaryIO

from gorae import dockerignore
from gorae.builder.context import walk_links
from gorae.dockerignore import compile_pattern
from gorae.errors import InvalidParameter, NotFound

MAX_TEXT = 10 << 20


@dataclass(frozen=True)
class Entry:
    kind: str  # "file", "dir", "link" (symlink), "other"
    mode: int
    target: str = ""  # a symlink's target, a hard link's source
    digest: str = ""  # a file's content sha256


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
                        h = hashlib.sha256()
                        for i in range(0, len(data), 1 << 22):  # big slices: the GIL is let go while hashing
                            h.update(data[i : i + (1 << 22)])
                        if name in keep and m.size <= MAX_TEXT:
                            idx.texts[name] = bytes(data)
                        idx.entries[name] = Entry("file", m.mode & 0o7777, digest=h.hexdigest())
                    elif m.isreg():  # sparse: tarfile puts the holes back
                        name = idx._note(m)
                        f = tf.extractfile(m)
                        h = hashlib.sha256()
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
                        h = hashlib.sha256()
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
