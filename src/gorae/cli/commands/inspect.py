"""`gorae inspect` (any object) and `gorae container inspect` / `gorae image inspect`: JSON array output or a
Go template per object, docker's not-found messages, `-s` sizes for containers."""

from __future__ import annotations

from gorae.cli.context import StatusError
from gorae.cli.flags import INSPECT_FORMAT_HELP, O, Spec
from gorae.client.api import q
from gorae.client.errors import APIError
from gorae.client.fastjson import dumps_indent

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and `json` stay off the CLI's import path
    from typing import Any

    from gorae.cli.context import Cli

TYPES = ("config", "container", "image", "network", "node", "plugin", "secret", "service", "task", "volume")
FORMAT_HELP = INSPECT_FORMAT_HELP

INSPECT = Spec(
    "inspect",
    "[OPTIONS] NAME|ID [NAME|ID...]",
    "Return low-level information on Docker objects",
    [
        O("format", "f", "string", FORMAT_HELP),
        O("size", "s", help="Display total file sizes if the type is container"),
        O("type", None, "string", "Only inspect objects of the given type"),
    ],
    min_args=1,
)
CONTAINER_INSPECT = Spec(
    "container inspect",
    "[OPTIONS] CONTAINER [CONTAINER...]",
    "Display detailed information on one or more containers",
    [
        O("format", "f", "string", FORMAT_HELP),
        O("size", "s", help="Display total file sizes"),
    ],
    min_args=1,
)
IMAGE_INSPECT = Spec(
    "image inspect",
    "[OPTIONS] IMAGE [IMAGE...]",
    "Display detailed information on one or more images",
    [
        O("format", "f", "string", FORMAT_HELP),
        O(
            "platform",
            None,
            "string",
            "Inspect a specific platform of the multi-platform image.\nIf the image or the server is not "
            "multi-platform capable, the command will error out if the platform does not match.\n"
            "'os[/arch[/variant]]': Explicit platform (eg. linux/amd64)",
        ),
    ],
    min_args=1,
)

PATHS = {
    "container": lambda n: f"/containers/{q(n)}/json",
    "image": lambda n: f"/images/{q(n)}/json",
    "network": lambda n: f"/networks/{q(n)}",
    "volume": lambda n: f"/volumes/{q(n)}",
    "node": lambda n: f"/nodes/{q(n)}",
    "service": lambda n: f"/services/{q(n)}",
    "task": lambda n: f"/tasks/{q(n)}",
    "secret": lambda n: f"/secrets/{q(n)}",
    "config": lambda n: f"/configs/{q(n)}",
    "plugin": lambda n: f"/plugins/{q(n)}/json",
}
SEARCH_ORDER = ("container", "image", "network", "volume")


def _fetch(cli: Cli, kind: str, name: str, size: bool) -> Any:
    params = {"size": 1} if size and kind == "container" else None
    return cli.api.get_json(PATHS[kind](name), params)


class FieldChain:
    """A template that is one field chain (`{{.State.Status}}`): it always parses, and on the typed Go value
    it is answered without loading the template engine where `inspect_types.typed_string` can; otherwise the
    engine parses it then."""

    def __init__(self, fmt: str, names: list[str]) -> None:
        self.fmt = fmt
        self.names = names
        self._engine: Any = None

    def engine(self) -> Any:
        if self._engine is None:
            from gorae.gotemplate import Template

            self._engine = Template(self.fmt)
        return self._engine


def parse_template(fmt: str | None) -> Any:
    """docker parses --format before contacting the daemon; None means JSON output. Raises StatusError(64).
    Unlike a list's --format, `\\t` and `\\n` are not expanded (docker's templates.Parse takes the text as is)."""
    if not fmt or fmt == "json":
        return None
    from gorae.cli.inspect_types import field_chain

    names = field_chain(fmt)
    if names is not None:
        return FieldChain(fmt, names)
    from gorae.gotemplate import Template, TemplateError

    try:
        return Template(fmt)
    except TemplateError as e:
        raise StatusError(64, f"template parsing error: {e}") from None


def render_inspect(tmpl: Any, kind: str, obj: Any, *, raw: bool = True) -> str:
    """docker's TemplateInspector: run on the typed Go value; on any error retry on the raw JSON with
    missingkey=error (without `raw` — `volume inspect` gives the inspector no raw JSON — the typed run's error
    stands); nothing of a failed run is printed. Raises TemplateError."""
    from gorae.cli.inspect_types import ROOT, typed, typed_string

    if isinstance(tmpl, FieldChain):
        if kind in ROOT:
            text = typed_string(ROOT[kind], obj, tmpl.names)
            if text is not None:
                return text
        tmpl = tmpl.engine()
    from gorae.gotemplate import TemplateError

    if kind in ROOT:
        try:
            return str(tmpl.execute(typed(ROOT[kind], obj)))
        except TemplateError:
            if not raw:
                raise
    return str(tmpl.execute(obj, missingkey="error"))


def _inspect(
    cli: Cli, names: list[str], kinds: tuple[str, ...], fmt: str | None, size: bool, any_type: bool
) -> int:
    tmpl = parse_template(fmt)
    found: list[tuple[str, Any]] = []
    errors: list[str] = []
    for n in names:
        obj = None
        kind = ""
        last: APIError | None = None
        for k in kinds:
            try:
                obj = _fetch(cli, k, n, size)
                kind = k
                break
            except APIError as e:
                if e.status != 404:
                    raise
                last = e
        if obj is None:
            errors.append(f"Error: No such object: {n}" if any_type else str(last))
            continue
        found.append((kind, obj))
    return write_inspect(cli, tmpl, found, errors)


def write_inspect(
    cli: Cli, tmpl: Any, found: list[tuple[str, Any]], errors: list[str], *, raw: bool = True
) -> int:
    """Print the objects found (`tmpl` from parse_template: the template per object, or None: one JSON array),
    then the lookup errors and the template errors; return the exit status."""
    errors = list(errors)
    if tmpl is not None:
        printed = False
        for kind, obj in found:
            try:
                cli.print(render_inspect(tmpl, kind, obj, raw=raw))
                printed = True
            except _template_error() as e:  # evaluated only when something was raised
                errors.append(f"template parsing error: {e}")
        if not printed:  # docker's TemplateInspector.Flush writes a newline for an empty buffer
            cli.print()
    else:
        docs = [obj for _, obj in found]
        cli.print(dumps_indent(docs) if docs else "[]")
    for msg in errors:
        cli.eprint(msg)
    return 1 if errors else 0


def _template_error() -> type[Exception]:
    from gorae.gotemplate import TemplateError

    return TemplateError


def cmd_inspect(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    kind = v["type"]
    if kind and kind not in TYPES:
        raise StatusError(1, f'unknown type: "{kind}": must be one of ' + ", ".join(f'"{t}"' for t in TYPES))
    kinds = (kind,) if kind else SEARCH_ORDER
    return _inspect(cli, args, kinds, v["format"], v["size"], not kind)


def cmd_container_inspect(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    return _inspect(cli, args, ("container",), v["format"], v["size"], False)


def cmd_image_inspect(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    return _inspect(cli, args, ("image",), v["format"], False, False)


COMMANDS = {
    "inspect": (INSPECT, cmd_inspect),
    "container inspect": (CONTAINER_INSPECT, cmd_container_inspect),
    "image inspect": (IMAGE_INSPECT, cmd_image_inspect),
}
