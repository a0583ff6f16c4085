"""docker-style (pflag) command-line parsing and `--help` text, without click, to keep startup fast.

A `Spec` lists a command's flags; `parse()` applies pflag's rules: `--name value`, `--name=value`, bundled
short flags (`-it`, `-eFOO=bar`, `-p=80:80`), `--bool=false`, `--` ending flags, and, for commands such as
`run` and `exec`, no interspersed flags after the first positional argument (those belong to the container).
`render_help()` draws docker's help layout, wrapping descriptions the way pflag does.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

PROG = "gorae"

TABLE_FORMAT_HELP = (
    "Format output using a custom template:\n"
    "'table':            Print output in table format with column headers (default)\n"
    "'table TEMPLATE':   Print output in table format using the given Go template\n"
    "'json':             Print in JSON format\n"
    "'TEMPLATE':         Print output using the given Go template.\n"
    "Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates"
)
INSPECT_FORMAT_HELP = (
    "Format output using a custom template:\n"
    "'json':             Print in JSON format\n"
    "'TEMPLATE':         Print output using the given Go template.\n"
    "Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates"
)


class FlagError(Exception):
    """A command line that does not parse; the CLI exits 125 as docker does."""


class Opt:
    """One flag. kind: bool | string | list | int | float. `type_name` is shown after the flag name in help
    ("string", "list", "bytes", ...), `default_text` as "(default ...)"."""

    __slots__ = ("long", "short", "kind", "help", "default", "type_name", "default_text", "hidden")

    def __init__(
        self,
        long: str,
        short: str | None = None,
        kind: str = "bool",
        help: str = "",
        default: Any = None,
        type_name: str | None = None,
        default_text: str | None = None,
        hidden: bool = False,
    ) -> None:
        self.long, self.short, self.kind, self.help = long, short, kind, help
        self.default, self.type_name, self.default_text, self.hidden = (
            default,
            type_name,
            default_text,
            hidden,
        )

    @property
    def dest(self) -> str:
        return self.long.replace("-", "_")

    def initial(self) -> Any:
        if self.kind == "list":
            return list(self.default or [])
        if self.default is not None:
            return self.default
        return {"bool": False, "string": None, "int": None, "float": None}.get(self.kind)


def O(long: str, short: str | None = None, kind: str = "bool", help: str = "", **kw: Any) -> Opt:  # noqa: E743, N802
    return Opt(long, short, kind, help, **kw)


class Spec:
    """A command: its path ("ps", "container ls"), usage ("[OPTIONS] CONTAINER [CONTAINER...]"), one-line
    description, flags, argument count, whether flags may follow positional arguments, and the alias paths
    shown in help."""

    def __init__(
        self,
        path: str,
        usage: str,
        short: str,
        opts: list[Opt] | None = None,
        min_args: int = 0,
        max_args: int | None = None,
        interspersed: bool = True,
        aliases: list[str] | None = None,
        exact_args: bool = False,
    ) -> None:
        self.path, self.usage, self.short = path, usage, short
        self.opts = list(opts or [])
        self.min_args, self.max_args, self.interspersed = min_args, max_args, interspersed
        self.aliases = list(aliases or [])
        self.exact_args = exact_args

    def renamed(self, path: str) -> Spec:
        """The same command reached through another path (an alias)."""
        return Spec(
            path,
            self.usage,
            self.short,
            self.opts,
            self.min_args,
            self.max_args,
            self.interspersed,
            self.aliases,
            self.exact_args,
        )

    def find_long(self, name: str) -> Opt | None:
        for o in self.opts:
            if o.long == name:
                return o
        return None

    def find_short(self, ch: str) -> Opt | None:
        for o in self.opts:
            if o.short == ch:
                return o
        return None

    @property
    def help_short(self) -> str | None:
        """`-h` means help unless the command uses it (run/create use -h for --hostname)."""
        return None if self.find_short("h") else "h"


_TRUE = ("1", "t", "T", "true", "TRUE", "True")
_FALSE = ("0", "f", "F", "false", "FALSE", "False")


def _flag_name(o: Opt) -> str:
    return f"-{o.short}, --{o.long}" if o.short else f"--{o.long}"


def _set(values: dict[str, Any], o: Opt, raw: str, shown: str) -> None:
    if o.kind == "bool":
        if raw in _TRUE:
            values[o.dest] = True
        elif raw in _FALSE:
            values[o.dest] = False
        else:
            raise FlagError(
                f'invalid argument "{raw}" for "{shown}" flag: strconv.ParseBool: parsing "{raw}": invalid syntax'
            )
    elif o.kind == "int":
        try:
            values[o.dest] = int(raw, 0) if raw.strip() not in ("",) else int(raw)
        except ValueError:
            raise FlagError(
                f'invalid argument "{raw}" for "{shown}" flag: strconv.ParseInt: parsing "{raw}": invalid syntax'
            ) from None
    elif o.kind == "float":
        try:
            values[o.dest] = float(raw)
        except ValueError:
            raise FlagError(
                f'invalid argument "{raw}" for "{shown}" flag: strconv.ParseFloat: parsing "{raw}": invalid syntax'
            ) from None
    elif o.kind == "list":
        values[o.dest].append(raw)
    else:
        values[o.dest] = raw
    values.setdefault("_set", set()).add(o.dest)


class HelpRequested(Exception):
    pass


def parse(spec: Spec, argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Parse argv (after the command words) into ({dest: value, "_set": {dests given}}, positional args)."""
    values: dict[str, Any] = {o.dest: o.initial() for o in spec.opts}
    values["_set"] = set()
    args: list[str] = []
    i = 0
    help_short = spec.help_short
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            args.extend(argv[i:])
            break
        if a.startswith("--") and len(a) > 2:
            name, eq, raw = a[2:].partition("=")
            if name == "help":
                raise HelpRequested()
            o = spec.find_long(name)
            if o is None:
                raise FlagError(f"unknown flag: --{name}")
            shown = _flag_name(o)
            if eq:
                _set(values, o, raw, shown)
            elif o.kind == "bool":
                _set(values, o, "true", shown)
            elif i < len(argv):
                _set(values, o, argv[i], shown)
                i += 1
            else:
                raise FlagError(f"flag needs an argument: --{name}")
            continue
        if a.startswith("-") and len(a) > 1:
            j = 1
            while j < len(a):
                ch = a[j]
                j += 1
                if ch == help_short:
                    raise HelpRequested()
                o = spec.find_short(ch)
                if o is None:
                    raise FlagError(f"unknown shorthand flag: '{ch}' in {a}")
                shown = _flag_name(o)
                if o.kind == "bool":
                    if j < len(a) and a[j] == "=":
                        _set(values, o, a[j + 1 :], shown)
                        break
                    _set(values, o, "true", shown)
                    continue
                rest = a[j:]
                if rest.startswith("="):
                    rest = rest[1:]
                    _set(values, o, rest, shown)
                elif rest:
                    _set(values, o, rest, shown)
                elif i < len(argv):
                    _set(values, o, argv[i], shown)
                    i += 1
                else:
                    raise FlagError(f"flag needs an argument: '{ch}' in -{ch}")
                break
            continue
        args.append(a)
        if not spec.interspersed:
            args.extend(argv[i:])
            break
    return values, args


