"""Swarm's templates (moby/swarmkit's `template` package): a task's ContainerSpec — each Env value, the
Hostname, each Mount's Source and Target, a volume mount's Labels and DriverConfig Options — and the payload
of a secret or config created with `--template-driver golang`, expanded for the task on its node:

    {{.Service.ID}} {{.Service.Name}} {{.Service.Labels}}      {{.Task.ID}} {{.Task.Name}} {{.Task.Slot}}
    {{.Node.ID}} {{.Node.Hostname}} {{.Node.Platform.OS}} {{.Node.Platform.Architecture}}

Go's text/template (gorae.gotemplate) with `missingkey=error` and swarmkit's one function, `join SEP A B...`;
a payload also has `secret TARGET`, `config TARGET` and `env NAME` (the task's own secrets and configs by
their file name, its expanded environment). The manager tries a service's ContainerSpec on a stand-in task
when it is created or updated (swarmkit's validateContainerSpec), so a broken template is refused up front;
the agent expands it for real before it creates the task's container. As in dockerd's executor, a payload's template
is given no node description: there `.Node.Hostname` and `.Node.Platform` are empty (`.Node.ID` is set).

Pure functions: no I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from gorae.gotemplate import GoFunc, Template, TemplateError
from gorae.gotemplate.gofmt import quote
from gorae.gotemplate.values import GoStruct, NilStringMap, StringMap

GOLANG = "golang"  # the one Templating driver (docker's `--template-driver golang`)
_TEXT = "expansion"  # swarmkit's template name, part of every error message


class ExpandError(Exception):
    """A template that does not parse or execute; the message is swarmkit's (wrapped as it wraps it)."""


def _join(*parts: str) -> str:
    if not parts:
        raise ExpandError("runtime error: slice bounds out of range [1:0]")  # swarmkit's s[1:] of nothing
    return parts[0].join(parts[1:])


_FUNCS: dict[str, GoFunc] = {"join": GoFunc("join", _join, (), "string")}


