"""Secret and config commands: `secret|config create`, `ls`, `inspect` (JSON, `--format`, `--pretty`) and
`rm`, with the docker CLI's columns, texts and exit statuses. Both objects share one shape (a name,
labels, data, timestamps), so one set of handlers serves both, parametrised by `Kind`."""

from __future__ import annotations

import base64
import sys
from typing import Any

from gorae.cli.context import Cli, StatusError
from gorae.cli.flags import INSPECT_FORMAT_HELP, TABLE_FORMAT_HELP, O, Spec
from gorae.cli.output import Header, print_list
from gorae.cli.swarmfmt import ago, go_time, pretty
from gorae.cli.swarmfmt import filters as parse_filters
from gorae.client.api import q

_MAX = 2 * 500 * 1024  # docker reads up to twice swarmkit's limit


class Kind:
    def __init__(self, word: str, path: str, config_key: str, pretty_tmpl: str, table: str) -> None:
        self.word, self.path, self.config_key = word, path, config_key
        self.pretty, self.table = pretty_tmpl, table


SECRET = Kind(
    "secret",
    "/secrets",
    "secretFormat",
    """ID:              {{.ID}}
Name:              {{.Name}}
{{- if .Labels }}
Labels:
{{- range $k, $v := .Labels }}
 - {{ $k }}{{if $v }}={{ $v }}{{ end }}
{{- end }}{{ end }}
Driver:            {{.Driver}}
Created at:        {{.CreatedAt}}
Updated at:        {{.UpdatedAt}}""",
    "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.CreatedAt}}\t{{.UpdatedAt}}",
)
CONFIG = Kind(
    "config",
    "/configs",
    "configFormat",
    """ID:			{{.ID}}
Name:			{{.Name}}
{{- if .Labels }}
Labels:
{{- range $k, $v := .Labels }}
 - {{ $k }}{{if $v }}={{ $v }}{{ end }}
{{- end }}{{ end }}
Created at:            	{{.CreatedAt}}
Updated at:            	{{.UpdatedAt}}
Data:
{{.Data}}""",
    "table {{.ID}}\t{{.Name}}\t{{.CreatedAt}}\t{{.UpdatedAt}}",
)

HEADERS = {
    "ID": "ID",
    "Name": "NAME",
    "Driver": "DRIVER",
    "CreatedAt": "CREATED",
    "UpdatedAt": "UPDATED",
    "Labels": "LABELS",
}


def _read_data(path: str) -> bytes:
    if path == "-":
        data = sys.stdin.buffer.read(_MAX)
        if not data:
            raise ValueError("error reading from STDIN: data is empty")
        return data
    try:
        with open(path, "rb") as f:
            data = f.read(_MAX)
    except OSError as e:
        reason = (e.strerror or str(e)).lower()
        raise ValueError(f"error reading from {path}: open {path}: {reason}") from None
    if not data:
        raise ValueError(f"error reading from {path}: data is empty")
    return data


