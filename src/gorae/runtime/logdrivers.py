"""The logging drivers a container can pick (`--log-driver`, `--log-opt`, daemon.json `log-driver`/`log-opts`):
their names and options, dockerd's checks and error texts, and the sinks that receive a container's output.

- `json-file`: docker's JSON lines at `<container dir>/<id>-json.log`, rotated by `max-size`/`max-file`,
  `compress`; `labels`/`env` (and their `-regex` forms) add "attrs" as dockerd does.
- `local`: the same storage kept under `<container dir>/local-logs/container.log` with docker's local
  defaults (20m × 5 files, compressed); `LogPath` stays empty as dockerd shows it.
- `none`: nothing is stored; `docker logs` answers "configured logging driver does not support reading".
- `syslog`: RFC 3164/5424 messages to `syslog-address` (udp, tcp, unix, unixgram) or the local /dev/log.
- `journald`: native-protocol datagrams to systemd-journald's socket; refused at start when it is absent
  ("journald is not enabled on this host", dockerd's words).
syslog and journald also keep docker's "dual logging" cache (`container-cached.log`) so `docker logs`
reads them. Everything else is refused at create in dockerd's words. `check` runs at create (options),
`open_sink` at start (values, connections), both raising typed errors. Never reads conmon's files.
"""

from __future__ import annotations

import os
import re
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from gorae.errors import InvalidParameter, NotImplementedYet, SystemError_
from gorae.runtime.jsonlog import RotatingWriter
from gorae.runtime.logs import STDERR, LogRecord

JSON_FILE, LOCAL, NONE, SYSLOG, JOURNALD = "json-file", "local", "none", "syslog", "journald"
READABLE = frozenset({JSON_FILE, LOCAL, SYSLOG, JOURNALD})
_GENERIC = {"mode", "max-buffer-size"}
_CACHE = {"cache-disabled", "cache-max-size", "cache-max-file", "cache-compress"}
_ATTRS = {"labels", "labels-regex", "env", "env-regex"}
ALLOWED_OPTS: dict[str, frozenset[str]] = {
    JSON_FILE: frozenset({"max-file", "max-size", "compress", "tag", *_ATTRS, *_GENERIC}),
    LOCAL: frozenset({"max-file", "max-size", "compress", *_GENERIC}),
    NONE: frozenset(),
    SYSLOG: frozenset(
        {
            "syslog-address",
            "syslog-facility",
            "syslog-tls-ca-cert",
            "syslog-tls-cert",
            "syslog-tls-key",
            "syslog-tls-skip-verify",
            "syslog-format",
            "tag",
            *_ATTRS,
            *_GENERIC,
            *_CACHE,
        }
    ),
    JOURNALD: frozenset({"tag", *_ATTRS, *_GENERIC, *_CACHE}),
}
_OPT_ERROR = {
    JSON_FILE: "unknown log opt '{k}' for json-file log driver",
    LOCAL: "unknown log opt '{k}' for log driver local",
    SYSLOG: "unknown log opt '{k}' for syslog log driver",
    JOURNALD: "unknown log opt '{k}' for journald log driver",
}
NOT_READABLE = "configured logging driver does not support reading"
JOURNAL_SOCKET = "/run/systemd/journal/socket"
LOCAL_DEFAULTS = {"max-size": 20 * 1024 * 1024, "max-file": 5}
FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7, "uucp": 8,
    "cron": 9, "authpriv": 10, "ftp": 11, "local0": 16, "local1": 17, "local2": 18, "local3": 19,
    "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}  # fmt: skip
SYSLOG_FORMATS = frozenset({"", "rfc3164", "rfc5424", "rfc5424micro"})


def merge_defaults(log_config: dict[str, Any], default_type: str, default_opts: dict[str, str]) -> dict[str, Any]:
    """dockerd's mergeAndVerifyLogConfig: an empty type takes the daemon's; the daemon's options fill in
    when the container uses the daemon's driver."""
    kind = str(log_config.get("Type") or "") or default_type
    opts = {str(k): str(v) for k, v in (log_config.get("Config") or {}).items()}
    if kind == default_type:
        for k, v in default_opts.items():
            opts.setdefault(k, v)
    return {"Type": kind, "Config": opts}