def _labels(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not value:
        return NilStringMap()
    return StringMap({str(k): str(v) for k, v in value.items()})


def _task_name(task: dict[str, Any]) -> str:
    """swarmkit's naming.Task: the task's own name, else `<service>.<slot or node ID>.<task ID>`."""
    if (task.get("Annotations") or {}).get("Name"):
        return str(task["Annotations"]["Name"])
    slot = task.get("Slot")
    slot_part = str(slot) if isinstance(slot, int) and slot else str(task.get("NodeID", ""))
    return f"{task.get('ServiceName', '')}.{slot_part}.{task.get('ID', '')}"


def context(
    task: dict[str, Any], node: dict[str, Any] | None, *, go_type: str = "*template.Context"
) -> GoStruct:
    """The template data for `task` (as the agent gets it: ServiceName and ServiceLabels beside the task's
    fields) on the node whose Description is `node` (None: no description, as for payloads)."""
    platform = (node or {}).get("Platform") or {}
    slot = task.get("Slot")
    return GoStruct(
        go_type,
        {
            "Service": GoStruct(
                "struct { ID string; Name string; Labels map[string]string }",
                {
                    "ID": str(task.get("ServiceID", "")),
                    "Name": str(task.get("ServiceName", "")),
                    "Labels": _labels(task.get("ServiceLabels")),
                },
            ),
            "Node": GoStruct(
                "struct { ID string; Hostname string; Platform template.Platform }",
                {
                    "ID": str(task.get("NodeID", "")),
                    "Hostname": str((node or {}).get("Hostname", "")),
                    "Platform": GoStruct(
                        "template.Platform",
                        {
                            "Architecture": str(platform.get("Architecture", "")),
                            "OS": str(platform.get("OS", "")),
                        },
                    ),
                },
            ),
            "Task": GoStruct(
                "struct { ID string; Name string; Slot string }",
                {
                    "ID": str(task.get("ID", "")),
                    "Name": _task_name(task),
                    "Slot": str(slot) if isinstance(slot, int) and slot else str(task.get("NodeID", "")),
                },
            ),
        },
    )


def expand(text: str, data: GoStruct, funcs: dict[str, GoFunc] | None = None) -> str:
    """One string through the template engine as swarmkit's `Context.Expand` runs it."""
    if "{{" not in text:
        return text  # no action: the text is its own expansion (and parsing it costs)
    try:
        return Template(
            text, name=_TEXT, funcs={**_FUNCS, **(funcs or {})}, missingkey="error", docker_funcs=False
        ).execute(data)
    except TemplateError as e:
        raise ExpandError(str(e)) from None


def _expand_map(data: GoStruct, values: Any) -> Any:
    if not isinstance(values, dict):
        return values
    out = {}
    for key, value in values.items():
        try:
            out[key] = expand(str(value), data)
        except ExpandError as e:
            raise ExpandError(f"expanding map entry {_go_quote(key)}={_go_quote(value)}: {e}") from None
    return out


def _go_quote(value: Any) -> str:
    return quote(str(value))


def expand_container_spec(
    container: dict[str, Any], task: dict[str, Any], node: dict[str, Any] | None
) -> dict[str, Any]:
    """A copy of `container` with its templated fields expanded for `task` on `node` (swarmkit's
    ExpandContainerSpec: Env, then Mounts, then Hostname; the first error ends it)."""
    data = context(task, node)
    out = copy.deepcopy(container)
    env = out.get("Env")
    if isinstance(env, list):
        expanded = []
        for entry in env:
            name, eq, value = str(entry).partition("=")
            if not eq:
                expanded.append(name)
                continue
            try:
                expanded.append(f"{name}={expand(value, data)}")
            except ExpandError as e:
                raise ExpandError(f"expanding env failed: expanding env {_go_quote(entry)}: {e}") from None
        out["Env"] = expanded
    mounts = out.get("Mounts")
    if isinstance(mounts, list):
        for mount in mounts:
            if isinstance(mount, dict):
                _expand_mount(data, mount)
    hostname = out.get("Hostname")
    if isinstance(hostname, str):
        try:
            out["Hostname"] = expand(hostname, data)
        except ExpandError as e:
            raise ExpandError(f"expanding hostname failed: {e}") from None
    return out


def _expand_mount(data: GoStruct, mount: dict[str, Any]) -> None:
    for field in ("Source", "Target"):
        value = mount.get(field)
        if not isinstance(value, str):
            continue
        try:
            mount[field] = expand(value, data)
        except ExpandError as e:
            raise ExpandError(
                f"expanding mounts failed: expanding mount {field.lower()} {_go_quote(value)}: {e}"
            ) from None
    options = mount.get("VolumeOptions")
    if not isinstance(options, dict):
        return
    try:
        options["Labels"] = _expand_map(data, options.get("Labels"))
    except ExpandError as e:
        raise ExpandError(f"expanding mounts failed: expanding volume labels: {e}") from None
    driver = options.get("DriverConfig")
    if isinstance(driver, dict):
        try:
            driver["Options"] = _expand_map(data, driver.get("Options"))
        except ExpandError as e:
            raise ExpandError(f"expanding mounts failed: expanding volume driver config: {e}") from None


def validate_container_spec(container: dict[str, Any]) -> None:
    """The manager's check (swarmkit's validateContainerSpec): expand on a stand-in task and node."""
    task = {
        "ID": "",
        "ServiceID": "serviceid",
        "ServiceName": "servicename",
        "Slot": 1,
        "NodeID": "nodeid",
        "Annotations": {"Name": "taskname"},
    }
    node = {"Hostname": "nodeHostname", "Platform": {"OS": "os", "Architecture": "architecture"}}
    expand_container_spec(container, task, node)


Getter = Callable[[str], str]


def expand_payload(data: bytes, task: dict[str, Any], secret: Getter, config: Getter) -> bytes:
    """A golang-templated secret's or config's payload for `task` (`env` reads its ContainerSpec's Env: give
    the expanded one, as dockerd does). `secret`/`config` give the data of the task's own reference with that
    file name (raising ExpandError with swarmkit's text when there is none)."""

    def _env(name: str) -> str:
        for entry in ((task.get("Spec") or {}).get("ContainerSpec") or {}).get("Env") or []:
            key, eq, value = str(entry).partition("=")
            if eq and key == name:
                return value
        return ""

    funcs = {
        "secret": GoFunc("secret", secret, ("string",)),
        "config": GoFunc("config", config, ("string",)),
        "env": GoFunc("env", _env, ("string",)),
    }
    text = data.decode("utf-8", "surrogateescape")
    out = expand(text, context(task, None, go_type="*template.PayloadContext"), funcs)
    return out.encode("utf-8", "surrogateescape")
