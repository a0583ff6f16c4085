"""HTTP/1.1 over a raw socket: one keep-alive connection, requests with fixed or chunked bodies, responses
read by Content-Length, chunked encoding or until close, and the hijack (Upgrade: tcp) of a connection.

Hand-rolled rather than h11 to keep the CLI's import time small; the grammar needed from a Docker daemon is
narrow (status line, headers, three body framings).
"""

from __future__ import annotations

import _socket

from gorae.client import fastjson
from gorae.client.errors import ConnectionFailed, ProtocolError

TYPE_CHECKING = False
if TYPE_CHECKING:  # `socket` (and with it `enum`, `selectors`) is imported only for TCP hosts
    import socket
    from collections.abc import Callable, Iterable, Iterator
    from typing import Any, BinaryIO

    from gorae.client.host import HostConfig

    Body = bytes | Iterable[bytes] | BinaryIO | None

RECV = 65536
MAX_HEADER = 256 * 1024


class SocketReader:
    """A receive buffer over a socket: lines, exact reads and "whatever is there" reads."""

    def __init__(self, sock: _socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.eof = False

    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self.sock.recv(RECV)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def readline(self, limit: int = MAX_HEADER) -> bytes:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[: i + 1])
                del self.buf[: i + 1]
                return line
            if len(self.buf) > limit:
                raise ProtocolError("header line too long")
            if not self._fill():
                line = bytes(self.buf)
                self.buf.clear()
                return line

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ProtocolError("connection closed before the end of the message")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_some(self, n: int = RECV) -> bytes:
        """Up to n bytes: buffered ones first, else one recv; b"" at end of stream."""
        if not self.buf and not self._fill():
            return b""
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def take_buffer(self) -> bytes:
        out = bytes(self.buf)
        self.buf.clear()
        return out


class Response:
    """A response whose body is read lazily from the connection."""

    def __init__(
        self, conn: Connection, status: int, reason: str, headers: dict[str, str], method: str
    ) -> None:
        self.conn = conn
        self.status = status
        self.reason = reason
        self.headers = headers
        te = headers.get("transfer-encoding", "").lower()
        self.chunked = "chunked" in te
        self.length: int | None = None
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            self.length = 0
        elif not self.chunked and "content-length" in headers:
            try:
                self.length = int(headers["content-length"])
            except ValueError:
                raise ProtocolError("bad Content-Length") from None
        self._remaining = self.length
        self._chunk_left = 0
        self.done = self.length == 0
        self.keep_alive = headers.get("connection", "").lower() != "close" and (
            self.chunked or self.length is not None
        )
        if self.done:
            self._finish()

    def _finish(self) -> None:
        self.done = True
        self.conn._release(self.keep_alive)

    def read_chunk(self) -> bytes:
        """The next piece of the body as it arrives; b"" at its end."""
        if self.done:
            return b""
        r = self.conn.reader
        assert r is not None  # not done, so the connection is still open
        if self.chunked:
            if self._chunk_left == 0:
                line = r.readline()
                if not line:
                    raise ProtocolError("connection closed inside a chunked body")
                size_txt = line.split(b";", 1)[0].strip()
                try:
                    size = int(size_txt, 16)
                except ValueError:
                    raise ProtocolError(f"bad chunk size {size_txt!r}") from None
                if size == 0:
                    while r.readline().strip():  # trailers
                        pass
                    self._finish()
                    return b""
                self._chunk_left = size
            data = r.read_some(self._chunk_left)
            if not data:
                raise ProtocolError("connection closed inside a chunk")
            self._chunk_left -= len(data)
            if self._chunk_left == 0:
                r.read_exact(2)  # CRLF after chunk data
            return data
        if self._remaining is None:  # read until close
            data = r.read_some()
            if not data:
                self._finish()
            return data
        data = r.read_some(self._remaining)
        if not data:
            raise ProtocolError("connection closed before the end of the body")
        self._remaining -= len(data)
        if self._remaining == 0:
            self._finish()
        return data

    def iter_chunks(self) -> Iterator[bytes]:
        while True:
            data = self.read_chunk()
            if not data:
                return
            yield data

    def read(self) -> bytes:
        return b"".join(self.iter_chunks())

    def json(self) -> Any:
        data = self.read()
        return fastjson.loads(data) if data.strip() else None

    def iter_json(self) -> Iterator[Any]:
        """JSON values streamed one per line (or back to back), as events/stats/pull/load send them."""
        import json

        dec = json.JSONDecoder()
        buf = ""
        for chunk in self.iter_chunks():
            buf += chunk.decode("utf-8", "replace")
            while True:
                buf = buf.lstrip()
                if not buf:
                    break
                try:
                    obj, end = dec.raw_decode(buf)
                except ValueError:
                    break
                buf = buf[end:]
                yield obj
        if buf.strip():
            try:
                yield json.loads(buf)
            except ValueError:
                raise ProtocolError(f"truncated JSON stream: {buf[:80]!r}") from None

    def close(self) -> None:
        if not self.done:
            self.conn.close()
            self.done = True


