"""Go's text/template for Python, as docker's `--format` flags and swarmkit's service templates use it.

No maintained Python library implements Go templates, so gorae carries its own: lexer, parser
and executor follow Go's text/template (actions, fields, variables, range/if/with/else,
define/template/block, break/continue, pipelines, trim markers, comments, literals), its
builtins (and, or, not, len, index, slice, print, printf, println, eq, ne, lt, le, gt, ge, html,
js, urlquery, call), Go's fmt for printing values, and docker's extra functions (json, split,
join, title, lower, upper, pad, truncate). Error messages are Go's. `table` format handling lives
in `gorae.cli.formatting`.

    render("{{.State.Status}}", inspect_json)            -> "running"
    Template("{{range .}}{{.Name}} {{end}}").execute(xs)
"""

from __future__ import annotations

from .errors import TemplateError, TemplateExecError, TemplateParseError
from .exec import MISSINGKEY_OPTIONS, Limits, execute
from .funcs import BUILTINS, DOCKER_FUNCS, HEADER_FUNCS, GoFunc, python_func
from .gofmt import quote, sprint, sprintf
from .parser import Tree, parse

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and `collections.abc` stay off the import path
    from collections.abc import Callable, Mapping
    from typing import Any

    FuncLike = GoFunc | Callable[..., Any]

__all__ = [
    "HEADER_FUNCS",
    "GoFunc",
    "Limits",
    "Template",
    "TemplateError",
    "TemplateExecError",
    "TemplateParseError",
    "parse",
    "render",
    "sprint",
    "sprintf",
]


def _func_table(funcs: Mapping[str, FuncLike] | None) -> dict[str, GoFunc]:
    table: dict[str, GoFunc] = {}
    for name, fn in (funcs or {}).items():
        table[name] = fn if isinstance(fn, GoFunc) else python_func(name, fn)
    return table


class Template:
    """A parsed template (with docker's functions) ready to execute on data.

    `funcs` adds or replaces functions (plain callables take any arguments); `docker_funcs=False`
    leaves docker's extra functions out (Go's builtins only, as swarmkit's templates have them).
    `missingkey` is one of "default" (missing map keys print `<no value>`), "zero", "error" or
    "inspect" (error for struct-like dicts only, as `docker inspect -f` behaves).
    """

    def __init__(
        self,
        text: str,
        *,
        name: str = "",
        funcs: Mapping[str, FuncLike] | None = None,
        missingkey: str = "default",
        limits: Callable[[], Limits] = Limits,
        docker_funcs: bool = True,
    ) -> None:
        if missingkey not in MISSINGKEY_OPTIONS:
            raise ValueError(f"missingkey must be one of {MISSINGKEY_OPTIONS}")
        self.text = text
        self.name = name
        self.missingkey = missingkey
        self._limits = limits
        self.funcs: dict[str, GoFunc] = {
            **BUILTINS,
            **(DOCKER_FUNCS if docker_funcs else {}),
            **_func_table(funcs),
        }
        try:
            self.trees: dict[str, Tree] = parse(text, name, self.funcs)
        except RecursionError:
            raise TemplateParseError(f"template: {name}:1: max expression depth exceeded") from None

    def defined_templates(self) -> list[str]:
        return sorted(self.trees)

    def execute(
        self,
        data: Any,
        *,
        funcs: Mapping[str, FuncLike] | None = None,
        missingkey: str | None = None,
    ) -> str:
        """Run the template on data; `funcs` overrides functions for this run only (as Go's
        `Funcs` after parsing, which is how docker renders table headers)."""
        return self.execute_template(self.name, data, funcs=funcs, missingkey=missingkey)

    def execute_template(
        self,
        name: str,
        data: Any,
        *,
        funcs: Mapping[str, FuncLike] | None = None,
        missingkey: str | None = None,
    ) -> str:
        if name not in self.trees:
            raise TemplateExecError(
                f"template: no template {quote(name)} associated with template {quote(self.name)}"
            )
        table = {**self.funcs, **_func_table(funcs)} if funcs else self.funcs
        return execute(
            self.trees,
            name,
            self.name,
            self.text,
            data,
            table,
            missingkey or self.missingkey,
            self._limits(),
        )


def render(text: str, data: Any, **options: Any) -> str:
    """Parse text and execute it on data in one go (options as for Template)."""
    return Template(text, **options).execute(data)
