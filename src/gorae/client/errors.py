"""Errors the client raises: a daemon's error answer and a failure to reach the daemon."""

from __future__ import annotations


class APIError(Exception):
    """The daemon answered with an error status; `message` is its JSON `message` (or the body text)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return f"Error response from daemon: {self.message}"


class ConnectionFailed(Exception):
    """The daemon could not be reached; the text is docker's."""

    def __init__(self, host: str, detail: str = "") -> None:
        super().__init__(host)
        self.host = host
        self.detail = detail

    def __str__(self) -> str:
        return f"Cannot connect to the Docker daemon at {self.host}. Is the docker daemon running?"


class ProtocolError(Exception):
    """The daemon's bytes were not valid HTTP/1.1 (or the connection broke mid-message)."""


class StreamError(APIError):
    """An error the daemon sent inside a JSON message stream (`errorDetail`); shown as its bare text."""

    def __init__(self, message: str) -> None:
        super().__init__(0, message)

    def __str__(self) -> str:
        return self.message
