"""The one pass over a layer stream: decompress, hash and store its uncompressed tar while it is applied.

`LayerTee` runs a thread that reads the (maybe gzip/zstd-compressed) stream, decompresses it (sniffed by
`gorae.archive.streams`), caps its size, writes every chunk to a content-store writer (which hashes it:
the diff_id) and hands the same chunk to the applying thread through a small bounded channel
(`next_chunk`, an `archive.chunks.ChunkSource`). zlib, zstd, sha256 and write(2) release the GIL, so
the decompress/hash/store side and the tar-apply side use two cores; the channel's bound keeps memory
flat (at most `depth` chunks of 1 MiB in flight) whatever the layer size or the speed of either side.

When the compressed stream is itself kept in the content store (a pull), `HashSink` stands in for the
writer: the uncompressed tar is only hashed and counted, not stored again; `VerifiedTar` later reads it
back from the compressed blob, decompressing and checking it against the diff_id and size recorded then.

`BlobSpool` is the other direction: the calling thread hands chunks (views of the chunks it read, never
copied) to a thread that hashes and writes them to a writer, so reading an upload and storing it overlap
(`docker load`).

Failure on either side ends both: `cancel()` stops the thread at its next chunk and waits for it, so the
caller may then abort the writer (the thread is its only other user). Must never: buffer a whole layer,
leave its thread running after `finish()`/`cancel()` return, or touch the writer after them.
"""

from __future__ import annotations

import collections
import hashlib
import threading
from types import TracebackType
from typing import BinaryIO, Protocol

from gorae.archive import streams
from gorae.errors import GoraeError, InvalidParameter, no_space
from gorae.store.content import ContentWriter

CHUNK = 1 << 20
DEPTH = 8  # chunks in flight between the two threads


class Sink(Protocol):
    """Where `LayerTee` puts the uncompressed bytes: a `ContentWriter`, or a `HashSink`."""

    def write(self, data: bytes | bytearray | memoryview) -> int: ...

    def digest(self) -> str: ...


