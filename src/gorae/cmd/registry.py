"""`gorae registry ...`: the standalone registry server's command line (no engine daemon involved).

Owns the argument parsing of `gorae registry serve` (listener, storage, TLS, htpasswd, token auth, read-only)
and `gorae registry token-server` (only the token realm), turning them into a `RegistryConfig` and running it
on uvloop. Heavy imports wait until a command runs, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

USAGE = "gorae registry COMMAND"

DESCRIPTION = """\
Run a private image registry: the OCI distribution spec 1.1 (what docker push/pull, skopeo and the gorae
daemon speak), without an engine daemon.

Commands:
  serve         Serve a registry (filesystem or S3 storage; TLS; htpasswd or token auth; read-only)
  token-server  Serve only a token realm for another registry's token auth

Run 'gorae registry COMMAND --help' for more information on a command.
"""

SERVE_EPILOG = """\
Examples:
  gorae registry serve --addr 0.0.0.0:5000 --root /srv/registry
  gorae registry serve --tls-cert domain.crt --tls-key domain.key --htpasswd /etc/gorae/htpasswd
  gorae registry serve --read-only --root /srv/mirror
  gorae registry serve --htpasswd users --auth-token-issue --auth-token-key key.pem \\
      --auth-token-realm https://reg.example:5000/token --auth-token-service reg.example:5000

htpasswd files hold bcrypt entries as `htpasswd -B` writes them. With --auth-token-issue the same server also
answers /token (the realm) with JWTs signed by --auth-token-key for the users of --htpasswd.
"""


def _addr(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"invalid address {text!r}: want HOST:PORT")
    return host.strip("[]") or "0.0.0.0", int(port)


def _size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    mult = units.get(t[-1:], 1)
    number = t[:-1] if t[-1:] in units else t
    if not number.isdigit():
        raise argparse.ArgumentTypeError(f"invalid size {text!r}")
    return int(number) * mult


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--addr", type=_addr, default=("0.0.0.0", 5000), help="HOST:PORT to listen on (port 0: any)"
    )
    p.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate (PEM)")
    p.add_argument("--tls-key", metavar="FILE", help="the certificate's private key (PEM)")
    p.add_argument("--htpasswd", metavar="FILE", help="bcrypt htpasswd file of the users")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warn", "error"])
    p.add_argument("--access-log", action="store_true", help="log every request")
    p.add_argument("--auth-token-service", metavar="NAME", help="the service name tokens are issued for")
    p.add_argument("--auth-token-issuer", metavar="NAME", help="the issuer name in tokens")
    p.add_argument(
        "--auth-token-key", metavar="FILE", help="private key (RSA or EC P-256, PEM) tokens are signed with"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gorae registry",
        usage=USAGE,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        prog="gorae registry serve",
        help="serve a registry",
        description="Serve an OCI distribution-spec 1.1 registry.",
        epilog=SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(serve)
    serve.add_argument(
        "--root", default="/var/lib/gorae-registry", help="storage root of the filesystem driver"
    )
    serve.add_argument("--storage", default="filesystem", choices=["filesystem", "s3"], help="storage driver")
    serve.add_argument(
        "--storage-opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="storage driver option (s3: bucket=, ...)",
    )
    serve.add_argument("--realm", default="gorae-registry", help="realm of the Basic auth challenge")
    serve.add_argument("--auth-token-realm", metavar="URL", help="token auth: where clients get tokens")
    serve.add_argument(
        "--auth-token-cert",
        metavar="FILE",
        help="token auth: certificate or public key tokens are checked with",
    )
    serve.add_argument("--auth-token-issue", action="store_true", help="also serve the token realm at /token")
    serve.add_argument("--read-only", action="store_true", help="refuse every write (405 UNSUPPORTED)")
    serve.add_argument(
        "--max-blob-size", type=_size, metavar="SIZE", help="refuse blobs larger than this (e.g. 10g)"
    )
    token = sub.add_parser(
        "token-server",
        prog="gorae registry token-server",
        help="serve only a token realm",
        description="Serve a token realm (/token) that checks htpasswd users and issues scoped JWTs.",
    )
    _common(token)
    return parser


def _config(args: argparse.Namespace) -> object:
    from gorae.registry.server import RegistryConfig

    host, port = args.addr
    options = {}
    for opt in getattr(args, "storage_opt", []):
        key, sep, value = opt.partition("=")
        if not sep:
            raise SystemExit(f"gorae registry: invalid --storage-opt {opt!r}: want KEY=VALUE")
        options[key] = value
    if bool(args.tls_cert) != bool(args.tls_key):
        raise SystemExit("gorae registry: --tls-cert and --tls-key go together")
    token_only = args.command == "token-server"
    return RegistryConfig(
        host=host,
        port=port,
        root=getattr(args, "root", "/var/lib/gorae-registry"),
        storage=getattr(args, "storage", "filesystem"),
        storage_options=options,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        htpasswd=args.htpasswd,
        realm=getattr(args, "realm", "gorae-registry"),
        token_realm=getattr(args, "auth_token_realm", None),
        token_service=args.auth_token_service,
        token_issuer=args.auth_token_issuer,
        token_cert=getattr(args, "auth_token_cert", None),
        token_key=args.auth_token_key,
        token_issue=getattr(args, "auth_token_issue", False),
        token_only=token_only,
        read_only=getattr(args, "read_only", False),
        max_blob_size=getattr(args, "max_blob_size", None),
        access_log=args.access_log,
    )


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0 if not argv else 1
    logging.basicConfig(
        level={"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR}[
            args.log_level
        ],
        format="time=%(asctime)s level=%(levelname)s msg=%(message)s",
        stream=sys.stderr,
    )
    import uvloop

    from gorae.registry.server import RegistryConfig, serve

    config = _config(args)
    assert isinstance(config, RegistryConfig)

    def ready(host: str, port: int) -> None:
        scheme = "https" if config.tls_cert else "http"
        sys.stdout.write(f"gorae registry listening on {scheme}://{host}:{port}\n")
        sys.stdout.flush()

    try:
        if os.environ.get("GORAE_EVENT_LOOP", "uvloop") == "asyncio":
            import asyncio

            asyncio.run(serve(config, ready))
        else:
            uvloop.run(serve(config, ready))
    except OSError as e:
        print(f"gorae registry: {e}", file=sys.stderr)
        return 1
    return 0