class Connection:
    """One HTTP/1.1 connection to the daemon, reused while responses allow keep-alive."""

    def __init__(self, host: HostConfig, timeout: float | None = None) -> None:
        self.host = host
        self.timeout = timeout
        # the bare C socket for unix hosts, a `socket.socket` (or its SSLSocket) for TCP ones
        self.sock: _socket.socket | None = None
        self.reader: SocketReader | None = None
        self.busy = False

    def connect(self) -> _socket.socket:
        h = self.host
        try:
            if h.scheme == "unix":  # the bare C socket: recv/sendall/shutdown/fileno are all that is used
                s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
                s.settimeout(self.timeout)
                try:
                    s.connect(h.path)
                except OSError:
                    s.close()
                    raise
            else:
                import socket

                s = socket.create_connection((h.host, h.port), timeout=self.timeout)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if h.tls:
                    s = _wrap_tls(s, h)
        except OSError as e:
            raise ConnectionFailed(h.url, str(e)) from None
        self.sock = s
        self.reader = SocketReader(s)
        return s

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.reader = None
        self.busy = False

    def _release(self, keep_alive: bool) -> None:
        self.busy = False
        if not keep_alive:
            self.close()

    def send_request(self, method: str, target: str, headers: dict[str, str], body: Body) -> None:
        if self.busy:  # previous response not drained: do not mix streams
            self.close()
        fresh = self.sock is None
        if fresh:
            self.connect()
        head = [f"{method} {target} HTTP/1.1", f"Host: {self.host.http_host}", "User-Agent: gorae-cli"]
        hdrs = dict(headers)
        chunks: Iterable[bytes] | None = None
        length: int | None = None
        if body is None:
            if method in ("POST", "PUT"):
                hdrs.setdefault("Content-Length", "0")
        elif isinstance(body, bytes | bytearray):
            hdrs["Content-Length"] = str(len(body))
        elif not self.host.tls and self.timeout is None and (length := _regular_file_left(body)) is not None:
            hdrs["Content-Length"] = str(length)  # sent by sendfile(2) below: no copy through this process
        else:
            hdrs["Transfer-Encoding"] = "chunked"
            read = getattr(body, "read", None)  # a file (itself an Iterable[bytes], but of lines) or chunks
            chunks = _file_chunks(read) if read is not None else body
        head += [f"{k}: {v}" for k, v in hdrs.items()]
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if isinstance(body, bytes | bytearray):
            data += body
        try:
            self._sendall(data)
        except OSError:
            if fresh:
                raise
            self.close()  # a kept-alive connection the server closed: retry once on a new one
            self.connect()
            self._sendall(data)
        if length is not None:
            self._sendfile(body, length)
        if chunks is not None:
            for c in chunks:
                if c:
                    self._sendall(b"%x\r\n" % len(c) + c + b"\r\n")
            self._sendall(b"0\r\n\r\n")
        self.busy = True

    def _sendfile(self, f: Any, length: int) -> None:
        import os

        assert self.sock is not None
        out, src, offset = self.sock.fileno(), f.fileno(), f.tell()
        end = offset + length
        while offset < end:
            n = os.sendfile(out, src, offset, min(end - offset, 1 << 30))
            if n == 0:
                raise ProtocolError("the request body's file ended before its announced length")
            offset += n
        f.seek(offset)

    def _sendall(self, data: bytes) -> None:
        assert self.sock is not None
        self.sock.sendall(data)

    def read_response(self, method: str) -> Response:
        r = self.reader
        assert r is not None  # send_request connected
        while True:
            line = r.readline()
            if not line:
                self.close()
                raise ProtocolError("the daemon closed the connection without answering")
            parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/"):
                self.close()
                raise ProtocolError(f"bad status line {line[:80]!r}")
            try:
                status = int(parts[1])
            except ValueError:
                self.close()
                raise ProtocolError(f"bad status line {line[:80]!r}") from None
            reason = parts[2] if len(parts) > 2 else ""
            headers: dict[str, str] = {}
            total = 0
            while True:
                hl = r.readline()
                total += len(hl)
                if total > MAX_HEADER:
                    raise ProtocolError("response headers too large")
                s = hl.decode("latin-1").rstrip("\r\n")
                if not s:
                    break
                k, _, v = s.partition(":")
                k = k.strip().lower()
                v = v.strip()
                headers[k] = f"{headers[k]}, {v}" if k in headers else v
            if status == 100:
                continue
            return Response(self, status, reason, headers, method)


def _regular_file_left(body: object) -> int | None:
    """The bytes left in `body` from its position when it is a regular file (a build context spooled to a
    temporary file, an archive to load), else None (a pipe, stdin, chunks: sent chunked)."""
    import os
    import stat

    fileno = getattr(body, "fileno", None)
    tell = getattr(body, "tell", None)
    if fileno is None or tell is None:
        return None
    try:
        st = os.fstat(fileno())
        pos = int(tell())
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return max(st.st_size - pos, 0)


def _file_chunks(read: Callable[[int], bytes], size: int = RECV) -> Iterator[bytes]:
    while True:
        data = read(size)
        if not data:
            return
        yield data


def _wrap_tls(s: socket.socket, h: HostConfig) -> socket.socket:
    import ssl

    ctx = (
        ssl.create_default_context(cafile=h.ca_cert)
        if h.tls_verify
        else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    )
    if not h.tls_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if h.cert and h.key:
        ctx.load_cert_chain(h.cert, h.key)
    return ctx.wrap_socket(s, server_hostname=h.host)