def check(kind: str, opts: dict[str, str]) -> None:
    """Create-time checks (dockerd's ValidateLogOpts): a known driver, known options, syslog's address,
    facility and format."""
    if kind not in ALLOWED_OPTS:
        raise InvalidParameter(f'error looking up logging plugin {kind}: plugin "{kind}" not found')
    if kind == NONE:
        return
    allowed = ALLOWED_OPTS[kind]
    for key in opts:
        if key not in allowed:
            raise InvalidParameter(_OPT_ERROR[kind].format(k=key))
    mode = opts.get("mode")
    if mode is not None and mode not in ("", "blocking", "non-blocking"):
        raise InvalidParameter(f"logger: log mode {mode} not supported")
    if kind == SYSLOG:
        parse_syslog_address(opts.get("syslog-address", ""))
        if opts.get("syslog-facility", "") and facility_of(opts["syslog-facility"]) < 0:
            raise InvalidParameter("invalid syslog facility")
        if opts.get("syslog-format", "") not in SYSLOG_FORMATS:
            raise InvalidParameter("Invalid syslog format")


def facility_of(name: str) -> int:
    if name.isdigit():
        n = int(name)
        return n if 0 <= n <= 23 else -1
    return FACILITIES.get(name, -1)


def parse_syslog_address(address: str) -> tuple[str, str]:
    """(proto, address) of `syslog-address` ("" means the local syslog): udp/tcp get port 514 by default,
    a unix path must exist (dockerd stats it at create)."""
    if not address:
        return "", ""
    if "://" not in address:
        raise InvalidParameter(f"syslog-address should be in form proto://address, got {address}")
    url = urlsplit(address)
    proto = url.scheme
    if proto in ("unix", "unixgram"):
        if not os.path.exists(url.path):
            raise InvalidParameter(f"stat {url.path}: no such file or directory")
        return proto, url.path
    if proto not in ("udp", "tcp", "tcp+tls"):
        raise InvalidParameter(f"syslog-address should be in form proto://address, got {address}")
    host = url.netloc
    if ":" not in host.rsplit("]", 1)[-1]:
        host += ":514"
    return proto, host


_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$")


def parse_size(value: str) -> int:
    """go-units FromHumanSize (decimal: 1k = 1000), as dockerd reads max-size."""
    m = _SIZE_RE.match(value)
    if not m:
        raise ValueError(f"invalid size: '{value}'")
    try:
        number = float(m.group(1))
    except ValueError:
        raise ValueError(f"invalid size: '{value}'") from None
    unit = (m.group(2) or "").lower()
    return int(number * (1000 ** ("kmgtp".index(unit) + 1) if unit else 1))


def _parse_bool(value: str) -> bool:
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f'strconv.ParseBool: parsing "{value}": invalid syntax')


@dataclass(frozen=True)
class Rotation:
    max_size: int = -1
    max_file: int = 1
    compress: bool = False


def _size_opt(opts: dict[str, str], default: int) -> int:
    """The `max-size` option (docker's size units), or `default` when it is not given."""
    if "max-size" not in opts:
        return default
    try:
        return parse_size(opts["max-size"])
    except ValueError as e:
        raise InvalidParameter(str(e)) from None


def _file_opt(opts: dict[str, str], default: int) -> int:
    """The `max-file` option (Go's strconv.Atoi error text), or `default` when it is not given."""
    if "max-file" not in opts:
        return default
    try:
        return int(opts["max-file"])
    except ValueError:
        raise InvalidParameter(f'strconv.Atoi: parsing "{opts["max-file"]}": invalid syntax') from None


def _compress_opt(opts: dict[str, str], default: bool) -> bool:
    """The `compress` option (Go's ParseBool), or `default` when it is not given."""
    if "compress" not in opts:
        return default
    try:
        return _parse_bool(opts["compress"])
    except ValueError as e:
        raise InvalidParameter(str(e)) from None


def json_rotation(opts: dict[str, str]) -> Rotation:
    """json-file's options as dockerd's New() reads them (its errors, prefixed by the caller)."""
    max_size = _size_opt(opts, -1)
    if "max-size" in opts and max_size <= 0:
        raise InvalidParameter("max-size must be a positive number")
    max_file = _file_opt(opts, 1)
    if "max-file" in opts and max_file < 1:
        raise InvalidParameter("max-file cannot be less than 1")
    compress = _compress_opt(opts, False)
    if "compress" in opts and compress and (max_file <= 1 or max_size <= 0):
        raise InvalidParameter("compress cannot be true when max-file is less than 2 or max-size is not set")
    return Rotation(max_size, max_file, compress)


