"""The git side of a deploy: creating or adopting the repository, its `gorae.*` settings (git config), the
pre-receive hook gorae installs, and exporting a commit as a build context (`git archive`: the committed tree,
never a work tree)."""

from __future__ import annotations

import os
import subprocess
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO

HOOK_MARK = "# installed by `gorae deploy init`"
ZERO = "0" * 40


class GitError(Exception):
    """A git command failed; the message carries its stderr."""


def git(args: list[str], *, git_dir: str | None = None, stdout: IO[bytes] | None = None) -> str:
    env = dict(os.environ)
    if git_dir is not None:
        env["GIT_DIR"] = git_dir
    r = subprocess.run(
        ["git", *args],
        env=env,
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    if r.returncode != 0:
        err = r.stderr.decode("utf-8", "replace").strip()
        raise GitError(f"git {' '.join(args)}: {err or f'exit status {r.returncode}'}")
    return "" if stdout is not None else r.stdout.decode("utf-8", "replace")


def git_dir_of(path: str) -> str | None:
    """The git directory of the repository at `path` (bare or not), None when `path` is not one."""
    if not os.path.isdir(path):
        return None
    r = subprocess.run(["git", "-C", path, "rev-parse", "--absolute-git-dir"], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    gd = r.stdout.strip()
    # a directory inside some other repository's work tree is not "a repository at path"
    top = subprocess.run(["git", "-C", path, "rev-parse", "--show-toplevel"], capture_output=True, text=True)
    if top.returncode == 0 and os.path.realpath(top.stdout.strip()) != os.path.realpath(path):
        return None
    if top.returncode != 0 and os.path.realpath(gd) != os.path.realpath(path):
        return None
    return gd


def create_or_adopt(path: str, branch: str, bare: bool) -> tuple[str, bool]:
    """The git dir of the repository at `path`, created (bare unless `bare` is False) when absent; and whether
    it was created. A non-bare repository is set to `receive.denyCurrentBranch updateInstead` so a push to its
    checked-out branch is accepted (the deploy itself always builds the pushed commit, not the work tree)."""
    gd = git_dir_of(path)
    created = False
    if gd is None:
        if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
            raise GitError(f"{path} exists and is not a git repository")
        args = ["init", "-q", f"--initial-branch={branch}"]
        if bare:
            args.append("--bare")
        git([*args, path])
        gd = git_dir_of(path)
        if gd is None:
            raise GitError(f"git init {path} made no repository")
        created = True
    if git(["rev-parse", "--is-bare-repository"], git_dir=gd).strip() != "true":
        git(["config", "receive.denyCurrentBranch", "updateInstead"], git_dir=gd)
    return gd, created


def set_config(git_dir: str, settings: dict[str, list[str]]) -> None:
    """Replace the `gorae.*` settings with `settings` (key -> values; an empty list removes the key)."""
    for key, values in settings.items():
        subprocess.run(["git", "config", "--unset-all", f"gorae.{key}"], env={**os.environ, "GIT_DIR": git_dir},
                       capture_output=True)  # fmt: skip
        for v in values:
            git(["config", "--add", f"gorae.{key}", v], git_dir=git_dir)


def get_config(git_dir: str) -> dict[str, list[str]]:
    """Every `gorae.*` setting of the repository: key (lower case, as git reports it) -> values in order."""
    r = subprocess.run(
        ["git", "config", "-z", "--get-regexp", r"^gorae\."],
        env={**os.environ, "GIT_DIR": git_dir},
        capture_output=True,
    )
    if r.returncode not in (0, 1):
        raise GitError(f"git config: {r.stderr.decode('utf-8', 'replace').strip()}")
    return parse_config_z(r.stdout.decode("utf-8", "replace"))


def parse_config_z(text: str) -> dict[str, list[str]]:
    """`git config -z --get-regexp ^gorae\\.` output ("key\\nvalue\\0" records) → key without "gorae." → values."""
    out: dict[str, list[str]] = {}
    for rec in text.split("\0"):
        if not rec.startswith("gorae."):
            continue
        key, _, value = rec.partition("\n")
        out.setdefault(key[len("gorae.") :], []).append(value)
    return out


def hook_text(state_dir: str, host: str) -> str:
    """The pre-receive hook: runs this gorae (this interpreter, this package) on the pushed refs. Its stdout
    and stderr reach the pusher's terminal; a non-zero exit refuses the push."""
    import shlex

    import gorae

    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(gorae.__file__)))
    argv = [sys.executable, "-m", "gorae.cmd.main"]
    if host:
        argv += ["-H", host]
    argv += ["deploy", "hook"]
    return (
        "#!/bin/sh\n"
        f"{HOOK_MARK}: every push to the deploy branch is built and checked by gorae before it is accepted\n"
        f"PYTHONPATH={shlex.quote(pkg_parent)}${{PYTHONPATH:+:$PYTHONPATH}}\n"
        f"GORAE_DEPLOY_DIR={shlex.quote(state_dir)}\n"
        "PYTHONUNBUFFERED=1\n"
        "export PYTHONPATH GORAE_DEPLOY_DIR PYTHONUNBUFFERED\n"
        f"exec {' '.join(shlex.quote(a) for a in argv)}\n"
    )


