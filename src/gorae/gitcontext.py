"""Git URL build contexts as docker reads them (a base module: the CLI clones for `gorae build URL`, as the
docker CLI does; the daemon for `POST /build?remote=URL`, as dockerd does).

Owns `is_git_url` (docker's urlutil.IsGitURL), `parse` (the URL, `#ref:subdir`; the ref defaults to
`master`, a ref starting with `-` is refused) and `clone`, which runs the git binary the way docker's
gitutils does: `git init`, `remote add origin`, `fetch --depth 1 origin -- REF` (no `--depth` over "dumb"
HTTP), `checkout REF` or else `checkout FETCH_HEAD` (a tag or a commit), `submodule update --init
--recursive --depth=1`, every command with `-c protocol.file.allow=never`. The checkout keeps its `.git`
(docker sends it as part of the context); a subdirectory is followed inside the clone only. Errors carry
docker's texts and git's output."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from gorae.errors import InvalidParameter

_GIT_SUFFIX = re.compile(r"\.git(?:#.+)?$")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
TIMEOUT = 600.0
_MAX_LINKS = 255


class GitError(InvalidParameter):
    """A git context that could not be fetched or checked out (docker's wording after its prefix)."""


@dataclass(frozen=True)
class GitRemote:
    remote: str
    ref: str
    subdir: str


def _scheme(url: str) -> str:
    m = _SCHEME.match(url)
    return m.group(1).lower() if m else ""


def is_git_url(s: str) -> bool:
    """git://, git@, github.com/, or an http(s) URL whose path ends in .git (before any #fragment)."""
    if s.startswith(("git://", "github.com/", "git@")):
        return True
    return _scheme(s) in ("http", "https") and _GIT_SUFFIX.search(s) is not None


def parse(url: str) -> GitRemote:
    """The remote to fetch, the ref (default `master`) and the subdirectory of a git context URL."""
    if not (url.startswith("git@") or _scheme(url) in ("git", "http", "https", "ssh")):
        url = "https://" + url
    remote, _, fragment = url.partition("#")
    ref_part, _, subdir = fragment.partition(":")
    ref = ref_part or "master"
    if ref.startswith("-"):
        raise GitError(f"invalid refspec: {ref}")
    return GitRemote(remote, ref, subdir)


def supports_shallow(remote: str) -> bool:
    """docker's check: an http(s) remote fetches shallow only from a "smart" server (one that answers the
    upload-pack service query with its advertisement); other transports always do."""
    if _scheme(remote) not in ("http", "https"):
        return True
    import urllib.error
    import urllib.request

    url = remote + "/info/refs?service=git-upload-pack"
    for method in ("HEAD", "GET"):
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=60) as resp:  # noqa: S310
                return bool(resp.headers.get("Content-Type") == "application/x-git-upload-pack-advertisement")
        except (urllib.error.URLError, OSError, ValueError):
            continue
    return False


def _git(cwd: str, *args: str) -> tuple[int, str]:
    r = subprocess.run(
        ["git", "-c", "protocol.file.allow=never", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, GIT_PROTOCOL_FROM_USER="0", GIT_TERMINAL_PROMPT="0"),
        timeout=TIMEOUT,
        check=False,
    )
    return r.returncode, r.stdout.decode("utf-8", errors="replace")


def clone(url: str, parent: str | None = None) -> tuple[str, str]:
    """Fetch `url` into a new directory under `parent` (the system's temporary directory by default):
    (that directory, the context directory in it). The caller removes the first. GitError on failure
    (nothing left behind)."""
    repo = parse(url)
    if shutil.which("git") is None:
        raise GitError("unable to find 'git': executable file not found in $PATH")
    root = tempfile.mkdtemp(prefix="docker-build-git", dir=parent)
    try:
        return root, _fetch_into(root, repo)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def _fetch_into(root: str, repo: GitRemote) -> str:
    for args in (("init",), ("remote", "add", "origin", repo.remote)):
        code, out = _git(root, *args)
        if code:
            raise GitError(f"failed to {args[0]} repo at {root}: {out}: exit status {code}")
    fetch = ["fetch", *(["--depth", "1"] if supports_shallow(repo.remote) else []), "origin", "--", repo.ref]
    code, out = _git(root, *fetch)
    if code:
        raise GitError(f"error fetching: {out}: exit status {code}")
    code, out = _git(root, "checkout", repo.ref)
    if code and _git(root, "checkout", "FETCH_HEAD")[0]:
        raise GitError(f"error checking out {repo.ref}: {out}: exit status {code}")
    r = subprocess.run(
        ["git", "submodule", "update", "--init", "--recursive", "--depth=1"],
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=dict(os.environ, GIT_PROTOCOL_FROM_USER="0", GIT_TERMINAL_PROMPT="0"),
        timeout=TIMEOUT,
        check=False,
    )
    if r.returncode:
        out = r.stdout.decode("utf-8", errors="replace")
        raise GitError(f"error initializing submodules: {out}: exit status {r.returncode}")
    if not repo.subdir:
        return root
    ctx = _in_scope(root, repo.subdir)
    if not os.path.exists(ctx):
        raise GitError(f"stat {ctx}: no such file or directory")
    if not os.path.isdir(ctx):
        raise GitError(f"error setting git context, not a directory: {ctx}")
    return ctx


def _in_scope(root: str, subdir: str) -> str:
    """`subdir` under `root` with symlinks followed as if `root` were `/` (docker's FollowSymlinkInScope):
    nothing outside the clone is reached."""
    parts = [p for p in subdir.split("/") if p not in ("", ".")]
    done: list[str] = []
    links = 0
    while parts:
        p = parts.pop(0)
        if p == "..":
            if done:
                done.pop()
            continue
        path = os.path.join(root, *done, p)
        if os.path.islink(path):
            links += 1
            if links > _MAX_LINKS:
                raise GitError(f"error setting git context, too many links in {subdir}")
            target = os.readlink(path)
            if target.startswith("/"):
                done = []
            parts = [x for x in target.split("/") if x not in ("", ".")] + parts
            continue
        done.append(p)
    return os.path.join(root, *done)
