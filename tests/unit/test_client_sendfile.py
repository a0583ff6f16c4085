"""The client transport sends a regular file body (a spooled build context, an archive to load) with
Content-Length by sendfile(2), from the file's current position; a pipe or chunks still go chunked."""

from __future__ import annotations

import os
import socket
import tempfile
import threading

from gorae.client.host import parse_host
from gorae.client.transport import Connection


def sent(body: object) -> tuple[bytes, bytes]:
    a, b = socket.socketpair()
    got = bytearray()

    def receive() -> None:  # the daemon's side, reading while the request is sent
        while data := b.recv(1 << 20):
            got.extend(data)

    reader = threading.Thread(target=receive)
    reader.start()
    try:
        b.settimeout(10)
        conn = Connection(parse_host("unix:///nonexistent.sock"))
        conn.sock = a  # type: ignore[assignment]
        conn.send_request("POST", "/build", {}, body)  # type: ignore[arg-type]
        a.shutdown(socket.SHUT_WR)
        reader.join(10)
        head, _, rest = bytes(got).partition(b"\r\n\r\n")
        return head, rest
    finally:
        a.close()
        b.close()


def test_a_regular_file_goes_by_sendfile_from_its_position() -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)
    with tempfile.TemporaryFile() as f:
        f.write(data)
        f.seek(1000)
        head, body = sent(f)
        assert b"Content-Length: %d" % (len(data) - 1000) in head.split(b"\r\n")
        assert b"Transfer-Encoding" not in head
        assert body == data[1000:]
        assert f.tell() == len(data)  # consumed, as a read would leave it


def test_an_empty_file_is_an_empty_body() -> None:
    with tempfile.TemporaryFile() as f:
        head, body = sent(f)
        assert b"Content-Length: 0" in head.split(b"\r\n") and body == b""


def test_a_pipe_goes_chunked() -> None:
    r, w = os.pipe()
    os.write(w, b"hello")
    os.close(w)
    with os.fdopen(r, "rb") as f:
        head, body = sent(f)
    assert b"Transfer-Encoding: chunked" in head.split(b"\r\n")
    assert body == b"5\r\nhello\r\n0\r\n\r\n"
