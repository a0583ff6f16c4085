"""Registry credentials and challenges: the `X-Registry-Auth` header, `WWW-Authenticate` parsing, and the
token a Bearer challenge asks for (distribution's token spec, with docker's refresh-token variant).

Pure parsing (`decode_registry_auth`, `parse_challenges`) raises `InvalidParameter`, never returns None
for bad input. `TokenCache` remembers tokens by (realm, service, scopes) until they expire. Fetching a
token is `fetch_token`, given a blocking `httpx.Client` (the callers run in worker threads, see
`gorae.distribution.transport`). Never logs a secret.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from gorae.authconfig import AuthConfig as AuthConfig  # re-exported: its callers import it from here
from gorae.errors import InvalidParameter, Unauthorized

MIN_TOKEN_LIFETIME = 60  # seconds, as docker/distribution's client assumes when expires_in is absent/short
MAX_TOKEN_BODY = 1 << 20


_FIELDS = {f: f for f in AuthConfig.__dataclass_fields__}


def auth_from_json(doc: Any) -> AuthConfig:
    """An AuthConfig from a decoded JSON object; keys matched case-insensitively as Go's decoder does."""
    if not isinstance(doc, dict):
        raise InvalidParameter("json: cannot unmarshal into Go value of type registry.AuthConfig")
    values: dict[str, str] = {}
    for k, v in doc.items():
        name = _FIELDS.get(str(k).lower())
        if name is None or v is None:
            continue
        if not isinstance(v, str):
            raise InvalidParameter(
                f"json: cannot unmarshal {type(v).__name__} into Go struct field AuthConfig.{name} of type string"
            )
        values[name] = v
    return AuthConfig(**values)


def decode_registry_auth(header: str | None) -> AuthConfig:
    """The `X-Registry-Auth` header: base64url (padded or not; the standard alphabet is accepted too) of a
    JSON AuthConfig. Empty or absent: no credentials. Bad input: InvalidParameter with dockerd's prefix."""
    if not header:
        return AuthConfig()
    raw = "".join(header.split())
    raw = raw.rstrip("=")
    try:
        data = base64.urlsafe_b64decode(raw.replace("+", "-").replace("/", "_") + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError) as e:
        raise InvalidParameter(f"invalid X-Registry-Auth header: {e}") from None
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise InvalidParameter(f"invalid X-Registry-Auth header: {e}") from None
    try:
        return auth_from_json(doc)
    except InvalidParameter as e:
        raise InvalidParameter(f"invalid X-Registry-Auth header: {e.message}") from None


# ---- WWW-Authenticate ----------------------------------------------------------------------------

_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lowercased: "bearer", "basic"
    params: dict[str, str] = field(default_factory=dict)


def _token(s: str, i: int) -> tuple[str, int]:
    j = i
    while j < len(s) and s[j] in _TOKEN_CHARS:
        j += 1
    return s[i:j], j


def _skip_ws(s: str, i: int) -> int:
    while i < len(s) and s[i] in " \t":
        i += 1
    return i


