"""DistributionService: the registry client use cases the Engine API needs — pull, push, login, and
distribution inspect — with their image events (`pull`, `push`).

`pull` and `push` are blocking and report through an `emit` callback and stop when `cancel` is set;
the API runs each in a thread of its own and relays the lines (dockerd cancels a pull or push whose client
went away: so do we; what was downloaded stays for the next attempt). Everything long-lived — HTTP
connection pools, tokens, the in-flight blob table — belongs to this object, one per daemon.
"""

from __future__ import annotations

import base64
import threading
from typing import Any

import httpx

from gorae.distribution import manifest as mf
from gorae.distribution import progress
from gorae.distribution.auth import AuthConfig, fetch_token, parse_challenges
from gorae.distribution.blobs import Inflight
from gorae.distribution.hosts import RegistryHosts, login_host
from gorae.distribution.metadata import LayerSources
from gorae.distribution.pull import Puller, Registries, distribution_inspect
from gorae.distribution.push import Pusher
from gorae.distribution.transport import Clients, Unreachable, transport_error
from gorae.errors import Forbidden, GoraeError, InvalidParameter, Unauthorized
from gorae.events import Publisher
from gorae.image import reference as refs
from gorae.image.store import ImageStore
from gorae.metrics.sink import NULL_SINK, MetricsSink, timed
from gorae.store.content import ContentStore
from gorae.store.metadata import MetadataStore


class LoginRefused(GoraeError):
    """The registry refused the credentials: a 500 as dockerd answers it (docker's CLI then prints "Login did
    not succeed, error: ..."; a 401 would make it say the stored credentials expired and prompt)."""

    status = 500


class DistributionService:
    def __init__(
        self,
        store: ImageStore,
        content: ContentStore,
        meta: MetadataStore,
        hosts: RegistryHosts,
        *,
        publish: Publisher | None = None,
        metrics: MetricsSink = NULL_SINK,
    ) -> None:
        self._metrics = metrics  # pulls and pushes timed as engine_daemon_image_actions_seconds{action=}
        self.reg = Registries(
            hosts=hosts,
            clients=Clients(hosts),
            store=store,
            content=content,
            sources=LayerSources(meta),
            inflight=Inflight(),
        )
        self._publish = publish

    def close(self) -> None:
        self.reg.clients.close()

    def _event(self, action: str, ref: refs.Reference, iid: str) -> None:
        if self._publish is None:
            return
        attrs: dict[str, str] = {}
        try:
            labels = (self.reg.store.get(iid).config.get("config") or {}).get("Labels") or {}
            attrs.update({str(k): str(v) for k, v in labels.items()})
        except GoraeError:
            pass
        attrs["name"] = ref.familiar_name
        self._publish("image", action, ref.familiar(), attrs)

    # ---- references as the API gives them ------------------------------------------------------

    @staticmethod
    def pull_reference(from_image: str, tag: str) -> refs.Reference:
        """dockerd's postImagesCreate: `fromImage` (a trailing ":" dropped) plus `tag`, which may be a
        digest; no tag means every tag."""
        ref = refs.parse(from_image.removesuffix(":"))
        if tag:
            if tag.startswith(("sha256:", "sha384:", "sha512:")) or ":" in tag:
                refs.parse(f"{ref.name}@{tag}")  # go-digest's checks and texts
                ref = refs.Reference(ref.domain, ref.path, None, tag)
            else:
                if not refs.TAG_RE.fullmatch(tag):
                    raise InvalidParameter("invalid tag format")
                ref = refs.Reference(ref.domain, ref.path, tag, ref.digest)
        if ref.path.rsplit("/", 1)[-1] == "scratch" and ref.familiar_name == "scratch":
            raise Forbidden("'scratch' is a reserved name")
        return ref

    @staticmethod
    def push_reference(name: str, tag: str) -> refs.Reference:
        ref = refs.parse(name)
        if tag:
            if not refs.TAG_RE.fullmatch(tag):
                raise InvalidParameter("invalid tag format")
            ref = refs.Reference(ref.domain, ref.path, tag, None)
        return ref

    # ---- use cases -----------------------------------------------------------------------------

    def pull(
        self,
        ref: refs.Reference,
        auth: AuthConfig,
        emit: progress.Emit,
        cancel: threading.Event,
        platform: str | None = None,
    ) -> None:
        p = Puller(self.reg, auth, emit, cancel, mf.parse_platform(platform))
        with timed(self._metrics, "image", "pull"):
            p.pull(ref)
        for r, iid in p.pulled:
            self._event("pull", r, iid)

    def push(self, ref: refs.Reference, auth: AuthConfig, emit: progress.Emit, cancel: threading.Event) -> None:
        p = Pusher(self.reg, auth, emit, cancel)
        with timed(self._metrics, "image", "push"):
            p.push(ref)
        for t in p.pushed:
            tagged = ref.with_tag(t.tag)
            try:
                iid = self.reg.store.resolve(tagged.familiar()).id
            except GoraeError:
                iid = ""
            self._event("push", tagged, iid)

    def inspect(self, name: str, auth: AuthConfig) -> dict[str, Any]:
        ref = refs.parse(name)
        if ref.tag is None and ref.digest is None:
            ref = ref.with_default_tag()
        return distribution_inspect(self.reg, auth, ref)

    def login(self, auth: AuthConfig) -> dict[str, str]:
        """POST /auth: check the credentials against the registry (dockerd's loginV2)."""
        host = login_host(auth.serveraddress)
        endpoints = self.reg.hosts.endpoints(host, push=True)
        last: GoraeError | None = None
        for ep in endpoints:
            try:
                token = self._login(self.reg.clients.get(ep), ep.url + "/v2/", auth)
                return {"Status": "Login Succeeded", "IdentityToken": token}
            except LoginRefused:
                raise  # no other endpoint of the registry is tried (dockerd)
            except Unreachable as e:
                last = e
        assert last is not None
        raise last

    def _login(self, client: httpx.Client, url: str, auth: AuthConfig) -> str:
        try:
            resp = client.get(url)
            resp.read()
        except (httpx.HTTPError, OSError) as e:
            raise transport_error("GET", url, e) from None
        if resp.status_code == 200:
            return ""
        if resp.status_code != 401:
            raise Unreachable(f"login attempt to {url} failed with status: {resp.status_code} {resp.reason_phrase}")
        try:
            challenges = parse_challenges(resp.headers.get("www-authenticate", ""))
        except InvalidParameter as e:
            raise LoginRefused(e.message) from None
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        headers: dict[str, str] = {}
        identity = ""
        creds = auth.credentials()
        if bearer is not None:
            try:
                tok = fetch_token(client, bearer, [], auth, offline=True)
            except Unauthorized as e:
                raise LoginRefused(f'Get "{url}": {e.message}') from None
            identity = tok.refresh_token
            headers["Authorization"] = "Bearer " + tok.value
        elif any(c.scheme == "basic" for c in challenges):
            if creds is None:
                raise LoginRefused(f'Get "{url}": no basic auth credentials')
            headers["Authorization"] = "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()
        try:
            resp = client.get(url, headers=headers)
            resp.read()
        except (httpx.HTTPError, OSError) as e:
            raise transport_error("GET", url, e) from None
        if resp.status_code != 200:
            raise LoginRefused(
                f"login attempt to {url} failed with status: {resp.status_code} {resp.reason_phrase}"
            )
        return identity
