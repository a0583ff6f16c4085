"""`docker build` (DOCKER_BUILDKIT=0) and `gorae build` against both targets (gorae, and the real dockerd's
classic builder): the same Dockerfiles give the same output lines, configs and histories."""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

NET = ["--network", "none"]


def _env_dk(dk: Any) -> Any:
    def run(*args: str, **kw: Any) -> Any:
        os.environ["DOCKER_BUILDKIT"] = "0"
        try:
            return dk(*args, **kw)
        finally:
            os.environ.pop("DOCKER_BUILDKIT", None)

    return run


@pytest.fixture
def tags(daemon: Any) -> Any:
    made: list[str] = []
    yield made
    for t in made:
        daemon.docker("rmi", "-f", t)
    daemon.docker("image", "prune", "-f")
    daemon.docker("builder", "prune", "-f")


def _ctx(tmp_path: Path, files: dict[str, str]) -> str:
    for name, content in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content)
    return str(tmp_path)


def _norm(out: str) -> list[str]:
    """Output lines with IDs and sizes masked."""
    out = re.sub(r"[0-9a-f]{12}", "<id>", out)
    out = re.sub(r"daemon  \S+", "daemon  <size>", out)
    return [line for line in out.splitlines() if line.strip()]


DOCKERFILE = """FROM busybox
ARG V=one
ENV A=1 B="two words"
LABEL org.test=${V}
COPY a.txt /data/
WORKDIR /data
RUN echo run-$V-$A > out.txt
EXPOSE 8080/tcp 53/udp
USER root
VOLUME /vol
STOPSIGNAL SIGTERM
CMD ["cat", "out.txt"]
"""


def test_docker_cli_build_output_and_image(
    dk: Any, g: Any, daemon: Any, tags: list[str], tmp_path: Path
) -> None:
    tag = f"bt-{uuid.uuid4().hex[:8]}:1"
    tags.append(tag)
    ctx = _ctx(tmp_path, {"Dockerfile": DOCKERFILE, "a.txt": "hello\n"})
    r = _env_dk(dk)("build", *NET, "-t", tag, ctx, timeout=180)
    assert r.returncode == 0, r.stderr
    lines = _norm(r.stdout)
    assert lines[0] == "Sending build context to Docker daemon  <size>"
    assert lines[1:4] == ["Step 1/12 : FROM busybox", " ---> <id>", "Step 2/12 : ARG V=one"]
    assert "Step 7/12 : RUN echo run-$V-$A > out.txt" in lines
    i = lines.index("Step 7/12 : RUN echo run-$V-$A > out.txt")
    assert lines[i + 1] == " ---> Running in <id>"
    assert lines[i + 2 : i + 4] == ["Removing intermediate container <id>", " ---> <id>"]
    assert lines[-2:] == ["Successfully built <id>", f"Successfully tagged {tag}"]
    r = dk("run", "--rm", *NET, tag)
    assert r.stdout == "run-one-1\n", r.stderr
    cfg = json.loads(dk("image", "inspect", tag).stdout)[0]["Config"]
    assert cfg["Env"][-2:] == ["A=1", "B=two words"]
    assert cfg["Labels"] == {"org.test": "one"}
    assert cfg["ExposedPorts"] == {"53/udp": {}, "8080/tcp": {}}
    assert cfg["User"] == "root" and cfg["WorkingDir"] == "/data" and cfg["Volumes"] == {"/vol": {}}
    assert cfg["StopSignal"] == "SIGTERM" and cfg["Cmd"] == ["cat", "out.txt"]
    hist = dk("history", "--no-trunc", "--format", "{{.CreatedBy}}", tag).stdout.splitlines()
    assert hist[:8] == [
        '/bin/sh -c #(nop)  CMD ["cat" "out.txt"]',
        "/bin/sh -c #(nop)  STOPSIGNAL SIGTERM",
        "/bin/sh -c #(nop)  VOLUME [/vol]",
        "/bin/sh -c #(nop)  USER root",
        "/bin/sh -c #(nop)  EXPOSE 53/udp 8080/tcp",
        "|1 V=one /bin/sh -c echo run-$V-$A > out.txt",
        "/bin/sh -c #(nop) WORKDIR /data",
        hist[7],
    ]
    assert re.fullmatch(r"/bin/sh -c #\(nop\) COPY file:[0-9a-f]{64} in /data/ ", hist[7])
    assert hist[8:11] == [
        "/bin/sh -c #(nop)  LABEL org.test=one",
        "/bin/sh -c #(nop)  ENV A=1 B=two words",
        "/bin/sh -c #(nop)  ARG V=one",
    ]
    # the same build again: every step from the cache, the same image
    first = json.loads(dk("image", "inspect", tag).stdout)[0]["Id"]
    r = g("build", *NET, "-t", tag, ctx, timeout=180)
    assert r.returncode == 0, r.stderr
    assert _norm(r.stdout).count(" ---> Using cache") == 11
    assert json.loads(dk("image", "inspect", tag).stdout)[0]["Id"] == first
    # a build arg changes RUN's cache key from the step that uses it
    r = g("build", *NET, "--build-arg", "V=two", "-q", ctx, timeout=180)
    assert r.returncode == 0, r.stderr
    iid = r.stdout.strip()
    assert iid.startswith("sha256:")
    tags.append(iid)
    assert dk("run", "--rm", *NET, iid).stdout == "run-two-1\n"


