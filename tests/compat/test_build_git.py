"""Git URL build contexts: `gorae build URL` and `docker build URL` (both CLIs clone, then send a directory
context) against gorae and a real dockerd, and docker-py's `images.build(path=URL)` (the daemon clones).
The repositories are served here: `git daemon` (git://) and `git http-backend` behind a small HTTP server
(smart HTTP, shallow fetches), nothing from the internet."""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import docker
import pytest
from conftest import skip_outside_ci, wait_for

NET = ["--network", "none"]


@dataclass
class Repo:
    git_url: str  # git://127.0.0.1:PORT/repo.git
    http_url: str  # http://127.0.0.1:PORT/repo.git (smart HTTP)
    main: str  # commit ids
    dev: str


def _git(cwd: str, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _make_repo(base: str) -> tuple[str, str]:
    """A bare repository `repo.git` under `base`: main (tag v1) and dev, both with Dockerfiles."""
    src = os.path.join(base, "src")
    os.makedirs(os.path.join(src, "sub"))
    _git(src, "init", "-q", "-b", "main")
    _git(src, "config", "user.email", "t@example.com")
    _git(src, "config", "user.name", "t")
    with open(os.path.join(src, "Dockerfile"), "w") as f:
        f.write("FROM busybox\nCOPY . /ctx/\n")
    with open(os.path.join(src, "sub", "Dockerfile"), "w") as f:
        f.write("FROM busybox\nCOPY . /sub/\n")
    with open(os.path.join(src, "sub", "f.txt"), "w") as f:
        f.write("one\n")
    _git(src, "add", "-A")
    _git(src, "commit", "-qm", "one")
    _git(src, "tag", "v1")
    main = _git(src, "rev-parse", "HEAD")
    _git(src, "checkout", "-qb", "dev")
    with open(os.path.join(src, "sub", "f.txt"), "w") as f:
        f.write("two\n")
    _git(src, "commit", "-qam", "two")
    dev = _git(src, "rev-parse", "HEAD")
    _git(base, "clone", "-q", "--bare", "src", "repo.git")
    shutil.rmtree(src)
    return main, dev


class _Backend(http.server.BaseHTTPRequestHandler):
    """`git http-backend` as CGI: each request runs it with the CGI variables, its answer relayed."""

    root = ""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _cgi(self) -> None:
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = dict(
            os.environ,
            GIT_PROJECT_ROOT=self.root,
            GIT_HTTP_EXPORT_ALL="1",
            PATH_INFO=path,
            QUERY_STRING=query,
            REQUEST_METHOD=self.command,
            CONTENT_TYPE=self.headers.get("Content-Type") or "",
            CONTENT_LENGTH=str(len(body)),
            REMOTE_ADDR="127.0.0.1",
        )
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        r = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, check=False)
        head, _, out = r.stdout.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_POST = do_HEAD = _cgi


@pytest.fixture(scope="module")
def repo() -> Iterator[Repo]:
    if shutil.which("git") is None:
        skip_outside_ci("git is not installed")
    base = tempfile.mkdtemp(prefix="gorae-git-test-")
    daemon: subprocess.Popen[bytes] | None = None
    server: http.server.ThreadingHTTPServer | None = None
    try:
        main, dev = _make_repo(base)
        with socket_port() as port:
            pass
        daemon = subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                "--listen=127.0.0.1",
                f"--port={port}",
                f"--base-path={base}",
                "--export-all",
                base,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        git_url = f"git://127.0.0.1:{port}/repo.git"
        wait_for(
            lambda: subprocess.run(["git", "ls-remote", git_url], capture_output=True).returncode == 0,
            timeout=20,
        )
        handler = type("Backend", (_Backend,), {"root": base})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        http_url = f"http://127.0.0.1:{server.server_address[1]}/repo.git"
        yield Repo(git_url, http_url, main, dev)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        if daemon is not None:
            daemon.terminate()
            daemon.wait(10)
        shutil.rmtree(base, ignore_errors=True)