def install_hook(git_dir: str, text: str) -> str:
    """Write hooks/pre-receive (0755). A hook that gorae did not install is kept as pre-receive.orig."""
    hooks = os.path.join(git_dir, "hooks")
    os.makedirs(hooks, exist_ok=True)
    path = os.path.join(hooks, "pre-receive")
    if os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as f:
            old = f.read()
        if HOOK_MARK not in old:
            os.replace(path, path + ".orig")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)
    return path


def archive(git_dir: str, commit: str, out: IO[bytes]) -> None:
    """The committed tree of `commit` as a tar (the build context)."""
    git(["archive", "--format=tar", commit], git_dir=git_dir, stdout=out)


def commit_subject(git_dir: str, commit: str) -> str:
    try:
        return git(["log", "-1", "--format=%s", commit], git_dir=git_dir).strip()
    except GitError:
        return ""


def parse_push_lines(text: str) -> list[tuple[str, str, str]]:
    """pre-receive's stdin: "<old> <new> <ref>" per line → [(old, new, ref)]; malformed lines are ignored."""
    out: list[tuple[str, str, str]] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        old, new, ref = parts
        if all(len(x) in (40, 64) and all(c in "0123456789abcdef" for c in x) for x in (old, new)):
            out.append((old, new, ref))
    return out


def checkout_blocks_push(git_dir: str, ref: str) -> str:
    """Why a push to `ref` would fail after the hook (a non-bare repository with `updateInstead` whose work
    tree has uncommitted changes on that branch), or "" when it will not. Checked before deploying, so a
    deploy never goes live for a push that is then refused."""
    if git(["rev-parse", "--is-bare-repository"], git_dir=git_dir).strip() == "true":
        return ""
    try:
        mode = git(["config", "receive.denyCurrentBranch"], git_dir=git_dir).strip()
        head = git(["symbolic-ref", "-q", "HEAD"], git_dir=git_dir).strip()
    except GitError:
        return ""
    if mode != "updateInstead" or head != ref:
        return ""
    top = os.path.dirname(git_dir.rstrip("/"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k in ("GIT_OBJECT_DIRECTORY",
           "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_QUARANTINE_PATH")}  # fmt: skip
    if subprocess.run(
        ["git", "-C", top, "rev-parse", "-q", "--verify", "HEAD"], env=env, capture_output=True
    ).returncode:
        return ""  # an unborn branch: nothing to compare with
    subprocess.run(["git", "-C", top, "update-index", "-q", "--refresh"], env=env, capture_output=True)
    r = subprocess.run(
        ["git", "-C", top, "diff-index", "--quiet", "HEAD", "--"], env=env, capture_output=True
    )
    if r.returncode == 0:
        return ""
    return f"the work tree {top} has uncommitted changes, so git would refuse to update it"