def test_build_failures_exit_status_and_messages(dk: Any, g: Any, tags: list[str], tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, {"Dockerfile": "FROM busybox\nRUN exit 7\n"})
    r = _env_dk(dk)("build", *NET, "--force-rm", ctx, timeout=120)
    assert r.returncode == 7
    assert r.stderr.strip().endswith("The command '/bin/sh -c exit 7' returned a non-zero code: 7")
    r = g("build", *NET, "--force-rm", ctx, timeout=120)
    assert r.returncode == 7
    assert r.stderr == "The command '/bin/sh -c exit 7' returned a non-zero code: 7\n"
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN true\nNOPE x\n")
    r = g("build", ctx)
    assert r.returncode == 1
    assert (
        r.stderr == "Error response from daemon: dockerfile parse error line 3: unknown instruction: NOPE\n"
    )
    r = _env_dk(dk)("build", ctx)
    assert r.returncode == 1
    assert "dockerfile parse error line 3: unknown instruction: NOPE" in r.stderr


def test_dockerignore_multistage_target_and_file(dk: Any, g: Any, tags: list[str], tmp_path: Path) -> None:
    tag = f"bt-{uuid.uuid4().hex[:8]}:ms"
    tags.append(tag)
    ctx = _ctx(
        tmp_path / "ctx",
        {
            ".dockerignore": "*.log\n!keep.log\nsecret/\n**/*.tmp\n",
            "a.log": "no",
            "keep.log": "yes",
            "secret/key": "k",
            "sub/x.tmp": "t",
            "sub/y.txt": "y",
        },
    )
    (tmp_path / "df").write_text(
        "FROM busybox AS build\nCOPY . /src/\nRUN ls -R /src | sort > /list\n"
        'FROM busybox AS final\nCOPY --from=build /list /list\nCMD ["cat", "/list"]\n'
        "FROM final AS extra\nRUN false\n"
    )
    for runner in (g, _env_dk(dk)):
        r = runner(
            "build", *NET, "-f", str(tmp_path / "df"), "--target", "final", "-t", tag, ctx, timeout=180
        )
        assert r.returncode == 0, r.stderr
        assert "Step 1/6 : FROM busybox AS build" in r.stdout
        out = dk("run", "--rm", *NET, tag).stdout.split()
        assert "a.log" not in out and "secret" not in out and "x.tmp" not in out
        assert {"keep.log", "y.txt", "sub"} <= set(out)