def local_rotation(opts: dict[str, str]) -> Rotation:
    """The local driver's options with its defaults (20m, 5 files, compressed)."""
    max_size = _size_opt(opts, LOCAL_DEFAULTS["max-size"])
    max_file = _file_opt(opts, LOCAL_DEFAULTS["max-file"])
    if "max-file" in opts and max_file < 0:
        raise InvalidParameter("max-file cannot be less than 0")
    compress = _compress_opt(opts, True)
    if max_size == 0 and max_file > 1:
        raise InvalidParameter("max-file cannot be set when max-size is not set")
    if compress and max_file <= 1:
        raise InvalidParameter("compression cannot be enabled when max file count is 1")
    return Rotation(max_size if max_size > 0 else -1, max(max_file, 1), compress)


# ---- sinks ---------------------------------------------------------------------------------------


class LogSink(Protocol):
    """Receives a container's output records, in order."""

    def write(self, rec: LogRecord) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ContainerInfo:
    """What a driver may put into a message: docker's logger.Info fields."""

    id: str
    name: str  # without the leading "/"
    image_name: str
    image_id: str
    labels: dict[str, str]
    env: list[str]
    directory: str
    daemon_name: str = "gorae"


def attrs_of(info: ContainerInfo, opts: dict[str, str]) -> dict[str, str]:
    """docker's ExtraAttributes: the labels and env vars named (or matched) by the options."""
    out: dict[str, str] = {}
    for key in filter(None, opts.get("labels", "").split(",")):
        if key in info.labels:
            out[key] = info.labels[key]
    if opts.get("labels-regex"):
        rx = re.compile(opts["labels-regex"])
        out.update({k: v for k, v in info.labels.items() if rx.search(k)})
    env: dict[str, str] = {}
    for entry in info.env:
        key, _, val = entry.partition("=")
        env[key] = val
    for key in filter(None, opts.get("env", "").split(",")):
        if key in env:
            out[key] = env[key]
    if opts.get("env-regex"):
        rx = re.compile(opts["env-regex"])
        out.update({k: v for k, v in env.items() if rx.search(k)})
    return out


def tag_of(info: ContainerInfo, opts: dict[str, str]) -> str:
    """docker's `tag` option: a template over the container ({{.ID}} is 12 characters); default the ID."""
    template = opts.get("tag") or "{{.ID}}"
    fields = {
        "ID": info.id[:12],
        "FullID": info.id,
        "Name": info.name,
        "ImageID": info.image_id.removeprefix("sha256:")[:12],
        "ImageFullID": info.image_id,
        "ImageName": info.image_name,
        "DaemonName": info.daemon_name,
    }
    return re.sub(r"\{\{\s*\.(\w+)\s*\}\}", lambda m: fields.get(m.group(1), ""), template)


class JsonFileSink:
    def __init__(self, path: str, rotation: Rotation, attrs: dict[str, str] | None = None) -> None:
        self.writer = RotatingWriter(
            path, max_size=rotation.max_size, max_file=rotation.max_file, compress=rotation.compress, attrs=attrs
        )

    def write(self, rec: LogRecord) -> None:
        self.writer.write(rec)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class _Tee:
    """A remote driver plus docker's local read cache."""

    def __init__(self, remote: LogSink, cache: LogSink | None) -> None:
        self.remote, self.cache = remote, cache

    def write(self, rec: LogRecord) -> None:
        if self.cache is not None:
            self.cache.write(rec)
        self.remote.write(rec)

    def flush(self) -> None:
        if self.cache is not None:
            self.cache.flush()
        self.remote.flush()

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
        self.remote.close()


