"""`gorae completion bash|zsh`: shell completion scripts generated from the command table and flag specs;
container and image names are completed by calling `gorae ps`/`gorae images` with Go templates."""

from __future__ import annotations

import importlib
from typing import Any

from gorae.cli.context import Cli, StatusError
from gorae.cli.flags import Spec

COMPLETION = Spec(
    "completion",
    "[bash|zsh]",
    "Generate the autocompletion script for the specified shell",
    [],
    min_args=1,
    max_args=1,
    exact_args=True,
)


def _words() -> tuple[list[str], dict[str, list[str]], dict[str, list[str]]]:
    from gorae.cli.main import HANDLERS, MANAGEMENT, TOP

    top = sorted(set(TOP) | set(MANAGEMENT) | {"daemon"})
    subs = {m: sorted(s) for m, (_, s) in MANAGEMENT.items()}
    flags: dict[str, list[str]] = {}
    for word, key in list(TOP.items()) + [
        (f"{m}_{s}", k) for m, (_, ss) in MANAGEMENT.items() for s, k in ss.items()
    ]:
        mod = importlib.import_module(f"gorae.cli.commands.{HANDLERS[key][0]}")
        spec: Spec = mod.COMMANDS[key][0]
        fl = ["--help"]
        for o in spec.opts:
            if o.hidden:
                continue
            fl.append(f"--{o.long}")
            if o.short:
                fl.append(f"-{o.short}")
        flags[word.replace(" ", "_")] = fl
    return top, subs, flags


BASH = """# bash completion for gorae
_gorae_containers() { gorae ps -a --format '{{.Names}}' 2>/dev/null; }
_gorae_images() { gorae images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep -v '<none>'; }
_gorae() {
    local cur="${COMP_WORDS[COMP_CWORD]}" cmd="" sub="" i
    for ((i=1; i<COMP_CWORD; i++)); do
        case "${COMP_WORDS[i]}" in -*) ;; *) if [ -z "$cmd" ]; then cmd="${COMP_WORDS[i]}"; elif [ -z "$sub" ]; then sub="${COMP_WORDS[i]}"; fi ;; esac
    done
    if [ -z "$cmd" ]; then COMPREPLY=($(compgen -W "%(top)s" -- "$cur")); return; fi
    case "$cmd" in
%(subcases)s
    esac
    local key="$cmd"; [ -n "$sub" ] && [ -n "${_gorae_mgmt[$cmd]}" ] && key="${cmd}_${sub}"
    if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "${_gorae_flags[$key]}" -- "$cur")); return; fi
    case "$key" in
        run|create|images|rmi|tag|history|save|image_*|container_run|container_create) COMPREPLY=($(compgen -W "$(_gorae_images)" -- "$cur")) ;;
        *) COMPREPLY=($(compgen -W "$(_gorae_containers)" -- "$cur")) ;;
    esac
}
declare -A _gorae_flags=(
%(flags)s
)
declare -A _gorae_mgmt=(%(mgmt)s)
complete -F _gorae gorae
"""

ZSH = """#compdef gorae
# zsh completion for gorae (uses bash completion emulation)
autoload -U +X bashcompinit && bashcompinit
%(bash)s
"""


def bash_script() -> str:
    top, subs, flags = _words()
    subcases = "\n".join(
        f'        {m}) if [ -z "$sub" ]; then COMPREPLY=($(compgen -W "{" ".join(s)}" -- "$cur")); return; fi ;;'
        for m, s in subs.items()
    )
    flag_lines = "\n".join(f'    [{k}]="{" ".join(v)}"' for k, v in sorted(flags.items()))
    mgmt = " ".join(f"[{m}]=1" for m in subs)
    return BASH % {"top": " ".join(top), "subcases": subcases, "flags": flag_lines, "mgmt": mgmt}


def cmd_completion(cli: Cli, v: dict[str, Any], args: list[str]) -> int:
    shell = args[0]
    if shell == "bash":
        cli.out.write(bash_script())
    elif shell == "zsh":
        cli.out.write(ZSH % {"bash": bash_script()})
    else:
        raise StatusError(1, f'unsupported shell "{shell}": use bash or zsh')
    return 0


COMMANDS = {"completion": (COMPLETION, cmd_completion)}
