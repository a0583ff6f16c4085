"""Which endpoints serve a registry host, and how to reach them: dockerd's registry service rules.

- docker.io is served by `registry-1.docker.io` over HTTPS, after the configured `registry-mirrors` (pulls
  only; pushes never go to a mirror), each tried in order when the one before cannot be reached.
- Any other host is HTTPS. A host is *insecure* when it is listed in `insecure-registries` (as host,
  host:port, or a CIDR containing one of its addresses) or is a loopback address (127.0.0.0/8, ::1,
  "localhost"), as dockerd adds 127.0.0.0/8 by default. An insecure host is tried over HTTPS without
  certificate verification first, then over plain HTTP (dockerd's fallback); a secure one is never
  reached over plain HTTP.
- TLS trusts the system CAs plus every `*.crt` in `<certs dir>/<host[:port]>/`, and presents the client
  certificate of a `*.cert`/`*.key` pair there, for each certs dir (`/etc/gorae/certs.d`,
  `/etc/docker/certs.d`, or those given).
Parsing the configuration (`RegistryHosts(...)`) raises InvalidParameter with dockerd's texts.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
from dataclasses import dataclass, field

from gorae.errors import InvalidParameter

DEFAULT_DOMAIN = "docker.io"
INDEX_HOST = "registry-1.docker.io"
INDEX_SERVER = "https://index.docker.io/v1/"  # the key docker's CLI stores Hub credentials under
DEFAULT_CERTS_DIRS = ("/etc/gorae/certs.d", "/etc/docker/certs.d")
LOOPBACK_NETS = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


@dataclass(frozen=True)
class Endpoint:
    """One way to reach a registry: base URL, whether TLS is verified, and whether it is a mirror."""

    url: str  # "https://host:port" (no trailing slash)
    host: str  # host[:port], the certs.d directory name
    verify_tls: bool = True
    mirror: bool = False

    @property
    def plain_http(self) -> bool:
        return self.url.startswith("http://")


def _split_host(host: str) -> str:
    """The host name/IP of "host[:port]" (brackets of an IPv6 literal removed)."""
    if host.startswith("["):
        return host[1 : host.index("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _validate_mirror(m: str) -> str:
    url = m.strip()
    if not url.startswith(("http://", "https://")):
        raise InvalidParameter(f"invalid mirror: unsupported scheme {url!r} in {url!r}")
    rest = url.split("://", 1)[1]
    path = rest.partition("/")[2]
    if path.strip("/"):
        raise InvalidParameter(f"invalid mirror: path, query, or fragment at end of the URI {url!r}")
    return url.rstrip("/")


@dataclass
class RegistryHosts:
    insecure: list[str] = field(default_factory=list)
    mirrors: list[str] = field(default_factory=list)
    certs_dirs: tuple[str, ...] = DEFAULT_CERTS_DIRS

    def __post_init__(self) -> None:
        self._nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = list(LOOPBACK_NETS)
        self._names: set[str] = set()
        for entry in self.insecure:
            e = entry.strip()
            if "://" in e:
                raise InvalidParameter(f"insecure registry {e} should not contain '://'")
            if "/" in e:
                try:
                    self._nets.append(ipaddress.ip_network(e, strict=False))
                except ValueError:
                    raise InvalidParameter(f"insecure registry {e} is not a valid CIDR") from None
            elif e:
                self._names.add(e.lower())
        self.mirrors = [_validate_mirror(m) for m in self.mirrors]

    # ---- security ------------------------------------------------------------------------------

    def is_insecure(self, host: str) -> bool:
        """dockerd's isSecureIndex, negated: listed by name (host or host:port), or an address of the host
        inside an insecure CIDR (loopback always)."""
        h = host.lower()
        if h in self._names or _split_host(h) in self._names:
            return True
        name = _split_host(h)
        addrs: list[str] = []
        try:
            addrs = [str(ipaddress.ip_address(name))]
        except ValueError:
            try:
                addrs = sorted({str(a[4][0]) for a in socket.getaddrinfo(name, None)})
            except (OSError, UnicodeError):
                addrs = []
        for a in addrs:
            try:
                ip = ipaddress.ip_address(a.split("%", 1)[0])
            except ValueError:
                continue
            if any(ip in n for n in self._nets):
                return True
        return False

    # ---- endpoints -----------------------------------------------------------------------------

    def _for_host(self, host: str, mirror: bool = False) -> list[Endpoint]:
        if self.is_insecure(host):
            return [
                Endpoint(f"https://{host}", host, verify_tls=False, mirror=mirror),
                Endpoint(f"http://{host}", host, verify_tls=False, mirror=mirror),
            ]
        return [Endpoint(f"https://{host}", host, mirror=mirror)]

    def endpoints(self, domain: str, push: bool = False) -> list[Endpoint]:
        """The endpoints to try, in order, for a reference's domain."""
        if domain == DEFAULT_DOMAIN:
            out: list[Endpoint] = []
            if not push:
                for m in self.mirrors:
                    scheme, _, rest = m.partition("://")
                    host = rest.split("/", 1)[0]
                    if scheme == "http":
                        out.append(Endpoint(m, host, verify_tls=False, mirror=True))
                    else:
                        out.append(Endpoint(m, host, verify_tls=not self.is_insecure(host), mirror=True))
            out.append(Endpoint(f"https://{INDEX_HOST}", INDEX_HOST))
            return out
        return self._for_host(domain)

    # ---- TLS -----------------------------------------------------------------------------------

    def tls_files(self, ep: Endpoint) -> tuple[tuple[str, float], ...]:
        """The certs.d files of an endpoint and their mtimes: a change means new TLS settings (dockerd
        reads the directory at each connection set-up)."""
        out: list[tuple[str, float]] = []
        for base in self.certs_dirs:
            d = os.path.join(base, ep.host)
            try:
                names = sorted(os.listdir(d))
            except OSError:
                continue
            for n in names:
                try:
                    out.append((os.path.join(d, n), os.stat(os.path.join(d, n)).st_mtime))
                except OSError:
                    continue
        return tuple(out)

    def ssl_context(self, ep: Endpoint) -> ssl.SSLContext | bool:
        """The TLS settings for an endpoint (False: plain HTTP or verification off with no client cert)."""
        if ep.plain_http:
            return False
        ctx = ssl.create_default_context()
        if not ep.verify_tls:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        for base in self.certs_dirs:
            d = os.path.join(base, ep.host)
            if not os.path.isdir(d):
                continue
            names = sorted(os.listdir(d))
            for n in names:
                p = os.path.join(d, n)
                if n.endswith(".crt"):
                    try:
                        ctx.load_verify_locations(cafile=p)
                    except (OSError, ssl.SSLError) as e:
                        raise InvalidParameter(f"unable to load CA certificate {p}: {e}") from None
                elif n.endswith(".cert"):
                    key = p[: -len(".cert")] + ".key"
                    if not os.path.exists(key):
                        raise InvalidParameter(
                            f"missing key {os.path.basename(key)} for client certificate {n}. "
                            "CA certificates must use the extension .crt"
                        )
                    try:
                        ctx.load_cert_chain(p, key)
                    except (OSError, ssl.SSLError) as e:
                        raise InvalidParameter(f"unable to load client certificate {p}: {e}") from None
                elif n.endswith(".key"):
                    cert = p[: -len(".key")] + ".cert"
                    if not os.path.exists(cert):
                        raise InvalidParameter(f"missing client certificate {os.path.basename(cert)} for key {n}")
        return ctx


def login_host(serveraddress: str) -> str:
    """The registry host of a login's `serveraddress` ("" and Hub's index URL mean docker.io)."""
    s = serveraddress.strip()
    for prefix in ("https://", "http://"):
        if s.startswith(prefix):
            s = s[len(prefix) :]
    s = s.split("/", 1)[0]
    if s in ("", "index.docker.io", "docker.io", "registry-1.docker.io"):
        return DEFAULT_DOMAIN
    return s