class SyslogSink:
    """One syslog message per log line (the trailing newline dropped), in docker's formats: the default
    `<PRI>Stamp TAG[PID]: MSG` (srslog's UnixFormatter, whatever the transport), rfc3164
    `<PRI>Stamp HOST TAG[PID]: MSG`, rfc5424 `<PRI>1 RFC3339 HOST TAG PID TAG - MSG` (micro: µs)."""

    def __init__(self, info: ContainerInfo, opts: dict[str, str], *, local_socket: str = "/dev/log") -> None:
        proto, addr = parse_syslog_address(opts.get("syslog-address", ""))
        self.tag = tag_of(info, opts)
        facility = opts.get("syslog-facility", "")
        self.facility = facility_of(facility) if facility else 3  # daemon
        self.fmt = opts.get("syslog-format", "")
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        self.stream_sock = proto in ("tcp", "tcp+tls")
        try:
            if proto == "":
                self.sock = _unix_syslog(local_socket)
            elif proto in ("unix", "unixgram"):
                kind = socket.SOCK_DGRAM if proto == "unixgram" else socket.SOCK_STREAM
                self.sock = socket.socket(socket.AF_UNIX, kind)
                self.sock.connect(addr)
                self.stream_sock = kind == socket.SOCK_STREAM
            else:
                host, _, port = addr.rpartition(":")
                kind = socket.SOCK_STREAM if self.stream_sock else socket.SOCK_DGRAM
                self.sock = socket.create_connection((host.strip("[]"), int(port)), 5) if self.stream_sock else (
                    socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind)
                )
                if not self.stream_sock:
                    self.sock.connect((host.strip("[]"), int(port)))
        except OSError as e:
            raise SystemError_(f"failed to initialize logging driver: {_dial_error(proto, addr, e)}") from None
        self.sock.setblocking(True)

    def message(self, rec: LogRecord) -> bytes:
        pri = self.facility * 8 + (3 if rec.stream == STDERR else 6)
        text = rec.data.rstrip(b"\n")
        t = rec.time_ns / 1e9
        if self.fmt == "rfc3164":
            stamp = time.strftime("%b %e %H:%M:%S", time.localtime(t))
            head = f"<{pri}>{stamp} {self.hostname} {self.tag}[{self.pid}]: "
        elif self.fmt in ("rfc5424", "rfc5424micro"):
            digits = 6 if self.fmt == "rfc5424micro" else 0
            stamp = _rfc3339_local(rec.time_ns, digits)
            head = f"<{pri}>1 {stamp} {self.hostname} {self.tag} {self.pid} {self.tag} - "
        else:
            stamp = time.strftime("%b %e %H:%M:%S", time.localtime(t))
            head = f"<{pri}>{stamp} {self.tag}[{self.pid}]: "
        return head.encode() + text + b"\n"  # srslog ends every message with a newline

    def write(self, rec: LogRecord) -> None:
        try:
            self.sock.sendall(self.message(rec)) if self.stream_sock else self.sock.send(self.message(rec))
        except OSError:
            pass  # dockerd drops what syslog refuses; the read cache keeps it

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.sock.close()


def _unix_syslog(path: str) -> socket.socket:
    for p in (path, "/var/run/syslog", "/var/run/log"):
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_UNIX, kind)
            try:
                s.connect(p)
                return s
            except OSError:
                s.close()
    raise OSError("Unix syslog delivery error")


def _dial_error(proto: str, addr: str, e: OSError) -> str:
    if proto == "":
        return "Unix syslog delivery error"
    if isinstance(e, ConnectionRefusedError):
        return f"dial {proto} {addr}: connect: connection refused"
    return f"dial {proto} {addr}: {e.strerror or e}"


def _rfc3339_local(ns: int, digits: int) -> str:
    t = ns / 1e9
    lt = time.localtime(t)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", lt)
    if digits:  # Go's .999999: trailing zeros dropped
        frac = str(ns % 10**9).rjust(9, "0")[:digits].rstrip("0")
        base += "." + frac if frac else ""
    off = lt.tm_gmtoff
    if off == 0:
        return base + "Z"
    sign = "+" if off > 0 else "-"
    off = abs(off)
    return f"{base}{sign}{off // 3600:02d}:{off % 3600 // 60:02d}"


