"""The docker CLI's config file (`$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`), read and written
exactly as docker 28's `configfile.ConfigFile` does, so docker and gorae share one file.

Owns: the file's known fields (docker decodes into a Go struct: keys match case-insensitively, unknown keys are
dropped on the next save, a wrong type is a parse error that leaves the other fields decoded), the `auths`
entries (`auth` = base64 "user:password" in the file, split into username/password in memory), and the save
(Go's `json.MarshalIndent` with tabs, HTML-escaped strings, sorted map keys, no final newline; written to a temp
file in the same directory then renamed over the symlink-resolved path; a new file is 0600, an existing one
keeps its mode and owner). It never talks to a credential helper: `gorae.client.credentials` does that.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import fields, replace

from gorae.authconfig import AuthConfig as AuthConfig  # re-exported: its callers import it from here
from gorae.client import fastjson as json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

CONFIG_FILE = "config.json"


class ConfigError(Exception):
    """The file could not be parsed; `str()` is docker's text after "WARNING: Error "."""


# docker 28's ConfigFile fields in struct order: (json name, kind)
_STR, _MAP, _LIST, _PROXIES, _PLUGINS = "str", "map", "list", "proxies", "plugins"
FIELDS: list[tuple[str, str]] = [
    ("auths", "auths"),
    ("HttpHeaders", _MAP),
    ("psFormat", _STR),
    ("imagesFormat", _STR),
    ("networksFormat", _STR),
    ("pluginsFormat", _STR),
    ("volumesFormat", _STR),
    ("statsFormat", _STR),
    ("detachKeys", _STR),
    ("credsStore", _STR),
    ("credHelpers", _MAP),
    ("serviceInspectFormat", _STR),
    ("servicesFormat", _STR),
    ("tasksFormat", _STR),
    ("secretFormat", _STR),
    ("configFormat", _STR),
    ("nodesFormat", _STR),
    ("pruneFilters", _LIST),
    ("proxies", _PROXIES),
    ("currentContext", _STR),
    ("cliPluginsExtraDirs", _LIST),
    ("plugins", _PLUGINS),
    ("aliases", _MAP),
    ("features", _MAP),
    ("experimental", _STR),
]
_BY_LOWER = {name.lower(): (name, kind) for name, kind in FIELDS}
PROXY_FIELDS = ["httpProxy", "httpsProxy", "noProxy", "ftpProxy", "allProxy"]
_AUTH_FIELDS = [f.name for f in fields(AuthConfig)]
_GO_TYPES = {_STR: "string", _MAP: "map[string]string", _LIST: "[]string"}


def config_dir(flag: str | None = None) -> str:
    """--config DIR, else $DOCKER_CONFIG, else ~/.docker (docker's order)."""
    return flag or os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")