def check_args(spec: Spec, args: list[str]) -> str | None:
    """docker's (cli/required.go) argument-count message, or None when the count is right."""
    cmd = f"'{PROG} {spec.path}'"
    n, lo, hi = len(args), spec.min_args, spec.max_args

    def plural(k: int) -> str:
        return f"{k} argument" if k == 1 else f"{k} arguments"

    if hi is not None and lo == hi and n != lo:
        return f"{cmd} requires {plural(lo)}" if lo else f"{cmd} accepts no arguments"
    if hi is not None and lo and (n < lo or n > hi):
        return f"{cmd} requires at least {lo} and at most {plural(hi)}"
    if n < lo:
        return f"{cmd} requires at least {plural(lo)}"
    if hi is not None and n > hi:
        return f"{cmd} requires at most {plural(hi)}" if hi else f"{cmd} accepts no arguments"
    return None


# -- help ------------------------------------------------------------------------------------------


def _wrap_n(i: int, slop: int, s: str) -> tuple[str, str]:
    if i + slop > len(s):
        return s, ""
    head = s[:i]
    w = max(head.rfind(" "), head.rfind("\t"), head.rfind("\n"))
    if w <= 0:
        return s, ""
    nl = head.rfind("\n")
    if 0 < nl < w:
        return s[:nl], s[nl + 1 :]
    return s[:w], s[w + 1 :]