def test_onbuild_and_entrypoint_cmd_rules(dk: Any, g: Any, tags: list[str], tmp_path: Path) -> None:
    base = f"bt-{uuid.uuid4().hex[:8]}:ob"
    child = base.replace(":ob", ":child")
    tags += [base, child]
    ctx = _ctx(tmp_path, {"Dockerfile": 'FROM busybox\nCMD ["sh"]\nONBUILD RUN echo trig > /t\n'})
    r = g("build", *NET, "-t", base, ctx)
    assert r.returncode == 0, r.stderr
    (tmp_path / "Dockerfile").write_text(f'FROM {base}\nENTRYPOINT ["cat"]\n')
    r = g("build", *NET, "-t", child, ctx, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "# Executing 1 build trigger\n" in r.stdout
    cfg = json.loads(dk("image", "inspect", child).stdout)[0]["Config"]
    assert cfg["Entrypoint"] == ["cat"] and cfg["Cmd"] is None and cfg["OnBuild"] is None
    r = dk("run", "--rm", *NET, child, "/t")
    assert r.stdout == "trig\n"


def _tar_bytes(files: dict[str, str]) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, content in files.items():
            data = content.encode()
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def test_copy_add_rules(dk: Any, g: Any, daemon: Any, tags: list[str], tmp_path: Path) -> None:
    tag = f"bt-{uuid.uuid4().hex[:8]}:copy"
    tags.append(tag)
    ctx = _ctx(
        tmp_path,
        {
            "Dockerfile": (
                "FROM busybox\n"
                "COPY dir /d1\n"  # a directory's contents, not the directory
                "COPY dir/ /d2/\n"
                "COPY f.txt /newname\n"  # no slash: the file gets this name
                "COPY f.txt /existing-dir/\n"
                "COPY *.md /md/\n"  # a wildcard
                "COPY --chown=7:8 --chmod=600 f.txt /owned\n"
                "ADD arch.tar.gz /x/\n"  # a local archive is extracted
                "COPY arch.tar.gz /y/\n"  # COPY does not extract
                "WORKDIR /rel\n"
                "COPY f.txt sub/\n"  # relative to WORKDIR
                'CMD ["sh", "-c", "find /d1 /d2 /newname /existing-dir /md /x /y /rel -print | sort; '
                "stat -c '%u:%g %a' /owned\"]\n"
            ),
            "dir/a": "a",
            "dir/in/b": "b",
            "f.txt": "f",
            "one.md": "1",
            "two.md": "2",
        },
    )
    (tmp_path / "arch.tar.gz").write_bytes(_tar_bytes({"inside/z": "z"}))
    r = g("build", *NET, "-t", tag, ctx, timeout=180)
    if daemon.target == "dref":  # dockerd's classic builder refuses --chmod; gorae's accepts it (issue 9)
        assert r.returncode == 1
        assert r.stderr.startswith("the --chmod option requires BuildKit.")
        (tmp_path / "Dockerfile").write_text(
            (tmp_path / "Dockerfile")
            .read_text()
            .replace("--chmod=600 f.txt /owned", "f.txt /owned\nRUN chmod 600 /owned")
        )
        r = g("build", *NET, "-t", tag, ctx, timeout=180)
    assert r.returncode == 0, r.stderr
    r = dk("run", "--rm", *NET, tag)
    assert r.stdout.split("\n") == [
        "/d1",
        "/d1/a",
        "/d1/in",
        "/d1/in/b",
        "/d2",
        "/d2/a",
        "/d2/in",
        "/d2/in/b",
        "/existing-dir",
        "/existing-dir/f.txt",
        "/md",
        "/md/one.md",
        "/md/two.md",
        "/newname",
        "/rel",
        "/rel/sub",
        "/rel/sub/f.txt",
        "/x",
        "/x/inside",
        "/x/inside/z",
        "/y",
        "/y/arch.tar.gz",
        "7:8 600",
        "",
    ], r.stderr


def test_copy_multiple_sources_needs_a_directory(dk: Any, g: Any, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, {"Dockerfile": "FROM busybox\nCOPY a b /dest\n", "a": "a", "b": "b"})
    for runner in (g, _env_dk(dk)):
        r = runner("build", *NET, ctx, timeout=60)
        assert r.returncode == 1
        assert r.stderr.strip().endswith(
            "When using COPY with more than one source file, the destination must be a directory and end with a /"
        )


def test_context_symlinks_never_leak_host_files(dk: Any, g: Any, tags: list[str], tmp_path: Path) -> None:
    tag = f"bt-{uuid.uuid4().hex[:8]}:link"
    tags.append(tag)
    ctx = _ctx(
        tmp_path,
        {
            "Dockerfile": 'FROM busybox\nCOPY passwd /leak\nCOPY up/passwd /leak2\nCMD ["cat", "/leak", "/leak2"]\n'
        },
    )
    os.symlink("/etc/passwd", tmp_path / "passwd")  # absolute: resolved inside the context
    os.symlink("../../../../../../etc", tmp_path / "up")  # climbs out: stops at the context root
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("context's own\n")
    r = g("build", *NET, "-t", tag, ctx, timeout=120)
    assert r.returncode == 0, r.stderr
    assert dk("run", "--rm", *NET, tag).stdout == "context's own\ncontext's own\n"


def test_shell_healthcheck_arg_before_from_and_scratch(
    dk: Any, g: Any, tags: list[str], tmp_path: Path
) -> None:
    tag = f"bt-{uuid.uuid4().hex[:8]}:misc"
    tags.append(tag)
    ctx = _ctx(
        tmp_path,
        {
            "Dockerfile": (
                "ARG BASE=busybox\n"
                "FROM ${BASE}\n"
                'SHELL ["/bin/sh", "-e", "-c"]\n'
                "HEALTHCHECK --interval=5s --retries=2 CMD true\n"
                "MAINTAINER someone\n"
                "ENV E=${UNSET:-dflt} F=${E:+set}\n"
                "RUN echo $E $F > /ef\n"
                "FROM scratch\n"
                "COPY --from=0 /ef /ef\n"
            ),
        },
    )
    r = g("build", *NET, "--label", "lab=v", "-t", tag, ctx, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "Step 10/10 : LABEL " in r.stdout
    info = json.loads(dk("image", "inspect", tag).stdout)[0]
    assert info["Config"]["Labels"] == {"lab": "v"}
    assert len(info["RootFS"]["Layers"]) == 1
    hist = dk("history", "--no-trunc", "--format", "{{.CreatedBy}}", tag).stdout.splitlines()
    assert "Step 10/10 : LABEL lab=v\n" in r.stdout
    assert hist[0] == "/bin/sh -c #(nop)  LABEL lab=v"
    assert re.fullmatch(r"/bin/sh -c #\(nop\) COPY file:[0-9a-f]{64} in /ef ", hist[1])


def test_metadata_history_matches_dockerd(dk: Any, g: Any, tags: list[str], tmp_path: Path) -> None:
    tag = f"bt-{uuid.uuid4().hex[:8]}:hist"
    tags.append(tag)
    ctx = _ctx(
        tmp_path,
        {
            "Dockerfile": (
                "FROM busybox\n"
                'SHELL ["/bin/sh", "-e", "-c"]\n'
                "HEALTHCHECK --interval=5s --retries=2 CMD true\n"
                "MAINTAINER someone\n"
                "ENTRYPOINT echo hi\n"
                "ONBUILD RUN echo later\n"
                "ARG A\n"
                "ARG B=2\n"
                "CMD echo x\n"
            ),
        },
    )
    r = g("build", *NET, "-t", tag, ctx, timeout=120)
    assert r.returncode == 0, r.stderr
    hist = dk("history", "--no-trunc", "--format", "{{.CreatedBy}}", tag).stdout.splitlines()
    assert hist[:8] == [
        '/bin/sh -e -c #(nop)  CMD ["/bin/sh" "-e" "-c" "echo x"]',
        "/bin/sh -e -c #(nop)  ARG B=2",
        "/bin/sh -e -c #(nop)  ARG A",
        "/bin/sh -e -c #(nop)  ONBUILD RUN echo later",
        '/bin/sh -e -c #(nop)  ENTRYPOINT ["/bin/sh" "-e" "-c" "echo hi"]',
        "/bin/sh -e -c #(nop)  MAINTAINER someone",
        '/bin/sh -e -c #(nop)  HEALTHCHECK &{["CMD-SHELL" "true"] "5s" "0s" "0s" \'\\x02\'}',
        "/bin/sh -e -c #(nop)  SHELL [/bin/sh -e -c]",
    ]
    info = json.loads(dk("image", "inspect", tag).stdout)[0]
    assert info["Author"] == "someone"
    cfg = info["Config"]
    assert cfg["Cmd"] == ["/bin/sh", "-e", "-c", "echo x"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-e", "-c", "echo hi"]
    assert cfg["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5000000000, "Retries": 2}
    assert cfg["OnBuild"] == ["RUN echo later"] and cfg["Shell"] == ["/bin/sh", "-e", "-c"]
    assert info["ContainerConfig"]["Cmd"] == [
        "/bin/sh",
        "-e",
        "-c",
        "#(nop) ",
        'CMD ["/bin/sh" "-e" "-c" "echo x"]',
    ]
    assert json.loads(dk("history", "--format", "{{json .}}", tag).stdout.splitlines()[0])["Comment"] == ""


def test_dockerfile_on_stdin_quiet_and_iidfile(dk: Any, g: Any, tags: list[str], tmp_path: Path) -> None:
    iidfile = tmp_path / "id.txt"
    r = g(
        "build",
        *NET,
        "-q",
        "--iidfile",
        str(iidfile),
        "-",
        input="FROM busybox\nRUN echo s > /s\n",
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    iid = r.stdout.strip()
    tags.append(iid)
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", iid)
    assert iidfile.read_text() == iid
    assert dk("run", "--rm", *NET, iid, "cat", "/s").stdout == "s\n"


def test_builder_prune(dk: Any, g: Any, tags: list[str], tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, {"Dockerfile": "FROM busybox\nENV P=1\n"})
    r = g("build", "-q", ctx)
    assert r.returncode == 0, r.stderr
    tags.append(r.stdout.strip())
    r = g("builder", "prune", "-f")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1].startswith("Total reclaimed space: ")
    r = g("builder", "prune", input="n\n")
    assert r.returncode == 0
    assert r.stdout.startswith(
        "WARNING! This will remove all dangling build cache.\nAre you sure you want to continue? [y/N]"
    )


def test_unused_build_arg_warning_and_unknown_target(
    dk: Any, g: Any, tags: list[str], tmp_path: Path
) -> None:
    ctx = _ctx(
        tmp_path, {"Dockerfile": "FROM busybox AS a\nARG USED\nENV X=$USED\nRUN echo $HTTP_PROXY > /p\n"}
    )
    r = g(
        "build", *NET, "--build-arg", "USED=1", "--build-arg", "NOTUSED=2", "--build-arg", "HTTP_PROXY=x", ctx
    )
    assert r.returncode == 0, r.stderr
    iid = re.findall(r"Successfully built ([0-9a-f]{12})", r.stdout)[0]
    tags.append(iid)
    assert "[Warning] One or more build-args [NOTUSED] were not consumed\n" in r.stdout
    # the proxy arg reaches RUN, but not its history
    assert dk("run", "--rm", *NET, iid, "cat", "/p").stdout == "x\n"
    hist = dk("history", "--no-trunc", "--format", "{{.CreatedBy}}", iid).stdout.splitlines()
    assert hist[0] == "|1 USED=1 /bin/sh -c echo $HTTP_PROXY > /p"
    r = g("build", "--target", "nope", ctx)
    assert r.returncode == 1
    assert r.stderr.strip().endswith("failed to reach build target nope in Dockerfile")


@pytest.fixture
def served(tmp_path: Path) -> Any:
    """A local HTTP server over a directory (stopped afterwards)."""
    import functools
    import http.server
    import threading

    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield root, f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def test_remote_contexts_tar_and_dockerfile(
    dk: Any, g: Any, daemon: Any, tags: list[str], served: Any
) -> None:
    root, base = served
    (root / "ctx.tar.gz").write_bytes(
        _tar_bytes({"Dockerfile": 'FROM busybox\nCOPY f /f\nCMD ["cat", "/f"]\n', "f": "remote tar\n"})
    )
    (root / "Dockerfile").write_text('FROM busybox\nCMD ["echo", "remote dockerfile"]\n')
    for runner in (g, _env_dk(dk)):
        tag = f"bt-{uuid.uuid4().hex[:8]}:remote"
        tags.append(tag)
        r = runner("build", "-t", tag, f"{base}/ctx.tar.gz", timeout=120)
        assert r.returncode == 0, r.stderr
        assert dk("run", "--rm", *NET, tag).stdout == "remote tar\n"
        r = runner("build", "-t", tag, f"{base}/Dockerfile", timeout=120)
        assert r.returncode == 0, r.stderr
        assert dk("run", "--rm", *NET, tag).stdout == "remote dockerfile\n"
    r = g("build", f"{base}/missing.tar")
    assert r.returncode == 1
    assert r.stderr.startswith(
        f"unable to prepare context: unable to download remote context {base}/missing.tar: 404"
    )
    # docker-py sends the URL (remote=): the daemon fetches it
    import docker

    client = docker.DockerClient(base_url=daemon.host)
    try:
        tag = f"bt-{uuid.uuid4().hex[:8]}:dpy"
        tags.append(tag)
        client.images.build(path=f"{base}/ctx.tar.gz", tag=tag)
        assert dk("run", "--rm", *NET, tag).stdout == "remote tar\n"
    finally:
        client.close()


def test_run_mount_requires_buildkit(dk: Any, g: Any, tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, {"Dockerfile": "FROM busybox\nRUN --mount=type=cache,target=/c true\n"})
    r = g("build", *NET, ctx)
    assert r.returncode == 1
    assert r.stderr.strip().endswith(
        "the --mount option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to "
        "build images with BuildKit enabled"
    )


def test_copy_cache_follows_content_not_size_or_mtime(
    dk: Any, daemon: Any, tags: list[str], tmp_path: Path
) -> None:
    """Both daemons hash every context file's content on every build (dockerd: tarsum, gorae: BLAKE3 as
    it arrives): a file rewritten with the same size and mtime misses the cache, a touched one hits it."""
    tag = f"bt-{uuid.uuid4().hex[:8]}:1"
    tags.append(tag)
    ctx = _ctx(tmp_path, {"Dockerfile": "FROM busybox\nCOPY a.txt /data/\nCMD [\"cat\", \"/data/a.txt\"]\n"})
    a = tmp_path / "a.txt"
    a.write_bytes(b"first content\n")
    stamp = a.stat().st_mtime_ns
    build = _env_dk(dk)

    def cached_steps() -> int:
        r = build("build", *NET, "-t", tag, ctx, timeout=180)
        assert r.returncode == 0, r.stderr
        return _norm(r.stdout).count(" ---> Using cache")

    cached_steps()
    assert dk("run", "--rm", *NET, tag).stdout == "first content\n"
    a.write_bytes(b"other content\n")  # same size
    os.utime(a, ns=(stamp, stamp))  # same mtime
    assert (a.stat().st_size, a.stat().st_mtime_ns) == (14, stamp)
    assert cached_steps() == 0  # COPY missed (and so did CMD after it)
    assert dk("run", "--rm", *NET, tag).stdout == "other content\n"
    os.utime(a, ns=(stamp + 10**9, stamp + 10**9))  # only the mtime changes
    assert cached_steps() == 2
    assert dk("run", "--rm", *NET, tag).stdout == "other content\n"