def _quoted(s: str, i: int) -> tuple[str, int]:
    """A quoted-string starting at s[i] == '"'; returns (value, index after the closing quote)."""
    out: list[str] = []
    i += 1
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            out.append(s[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise InvalidParameter("malformed WWW-Authenticate header: unterminated quoted string")


def parse_challenges(header: str) -> list[Challenge]:
    """RFC 7235 challenges (`Bearer realm="...",service="...",scope="..."`, `Basic realm="..."`, several
    separated by commas). Parameter names are lowercased; InvalidParameter on a malformed header."""
    out: list[Challenge] = []
    s = header
    i = _skip_ws(s, 0)
    while i < len(s):
        if s[i] == ",":
            i = _skip_ws(s, i + 1)
            continue
        scheme, i = _token(s, i)
        if not scheme:
            raise InvalidParameter(f"malformed WWW-Authenticate header at {i}")
        params: dict[str, str] = {}
        i = _skip_ws(s, i)
        while i < len(s):
            # a parameter is `name = value`; anything else starts the next challenge
            name, j = _token(s, i)
            k = _skip_ws(s, j)
            if not name or k >= len(s) or s[k] != "=":
                break
            k = _skip_ws(s, k + 1)
            if k < len(s) and s[k] == '"':
                value, k = _quoted(s, k)
            else:
                value, k = _token(s, k)
            params[name.lower()] = value
            i = _skip_ws(s, k)
            if i < len(s) and s[i] == ",":
                i = _skip_ws(s, i + 1)
            elif i < len(s):
                raise InvalidParameter(f"malformed WWW-Authenticate header at {i}")
        out.append(Challenge(scheme.lower(), params))
    return out


# ---- tokens --------------------------------------------------------------------------------------


@dataclass
class Token:
    value: str
    expires: float  # time.monotonic()
    refresh_token: str = ""


class TokenCache:
    """Tokens by (realm, service, scopes, identity); thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, ...], Token] = {}

    def get(self, key: tuple[str, ...]) -> Token | None:
        with self._lock:
            tok = self._tokens.get(key)
            if tok is not None and tok.expires <= time.monotonic():
                del self._tokens[key]
                return None
            return tok

    def put(self, key: tuple[str, ...], token: Token) -> None:
        with self._lock:
            self._tokens[key] = token

    def drop(self, key: tuple[str, ...]) -> None:
        with self._lock:
            self._tokens.pop(key, None)


def parse_token_response(body: bytes) -> Token:
    """The token endpoint's JSON: `token` or `access_token`, `expires_in` (seconds), `refresh_token`."""
    try:
        doc = json.loads(body)
    except ValueError as e:
        raise Unauthorized(f"unable to decode token response: {e}") from None
    if not isinstance(doc, dict):
        raise Unauthorized("unable to decode token response: not an object")
    value = doc.get("token") or doc.get("access_token")
    if not isinstance(value, str) or not value:
        raise Unauthorized("authorization server did not include a token in the response")
    expires_in = doc.get("expires_in")
    life = expires_in if isinstance(expires_in, int) and not isinstance(expires_in, bool) else 0
    refresh = doc.get("refresh_token")
    return Token(
        value,
        time.monotonic() + max(life, MIN_TOKEN_LIFETIME) - 5,
        refresh if isinstance(refresh, str) else "",
    )


def fetch_token(
    client: httpx.Client, challenge: Challenge, scopes: list[str], auth: AuthConfig, offline: bool = False
) -> Token:
    """Ask the challenge's realm for a token: GET with Basic credentials (or anonymously), or POST the
    OAuth2 refresh-token form when the client holds an identity token (docker's login result)."""
    realm = challenge.params.get("realm", "")
    if not realm.startswith(("https://", "http://")):
        raise Unauthorized(f"invalid token auth challenge realm: {realm!r}")
    service = challenge.params.get("service", "")
    if auth.registrytoken:
        return Token(auth.registrytoken, time.monotonic() + MIN_TOKEN_LIFETIME)
    try:
        if auth.identitytoken:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": auth.identitytoken,
                "service": service,
                "client_id": "docker",
                "scope": " ".join(scopes),
            }
            if offline:
                form["access_type"] = "offline"
            resp = client.post(realm, data=form)
        else:
            params: list[tuple[str, str | int | float | bool | None]] = []
            if service:
                params.append(("service", service))
            params.extend(("scope", s) for s in scopes)
            creds = auth.credentials()
            if offline and creds:
                params += [("offline_token", "true"), ("client_id", "docker")]
            resp = client.get(realm, params=params, auth=creds if creds else None)
        body = resp.read()[:MAX_TOKEN_BODY]
    except httpx.HTTPError as e:
        raise Unauthorized(f"Get {realm!r}: {e}") from None
    if resp.status_code == 401:
        raise Unauthorized(f"{_oauth_error(body) or 'unauthorized: incorrect username or password'}")
    if resp.status_code != 200:
        raise Unauthorized(
            f"token auth attempt for registry: {resp.request.url}: request failed with status: "
            f"{resp.status_code} {resp.reason_phrase}"
        )
    return parse_token_response(body)


def _oauth_error(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return ""
    if isinstance(doc, dict):
        errs = doc.get("errors")
        if isinstance(errs, list) and errs and isinstance(errs[0], dict):
            code = str(errs[0].get("code") or "").lower().replace("_", " ")
            return f"{code}: {errs[0].get('message') or ''}".strip(": ")
        if isinstance(doc.get("details"), str):
            return "unauthorized: " + str(doc["details"])
    return ""