def wrap(indent: int, width: int, s: str) -> str:
    """pflag's wrapping of a flag description starting at column `indent` in a `width`-column terminal."""
    pad = "\n" + " " * indent
    room = width - indent
    if width == 0 or room < 24:
        return s.replace("\n", pad)
    slop = 5
    room -= slop
    r, rest = _wrap_n(room, slop, s)
    r = r.replace("\n", pad)
    while rest:
        t, rest = _wrap_n(room, slop, rest)
        r += pad + t.replace("\n", pad)
    return r


def terminal_width() -> int:
    import os

    try:
        return os.get_terminal_size(0).columns
    except OSError:
        return 80


def flag_usages(opts: list[Opt], width: int) -> str:
    lines: list[tuple[str, str]] = []
    maxlen = 0
    for o in opts:
        if o.hidden:
            continue
        left = f"  -{o.short}, --{o.long}" if o.short else f"      --{o.long}"
        tn = o.type_name or (
            "" if o.kind == "bool" else {"list": "list", "int": "int", "float": "float"}.get(o.kind, "string")
        )
        if tn:
            left += " " + tn
        desc = o.help
        if o.default_text is not None:
            desc += f" (default {o.default_text})"
        elif o.kind == "int" and o.default not in (None, 0):
            desc += f" (default {o.default})"
        elif o.kind == "string" and o.default:
            desc += f' (default "{o.default}")'
        lines.append((left, desc))
        maxlen = max(maxlen, len(left) + 1)
    out = []
    for left, desc in lines:
        line = f"{left} {' ' * (maxlen - len(left))} {wrap(maxlen + 2, width - 1, desc)}".rstrip()
        out.append(line + " " if desc.endswith(" ") else line)  # docker keeps a description's trailing space
    return "\n".join(out) + "\n" if out else ""


def render_help(spec: Spec, width: int | None = None) -> str:
    width = width or terminal_width()
    parts = [f"Usage:  {PROG} {spec.path} {spec.usage}".rstrip() + "\n", f"\n{spec.short}\n"]
    if spec.aliases:
        parts.append("\nAliases:\n  " + ", ".join(f"{PROG} {a}" for a in spec.aliases) + "\n")
    opts = [o for o in spec.opts if not o.hidden]
    if spec.help_short is None:
        # pflag lists its implicit --help flag when -h is taken by another flag (run/create's --hostname)
        opts.append(Opt("help", help="Print usage"))
        opts.sort(key=lambda x: x.long)
    if opts:
        parts.append("\nOptions:\n" + flag_usages(opts, width))
    return "".join(parts)


def usage_error(spec: Spec, message: str) -> str:
    """The text docker prints for a flag error."""
    return (
        f"{message}\n\nUsage:  {PROG} {spec.path} {spec.usage}".rstrip()
        + f"\n\nRun '{PROG} {spec.path} --help' for more information\n"
    )


def args_error(spec: Spec, message: str) -> str:
    """The text docker prints for a wrong argument count. The footer's first word differs by check in
    docker 28's cli/required.go: "See" for RequiresMinArgs, "SRun" (sic) for RequiresMaxArgs, else "Run"."""
    if "requires at least" in message and "at most" not in message:
        word = "See"
    elif "requires at most" in message:
        word = "SRun"
    else:
        word = "Run"
    return (
        f"{PROG}: {message}\n\nUsage:  {PROG} {spec.path} {spec.usage}".rstrip()
        + f"\n\n{word} '{PROG} {spec.path} --help' for more information\n"
    )
