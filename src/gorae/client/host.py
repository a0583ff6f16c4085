"""Where the daemon is and how to reach it: `-H` / `GORAE_HOST` / `DOCKER_HOST` and the TLS settings.

Precedence as docker's: an explicit `-H`, then `GORAE_HOST`, then `DOCKER_HOST`, then unix:///run/gorae.sock.
TLS comes from `--tls`, `--tlsverify`, `--tlscacert/--tlscert/--tlskey`, `DOCKER_TLS_VERIFY` and
`DOCKER_CERT_PATH` (default ~/.docker); setting `--tlsverify` or `DOCKER_TLS_VERIFY` implies TLS.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_HOST = "unix:///run/gorae.sock"
DEFAULT_TCP_PORT = 2375
DEFAULT_TLS_PORT = 2376


class HostConfig:
    """A parsed daemon address (`url` normalised for messages; scheme "unix" with `path`, or "tcp" with
    `host`/`port`) plus TLS material."""

    def __init__(
        self, url: str, scheme: str, path: str = "", host: str = "", port: int = 0, tls: bool = False
    ) -> None:
        self.url, self.scheme, self.path, self.host, self.port, self.tls = url, scheme, path, host, port, tls
        self.tls_verify = False
        self.ca_cert: str | None = None
        self.cert: str | None = None
        self.key: str | None = None

    @property
    def http_host(self) -> str:
        """The value of the Host header (docker sends "api.moby.localhost" for unix sockets)."""
        return "api.moby.localhost" if self.scheme == "unix" else f"{self.host}:{self.port}"


def parse_host(url: str, *, tls: bool = False) -> HostConfig:
    """Parse unix:///path, tcp://host:port, host:port, fd:// is not supported."""
    url = url.strip()
    if url.startswith("unix://"):
        path = url[len("unix://") :]
        if not path:
            raise ValueError(f"invalid host: {url!r}")
        return HostConfig(url=url, scheme="unix", path=path)
    if url.startswith("/"):
        return HostConfig(url="unix://" + url, scheme="unix", path=url)
    rest = url
    for prefix in ("tcp://", "http://", "https://"):
        if url.startswith(prefix):
            rest = url[len(prefix) :]
            if prefix == "https://":
                tls = True
            break
    else:
        if "://" in url:
            raise ValueError(f"Invalid bind address format: {url}")
    rest = rest.split("/", 1)[0]
    if rest.startswith("["):  # [v6]:port
        h, _, p = rest[1:].partition("]")
        p = p.lstrip(":")
    else:
        h, _, p = rest.rpartition(":") if ":" in rest else (rest, "", "")
    if not h:
        h = "localhost"
    try:
        port = int(p) if p else (DEFAULT_TLS_PORT if tls else DEFAULT_TCP_PORT)
    except ValueError:
        raise ValueError(f"Invalid bind address format: {url}") from None
    return HostConfig(url=f"tcp://{h}:{port}", scheme="tcp", host=h, port=port, tls=tls)


def environ() -> Mapping[str, str]:
    """The process environment as `os.environ` has it, without importing `os` (and `_collections_abc` with it:
    a millisecond of every CLI command) when nothing imported it yet: then nothing can have changed it through
    `os.environ` either, and `posix.environ` (bytes, what `os.environ` is built from) is still exact."""
    os = sys.modules.get("os")
    if os is not None:
        return os.environ  # type: ignore[no-any-return]
    import posix

    enc = sys.getfilesystemencoding()
    return {
        k.decode(enc, "surrogateescape"): v.decode(enc, "surrogateescape") for k, v in posix.environ.items()
    }


def expand_home(path: str) -> str:
    """os.path.expanduser for a path starting with "~/" or equal to "~" (from $HOME when it is set)."""
    home = environ().get("HOME")
    if home is None or not (path == "~" or path.startswith("~/")):
        import os

        return os.path.expanduser(path)
    return (home.rstrip("/") + path[1:]) or "/"


def _truthy(value: str | None) -> bool:
    return value is not None and value != "" and value.lower() not in ("0", "false", "no")


def resolve_host(
    hosts: list[str] | None = None,
    *,
    tls: bool = False,
    tlsverify: bool | None = None,
    tlscacert: str | None = None,
    tlscert: str | None = None,
    tlskey: str | None = None,
    env: dict[str, str] | None = None,
) -> HostConfig:
    """Combine flags and environment into one HostConfig (docker's rules)."""
    env = dict(environ()) if env is None else env
    if hosts:
        if len(hosts) > 1:
            raise ValueError("Specify only one -H")
        url = hosts[0]
    else:
        url = env.get("GORAE_HOST") or env.get("DOCKER_HOST") or DEFAULT_HOST
    verify = tlsverify if tlsverify is not None else _truthy(env.get("DOCKER_TLS_VERIFY"))
    use_tls = tls or verify
    cfg = parse_host(url, tls=use_tls)
    if cfg.scheme == "tcp" and (use_tls or cfg.tls):
        import os

        cert_path = env.get("DOCKER_CERT_PATH") or os.path.join(os.path.expanduser("~"), ".docker")
        cfg.tls = True
        cfg.tls_verify = verify
        cfg.ca_cert = tlscacert or _existing(os.path.join(cert_path, "ca.pem"))
        cfg.cert = tlscert or _existing(os.path.join(cert_path, "cert.pem"))
        cfg.key = tlskey or _existing(os.path.join(cert_path, "key.pem"))
    return cfg


def _existing(path: str) -> str | None:
    import os

    return path if os.path.exists(path) else None
