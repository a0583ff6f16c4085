"""docker-py `images.build` / `api.build` against the gorae daemon: the classic builder's stream, steps,
cache, CMD rules, COPY, errors."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest


def _tar(files: dict[str, str | bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o644
            tf.addfile(ti, io.BytesIO(data))
    buf.seek(0)
    return buf


@pytest.fixture
def built(docker_client: docker.DockerClient) -> Iterator[list[str]]:
    """Tags the test built; removed (with their intermediate images) afterwards."""
    tags: list[str] = []
    yield tags
    for t in tags:
        try:
            docker_client.images.remove(t, force=True)
        except docker.errors.NotFound:
            pass
    docker_client.api.post(docker_client.api._url("/build/prune"))


def _build(client: docker.DockerClient, files: dict[str, str | bytes], **kw: Any) -> list[dict[str, Any]]:
    out = client.api.build(fileobj=_tar(files), custom_context=True, decode=True, **kw)
    return list(out)


def _streams(lines: list[dict[str, Any]]) -> str:
    return "".join(str(x.get("stream", "")) for x in lines)


def test_build_run_copy_cmd_and_stream(docker_client: docker.DockerClient, built: list[str]) -> None:
    tag = f"b-{uuid.uuid4().hex[:8]}:1"
    built.append(tag)
    files = {
        "Dockerfile": 'FROM busybox\nCOPY a.txt /data/\nRUN cat /data/a.txt > /data/b.txt && echo ran\nCMD ["cat", "/data/b.txt"]\n',
        "a.txt": "hello\n",
    }
    lines = _build(docker_client, files, tag=tag, rm=True)
    text = _streams(lines)
    assert "Step 1/4 : FROM busybox\n" in text
    assert "Step 3/4 : RUN cat /data/a.txt > /data/b.txt && echo ran\n" in text
    assert " ---> Running in " in text and "\nran\n" in text and "Removing intermediate container " in text
    aux = [x["aux"]["ID"] for x in lines if "aux" in x]
    assert len(aux) == 1 and aux[0].startswith("sha256:")
    assert f"Successfully built {aux[0][7:19]}\n" in text
    assert f"Successfully tagged {tag}\n" in text
    out = docker_client.containers.run(tag, remove=True)
    assert out == b"hello\n"
    img = docker_client.images.get(tag)
    assert img.attrs["Config"]["Cmd"] == ["cat", "/data/b.txt"]
    hist = docker_client.api.history(tag)
    assert hist[0]["CreatedBy"] == '/bin/sh -c #(nop)  CMD ["cat" "/data/b.txt"]'
    assert hist[1]["CreatedBy"] == "/bin/sh -c cat /data/a.txt > /data/b.txt && echo ran"
    assert hist[2]["CreatedBy"].startswith("/bin/sh -c #(nop) COPY file:") and hist[2]["CreatedBy"].endswith(
        " in /data/ "
    )
    # a second build is fully cached and gives the same image
    again = _build(docker_client, files, tag=tag)
    assert _streams(again).count(" ---> Using cache\n") == 3
    assert [x["aux"]["ID"] for x in again if "aux" in x] == aux
    # editing the copied file misses the cache from COPY on
    files["a.txt"] = "changed\n"
    third = _build(docker_client, files, tag=tag)
    assert _streams(third).count(" ---> Using cache\n") == 0
    assert docker_client.containers.run(tag, remove=True) == b"changed\n"


def test_cmd_rules(docker_client: docker.DockerClient, built: list[str]) -> None:
    base = f"b-{uuid.uuid4().hex[:8]}:base"
    built.append(base)
    _build(
        docker_client, {"Dockerfile": 'FROM busybox\nCMD ["echo", "one"]\nCMD ["echo", "two"]\n'}, tag=base
    )
    assert docker_client.images.get(base).attrs["Config"]["Cmd"] == [
        "echo",
        "two",
    ]  # only the last CMD counts
    child = base.replace(":base", ":child")
    built.append(child)
    _build(docker_client, {"Dockerfile": f"FROM {base}\nENV X=1\n"}, tag=child)
    assert docker_client.images.get(child).attrs["Config"]["Cmd"] == ["echo", "two"]  # inherited
    ep = base.replace(":base", ":ep")
    built.append(ep)
    _build(docker_client, {"Dockerfile": f'FROM {base}\nENTRYPOINT ["top"]\n'}, tag=ep)
    cfg = docker_client.images.get(ep).attrs["Config"]
    assert cfg["Entrypoint"] == ["top"] and cfg["Cmd"] is None  # ENTRYPOINT resets an inherited CMD
    both = base.replace(":base", ":both")
    built.append(both)
    _build(docker_client, {"Dockerfile": f'FROM {base}\nCMD ["-b"]\nENTRYPOINT ["top"]\n'}, tag=both)
    cfg = docker_client.images.get(both).attrs["Config"]
    assert cfg["Entrypoint"] == ["top"] and cfg["Cmd"] == ["-b"]


def test_failing_run_reports_in_band_and_tags_nothing(
    docker_client: docker.DockerClient, built: list[str]
) -> None:
    tag = f"b-{uuid.uuid4().hex[:8]}:bad"
    before = {c.id for c in docker_client.containers.list(all=True)}
    lines = _build(docker_client, {"Dockerfile": "FROM busybox\nRUN exit 3\n"}, tag=tag, forcerm=True)
    err = [x for x in lines if "error" in x]
    assert err == [
        {
            "errorDetail": {
                "code": 3,
                "message": "The command '/bin/sh -c exit 3' returned a non-zero code: 3",
            },
            "error": "The command '/bin/sh -c exit 3' returned a non-zero code: 3",
        }
    ]
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(tag)
    assert {c.id for c in docker_client.containers.list(all=True)} == before


def test_parse_error_is_400_with_line(docker_client: docker.DockerClient) -> None:
    with pytest.raises(docker.errors.APIError) as e:
        _build(docker_client, {"Dockerfile": "FROM busybox\nBOGUS x\n"})
    assert e.value.status_code == 400
    assert "dockerfile parse error line 2: unknown instruction: BOGUS" in str(e.value.explanation)


def test_images_build_high_level(docker_client: docker.DockerClient, built: list[str], tmp_path: Any) -> None:
    tag = f"b-{uuid.uuid4().hex[:8]}:hl"
    built.append(tag)
    (tmp_path / "Dockerfile").write_text(
        "FROM busybox AS one\nARG V=d\nRUN echo ${V} > /v\nFROM busybox\nCOPY --from=one /v /v\nWORKDIR /w\nCMD cat /v\n"
    )
    (tmp_path / "junk").write_text("x")
    (tmp_path / ".dockerignore").write_text("junk\n")
    img, logs = docker_client.images.build(path=str(tmp_path), tag=tag, buildargs={"V": "7"}, rm=True)
    assert docker_client.containers.run(tag, remove=True) == b"7\n"
    assert img.attrs["Config"]["WorkingDir"] == "/w"
    assert img.attrs["Config"]["Cmd"] == ["/bin/sh", "-c", "cat /v"]
    assert json.dumps(list(logs)).count("Step ") == 7


def test_add_url_and_unreachable_url(docker_client: docker.DockerClient, built: list[str]) -> None:
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = b"remote content\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        port = srv.server_address[1]
        tag = f"b-{uuid.uuid4().hex[:8]}:url"
        built.append(tag)
        df = f'FROM busybox\nADD http://127.0.0.1:{port}/files/r.txt /dl/\nCMD ["sh", "-c", "cat /dl/r.txt; stat -c %a /dl/r.txt"]\n'
        lines = _build(docker_client, {"Dockerfile": df}, tag=tag)
        assert not [x for x in lines if "error" in x], lines
        assert docker_client.containers.run(tag, remove=True) == b"remote content\n600\n"
    finally:
        srv.shutdown()
        srv.server_close()
    lines = _build(docker_client, {"Dockerfile": f"FROM busybox\nADD http://127.0.0.1:{port}/gone /x\n"})
    err = [x["error"] for x in lines if "error" in x]
    assert len(err) == 1 and err[0].startswith(f"failed to GET http://127.0.0.1:{port}/gone: ")


def test_from_an_image_not_present_pulls_it(docker_client: docker.DockerClient, built: list[str]) -> None:
    from registry_helpers import reference_registry

    with reference_registry() as reg:
        remote = f"127.0.0.1:{reg.port}/base/bb:1"
        docker_client.images.get("busybox").tag(remote)
        for _ in docker_client.images.push(remote, stream=True, decode=True):
            pass
        docker_client.images.remove(remote)
        tag = f"b-{uuid.uuid4().hex[:8]}:pulled"
        built += [tag, remote]
        lines = _build(docker_client, {"Dockerfile": f"FROM {remote}\nRUN echo ok > /ok\n"}, tag=tag)
        assert not [x for x in lines if "error" in x], lines
        statuses = [x.get("status", "") for x in lines]
        assert f"Status: Downloaded newer image for {remote}" in statuses
        assert docker_client.containers.run(tag, ["cat", "/ok"], remove=True) == b"ok\n"


def test_heredocs(docker_client: docker.DockerClient, built: list[str]) -> None:
    tag = f"b-{uuid.uuid4().hex[:8]}:here"
    built.append(tag)
    df = (
        "FROM busybox\n"
        "ENV W=world\n"
        "RUN <<EOF\nset -e\necho script-$W > /a\nEOF\n"
        "RUN cat <<EOT > /b\nhello $W\nEOT\n"
        "COPY <<EOF /c\ncopied\nEOF\n"
        'CMD ["cat", "/a", "/b", "/c"]\n'
    )
    lines = _build(docker_client, {"Dockerfile": df}, tag=tag)
    assert not [x for x in lines if "error" in x], lines
    assert docker_client.containers.run(tag, remove=True) == b"script-world\nhello world\ncopied\n"


def test_user_resolved_in_the_image_passwd(docker_client: docker.DockerClient, built: list[str]) -> None:
    tag = f"b-{uuid.uuid4().hex[:8]}:user"
    built.append(tag)
    df = (
        "FROM busybox\n"
        "RUN echo 'app:x:1234:2345::/home/app:/bin/sh' >> /etc/passwd\n"
        "USER app\n"
        "WORKDIR /home/app\n"
        "RUN id -u > /tmp/uid && id -g >> /tmp/uid\n"
        'CMD ["cat", "/tmp/uid"]\n'
    )
    lines = _build(docker_client, {"Dockerfile": df}, tag=tag, forcerm=True)
    assert not [x for x in lines if "error" in x], lines
    assert docker_client.containers.run(tag, remove=True) == b"1234\n2345\n"
    bad = _build(docker_client, {"Dockerfile": "FROM busybox\nUSER nosuch\nRUN true\n"}, forcerm=True)
    err = [x["error"] for x in bad if "error" in x]
    assert len(err) == 1 and "unable to find user nosuch: no matching entries in passwd file" in err[0]


def test_from_a_private_registry_uses_x_registry_config(gorae_daemon: Any, built: list[str]) -> None:
    from distribution_peers import Registry

    reg = Registry(htpasswd=("alice", "s3cret")).start()
    client = gorae_daemon.client()
    anonymous = gorae_daemon.client()
    try:
        name = f"{reg.addr}/private/base:1"
        client.login(username="alice", password="s3cret", registry=reg.addr, reauth=True)
        client.images.get("busybox").tag(name)
        auth = {"username": "alice", "password": "s3cret"}
        for _ in client.images.push(name, auth_config=auth, stream=True, decode=True):
            pass
        client.images.remove(name)
        df = {"Dockerfile": f"FROM {name}\nENV FROM_PRIVATE=1\n"}
        denied = _build(anonymous, df)  # no credentials: the registry's refusal, in-band
        assert [x for x in denied if "error" in x], denied
        tag = f"b-{uuid.uuid4().hex[:8]}:priv"
        built += [tag, name]
        ok = _build(client, df, tag=tag)  # docker-py sends its logins as X-Registry-Config
        assert not [x for x in ok if "error" in x], ok
        assert "FROM_PRIVATE=1" in client.images.get(tag).attrs["Config"]["Env"]
    finally:
        client.close()
        anonymous.close()
        reg.stop()