class JournaldSink:
    """systemd-journald's native protocol: one datagram per line with MESSAGE, CONTAINER_ID(_FULL),
    CONTAINER_NAME, CONTAINER_TAG, SYSLOG_IDENTIFIER, IMAGE_NAME, PRIORITY (6 stdout, 3 stderr) and the
    attrs, as dockerd's journald driver sends them."""

    def __init__(self, info: ContainerInfo, opts: dict[str, str], *, path: str = JOURNAL_SOCKET) -> None:
        if not os.path.exists(path):
            raise SystemError_("failed to initialize logging driver: journald is not enabled on this host")
        self.path = path
        tag = tag_of(info, opts)
        self.fields: dict[str, str] = {
            "CONTAINER_ID": info.id[:12],
            "CONTAINER_ID_FULL": info.id,
            "CONTAINER_NAME": info.name,
            "CONTAINER_TAG": tag,
            "IMAGE_NAME": info.image_name,
            "SYSLOG_IDENTIFIER": tag,
        }
        for k, v in attrs_of(info, opts).items():
            key = re.sub(r"[^A-Z0-9_]", "_", k.upper()).lstrip("_")
            if key:
                self.fields[key] = v
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def datagram(self, rec: LogRecord) -> bytes:
        items = {**self.fields, "PRIORITY": "3" if rec.stream == STDERR else "6"}
        out = bytearray()
        message = rec.data.rstrip(b"\n")
        if not rec.data.endswith(b"\n"):
            items["CONTAINER_PARTIAL_MESSAGE"] = "true"
        for k, v in [("MESSAGE", message), *[(k, v.encode()) for k, v in items.items()]]:
            value = v if isinstance(v, bytes) else str(v).encode()
            if b"\n" in value:  # binary-safe form: name, newline, 64-bit LE length, data
                out += k.encode() + b"\n" + struct.pack("<Q", len(value)) + value + b"\n"
            else:
                out += k.encode() + b"=" + value + b"\n"
        return bytes(out)

    def write(self, rec: LogRecord) -> None:
        try:
            self.sock.sendto(self.datagram(rec), self.path)
        except OSError:
            pass  # the read cache keeps it

    def flush(self) -> None:
        return None

    def close(self) -> None:
        self.sock.close()


def json_log_path(directory: str, cid: str) -> str:
    return os.path.join(directory, f"{cid}-json.log")


def readable_path(kind: str, directory: str, cid: str, opts: dict[str, str]) -> str:
    """Where `docker logs` reads a container's log; NotImplementedYet for `none` (dockerd's 501)."""
    if kind == JSON_FILE:
        return json_log_path(directory, cid)
    if kind == LOCAL:
        return os.path.join(directory, "local-logs", "container.log")
    if kind == JOURNALD and not os.path.exists(JOURNAL_SOCKET):
        raise SystemError_("journald is not enabled on this host")
    if kind in (SYSLOG, JOURNALD) and opts.get("cache-disabled", "false") not in ("true", "1"):
        return os.path.join(directory, "container-cached.log")
    raise NotImplementedYet(NOT_READABLE)


def public_log_path(kind: str, directory: str, cid: str) -> str:
    """`LogPath` in inspect: the json-file's path, empty for every other driver (as dockerd)."""
    return json_log_path(directory, cid) if kind == JSON_FILE else ""


def open_sink(
    kind: str, opts: dict[str, str], info: ContainerInfo, *, journal_socket: str = JOURNAL_SOCKET
) -> LogSink | None:
    """The driver's sink for a starting container (None for `none`); dockerd's start-time errors."""
    wrap: Callable[[InvalidParameter], SystemError_] = lambda e: SystemError_(  # noqa: E731
        f"failed to initialize logging driver: {e.message}"
    )
    try:
        if kind == NONE:
            return None
        if kind == JSON_FILE:
            return JsonFileSink(json_log_path(info.directory, info.id), json_rotation(opts), attrs_of(info, opts))
        if kind == LOCAL:
            return JsonFileSink(readable_path(LOCAL, info.directory, info.id, opts), local_rotation(opts))
        cache: LogSink | None = None
        if opts.get("cache-disabled", "false") not in ("true", "1"):
            cache_opts = {k.removeprefix("cache-"): v for k, v in opts.items() if k in _CACHE}
            cache_opts.pop("disabled", None)
            cache_opts.setdefault("max-file", "1")
            cache_opts.setdefault("compress", "false")
            cache = JsonFileSink(os.path.join(info.directory, "container-cached.log"), local_rotation(cache_opts))
        try:
            remote: LogSink = (
                SyslogSink(info, opts) if kind == SYSLOG else JournaldSink(info, opts, path=journal_socket)
            )
        except BaseException:
            if cache is not None:
                cache.close()
            raise
        return _Tee(remote, cache)
    except InvalidParameter as e:
        raise wrap(e) from None
