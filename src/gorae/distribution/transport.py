"""The registry HTTP client: one authenticated `Session` per (endpoint, repository, actions).

Blocking httpx in worker threads, by choice: a pull or push is a handful of long streams whose every byte
is hashed, decompressed or compressed and written to disk — work that releases the GIL (hashlib, zlib,
zstd, file and socket I/O) and so runs truly in parallel in threads, while in the event loop each chunk
would need a hop to a thread anyway. The daemon's event loop only relays progress lines
(`gorae.distribution.service`). httpx gives connection pooling, redirects (blob GETs may be sent to a
CDN; `Authorization` is dropped across origins) and per-endpoint TLS settings.

A `Session` pings `/v2/` once, learns the challenge (Bearer or Basic), attaches a token or Basic
credentials to each request, and on a 401 fetches a new token once and retries. Registry errors
(`{"errors":[{"code","message","detail"}]}`) become `RegistryError` with distribution's wording
("manifest unknown: manifest unknown"); unreachable endpoints `Unreachable` (the caller falls back to the
next endpoint); Go's wording is kept for the messages users search for ("http: server gave HTTP response
to HTTPS client").
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Iterable
from typing import Any

import httpx

from gorae.distribution.auth import AuthConfig, Challenge, TokenCache, fetch_token, parse_challenges
from gorae.distribution.hosts import Endpoint, RegistryHosts
from gorae.errors import GoraeError, InvalidParameter, Unauthorized

logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise
logging.getLogger("httpcore").setLevel(logging.WARNING)

USER_AGENT = "gorae/0.1 (docker-compatible)"
MAX_ERROR_BODY = 64 << 10


class RegistryError(GoraeError):
    """An error answer of a registry: HTTP status plus the first distribution error code."""

    def __init__(self, status: int, code: str, message: str, detail: Any = None) -> None:
        text = code.lower().replace("_", " ")
        if message:
            text = f"{text}: {message}"
        super().__init__(text)
        self.status = 500  # dockerd answers a registry's error as errdefs.Unknown
        self.http_status = status
        self.code = code
        self.detail = detail


class Unreachable(GoraeError):
    """The endpoint could not be reached or spoke something else (a TLS or connection failure)."""

    status = 500


def registry_error(resp: httpx.Response, body: bytes) -> RegistryError:
    """The error of a failed response, as distribution's client words it."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("errors"), list) and doc["errors"]:
        e = doc["errors"][0]
        if isinstance(e, dict):
            return RegistryError(
                resp.status_code, str(e.get("code") or "UNKNOWN"), str(e.get("message") or ""), e.get("detail")
            )
    if resp.status_code == 401:
        return RegistryError(401, "UNAUTHORIZED", "authentication required")
    if resp.status_code == 404:
        return RegistryError(404, "NOT_FOUND", "")
    snippet = body[:200].decode("utf-8", "replace").strip()
    return RegistryError(
        resp.status_code,
        "UNKNOWN",
        f"unexpected status from {resp.request.method} request to {resp.request.url}: "
        f"{resp.status_code} {resp.reason_phrase}" + (f": {snippet}" if snippet and "<" not in snippet else ""),
    )


def transport_error(method: str, url: str, e: Exception) -> Unreachable:
    text = str(e) or type(e).__name__
    low = text.lower()
    if url.startswith("https://") and (
        "wrong_version_number" in low or "wrong version number" in low or "record layer" in low
        or "packet length too long" in low or "unknown protocol" in low
    ):
        text = "http: server gave HTTP response to HTTPS client"
    elif "certificate verify failed" in low:
        text = "tls: failed to verify certificate: x509: certificate signed by unknown authority"
    elif "connection refused" in low:
        host = url.split("://", 1)[1].split("/", 1)[0]
        text = f"dial tcp {host}: connect: connection refused"
    elif "name resolution" in low or "name or service not known" in low or "no address associated" in low:
        host = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0]
        text = f"dial tcp: lookup {host}: no such host"
    return Unreachable(f'{method.capitalize()} "{url}": {text}')


class Clients:
    """One httpx.Client per endpoint URL and certs.d state (pooled connections, its own TLS settings);
    thread-safe."""

    def __init__(self, hosts: RegistryHosts) -> None:
        self.hosts = hosts
        self._lock = threading.Lock()
        self._clients: dict[str, httpx.Client] = {}
        self.tokens = TokenCache()

    def get(self, ep: Endpoint) -> httpx.Client:
        key = f"{ep.url} {ep.verify_tls} {self.hosts.tls_files(ep)}"
        with self._lock:
            c = self._clients.get(key)
            if c is None:
                verify: ssl.SSLContext | bool = self.hosts.ssl_context(ep)
                c = httpx.Client(
                    verify=verify,
                    follow_redirects=True,
                    timeout=httpx.Timeout(60.0, connect=15.0),
                    limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
                    headers={"User-Agent": USER_AGENT},
                    trust_env=False,
                )
                for old in [k for k in self._clients if k.startswith(ep.url + " ")]:
                    self._clients.pop(old).close()  # the certs.d files changed: the old settings go
                self._clients[key] = c
            return c

    def close(self) -> None:
        with self._lock:
            for c in self._clients.values():
                c.close()
            self._clients.clear()