def _labels(values: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        k, _, val = item.partition("=")
        out[k] = val
    return out


SECRET_CREATE = Spec(
    "secret create",
    "[OPTIONS] SECRET [file|-]",
    "Create a secret from a file or STDIN as content",
    [
        O("driver", "d", "string", "Secret driver"),
        O("label", "l", "list", "Secret labels"),
        O("template-driver", None, "string", "Template driver"),
    ],
    min_args=1,
    max_args=2,
)

CONFIG_CREATE = Spec(
    "config create",
    "[OPTIONS] CONFIG file|-",
    "Create a config from a file or STDIN",
    [O("label", "l", "list", "Config labels"), O("template-driver", None, "string", "Template driver")],
    min_args=2,
    max_args=2,
)


def cmd_secret_create(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    name, path = args[0], (args[1] if len(args) > 1 else "")
    spec: dict[str, Any] = {"Name": name, "Labels": _labels(v["label"])}
    if v["driver"]:
        if path:
            raise StatusError(1, "When using secret driver secret data must be empty")
        spec["Driver"] = {"Name": v["driver"]}
    else:
        if not path:
            raise StatusError(1, "secret file is required")
        try:
            spec["Data"] = base64.b64encode(_read_data(path)).decode()
        except ValueError as e:
            raise StatusError(1, str(e)) from None
    if v["template_driver"]:
        spec["Templating"] = {"Name": v["template_driver"]}
    doc = cli.api.post_json("/secrets/create", body=spec) or {}
    cli.print(str(doc.get("ID", "")))
    return 0


def cmd_config_create(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    name, path = args
    try:
        data = _read_data(path)
    except ValueError as e:
        raise StatusError(1, f'Error reading content from "{path}": {e}') from None
    spec: dict[str, Any] = {
        "Name": name,
        "Labels": _labels(v["label"]),
        "Data": base64.b64encode(data).decode(),
    }
    if v["template_driver"]:
        spec["Templating"] = {"Name": v["template_driver"]}
    doc = cli.api.post_json("/configs/create", body=spec) or {}
    cli.print(str(doc.get("ID", "")))
    return 0


def _ls_spec(word: str) -> Spec:
    return Spec(
        f"{word} ls",
        "[OPTIONS]",
        f"List {word}s",
        [
            O("filter", "f", "list", "Filter output based on conditions provided", type_name="filter"),
            O("format", None, "string", TABLE_FORMAT_HELP),
            O("quiet", "q", help="Only display IDs"),
        ],
        max_args=0,
    )


SECRET_LS, CONFIG_LS = _ls_spec("secret"), _ls_spec("config")


class ObjectRow:
    """docker's secretContext / configContext."""

    def __init__(self, obj: dict[str, Any], kind: Kind) -> None:
        spec = obj.get("Spec") or {}
        self._labels = spec.get("Labels")
        self._kind = kind
        self.ID = obj.get("ID", "")
        self.Name = spec.get("Name", "")
        self.Driver = (spec.get("Driver") or {}).get("Name", "")
        self.CreatedAt = ago(obj.get("CreatedAt"))
        self.UpdatedAt = ago(obj.get("UpdatedAt"))
        self.Labels = ",".join(f"{k}={val}" for k, val in (self._labels or {}).items())

    def Label(self, name: str) -> str:  # noqa: N802 - Go method name
        return str((self._labels or {}).get(name, ""))

    def as_json(self) -> dict[str, Any]:
        keys = ["CreatedAt", "ID", "Labels", "Name", "UpdatedAt"]
        if self._kind is SECRET:
            keys.insert(1, "Driver")
        return {k: getattr(self, k) for k in keys}


def _ls(cli: Cli, v: dict[str, Any], kind: Kind, spec: Spec) -> int:
    from gorae.cli.commands.volume import natural_key

    filters = parse_filters(spec, v["filter"])
    objs = cli.api.get_json(kind.path, {"filters": filters or None}) or []
    fmt = v["format"] or ""
    if not fmt:
        fmt = (
            cli.config.get(kind.config_key) if cli.config.get(kind.config_key) and not v["quiet"] else "table"
        )
    objs.sort(key=lambda o: natural_key((o.get("Spec") or {}).get("Name", "")))
    rows = [ObjectRow(o, kind) for o in objs]
    if fmt == "table" and v["quiet"]:
        fmt = "{{.ID}}"
    print_list(
        cli.out, str(fmt), rows, default_table=kind.table, header=Header(HEADERS), to_json=ObjectRow.as_json
    )
    return 0


def cmd_secret_ls(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    return _ls(cli, v, SECRET, SECRET_LS)


def cmd_config_ls(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    return _ls(cli, v, CONFIG, CONFIG_LS)


def _inspect_spec(word: str, arg: str) -> Spec:
    return Spec(
        f"{word} inspect",
        f"[OPTIONS] {arg} [{arg}...]",
        f"Display detailed information on one or more {word}s",
        [
            O("format", "f", "string", INSPECT_FORMAT_HELP),
            O("pretty", None, help="Print the information in a human friendly format"),
        ],
        min_args=1,
    )


SECRET_INSPECT, CONFIG_INSPECT = _inspect_spec("secret", "SECRET"), _inspect_spec("config", "CONFIG")


class ObjectPretty:
    def __init__(self, obj: dict[str, Any]) -> None:
        spec = obj.get("Spec") or {}
        self.ID = obj.get("ID", "")
        self.Name = spec.get("Name", "")
        self.Labels = spec.get("Labels") or {}
        self.Driver = (spec.get("Driver") or {}).get("Name", "")
        self.CreatedAt = pretty(go_time(obj.get("CreatedAt")))
        self.UpdatedAt = pretty(go_time(obj.get("UpdatedAt")))
        data = spec.get("Data")
        self.Data = base64.b64decode(data).decode("utf-8", "replace") if data else ""


def _inspect(cli: Cli, v: dict[str, Any], args: list[str], kind: Kind) -> int:
    fmt = "pretty" if v["pretty"] else (v["format"] or "")
    if fmt.startswith("pretty") and fmt != "pretty":
        raise StatusError(1, "cannot supply extra formatting options to the pretty template")

    def fetch(ref: str) -> Any:
        return cli.api.get_json(f"{kind.path}/{q(ref)}")

    if fmt != "pretty":
        from gorae.cli.commands.common import inspect_objects

        return inspect_objects(cli, fetch, args, fmt or None, any_status=True)
    from gorae.cli.output import render
    from gorae.client.errors import APIError

    for ref in args:
        try:
            obj = fetch(ref)
        except APIError as e:
            raise StatusError(1, str(e)) from None
        cli.out.write(render(kind.pretty, ObjectPretty(obj)) + "\n")
    return 0


def cmd_secret_inspect(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    return _inspect(cli, v, args, SECRET)


def cmd_config_inspect(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    return _inspect(cli, v, args, CONFIG)


SECRET_RM = Spec("secret rm", "SECRET [SECRET...]", "Remove one or more secrets", [], min_args=1)
CONFIG_RM = Spec("config rm", "CONFIG [CONFIG...]", "Remove one or more configs", [], min_args=1)


def cmd_secret_rm(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from gorae.cli.commands.common import remove_each

    return remove_each(cli, args, lambda n: cli.api.delete(f"/secrets/{q(n)}"))


def cmd_config_rm(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    from gorae.cli.commands.common import remove_each

    return remove_each(cli, args, lambda n: cli.api.delete(f"/configs/{q(n)}"))


COMMANDS = {
    "secret create": (SECRET_CREATE, cmd_secret_create),
    "secret ls": (SECRET_LS, cmd_secret_ls),
    "secret inspect": (SECRET_INSPECT, cmd_secret_inspect),
    "secret rm": (SECRET_RM, cmd_secret_rm),
    "config create": (CONFIG_CREATE, cmd_config_create),
    "config ls": (CONFIG_LS, cmd_config_ls),
    "config inspect": (CONFIG_INSPECT, cmd_config_inspect),
    "config rm": (CONFIG_RM, cmd_config_rm),
}
