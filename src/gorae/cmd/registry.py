"""`gorae registry ...`: the standalone registry server's command line (no engine daemon involved).

Owns the argument parsing of `gorae registry serve` (listener, storage, TLS, htpasswd, token auth, read-only)
and `gorae registry token-server` (only the token realm), turning them into a `RegistryConfig` and running it
on uvloop, and of `gorae registry gc` (mark and sweep of a storage, `gorae.registry.gc`). Heavy imports wait until a command runs, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys

USAGE = "gorae registry COMMAND"

DESCRIPTION = """\
Run a private image registry: the OCI distribution spec 1.1 (what docker push/pull, skopeo and the gorae
daemon speak), without an engine daemon.

Commands:
  serve         Serve a registry (filesystem or S3 storage; TLS; htpasswd or token auth; read-only)
  token-server  Serve only a token realm for another registry's token auth
  gc            Delete the blobs no manifest references (mark and sweep)

Run 'gorae registry COMMAND --help' for more information on a command.
"""

SERVE_EPILOG = """\
Examples:
  gorae registry serve --addr 0.0.0.0:5000 --root /srv/registry
  gorae registry serve --tls-cert domain.crt --tls-key domain.key --htpasswd /etc/gorae/htpasswd
  gorae registry serve --read-only --root /srv/mirror
  gorae registry serve --htpasswd users --auth-token-issue --auth-token-key key.pem \\
      --auth-token-realm https://reg.example:5000/token --auth-token-service reg.example:5000

S3 storage (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws or the instance role; any
distribution s3 parameter with --storage-opt, e.g. chunksize=, skipverify=true, secure=false):
  gorae registry serve --storage s3 --s3-bucket images --s3-region eu-west-1 --s3-rootdirectory /registry
  gorae registry serve --storage s3 --s3-bucket images --s3-endpoint http://minio.local:9000

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


_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_DURATION = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?(?:ms|s|m|h|d))+")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _duration(text: str) -> float:
    """Go-style durations ("1h", "30m", "90s", "1h30m", "250ms"); a bare number is seconds."""
    if _NUMBER.fullmatch(text):
        return float(text)
    if not _DURATION.fullmatch(text):
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (e.g. 1h, 30m, 90s)")
    return sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))


def _storage(p: argparse.ArgumentParser) -> None:
    """The storage flags `serve` and `gc` share."""
    p.add_argument("--root", default="/var/lib/gorae-registry", help="storage root of the filesystem driver")
    p.add_argument("--storage", default="filesystem", choices=["filesystem", "s3"], help="storage driver")
    p.add_argument(
        "--storage-opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="storage driver option (s3: distribution's parameters: bucket=, regionendpoint=, chunksize=, ...)",
    )
    p.add_argument("--s3-bucket", metavar="NAME", help="s3: the bucket (it must exist)")
    p.add_argument("--s3-region", metavar="REGION", help="s3: the bucket's region")
    p.add_argument(
        "--s3-endpoint", metavar="URL", help="s3: an S3-compatible server's URL (path-style requests)"
    )
    p.add_argument(
        "--s3-rootdirectory", metavar="PREFIX", help="s3: the key prefix everything is stored under"
    )


def _storage_options(args: argparse.Namespace) -> dict[str, str]:
    options: dict[str, str] = {}
    for opt in args.storage_opt:
        key, sep, value = opt.partition("=")
        if not sep:
            raise SystemExit(f"gorae registry: invalid --storage-opt {opt!r}: want KEY=VALUE")
        options[key] = value
    for flag, key in (
        ("s3_bucket", "bucket"),
        ("s3_region", "region"),
        ("s3_endpoint", "regionendpoint"),
        ("s3_rootdirectory", "rootdirectory"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            if args.storage != "s3":
                raise SystemExit(f"gorae registry: --{flag.replace('_', '-')} needs --storage s3")
            options[key] = value
    return options


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
    _storage(serve)
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
    gc = sub.add_parser(
        "gc",
        prog="gorae registry gc",
        help="delete the blobs no manifest references",
        description=GC_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _storage(gc)
    gc.add_argument(
        "-d", "--dry-run", action="store_true", help="print what would be deleted, delete nothing"
    )
    gc.add_argument(
        "-m", "--delete-untagged", action="store_true", help="also delete the manifests no tag points at"
    )
    gc.add_argument(
        "--grace",
        type=_duration,
        default=3600.0,
        metavar="DURATION",
        help="keep what was written less than this long before the gc started (default 1h; 0 for none)",
    )
    return parser


GC_DESCRIPTION = """\
Mark every blob a manifest references (every manifest, or with --delete-untagged only the tagged ones, their
indexes' children and referrers), then delete the other blobs. Safe while the registry serves pushes: blobs
and links written less than --grace before the gc started, or while it runs, are kept.

Examples:
  gorae registry gc --dry-run --root /srv/registry
  gorae registry gc --delete-untagged --storage s3 --s3-bucket images --s3-region eu-west-1
"""


def _config(args: argparse.Namespace) -> object:
    from gorae.registry.server import RegistryConfig

    host, port = args.addr
    options = _storage_options(args) if hasattr(args, "storage_opt") else {}
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
    if args.command == "gc":
        return _gc(args)
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


def _gc(args: argparse.Namespace) -> int:
    from gorae.registry.gc import garbage_collect
    from gorae.registry.storage.driver import StorageDriver, StorageError

    options = _storage_options(args)
    driver: StorageDriver
    if args.storage == "s3":
        from gorae.registry.storage.s3 import driver_from_options

        driver = driver_from_options(options)
    else:
        if options:
            raise SystemExit("gorae registry: --storage-opt is for --storage s3")
        if not os.path.isdir(args.root):
            print(f"gorae registry gc: no registry storage at {args.root}", file=sys.stderr)
            return 1
        from gorae.registry.storage.filesystem import FilesystemDriver

        driver = FilesystemDriver(args.root)

    def emit(line: str) -> None:
        sys.stdout.write(line + "\n")

    try:
        garbage_collect(
            driver, dry_run=args.dry_run, delete_untagged=args.delete_untagged, grace=args.grace, emit=emit
        )
    except StorageError as e:
        sys.stdout.flush()
        print(f"gorae registry gc: {e}", file=sys.stderr)
        return 1
    return 0
