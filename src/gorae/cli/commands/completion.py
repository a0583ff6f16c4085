"""`gorae completion bash|zsh|fish|powershell`: shell completion scripts generated from the command table and
flag specs, as subcommands the way docker 28 has them. Container and image names are completed by calling
`gorae ps -a --format '{{.Names}}'` and `gorae images --format '{{.Repository}}:{{.Tag}}'`.

The zsh script is native (`#compdef gorae`, `_arguments`/`_describe`), the fish script uses `complete -c`;
the bash script completes commands, management subcommands, flags and names from COMP_WORDS."""

from __future__ import annotations

import importlib
from typing import Any

from gorae.cli.context import Cli, StatusError
from gorae.cli.flags import PROG, O, Opt, Spec

_NO_DESC = O("no-descriptions", None, help="disable completion descriptions")


def _help(shell: str) -> str:
    """docker 28's long help text for `completion SHELL`, with gorae's name."""
    p = PROG
    if shell == "bash":
        return (
            "Generate the autocompletion script for the bash shell.\n\n"
            "This script depends on the 'bash-completion' package.\n"
            "If it is not installed already, you can install it via your OS's package manager.\n\n"
            f"To load completions in your current shell session:\n\n\tsource <({p} completion bash)\n\n"
            "To load completions for every new session, execute once:\n\n"
            f"#### Linux:\n\n\t{p} completion bash > /etc/bash_completion.d/{p}\n\n"
            f"#### macOS:\n\n\t{p} completion bash > $(brew --prefix)/etc/bash_completion.d/{p}\n\n"
            "You will need to start a new shell for this setup to take effect."
        )
    if shell == "zsh":
        return (
            "Generate the autocompletion script for the zsh shell.\n\n"
            "If shell completion is not already enabled in your environment you will need\n"
            "to enable it.  You can execute the following once:\n\n"
            '\techo "autoload -U compinit; compinit" >> ~/.zshrc\n\n'
            f"To load completions in your current shell session:\n\n\tsource <({p} completion zsh)\n\n"
            "To load completions for every new session, execute once:\n\n"
            f'#### Linux:\n\n\t{p} completion zsh > "${{fpath[1]}}/_{p}"\n\n'
            f"#### macOS:\n\n\t{p} completion zsh > $(brew --prefix)/share/zsh/site-functions/_{p}\n\n"
            "You will need to start a new shell for this setup to take effect."
        )
    if shell == "fish":
        return (
            "Generate the autocompletion script for the fish shell.\n\n"
            f"To load completions in your current shell session:\n\n\t{p} completion fish | source\n\n"
            "To load completions for every new session, execute once:\n\n"
            f"\t{p} completion fish > ~/.config/fish/completions/{p}.fish\n\n"
            "You will need to start a new shell for this setup to take effect."
        )
    return (
        "Generate the autocompletion script for powershell.\n\n"
        f"To load completions in your current shell session:\n\n"
        f"\t{p} completion powershell | Out-String | Invoke-Expression\n\n"
        "To load completions for every new session, add the output of the above command\n"
        "to your powershell profile."
    )


def _spec(shell: str) -> Spec:
    return Spec(f"completion {shell}", "" if shell == "bash" else "[flags]", _help(shell), [_NO_DESC])


SHELLS = ("bash", "fish", "powershell", "zsh")

# commands whose arguments are images; the others that take arguments take containers
_IMAGE_KEYS = {"run", "create", "images", "rmi", "tag", "history", "save", "pull", "push", "image inspect"}
# commands that take no container/image arguments
_NO_ARG_KEYS = {
    "ps",
    "info",
    "version",
    "login",
    "logout",
    "events",
    "system df",
    "system prune",
    "container prune",
    "image prune",
    "load",
    "import",
    "volume create",
    "volume ls",
    "volume prune",
    "volume inspect",
    "volume rm",
    "network create",
    "network ls",
    "network prune",
    "network inspect",
    "network rm",
}


class _Cmd:
    __slots__ = ("word", "key", "desc", "opts")

    def __init__(self, word: str, key: str, desc: str, opts: list[Opt]) -> None:
        self.word, self.key, self.desc, self.opts = word, key, desc, opts

    @property
    def ident(self) -> str:
        return self.word.replace(" ", "_").replace("-", "_")

    @property
    def arg_kind(self) -> str:
        if self.key.startswith("completion"):
            return "none"
        if self.key in _IMAGE_KEYS:
            return "image"
        return "none" if self.key in _NO_ARG_KEYS else "container"


