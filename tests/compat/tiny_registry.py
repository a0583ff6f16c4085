"""A tiny registry of our own for the tests that need a registry to misbehave: it serves fixed manifests and
blobs from memory over plain HTTP on loopback (ThreadingHTTPServer), honours `Range`, and can throttle
blob bodies, lie about a digest or a size. Only GET/HEAD of `/v2/`, manifests and blobs."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


@dataclass
class TinyRegistry:
    manifests: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # "repo:ref" -> (type, body)
    blobs: dict[str, bytes] = field(default_factory=dict)
    throttle: float = 0.0  # seconds per 64 KiB of a blob body
    served: list[str] = field(default_factory=list)  # "GET /v2/..." and "Range: ..." of each request
    server: ThreadingHTTPServer | None = None
    # token auth (distribution's token spec): /v2/ answers a Bearer challenge whose realm is our /token
    token_users: dict[str, str] | None = None  # user -> password; None: no auth at all
    tokens: dict[str, str] = field(default_factory=dict)  # valid token -> scope granted
    token_requests: list[str] = field(default_factory=list)  # query strings of /token requests

    def add_image(
        self, repo: str, tag: str, layers: list[bytes], *, config_extra: dict | None = None,
        layer_digests: list[str] | None = None, layer_sizes: list[int] | None = None,
        compress: list[str] | None = None, oci: bool = False,
    ) -> tuple[str, str]:
        """Store an image (uncompressed layers); returns (manifest digest, config digest)."""
        cfg = {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [digest(x) for x in layers]},
            **(config_extra or {}),
        }
        cbytes = json.dumps(cfg).encode()
        self.blobs[digest(cbytes)] = cbytes
        descs = []
        for i, x in enumerate(layers):
            kind = compress[i] if compress else ""
            mt = "application/vnd.oci.image.layer.v1.tar" if oci else "application/vnd.docker.image.rootfs.diff.tar"
            if kind == "gzip":
                import gzip

                x = gzip.compress(x)
                mt = mt.replace(".diff.tar", ".diff.tar.gzip") if not oci else mt + "+gzip"
            elif kind == "zstd":
                import zstandard

                x = zstandard.ZstdCompressor().compress(x)
                mt = mt + "+zstd"
            d = layer_digests[i] if layer_digests else digest(x)
            self.blobs[d] = x
            size = layer_sizes[i] if layer_sizes else len(x)
            descs.append({"mediaType": mt, "size": size, "digest": d})
        mtype = "application/vnd.oci.image.manifest.v1+json" if oci else DOCKER_MANIFEST
        ctype = "application/vnd.oci.image.config.v1+json" if oci else "application/vnd.docker.container.image.v1+json"
        m = {
            "schemaVersion": 2,
            "mediaType": mtype,
            "config": {"mediaType": ctype, "size": len(cbytes), "digest": digest(cbytes)},
            "layers": descs,
        }
        body = json.dumps(m).encode()
        self.manifests[f"{repo}:{tag}"] = (mtype, body)
        self.manifests[f"{repo}:{digest(body)}"] = (mtype, body)
        return digest(body), digest(cbytes)

    def add_list(self, repo: str, tag: str, entries: list[tuple[str, dict]]) -> str:
        """A manifest list of (manifest digest, platform) entries."""
        ms = []
        for d, plat in entries:
            body = next(b for (t, b) in self.manifests.values() if digest(b) == d)
            ms.append({"mediaType": DOCKER_MANIFEST, "size": len(body), "digest": d, "platform": plat})
        body = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": ms}).encode()
        self.manifests[f"{repo}:{tag}"] = (DOCKER_LIST, body)
        self.manifests[f"{repo}:{digest(body)}"] = (DOCKER_LIST, body)
        return digest(body)

    @property
    def addr(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> TinyRegistry:
        reg = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def _send(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None,
                      head: bool = False) -> None:
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                if "Content-Length" not in (headers or {}):
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head and body:
                    self.wfile.write(body)

            def _err(self, code: int, ecode: str, msg: str, head: bool) -> None:
                body = json.dumps({"errors": [{"code": ecode, "message": msg}]}).encode()
                self._send(code, body, {"Content-Type": "application/json"}, head)

            def do_HEAD(self) -> None:
                self.do_GET(head=True)

            def _authorized(self, head: bool) -> bool:
                if reg.token_users is None:
                    return True
                authz = self.headers.get("Authorization") or ""
                if authz.startswith("Bearer ") and authz[7:] in reg.tokens:
                    return True
                realm = f"http://{reg.addr}/token"
                body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}).encode()
                self._send(401, body, {
                    "Content-Type": "application/json",
                    "WWW-Authenticate": f'Bearer realm="{realm}",service="tiny",scope="repository:x:pull"',
                }, head)
                return False

            def _token(self) -> None:
                import base64
                import secrets
                from urllib.parse import parse_qs

                query = self.path.split("?", 1)[1] if "?" in self.path else ""
                reg.token_requests.append(query)
                authz = self.headers.get("Authorization") or ""
                if authz.startswith("Basic "):
                    user, _, pw = base64.b64decode(authz[6:]).decode().partition(":")
                    if (reg.token_users or {}).get(user) != pw:
                        body = json.dumps({"details": "incorrect username or password"}).encode()
                        return self._send(401, body, {"Content-Type": "application/json"})
                elif "anonymous" not in (reg.token_users or {}):
                    body = json.dumps({"details": "anonymous access denied"}).encode()
                    return self._send(401, body, {"Content-Type": "application/json"})
                tok = secrets.token_hex(16)
                q = parse_qs(query)
                reg.tokens[tok] = " ".join(q.get("scope", []))
                doc: dict[str, object] = {"access_token": tok, "expires_in": 300}
                if q.get("offline_token") == ["true"] and authz.startswith("Basic "):
                    doc["refresh_token"] = "rt-" + user
                return self._send(200, json.dumps(doc).encode(), {"Content-Type": "application/json"})

            def do_POST(self) -> None:
                """The OAuth2 refresh-token grant (what an identity token is used for)."""
                import secrets
                from urllib.parse import parse_qs

                n = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(n).decode())
                reg.token_requests.append("POST " + "&".join(f"{k}={v[0]}" for k, v in sorted(form.items())))
                rt = (form.get("refresh_token") or [""])[0]
                if form.get("grant_type") != ["refresh_token"] or rt[3:] not in (reg.token_users or {}):
                    return self._send(401, b'{"details":"invalid refresh token"}', {"Content-Type": "application/json"})
                tok = secrets.token_hex(16)
                reg.tokens[tok] = " ".join(form.get("scope", []))
                body = json.dumps({"access_token": tok, "expires_in": 300, "refresh_token": rt}).encode()
                return self._send(200, body, {"Content-Type": "application/json"})

            def do_GET(self, head: bool = False) -> None:
                reg.served.append(f"{self.command} {self.path} {self.headers.get('Range') or ''}".strip())
                p = self.path.split("?", 1)[0]
                if p == "/token":
                    return self._token()
                if not self._authorized(head):
                    return None
                if p.endswith("/tags/list"):
                    repo = p[len("/v2/"):-len("/tags/list")]
                    tags = sorted({k.split(":", 1)[1] for k in reg.manifests if k.startswith(repo + ":")
                                   and not k.split(":", 1)[1].startswith("sha256:")})
                    body = json.dumps({"name": repo, "tags": tags}).encode()
                    return self._send(200, body, {"Content-Type": "application/json"}, head)
                if p == "/v2/":
                    return self._send(200, b"{}", {"Content-Type": "application/json"}, head)
                if "/manifests/" in p:
                    repo, ref = p[len("/v2/"):].split("/manifests/", 1)
                    if repo.startswith("denied/"):
                        return self._err(403, "DENIED", "requested access to the resource is denied", head)
                    found = reg.manifests.get(f"{repo}:{ref}")
                    if found is None:
                        return self._err(404, "MANIFEST_UNKNOWN", "manifest unknown", head)
                    mt, body = found
                    return self._send(200, body, {"Content-Type": mt, "Docker-Content-Digest": digest(body)}, head)
                if "/blobs/" in p:
                    d = p.rsplit("/", 1)[1]
                    data = reg.blobs.get(d)
                    if data is None:
                        return self._err(404, "BLOB_UNKNOWN", "blob unknown to registry", head)
                    start = 0
                    rng = self.headers.get("Range")
                    if rng and rng.startswith("bytes="):
                        start = int(rng[6:].split("-", 1)[0])
                    part = data[start:]
                    code = 206 if start else 200
                    self.send_response(code)
                    self.send_header("Content-Length", str(len(part)))
                    self.send_header("Content-Type", "application/octet-stream")
                    if start:
                        self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                    self.end_headers()
                    if head:
                        return
                    try:
                        for i in range(0, len(part), 65536):
                            self.wfile.write(part[i:i + 65536])
                            if reg.throttle:
                                time.sleep(reg.throttle)
                    except (BrokenPipeError, ConnectionResetError):
                        return
                    return
                return self._err(404, "NOT_FOUND", "not found", head)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