def _go_type(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _clean(s: str) -> str:
    """Go's decoder turns lone surrogates into U+FFFD."""
    return s.encode("utf-16", "surrogatepass").decode("utf-16", "replace") if not s.isascii() else s


class _Decoder:
    """Go's json.Unmarshal into the struct: type errors are remembered (the first one is reported), the
    field keeps its zero value and decoding goes on."""

    def __init__(self) -> None:
        self.error: str | None = None

    def fail(self, value: Any, field: str, gotype: str) -> None:
        if self.error is None:
            self.error = (
                f"json: cannot unmarshal {_go_type(value)} into Go struct field {field} of type {gotype}"
            )

    def string(self, v: Any, field: str) -> str:
        if v is None:
            return ""
        if not isinstance(v, str):
            self.fail(v, field, "string")
            return ""
        return _clean(v)

    def str_map(self, v: Any, field: str) -> dict[str, str] | None:
        if v is None:
            return None
        if not isinstance(v, dict):
            self.fail(v, field, "map[string]string")
            return None
        return {_clean(k): self.string(x, field) for k, x in v.items()}

    def str_list(self, v: Any, field: str) -> list[str] | None:
        if v is None:
            return None
        if not isinstance(v, list):
            self.fail(v, field, "[]string")
            return None
        return [self.string(x, field) for x in v]


class ConfigFile:
    """The decoded file: `fields` holds every known key that was set (by its docker name), `auths` the
    credentials stored in the file itself."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.auths: dict[str, AuthConfig] = {}
        self.fields: dict[str, Any] = {}

    # -- reading -----------------------------------------------------------------------------------------
    @classmethod
    def load(cls, directory: str) -> tuple[ConfigFile, str | None]:
        """The config in `directory` and docker's warning text (None when it parsed); absent → empty."""
        cfg = cls(os.path.join(directory, CONFIG_FILE))
        try:
            with open(cfg.filename, "rb") as f:
                data = f.read()
        except OSError:
            return cfg, None
        try:
            cfg.load_bytes(data)
        except ConfigError as e:
            return cfg, f"parsing config file ({cfg.filename}): {e}"
        return cfg, None

    def load_bytes(self, data: bytes) -> None:
        if not data.strip():
            return  # docker ignores io.EOF: an empty file is an empty config
        doc = decode_first_value(data.decode("utf-8", "replace"))
        if doc is None:
            return
        if not isinstance(doc, dict):
            raise ConfigError(
                f"json: cannot unmarshal {_go_type(doc)} into Go value of type configfile.ConfigFile"
            )
        dec = _Decoder()
        for key, value in doc.items():
            known = _BY_LOWER.get(key.lower()) if isinstance(key, str) else None
            if known is None:
                continue
            name, kind = known
            where = f"ConfigFile.{name}"
            if kind == "auths":
                self._decode_auths(dec, value)
            elif kind == _STR:
                s = dec.string(value, where)
                if s:
                    self.fields[name] = s
                else:
                    self.fields.pop(name, None)
            elif kind == _MAP:
                m = dec.str_map(value, where)
                if m is not None:
                    self.fields[name] = {**self.fields.get(name, {}), **m}
            elif kind == _LIST:
                lst = dec.str_list(value, where)
                if lst is not None:
                    self.fields[name] = lst
            elif kind == _PROXIES:
                self._decode_proxies(dec, value)
            else:
                self._decode_plugins(dec, value)
        if dec.error:
            raise ConfigError(dec.error)
        for addr, ac in list(self.auths.items()):
            user, password = ac.username, ac.password
            if ac.auth:
                user, password = decode_auth(ac.auth)
            self.auths[addr] = replace(ac, username=user, password=password, auth="", serveraddress=addr)

    def _decode_auths(self, dec: _Decoder, value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            dec.fail(value, "ConfigFile.auths", "map[string]types.AuthConfig")
            return
        for addr, raw in value.items():
            if raw is None:
                self.auths[_clean(addr)] = AuthConfig()
                continue
            if not isinstance(raw, dict):
                dec.fail(raw, "ConfigFile.auths", "types.AuthConfig")
                continue
            got: dict[str, str] = {}
            by_lower = {n.lower(): n for n in _AUTH_FIELDS}
            for k, v in raw.items():
                fname = by_lower.get(k.lower()) if isinstance(k, str) else None
                if fname is not None:
                    got[fname] = dec.string(v, f"ConfigFile.auths.{fname}")
            self.auths[_clean(addr)] = AuthConfig(**got)

    def _decode_proxies(self, dec: _Decoder, value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            dec.fail(value, "ConfigFile.proxies", "map[string]configfile.ProxyConfig")
            return
        out: dict[str, GoStruct] = dict(self.fields.get("proxies", {}))
        by_lower = {n.lower(): n for n in PROXY_FIELDS}
        for host, raw in value.items():
            entry: dict[str, str] = {}
            if isinstance(raw, dict):
                for k, v in raw.items():
                    fname = by_lower.get(k.lower()) if isinstance(k, str) else None
                    if fname is not None:
                        s = dec.string(v, f"ConfigFile.proxies.{fname}")
                        if s:
                            entry[fname] = s
            elif raw is not None:
                dec.fail(raw, "ConfigFile.proxies", "configfile.ProxyConfig")
            out[_clean(host)] = GoStruct((n, entry[n]) for n in PROXY_FIELDS if n in entry)
        self.fields["proxies"] = out

    def _decode_plugins(self, dec: _Decoder, value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, dict):
            dec.fail(value, "ConfigFile.plugins", "map[string]map[string]string")
            return
        out: dict[str, dict[str, str]] = dict(self.fields.get("plugins", {}))
        for name, raw in value.items():
            m = dec.str_map(raw, "ConfigFile.plugins")
            out[_clean(name)] = m or {}
        self.fields["plugins"] = out

    # -- accessors ---------------------------------------------------------------------------------------
    def get(self, name: str) -> Any:
        return self.fields.get(name)

    @property
    def creds_store(self) -> str:
        return str(self.fields.get("credsStore") or "")

    @property
    def cred_helpers(self) -> dict[str, str]:
        return dict(self.fields.get("credHelpers") or {})

    def contains_auth(self) -> bool:
        return bool(self.creds_store or self.cred_helpers or self.auths)

    # -- writing -----------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """What docker's SaveToWriter writes."""
        doc: list[tuple[str, Any]] = []
        for name, kind in FIELDS:
            if kind == "auths":
                doc.append((name, {k: _auth_entry(a) for k, a in self.auths.items()}))
                continue
            v = self.fields.get(name)
            if name == "HttpHeaders" and v:
                v = {k: x for k, x in v.items() if k.lower() != "user-agent"}
            if v:
                doc.append((name, v))
        return go_json_indent(GoStruct(doc)).encode()

    def save(self) -> None:
        """Atomic save as docker's ConfigFile.Save (temp file in the directory, permissions copied, rename)."""
        import tempfile

        directory = os.path.dirname(self.filename) or "."
        os.makedirs(directory, 0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=os.path.basename(self.filename))
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self.to_bytes())
            target = os.path.realpath(self.filename)
            try:
                st = os.stat(target)
            except OSError:
                pass
            else:
                os.chmod(tmp, st.st_mode & 0o7777)
                try:
                    os.chown(tmp, st.st_uid, st.st_gid)
                except OSError:
                    pass
            os.rename(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


def _auth_entry(a: AuthConfig) -> GoStruct:
    """An auths entry as saved: `auth` re-encoded, username/password/serveraddress left out."""
    enc = encode_auth(a.username, a.password)
    out = replace(a, auth=enc, username="", password="", serveraddress="")
    return GoStruct(out.to_json())


def decode_first_value(text: str) -> Any:
    """What Go's json.Decoder.Decode reads: the first JSON value (anything after it is ignored), its syntax
    errors worded as Go's ("unexpected EOF", "invalid character 'x' after object key", ...)."""
    import json as stdjson

    start = len(text) - len(text.lstrip(" \t\r\n"))
    try:
        return stdjson.JSONDecoder().raw_decode(text, start)[0]
    except stdjson.JSONDecodeError as e:
        raise ConfigError(_go_syntax_error(text, e.msg, e.pos)) from None
    except RecursionError:
        raise ConfigError("exceeded max depth") from None


def _go_quote_char(c: str) -> str:
    """Go's quoteChar for an error message."""
    if c == "'":
        return "'\\''"
    if c == '"':
        return "'\"'"
    if c.isprintable():
        return f"'{c}'"
    return "'" + c.encode("unicode_escape").decode("ascii") + "'"


def _go_syntax_error(text: str, msg: str, pos: int) -> str:
    if pos >= len(text) or msg.startswith("Unterminated string"):
        return "unexpected EOF"
    c = text[pos]
    if msg.startswith("Expecting value"):
        for literal in ("null", "true", "false"):
            if c == literal[0]:
                for k, want in enumerate(literal):
                    if pos + k >= len(text):
                        return "unexpected EOF"
                    if text[pos + k] != want:
                        return (
                            f"invalid character {_go_quote_char(text[pos + k])} in literal {literal} "
                            f"(expecting {_go_quote_char(want)})"
                        )
        return f"invalid character {_go_quote_char(c)} looking for beginning of value"
    if msg.startswith("Expecting property name"):
        return f"invalid character {_go_quote_char(c)} looking for beginning of object key string"
    if msg.startswith("Expecting ':'"):
        return f"invalid character {_go_quote_char(c)} after object key"
    if msg.startswith("Expecting ','"):
        where = "object key:value pair" if _innermost(text, pos) == "{" else "array element"
        return f"invalid character {_go_quote_char(c)} after {where}"
    if msg.startswith("Invalid control character"):
        return f"invalid character {_go_quote_char(c)} in string literal"
    if msg.startswith("Invalid \\escape"):
        return f"invalid character {_go_quote_char(text[pos + 1] if pos + 1 < len(text) else c)} in string escape code"
    return f"invalid character {_go_quote_char(c)} looking for beginning of value"


def _innermost(text: str, pos: int) -> str:
    """The innermost open bracket before pos, strings skipped."""
    stack: list[str] = []
    in_str = escaped = False
    for ch in text[:pos]:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            stack.append(ch)
        elif ch in "}]" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def encode_auth(username: str, password: str) -> str:
    if not username and not password:
        return ""
    return base64.b64encode(f"{username}:{password}".encode()).decode()


def decode_auth(auth: str) -> tuple[str, str]:
    """docker's decodeAuth: (user, password) or ConfigError with its text."""
    raw = auth.encode("utf-8", "surrogatepass")
    try:
        decoded = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"illegal base64 data at input byte {_bad_base64_offset(raw)}") from None
    text = decoded.decode("utf-8", "replace")
    user, sep, password = text.partition(":")
    if not sep or not user:
        raise ConfigError("Invalid auth configuration file")
    return user, password.strip("\x00")


def _bad_base64_offset(raw: bytes) -> int:
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    for i, b in enumerate(raw):
        if b not in alphabet:
            return i
    return len(raw) - len(raw) % 4 if len(raw) % 4 else len(raw)


# -- Go's encoding/json output ---------------------------------------------------------------------------
_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def go_string(s: str) -> str:
    """A JSON string as Go's encoder writes it (HTMLEscape on: <, >, & and U+2028/9 as \\u escapes)."""
    out = ['"']
    for ch in s:
        if ch in _SHORT:
            out.append(_SHORT[ch])
        elif ch < " " or ch in "<>&\u2028\u2029":
            out.append(f"\\u{ord(ch):04x}")
        elif "\ud800" <= ch <= "\udfff":
            out.append("\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


class GoStruct(dict[str, object]):
    """A JSON object encoded in insertion order (a Go struct's field order), not sorted like a map."""


def go_json_indent(v: Any, indent: str = "\t", level: int = 0) -> str:
    """json.MarshalIndent(v, "", indent): maps sorted by key, GoStruct values in their own order."""
    if isinstance(v, str):
        return go_string(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, int | float):
        return json.dumps(v)
    pad, inner = indent * level, indent * (level + 1)
    if isinstance(v, list):
        if not v:
            return "[]"
        items = [inner + go_json_indent(x, indent, level + 1) for x in v]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    if isinstance(v, dict):
        if not v:
            return "{}"
        keys = list(v) if isinstance(v, GoStruct) else sorted(v, key=lambda k: k.encode("utf-8", "replace"))
        items = [f"{inner}{go_string(k)}: {go_json_indent(v[k], indent, level + 1)}" for k in keys]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    raise TypeError(f"cannot encode {type(v).__name__}")