def _table() -> tuple[list[tuple[str, str]], dict[str, list[tuple[str, str]]], list[_Cmd]]:
    """(top-level words with descriptions, management word -> [(sub, description)], every command path)."""
    from gorae.cli.main import HANDLERS, MANAGEMENT, TOP

    top = [(w, HANDLERS[k][1]) for w, k in TOP.items()]
    top += [(m, d.split("\n")[0]) for m, (d, _) in MANAGEMENT.items()]
    top.append(("daemon", "Run the gorae daemon"))
    top.sort()
    subs = {m: sorted((s, HANDLERS[k][1]) for s, k in ss.items()) for m, (_, ss) in MANAGEMENT.items()}
    cmds: list[_Cmd] = []
    for word, key in list(TOP.items()) + [
        (f"{m} {s}", k) for m, (_, ss) in MANAGEMENT.items() for s, k in ss.items()
    ]:
        mod = importlib.import_module(f"gorae.cli.commands.{HANDLERS[key][0]}")
        spec: Spec = mod.COMMANDS[key][0]
        cmds.append(_Cmd(word, key, HANDLERS[key][1], [o for o in spec.opts if not o.hidden]))
    return top, subs, cmds


def _first_line(s: str) -> str:
    return s.split("\n")[0].strip()


# -- bash ------------------------------------------------------------------------------------------

BASH = """# bash completion for gorae                                  -*- shell-script -*-
_gorae_containers() { gorae ps -a --format '{{.Names}}' 2>/dev/null; }
_gorae_images() { gorae images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep -v '<none>'; }
_gorae() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="" cmd="" sub="" i w
    [ "$COMP_CWORD" -gt 0 ] && prev="${COMP_WORDS[COMP_CWORD-1]}"
    for ((i=1; i<COMP_CWORD; i++)); do
        w="${COMP_WORDS[i]}"
        case "$w" in
            -*) ;;
            *)
                if [ -z "$cmd" ]; then cmd="$w"
                elif [ -z "$sub" ] && [ -n "${_gorae_mgmt[$cmd]}" ]; then sub="$w"
                fi ;;
        esac
    done
    if [ -z "$cmd" ]; then COMPREPLY=($(compgen -W "%(top)s" -- "$cur")); return; fi
    case "$cmd" in
%(subcases)s
    esac
    local key="$cmd"; [ -n "$sub" ] && key="${cmd}_${sub}"
    if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "${_gorae_flags[$key]}" -- "$cur")); return; fi
    case " ${_gorae_valued[$key]} " in *" $prev "*) COMPREPLY=(); return ;; esac
    case "${_gorae_args[$key]}" in
        image) COMPREPLY=($(compgen -W "$(_gorae_images)" -- "$cur")) ;;
        container) COMPREPLY=($(compgen -W "$(_gorae_containers)" -- "$cur")) ;;
        *) COMPREPLY=() ;;
    esac
}
declare -A _gorae_flags=(
%(flags)s
)
declare -A _gorae_valued=(
%(valued)s
)
declare -A _gorae_args=(
%(args)s
)
declare -A _gorae_mgmt=(%(mgmt)s)
complete -F _gorae gorae
"""


def _flag_words(opts: list[Opt], *, valued: bool = False) -> list[str]:
    out = [] if valued else ["--help"]
    for o in opts:
        if valued and o.kind == "bool":
            continue
        out.append(f"--{o.long}")
        if o.short:
            out.append(f"-{o.short}")
    return out


def bash_script() -> str:
    top, subs, cmds = _table()
    subcases = "\n".join(
        f'        {m}) if [ -z "$sub" ]; then COMPREPLY=($(compgen -W "{" ".join(s for s, _ in ss)}" -- "$cur")); '
        "return; fi ;;"
        for m, ss in subs.items()
    )
    flags = "\n".join(f'    [{c.ident}]="{" ".join(_flag_words(c.opts))}"' for c in cmds)
    valued = "\n".join(f'    [{c.ident}]="{" ".join(_flag_words(c.opts, valued=True))}"' for c in cmds)
    args = "\n".join(f"    [{c.ident}]={c.arg_kind}" for c in cmds)
    mgmt = " ".join(f"[{m}]=1" for m in subs)
    return BASH % {
        "top": " ".join(w for w, _ in top),
        "subcases": subcases,
        "flags": flags,
        "valued": valued,
        "args": args,
        "mgmt": mgmt,
    }


# -- zsh -------------------------------------------------------------------------------------------


def _zq(s: str) -> str:
    """Single-quote for zsh."""
    return "'" + s.replace("'", "'\\''") + "'"


def _zdesc(s: str) -> str:
    """A description inside _arguments' [...]: brackets and backslashes escaped, one line."""
    return _first_line(s).replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]").replace(":", "\\:")


