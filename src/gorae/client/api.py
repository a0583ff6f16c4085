"""APIClient: Engine API calls with version negotiation and error mapping.

`GET /_ping` once per client, then every path goes under `/v{min(server API-Version, 1.45)}/`. Error answers
become `APIError(status, message)` with the daemon's JSON `message`.
"""

from __future__ import annotations

from gorae.client import fastjson as json
from gorae.client.errors import APIError, ConnectionFailed, ProtocolError
from gorae.client.transport import Connection

TYPE_CHECKING = False
if TYPE_CHECKING:  # kept off the CLI's import path: typing, urllib, socket, struct
    from collections.abc import Iterator
    from typing import Any

    from gorae.client.host import HostConfig
    from gorae.client.streams import Hijacked
    from gorae.client.transport import Body, Response

    Params = dict[str, Any] | list[tuple[str, Any]] | None

MAX_API_VERSION = "1.45"
FALLBACK_API_VERSION = "1.24"


def _vtuple(v: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in v.split("."))
    except ValueError:
        return (0,)


def negotiate(server: str | None, client_max: str = MAX_API_VERSION) -> str:
    """The lower of the server's advertised API version and ours."""
    if server:
        server = server.split(",")[0].strip()  # a repeated header arrives joined
    if not server or not all(p.isdigit() for p in server.split(".")):
        return FALLBACK_API_VERSION
    return server if _vtuple(server) < _vtuple(client_max) else client_max


def encode_params(params: Params) -> str:
    if not params:
        return ""
    items = params.items() if isinstance(params, dict) else params
    pairs: list[tuple[str, str]] = []
    for k, v in items:
        if v is None:
            continue
        if isinstance(v, bool):
            v = "1" if v else "0"
        elif isinstance(v, dict | list):
            v = json.dumps(v, separators=(",", ":"))
        pairs.append((k, str(v)))
    return "?" + urlencode(pairs) if pairs else ""


# the characters urllib.parse.quote never escapes
_ALWAYS_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_SEGMENT_SAFE = _ALWAYS_SAFE | frozenset(b":@+")
_PLUS_SAFE = _ALWAYS_SAFE | frozenset(b" ")


def _quote(s: str, safe: frozenset[int]) -> str:
    """urllib.parse.quote(s, safe) for a str (UTF-8), without importing urllib."""
    if s.isascii() and all(ord(c) in safe for c in s):
        return s
    return "".join(chr(b) if b in safe else f"%{b:02X}" for b in s.encode("utf-8"))


def _quote_plus(s: str) -> str:
    """urllib.parse.quote_plus(s, safe="")."""
    if " " in s:
        return _quote(s, _PLUS_SAFE).replace(" ", "+")
    return _quote(s, _ALWAYS_SAFE)


def urlencode(pairs: list[tuple[str, str]]) -> str:
    """urllib.parse.urlencode(pairs) for str keys and values."""
    return "&".join(f"{_quote_plus(k)}={_quote_plus(v)}" for k, v in pairs)


def q(s: str) -> str:
    """Quote a path segment (container names, image references): urllib.parse.quote(s, safe=":@+")."""
    return _quote(s, _SEGMENT_SAFE)


class APIClient:
    """A synchronous Engine API client over one keep-alive connection (plus extra ones for hijacks)."""

    def __init__(self, host: HostConfig, version: str | None = None, timeout: float | None = None) -> None:
        self.host = host
        self.timeout = timeout
        self.conn = Connection(host, timeout)
        self._version = version
        self.ping_headers: dict[str, str] = {}

    # -- version ----------------------------------------------------------------------------------
    @property
    def version(self) -> str:
        if self._version is None:
            self._version = negotiate(self.ping().get("api-version"))
        return self._version

    def ping(self) -> dict[str, str]:
        resp = self._exchange(self.conn, "GET", "/_ping", {}, None)
        body = resp.read()
        if resp.status >= 400:
            raise APIError(resp.status, _error_message(body, resp.status))
        self.ping_headers = resp.headers
        return resp.headers

    def url(self, path: str, params: Params = None) -> str:
        return f"/v{self.version}{path}{encode_params(params)}"

    def api_at_least(self, v: str) -> bool:
        return _vtuple(self.version) >= _vtuple(v)

    # -- requests ---------------------------------------------------------------------------------
    def _exchange(
        self, conn: Connection, method: str, target: str, headers: dict[str, str], body: Body
    ) -> Response:
        try:
            conn.send_request(method, target, headers, body)
            return conn.read_response(method)
        except ConnectionFailed:
            raise
        except (OSError, ProtocolError) as e:
            conn.close()
            if isinstance(e, ProtocolError):
                raise
            raise ConnectionFailed(self.host.url, str(e)) from None

    def request(
        self,
        method: str,
        path: str,
        params: Params = None,
        *,
        json_body: Any = None,
        data: Body = None,
        headers: dict[str, str] | None = None,
        ok: tuple[int, ...] = (),
    ) -> Response:
        """Send a request; raise APIError for >= 400 unless the status is listed in `ok`."""
        hdrs = dict(headers or {})
        body: Body = data
        if json_body is not None:
            body = json.dumps(json_body).encode()
            hdrs["Content-Type"] = "application/json"
        resp = self._exchange(self.conn, method, self.url(path, params), hdrs, body)
        if resp.status >= 400 and resp.status not in ok:
            raise APIError(resp.status, _error_message(resp.read(), resp.status))
        return resp

    def get_json(self, path: str, params: Params = None) -> Any:
        return self.request("GET", path, params).json()

    def post_json(self, path: str, params: Params = None, body: Any = None) -> Any:
        return self.request("POST", path, params, json_body=body).json()

    def post(self, path: str, params: Params = None, body: Any = None, ok: tuple[int, ...] = ()) -> Response:
        resp = self.request("POST", path, params, json_body=body, ok=ok)
        resp.read()
        return resp

    def delete(self, path: str, params: Params = None) -> Any:
        return self.request("DELETE", path, params).json()

    def stream_json(self, method: str, path: str, params: Params = None, **kw: Any) -> Iterator[Any]:
        return self.request(method, path, params, **kw).iter_json()

    def hijack(self, path: str, params: Params = None, body: Any = None) -> Hijacked:
        """POST with `Connection: Upgrade` / `Upgrade: tcp` on a fresh connection; 101 or 200 hands it over raw."""
        conn = Connection(self.host, None)
        hdrs = {"Connection": "Upgrade", "Upgrade": "tcp"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        resp = self._exchange(conn, "POST", self.url(path, params), hdrs, data)
        if resp.status >= 400:
            msg = _error_message(resp.read(), resp.status)
            conn.close()
            raise APIError(resp.status, msg)
        if resp.status not in (101, 200):
            conn.close()
            raise ProtocolError(f"unexpected status {resp.status} for a hijacked request")
        assert conn.sock is not None and conn.reader is not None
        sock = conn.sock
        sock.settimeout(None)
        from gorae.client.streams import Hijacked

        return Hijacked(sock, conn.reader.take_buffer())

    def close(self) -> None:
        self.conn.close()


def _error_message(body: bytes, status: int) -> str:
    text = body.decode("utf-8", "replace").strip()
    if text.startswith("{"):
        try:
            doc = json.loads(text)
            if isinstance(doc, dict) and "message" in doc:
                return str(doc["message"]).strip()  # the Go client trims the daemon's message
        except ValueError:
            pass
    return text or f"HTTP {status}"
