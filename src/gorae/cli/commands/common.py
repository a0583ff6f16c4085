"""Command bodies that several object commands share: inspecting a list of objects by name, and printing
what a prune removed. Kept apart from output.py so that the table/format helpers stay import-light."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gorae.cli.context import Cli, StatusError
from gorae.cli.output import human_size
from gorae.client.errors import APIError


def inspect_objects(
    cli: Cli,
    fetch: Callable[[str], Any],
    names: list[str],
    fmt: str | None,
    *,
    kind: str = "",
    sort_keys: bool = False,
    any_status: bool = False,
) -> int:
    """`<object> inspect`: print each found object (JSON list or `--format`), then fail with the not-found errors
    (with `any_status`, every error the daemon answers, as docker's inspect of swarm objects does). With a
    `kind` ("volume", "network"), a template runs on docker's typed Go value of it, as `inspect --type KIND`."""
    import json

    found: list[Any] = []
    errors: list[str] = []
    tmpl = None
    if kind and fmt and fmt != "json":
        from gorae.cli.commands.inspect import parse_template

        tmpl = parse_template(fmt)  # parsed before asking the daemon, as docker
    for n in names:
        try:
            found.append(fetch(n))
        except APIError as e:
            if e.status != 404 and not any_status:
                raise
            errors.append(str(e))
    if tmpl is not None:
        from gorae.cli.commands.inspect import write_inspect

        # docker's volume inspect gives its template inspector no raw JSON to fall back on
        return write_inspect(cli, tmpl, [(kind, o) for o in found], errors, raw=kind != "volume")
    if fmt and fmt != "json":
        from gorae.cli.output import render

        for obj in found:
            cli.print(render(fmt, obj))  # as docker's inspect: `\t` stays as typed
    else:
        cli.print(json.dumps(found, indent=4, ensure_ascii=False, sort_keys=sort_keys) if found else "[]")
    if errors:
        raise StatusError(1, "\n".join(errors))
    return 0


def print_pruned(cli: Cli, title: str, deleted: list[str], reclaimed: int) -> None:
    """docker's prune report: "Deleted X:" with one line each, a blank line, then the space reclaimed."""
    if deleted:
        cli.print(f"Deleted {title}:")
        for d in deleted:
            cli.print(d)
        cli.print()
    cli.print(f"Total reclaimed space: {human_size(reclaimed)}")


def remove_each(
    cli: Cli, names: list[str], delete: Callable[[str], object], *, ignore_missing: bool = False
) -> int:
    """`<object> rm NAME...`: remove each, print the names removed, then fail with the errors collected."""
    errs: list[str] = []
    for n in names:
        try:
            delete(n)
        except APIError as e:
            if not (ignore_missing and e.status == 404):
                errs.append(str(e))
            continue
        cli.print(n)
    if errs:
        raise StatusError(1, "\n".join(errs))
    return 0