def _zsh_opt_specs(opts: list[Opt], desc: bool) -> list[str]:
    specs = []
    for o in [*opts, O("help", help="Print usage")]:
        d = f"[{_zdesc(o.help)}]" if desc else "[]"
        repeat = o.kind == "list"
        names = [f"--{o.long}"] + ([f"-{o.short}"] if o.short else [])
        excl = "" if repeat else "(" + " ".join(names) + ")"
        star = "*" if repeat else ""
        for n in names:
            if o.kind == "bool":
                specs.append(_zq(f"{excl}{star}{n}{d}"))
            else:
                suffix = "=" if n.startswith("--") else "+"
                specs.append(_zq(f"{excl}{star}{n}{suffix}{d}:{o.long}: "))
    return specs


ZSH_HEAD = """#compdef gorae
# zsh completion for gorae

__gorae_containers() {
    local -a names
    names=(${(f)"$(gorae ps -a --format '{{.Names}}' 2>/dev/null)"})
    _describe -t containers 'container' names
}

__gorae_images() {
    local -a names
    names=(${(f)"$(gorae images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null)"})
    names=(${names:#*<none>*})
    names=(${names//:/\\\\:})
    _describe -t images 'image' names
}

__gorae_commands() {
    local -a cmds
    cmds=(
%(top)s
    )
    _describe -t commands 'gorae command' cmds
}
"""

ZSH_TAIL = """
_gorae() {
    local curcontext="$curcontext" state line ret=1
    typeset -A opt_args
    _arguments -C \\
        '(-H --host)'{-H+,--host=}'[Daemon socket to connect to]:host: ' \\
        '(-D --debug)'{-D,--debug}'[Enable debug mode]' \\
        '--config=[Location of client config files]:config:_files -/' \\
        '--tls[Use TLS; implied by --tlsverify]' \\
        '--tlsverify[Use TLS and verify the remote]' \\
        '--tlscacert=[Trust certs signed only by this CA]:file:_files' \\
        '--tlscert=[Path to TLS certificate file]:file:_files' \\
        '--tlskey=[Path to TLS key file]:file:_files' \\
        '(- :)'{-v,--version}'[Print version information and quit]' \\
        '(- :)--help[Print usage]' \\
        '1: :__gorae_commands' \\
        '*:: :->args' && ret=0
    case $state in
        args)
            local cmd=$words[1]
            case $cmd in
%(mgmt)s
                *)
                    if (( $+functions[__gorae_cmd_$cmd] )); then
                        __gorae_cmd_$cmd && ret=0
                    fi ;;
            esac ;;
    esac
    return ret
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _gorae "$@"
else
    compdef _gorae gorae
fi
"""


def zsh_script(desc: bool = True) -> str:
    top, subs, cmds = _table()

    def entry(word: str, d: str) -> str:
        return "        " + _zq(f"{word}:{_first_line(d)}" if desc else word)

    parts = [ZSH_HEAD % {"top": "\n".join(entry(w, d) for w, d in top)}]
    for m, ss in subs.items():
        parts.append(
            f"\n__gorae_subcommands_{m}() {{\n    local -a subs\n    subs=(\n"
            + "\n".join(entry(s, d) for s, d in ss)
            + f"\n    )\n    _describe -t commands 'gorae {m} command' subs\n}}\n"
        )
    for c in cmds:
        action = {"image": "__gorae_images", "container": "__gorae_containers"}.get(c.arg_kind)
        args = _zsh_opt_specs(c.opts, desc)
        if c.key in ("run", "create"):
            args += ["'1:image:__gorae_images'", "'*::command:_normal'"]
        elif action:
            args.append(f"'*:{c.arg_kind}:{action}'")
        body = " \\\n        ".join(["_arguments -s -S", *args])
        parts.append(f"\n__gorae_cmd_{c.ident}() {{\n    {body}\n}}\n")
    mgmt = "\n".join(
        f"                {m})\n"
        "                    if (( CURRENT == 2 )); then\n"
        f"                        __gorae_subcommands_{m} && ret=0\n"
        "                    else\n"
        f"                        local fn=__gorae_cmd_{m}_${{words[2]//-/_}}\n"
        "                        shift words; (( CURRENT-- ))\n"
        "                        (( $+functions[$fn] )) && $fn && ret=0\n"
        "                    fi ;;"
        for m in subs
    )
    parts.append(ZSH_TAIL % {"mgmt": mgmt})
    return "".join(parts)


# -- fish ------------------------------------------------------------------------------------------