class HashSink:
    """Hashes and counts what is written, and stores nothing."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._h.update(data)
        self.size += len(data)
        return len(data)

    def digest(self) -> str:
        return f"sha256:{self._h.hexdigest()}"


class VerifiedTar:
    """Reads the uncompressed tar of a compressed blob (`raw`, closed with this reader), checking it is
    exactly `size` bytes whose sha256 is `diff_id`: InvalidParameter as soon as it is not (more bytes, fewer
    at the end, or another digest once `size` bytes were read). A reader that stops after `size` bytes
    (tarfile's addfile) has had every byte verified."""

    def __init__(self, raw: BinaryIO, diff_id: str, size: int) -> None:
        self._raw = raw
        try:
            self._src, self._compression = streams.decompressed(raw)
        except GoraeError:
            raise
        except streams.decompress_errors() as e:
            raise InvalidParameter(f"stored layer {diff_id}: {e}") from None
        self._diff_id = diff_id
        self._size = size
        self._h = hashlib.sha256()
        self._read = 0
        self._checked = False

    def read(self, n: int = -1) -> bytes:
        parts: list[bytes] = []
        if n is None or n < 0:
            while chunk := self.read(CHUNK):
                parts.append(chunk)
            return b"".join(parts)
        got = 0
        while got < n:  # full reads but at the end, as from a file (tarfile.addfile takes a short one for EOF)
            part = self._read_some(n - got)
            if not part:
                break
            parts.append(part)
            got += len(part)
        return parts[0] if len(parts) == 1 else b"".join(parts)  # b"" at the end

    def _read_some(self, n: int) -> bytes:
        try:
            data = self._src.read(n)
        except GoraeError:
            raise
        except streams.decompress_errors() as e:
            raise InvalidParameter(f"stored layer {self._diff_id}: {self._compression}: {e}") from None
        self._h.update(data)
        self._read += len(data)
        if self._read > self._size:
            raise InvalidParameter(f"stored layer {self._diff_id}: larger than its recorded {self._size} bytes")
        if not data and self._read < self._size:
            raise InvalidParameter(f"stored layer {self._diff_id}: shorter than its recorded {self._size} bytes")
        if self._read == self._size and not self._checked:
            self._checked = True
            if f"sha256:{self._h.hexdigest()}" != self._diff_id:
                raise InvalidParameter(f"stored layer {self._diff_id}: content does not match its diff_id")
        return data

    def close(self) -> None:
        close = getattr(self._src, "close", None)  # GzipReader holds nothing of its own
        try:
            if close is not None:
                close()
        finally:
            self._raw.close()

    def __enter__(self) -> VerifiedTar:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _Channel:
    """A bounded FIFO of chunks between one producer and one consumer, which either side can close."""

    def __init__(self, depth: int) -> None:
        self._items: collections.deque[bytes | memoryview] = collections.deque()
        self._depth = depth
        self._cond = threading.Condition()
        self._closed = False  # by the consumer: the producer stops
        self._error: BaseException | None = None  # from the producer
        self._ended = False  # the producer put its last chunk

    def put(self, chunk: bytes | memoryview) -> bool:
        """False when the consumer closed the channel (the producer should stop)."""
        with self._cond:
            while len(self._items) >= self._depth and not self._closed:
                self._cond.wait()
            if self._closed:
                return False
            self._items.append(chunk)
            self._cond.notify_all()
            return True

    def end(self, error: BaseException | None) -> None:
        with self._cond:
            self._ended = True
            self._error = error
            self._cond.notify_all()

    def get(self) -> bytes | memoryview:
        """The next chunk; b"" at the end; the producer's error once its chunks are consumed."""
        with self._cond:
            while not self._items and not self._ended:
                self._cond.wait()
            if self._items:
                chunk = self._items.popleft()
                self._cond.notify_all()
                return chunk
            if self._error is not None:
                raise self._error
            return b""

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._items.clear()
            self._cond.notify_all()


class LayerTee:
    """Decompresses, caps, hashes and stores `stream` into `writer` in a thread; `next_chunk` gives the
    consumer the same uncompressed bytes (unless `forward` is False: store only). Use `start()`, then
    read `next_chunk` to its end and `finish()`, or `cancel()` on any failure."""

    def __init__(
        self,
        stream: BinaryIO,
        writer: Sink,
        *,
        max_bytes: int = streams.DEFAULT_MAX,
        forward: bool = True,
        depth: int = DEPTH,
    ) -> None:
        self._stream = stream
        self._writer = writer
        self._max = max_bytes
        self._forward = forward
        self._chan = _Channel(depth)
        self._thread = threading.Thread(target=self._run, name="layer-ingest", daemon=True)
        self._done = threading.Event()
        self._error: BaseException | None = None
        self.size = 0  # uncompressed bytes stored so far
        self.compression = ""  # what the stream was compressed with, once the thread sniffed it

    def start(self) -> None:
        self._thread.start()

    def next_chunk(self) -> bytes:
        return bytes(self._chan.get())  # only bytes are put: no copy

    def _run(self) -> None:
        error: BaseException | None = None
        try:
            self._pump()
        except BaseException as e:  # noqa: BLE001 - handed to the consumer (next_chunk / finish)
            error = e
        self._error = error
        self._chan.end(error)
        self._done.set()

    def _read(self, src: BinaryIO, compression: str) -> bytes:
        try:
            return src.read(CHUNK)
        except GoraeError:
            raise
        except streams.decompress_errors() as e:
            raise InvalidParameter(f"invalid layer stream: {compression or 'tar'}: {e}") from None

    def _pump(self) -> None:
        try:
            src, compression = streams.decompressed(self._stream)
        except GoraeError:
            raise
        except streams.decompress_errors() as e:
            raise InvalidParameter(f"invalid layer stream: {e}") from None
        self.compression = compression
        while True:
            chunk = self._read(src, compression)
            if not chunk:
                return
            self.size += len(chunk)
            if self.size > self._max:
                raise InvalidParameter(f"layer larger than {self._max} bytes uncompressed")
            try:
                self._writer.write(chunk)
            except OSError as e:  # the disk, not the stream
                full = no_space(e)
                if full is not None:
                    raise full from None
                raise
            if self._forward and not self._chan.put(chunk):
                return  # the consumer gave up (cancel)

    def finish(self) -> None:
        """Wait for the thread (the consumer has read `next_chunk` to its end, or is `forward=False`);
        raises what it failed with."""
        self._done.wait()
        self._thread.join()
        if self._error is not None:
            raise self._error

    def cancel(self) -> None:
        """Stop the thread at its next chunk and wait for it (a blocked read of the stream still has to
        return first)."""
        self._chan.close()
        if self._thread.is_alive():
            self._thread.join()


class BlobSpool:
    """`put` chunks, then `finish()`: a thread writes them to `writer` (which hashes them) meanwhile. On any
    failure of the caller, `cancel()`; after `finish()`/`cancel()` return the thread no longer uses the
    writer. The chunks must not change after `put` (bytes, or views of bytes)."""

    def __init__(self, writer: ContentWriter, depth: int = DEPTH) -> None:
        self._writer = writer
        self._chan = _Channel(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="blob-spool", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while True:
                chunk = self._chan.get()
                if not chunk:
                    return
                self._writer.write(chunk)
        except BaseException as e:  # noqa: BLE001 - raised in the caller by put/finish
            full = no_space(e) if isinstance(e, OSError) else None
            self._error = full or e
            self._chan.close()

    def put(self, chunk: bytes | memoryview) -> None:
        if not self._chan.put(chunk):
            self._thread.join()
            raise self._error or InvalidParameter("blob spool closed")

    def finish(self) -> None:
        self._chan.end(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def cancel(self) -> None:
        self._chan.close()
        self._thread.join()
