"""Who may do what on the registry: htpasswd Basic auth, and token auth (Bearer JWTs) with its issuer.

Owns the htpasswd file (bcrypt entries, `$2y$` as `htpasswd -B` writes; a verified password is remembered
for a while so bcrypt's cost is paid once per client, not per request), the two `Authorizer`s of
`gorae.registry.app` with distribution's challenges — `WWW-Authenticate: Basic realm="..."` and
`WWW-Authenticate: Bearer realm="...",service="...",scope="repository:<name>:pull,push"` (plus
`error="insufficient_scope"` when a token lacks access) — and `TokenIssuer`, the realm endpoint that checks
htpasswd credentials and issues scoped tokens (GET with Basic auth as docker's token flow does, and POST
OAuth2 password grants). Every authenticated user gets what it asks for; anonymous users get nothing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import os
import time
from typing import Any
from urllib.parse import parse_qs

import bcrypt

from gorae.httpserver.message import Request, Response, json_response
from gorae.registry.errors import RegistryError
from gorae.registry.token import PrivateKey, PublicKey, TokenInvalid, granted, issue, verify

Access = tuple[str, str, str]
_REMEMBER = 300.0


class Htpasswd:
    """Users and bcrypt hashes from an htpasswd file (re-read when it changes)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._users: dict[str, bytes] = {}
        self._mtime = -1.0
        self._verified: dict[bytes, float] = {}
        self._load()

    def _load(self) -> None:
        mtime = os.stat(self.path).st_mtime
        if mtime == self._mtime:
            return
        users: dict[str, bytes] = {}
        with open(self.path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                user, sep, hashed = line.partition(":")
                if not sep or not hashed.startswith(("$2y$", "$2b$", "$2a$")):
                    raise ValueError(f"{self.path}:{lineno}: only bcrypt entries are supported (htpasswd -B)")
                users[user] = hashed.encode()
        self._users, self._mtime, self._verified = users, mtime, {}

    def check(self, user: str, password: str) -> bool:
        """Blocking (bcrypt): run it off the event loop."""
        self._load()
        hashed = self._users.get(user)
        if hashed is None:
            return False
        key = hashlib.sha256(user.encode() + b"\0" + password.encode() + b"\0" + hashed).digest()
        until = self._verified.get(key)
        if until is not None and until > time.monotonic():
            return True
        try:
            ok = bcrypt.checkpw(password.encode(), hashed)
        except ValueError:
            return False
        if ok:
            if len(self._verified) > 10000:
                self._verified.clear()
            self._verified[key] = time.monotonic() + _REMEMBER
        return ok


def basic_credentials(req: Request) -> tuple[str, str] | None:
    header = req.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return (user, password) if sep else None


def _scope(access: list[Access]) -> str:
    by_resource: dict[tuple[str, str], list[str]] = {}
    for kind, name, action in access:
        by_resource.setdefault((kind, name), []).append(action)
    return " ".join(f"{kind}:{name}:{','.join(actions)}" for (kind, name), actions in by_resource.items())


class BasicAuthorizer:
    """htpasswd users may do anything; everyone else is challenged for Basic credentials."""

    def __init__(self, htpasswd: Htpasswd, realm: str) -> None:
        self.htpasswd = htpasswd
        self.realm = realm

    async def authorize(self, req: Request, access: list[Access]) -> None:
        creds = basic_credentials(req)
        if creds is not None and await asyncio.to_thread(self.htpasswd.check, *creds):
            req.params["_user"] = creds[0]
            return
        raise RegistryError("UNAUTHORIZED", headers=[("WWW-Authenticate", f'Basic realm="{self.realm}"')])

    def allows(self, req: Request, access: Access) -> bool:
        return "_user" in req.params


class TokenAuthorizer:
    """Requests carry a Bearer token from the realm; it must grant every access the request needs."""

    def __init__(self, realm: str, service: str, issuer: str, key: PublicKey) -> None:
        self.realm = realm
        self.service = service
        self.issuer = issuer
        self.key = key

    def _claims(self, req: Request) -> dict[str, Any] | None:
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        try:
            return verify(token.strip(), self.key, issuer=self.issuer, service=self.service)
        except TokenInvalid:
            return None

    async def authorize(self, req: Request, access: list[Access]) -> None:
        claims = self._claims(req)
        if claims is not None and all(granted(claims, *a) for a in access):
            req.params["_user"] = str(claims.get("sub", ""))
            return
        challenge = f'Bearer realm="{self.realm}",service="{self.service}"'
        if access:
            challenge += f',scope="{_scope(access)}"'
        if claims is not None:
            challenge += ',error="insufficient_scope"'
        raise RegistryError(
            "UNAUTHORIZED",
            headers=[("WWW-Authenticate", challenge)],
            detail=[{"Type": kind, "Name": name, "Action": action} for kind, name, action in access] or None,
        )

    def allows(self, req: Request, access: Access) -> bool:
        claims = self._claims(req)
        return claims is not None and granted(claims, *access)


class TokenIssuer:
    """The realm of token auth: credentials in, a token for the requested scopes out."""

    def __init__(
        self, htpasswd: Htpasswd, key: PrivateKey, *, issuer: str, service: str, expires_in: int = 300
    ) -> None:
        self.htpasswd = htpasswd
        self.key = key
        self.issuer = issuer
        self.service = service
        self.expires_in = expires_in

    def routes(self) -> list[tuple[str, str, Any]]:
        return [("GET", "/token", self.get_token), ("POST", "/token", self.post_token)]

    async def get_token(self, req: Request) -> Response:
        creds = basic_credentials(req)
        return await self._answer(req, creds, req.qall("scope"), req.q("service"), oauth=False)

    async def post_token(self, req: Request) -> Response:
        req.max_body = 64 * 1024
        form = parse_qs((await req.body()).decode("utf-8", "replace"))
        grant = (form.get("grant_type") or [""])[0]
        if grant != "password":
            return json_response({"error": "unsupported_grant_type"}, status=400)
        creds = ((form.get("username") or [""])[0], (form.get("password") or [""])[0])
        scopes = " ".join(form.get("scope") or []).split()
        services = form.get("service")
        return await self._answer(req, creds, scopes, services[0] if services else None, oauth=True)

    async def _answer(
        self,
        req: Request,
        creds: tuple[str, str] | None,
        scopes: list[str],
        service: str | None,
        *,
        oauth: bool,
    ) -> Response:
        if service is not None and service != self.service:
            return json_response({"errors": [{"code": "DENIED", "message": "unknown service"}]}, status=400)
        subject = ""
        if creds is not None:
            if not await asyncio.to_thread(self.htpasswd.check, *creds):
                return Response(
                    status=401,
                    body=b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}\n',
                    content_type="application/json",
                    headers=[("WWW-Authenticate", 'Basic realm="gorae-registry-token"')],
                )
            subject = creds[0]
        access = _requested(scopes) if subject else []
        token = issue(
            self.key,
            issuer=self.issuer,
            service=self.service,
            subject=subject,
            access=access,
            expires_in=self.expires_in,
        )
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        body: dict[str, Any] = {"access_token": token, "expires_in": self.expires_in, "issued_at": issued}
        if not oauth:
            body["token"] = token
        else:
            body["scope"] = " ".join(scopes)
        return json_response(body)


def _requested(scopes: list[str]) -> list[dict[str, Any]]:
    """`repository:name:pull,push` scopes (space-separated, repeated) as access claims."""
    out: list[dict[str, Any]] = []
    for scope in " ".join(scopes).split():
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        if kind not in ("repository", "registry") or not name or not actions:
            continue
        out.append({"type": kind, "name": name, "actions": sorted(set(actions.split(",")))})
    return out