def _fq(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


FISH_HEAD = """# fish completion for gorae
function __gorae_containers
    gorae ps -a --format '{{.Names}}' 2>/dev/null
end

function __gorae_images
    gorae images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | string match -v '*<none>*'
end

complete -c gorae -f
complete -c gorae -n __fish_use_subcommand -s H -l host -r -d 'Daemon socket to connect to'
complete -c gorae -n __fish_use_subcommand -s v -l version -d 'Print version information and quit'
"""


def fish_script(desc: bool = True) -> str:
    top, subs, cmds = _table()

    def d(text: str) -> str:
        return f" -d {_fq(_first_line(text))}" if desc and text else ""

    lines = [FISH_HEAD]
    for w, text in top:
        lines.append(f"complete -c gorae -n __fish_use_subcommand -a {w}{d(text)}\n")
    for m, ss in subs.items():
        names = " ".join(s for s, _ in ss)
        cond = _fq(f"__fish_seen_subcommand_from {m}; and not __fish_seen_subcommand_from {names}")
        for s, text in ss:
            lines.append(f"complete -c gorae -n {cond} -a {s}{d(text)}\n")
    for c in cmds:
        words = c.word.split()
        cond_s = "; and ".join(f"__fish_seen_subcommand_from {w}" for w in words)
        if len(words) == 1 and words[0] in subs:
            continue
        cond = _fq(cond_s)
        for o in [*c.opts, O("help", help="Print usage")]:
            short = f" -s {o.short}" if o.short else ""
            req = "" if o.kind == "bool" else " -r"
            lines.append(f"complete -c gorae -n {cond}{short} -l {o.long}{req}{d(o.help)}\n")
        if c.arg_kind == "image":
            lines.append(f"complete -c gorae -n {cond} -a '(__gorae_images)'\n")
        elif c.arg_kind == "container":
            lines.append(f"complete -c gorae -n {cond} -a '(__gorae_containers)'\n")
    return "".join(lines)


# -- powershell ------------------------------------------------------------------------------------


def _pq(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


POWERSHELL = """# powershell completion for gorae
$__goraeCommands = @(%(top)s)
$__goraeSubcommands = @{
%(subs)s
}
$__goraeFlags = @{
%(flags)s
}
Register-ArgumentCompleter -CommandName 'gorae' -Native -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)
    $words = @($commandAst.CommandElements | Select-Object -Skip 1 | ForEach-Object { $_.ToString() } |
        Where-Object { -not $_.StartsWith('-') -and $_ -ne $wordToComplete })
    $candidates = @()
    if ($words.Count -eq 0) {
        $candidates = $__goraeCommands
    } elseif ($__goraeSubcommands.ContainsKey($words[0]) -and $words.Count -eq 1) {
        $candidates = $__goraeSubcommands[$words[0]]
    } else {
        $key = $words[0]
        if ($__goraeSubcommands.ContainsKey($words[0]) -and $words.Count -gt 1) { $key = $words[0] + '_' + $words[1] }
        if ($wordToComplete.StartsWith('-')) {
            $candidates = $__goraeFlags[$key]
        } elseif (@('run', 'create', 'rmi', 'tag', 'history', 'save', 'pull', 'push', 'image_inspect') -contains $key) {
            $candidates = @(gorae images --format '{{.Repository}}:{{.Tag}}' 2>$null)
        } else {
            $candidates = @(gorae ps -a --format '{{.Names}}' 2>$null)
        }
    }
    $candidates | Where-Object { $_ -like "$wordToComplete*" } | ForEach-Object {
        [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_)
    }
}
"""


def powershell_script() -> str:
    top, subs, cmds = _table()
    return POWERSHELL % {
        "top": ", ".join(_pq(w) for w, _ in top),
        "subs": "\n".join(f"    {_pq(m)} = @({', '.join(_pq(s) for s, _ in ss)})" for m, ss in subs.items()),
        "flags": "\n".join(
            f"    {_pq(c.word.replace(' ', '_'))} = @({', '.join(_pq(f) for f in _flag_words(c.opts))})"
            for c in cmds
        ),
    }


def _handler(shell: str) -> Any:
    def cmd(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
        if args:
            raise StatusError(1, f'unknown command "{args[0]}" for "{PROG} completion {shell}"')
        desc = not v["no_descriptions"]
        if shell == "bash":
            cli.out.write(bash_script())
        elif shell == "zsh":
            cli.out.write(zsh_script(desc))
        elif shell == "fish":
            cli.out.write(fish_script(desc))
        else:
            cli.out.write(powershell_script())
        return 0

    return cmd


COMMANDS = {f"completion {s}": (_spec(s), _handler(s)) for s in SHELLS}