class socket_port:
    """A free TCP port on 127.0.0.1 (bound to find it, released on exit)."""

    def __enter__(self) -> int:
        import socket

        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        return int(self.s.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.s.close()


@pytest.fixture
def tags(daemon: Any) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for t in made:
        daemon.docker("rmi", "-f", t)


def _no_clones_left() -> list[str]:
    return [d for d in os.listdir(tempfile.gettempdir()) if d.startswith("docker-build-git")]


def _docker(dk: Any, *args: str) -> Any:
    os.environ["DOCKER_BUILDKIT"] = "0"
    try:
        return dk(*args)
    finally:
        os.environ.pop("DOCKER_BUILDKIT", None)


@pytest.mark.parametrize("cli", ["gorae", "docker"])
def test_build_from_a_git_url_ref_and_subdir(repo: Repo, g: Any, dk: Any, tags: list[str], cli: str) -> None:
    """`#dev:sub`: the dev branch's sub/ as the context (no .git in it); `#v1`: the tag's whole checkout,
    its .git included (the docker CLI sends it); over git:// and smart HTTP. The gorae CLI removes its clone
    (the docker CLI leaves the clone of a `:subdir` URL behind: it removes only the subdirectory)."""
    before = _no_clones_left()
    try:
        _build_both(repo, g if cli == "gorae" else (lambda *a: _docker(dk, *a)), tags)
        if cli == "gorae":
            assert _no_clones_left() == before
    finally:
        for d in set(_no_clones_left()) - set(before):
            shutil.rmtree(os.path.join(tempfile.gettempdir(), d), ignore_errors=True)


def _build_both(repo: Repo, run: Any, tags: list[str]) -> None:
    for url, path, want in [
        (repo.git_url + "#dev:sub", "/sub", ["Dockerfile", "f.txt"]),
        (repo.http_url + "#v1", "/ctx", [".git", "Dockerfile", "sub"]),
    ]:
        tag = f"git-{uuid.uuid4().hex[:8]}:1"
        tags.append(tag)
        r = run("build", *NET, "-q", "-t", tag, url)
        assert r.returncode == 0, r.stderr
        r = run(
            "run",
            "--rm",
            *NET,
            tag,
            "sh",
            "-c",
            f"ls -A {path}; cat {path}/f.txt {path}/sub/f.txt 2>/dev/null; true",
        )
        assert r.returncode == 0, r.stderr
        content = "two" if "dev" in url else "one"
        assert r.stdout.split() == want + [content]


def test_git_errors_are_the_docker_clis(repo: Repo, g: Any, dk: Any) -> None:
    """The same messages and exit code as the docker CLI for a missing ref (and `master`, the default one
    when the URL names none), a missing subdirectory and a file as one."""
    port = repo.git_url.split(":")[2].split("/")[0]
    for frag, want in [
        ("", "error fetching: fatal: couldn't find remote ref master\n: exit status 128"),
        ("#nope", "error fetching: fatal: couldn't find remote ref nope\n: exit status 128"),
        ("#main:nodir", "stat /tmp/docker-build-git<N>/nodir: no such file or directory"),
        ("#main:sub/f.txt", "error setting git context, not a directory: /tmp/docker-build-git<N>/sub/f.txt"),
    ]:
        url = f"git://127.0.0.1:{port}/repo.git{frag}"
        outs = []
        for run in (g, lambda *a: _docker(dk, *a)):
            r = run("build", *NET, "-q", url)
            err = "\n".join(
                line
                for line in r.stderr.splitlines()
                if "DEPRECATED" not in line
                and "BuildKit" not in line
                and "buildx" not in line
                and "environment-variable" not in line
                and line.strip()
            )
            outs.append((r.returncode, _mask(err)))
        prefix = "unable to prepare context: unable to 'git clone' to temporary context directory: "
        assert outs[0] == outs[1] == (1, _mask(prefix + want).strip().replace("\n\n", "\n")), outs


def _mask(s: str) -> str:
    import re

    return re.sub(r"docker-build-git\w+", "docker-build-git<N>", s).strip()


def test_docker_py_remote_git_context_is_cloned_by_the_daemon(
    repo: Repo, docker_client: docker.DockerClient
) -> None:
    """`images.build(path=URL)` sends `remote=URL`: the daemon fetches it (smart HTTP: shallow; git://),
    `#ref:subdir` as docker reads it; a missing ref is an error naming git's output."""
    tags = []
    try:
        for url, cmd, want in [
            (repo.http_url + "#dev:sub", "cat /sub/f.txt", b"two\n"),
            (
                repo.git_url + "#" + repo.main,
                "cat /ctx/sub/f.txt; ls -A /ctx",
                b"one\n.git\nDockerfile\nsub\n",
            ),
        ]:
            tag = f"gitpy-{uuid.uuid4().hex[:8]}:1"
            tags.append(tag)
            docker_client.images.build(path=url, tag=tag, network_mode="none", rm=True)
            assert (
                docker_client.containers.run(tag, ["sh", "-c", cmd], remove=True, network_mode="none") == want
            )
            shallow = docker_client.containers.run(
                tag,
                ["sh", "-c", "cat /ctx/.git/shallow 2>/dev/null || echo none"],
                remove=True,
                network_mode="none",
            )
            assert shallow == (repo.main.encode() + b"\n" if "ctx" in cmd else b"none\n")
        with pytest.raises(
            (docker.errors.BuildError, docker.errors.APIError),
            match="error fetching: fatal: couldn't find remote ref nope",
        ):
            docker_client.images.build(path=repo.git_url + "#nope", network_mode="none")
    finally:
        for t in tags:
            try:
                docker_client.images.remove(t, force=True)
            except docker.errors.NotFound:
                pass