def scope(path: str, actions: str) -> str:
    return f"repository:{path}:{actions}"


class Session:
    """Authenticated requests to one endpoint on behalf of one repository."""

    def __init__(
        self, clients: Clients, ep: Endpoint, auth: AuthConfig, scopes: Iterable[str]
    ) -> None:
        self.ep = ep
        self.auth = auth
        self.scopes = list(scopes)
        self._clients = clients
        self.client = clients.get(ep)
        self._challenge: Challenge | None = None
        self._auth_header: str | None = None
        self._lock = threading.Lock()

    def url(self, path: str) -> str:
        return self.ep.url + path

    # ---- auth ----------------------------------------------------------------------------------

    def ping(self) -> None:
        """GET /v2/: learn the challenge. Unreachable when the endpoint cannot be used."""
        url = self.url("/v2/")
        try:
            resp = self.client.get(url)
            body = resp.read()[:MAX_ERROR_BODY]
        except (httpx.HTTPError, ssl.SSLError, OSError) as e:
            raise transport_error("GET", url, e) from None
        if resp.status_code == 401:
            self._learn(resp)
        elif resp.status_code >= 400 and resp.status_code != 404:
            raise registry_error(resp, body)
        elif resp.status_code >= 500:
            raise Unreachable(f'Get "{url}": {resp.status_code} {resp.reason_phrase}')

    def _learn(self, resp: httpx.Response) -> None:
        header = resp.headers.get("www-authenticate", "")
        try:
            challenges = parse_challenges(header)
        except InvalidParameter as e:
            raise Unauthorized(e.message) from None
        chosen = next((c for c in challenges if c.scheme == "bearer"), None) or next(
            (c for c in challenges if c.scheme == "basic"), None
        )
        with self._lock:
            self._challenge = chosen
            self._auth_header = None

    def _authorization(self, method: str, url: str, refresh: bool = False) -> str | None:
        with self._lock:
            ch = self._challenge
            if ch is None:
                return None
            if self._auth_header is not None and not refresh:
                return self._auth_header
        if ch.scheme == "basic":
            creds = self.auth.credentials()
            if creds is None:
                # dockerd's words, and a 500 as there (a 401 makes docker's CLI ask for a login)
                raise GoraeError(f'{method.capitalize()} "{url}": no basic auth credentials')
            import base64

            value = "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
        else:
            key = (
                ch.params.get("realm", ""),
                ch.params.get("service", ""),
                " ".join(sorted(self.scopes)),
                self.auth.username or self.auth.identitytoken[:8] or self.auth.auth[:8],
            )
            tok = None if refresh else self._clients.tokens.get(key)
            if tok is None:
                try:
                    tok = fetch_token(self.client, ch, self.scopes, self.auth)
                except Unauthorized as e:  # a 500 as in dockerd (a 401 makes docker's CLI ask for a login)
                    raise GoraeError(e.message) from None
                self._clients.tokens.put(key, tok)
            value = "Bearer " + tok.value
        with self._lock:
            self._auth_header = value
        return value

    # ---- requests ------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        content: bytes | Iterable[bytes] | None = None,
        stream: bool = False,
        ok: tuple[int, ...] = (200,),
    ) -> httpx.Response:
        """Send with credentials; one retry with a fresh token after a 401 (when `content` can be resent).
        A status outside `ok` raises RegistryError (the body read and the response closed). With
        `stream`, the caller reads and closes the response."""
        url = path_or_url if "://" in path_or_url else self.url(path_or_url)
        replayable = content is None or isinstance(content, bytes)
        refresh = False
        for attempt in range(2):
            h = dict(headers or {})
            authz = self._authorization(method, url, refresh)
            if authz:
                h["Authorization"] = authz
            try:
                req = self.client.build_request(method, url, headers=h, params=params, content=content)
                resp = self.client.send(req, stream=True)
            except (httpx.HTTPError, ssl.SSLError, OSError) as e:
                raise transport_error(method, url, e) from None
            if resp.status_code == 401 and attempt == 0 and replayable and resp.headers.get("www-authenticate"):
                resp.read()
                resp.close()
                self._learn(resp)
                refresh = True
                continue
            if resp.status_code not in ok:
                try:
                    body = resp.read()[:MAX_ERROR_BODY] if method != "HEAD" else b""
                except httpx.HTTPError:
                    body = b""
                resp.close()
                raise registry_error(resp, body)
            if not stream:
                try:
                    resp.read()
                except httpx.HTTPError as e:
                    raise transport_error(method, url, e) from None
                finally:
                    resp.close()
            return resp
        raise AssertionError("unreachable")


def open_session(
    clients: Clients, endpoints: list[Endpoint], auth: AuthConfig, scopes: list[str]
) -> Session:
    """A pinged session on the first endpoint that answers (dockerd's endpoint fallback); the last
    failure when none does."""
    last: GoraeError | None = None
    for ep in endpoints:
        s = Session(clients, ep, auth, scopes)
        try:
            s.ping()
            return s
        except Unreachable as e:
            last = e
            continue
    assert last is not None
    raise last
