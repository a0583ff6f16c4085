"""Pull, push and login through the gorae daemon against Debian's docker-registry (the reference Go
registry), driven by the docker CLI and docker-py; a real dockerd pulls what gorae pushed and the other way
round; TLS with a CA in a certs.d directory; plain HTTP refused for a non-loopback registry unless it is
an insecure registry; a registry mirror for docker.io."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest
from conftest import GoraeDaemon, new_daemon
from distribution_peers import Registry, registry  # noqa: F401 - fixture
from tiny_registry import layer_tar

PUSHED = re.compile(r"^(\S+): digest: (sha256:[0-9a-f]{64}) size: (\d+)$", re.M)


def tags_of(r: Registry, repo: str, auth: tuple[str, str] | None = None) -> list[str]:
    scheme = "https" if r.tls else "http"
    resp = httpx.get(f"{scheme}://{r.addr}/v2/{repo}/tags/list", auth=auth, verify=r.ca or False)
    return sorted(resp.json()["tags"])


def manifest_digest(r: Registry, repo: str, tag: str) -> str:
    resp = httpx.head(
        f"http://{r.addr}/v2/{repo}/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    return resp.headers["docker-content-digest"]


def test_cli_push_rmi_pull_round_trip(tidy_daemon: GoraeDaemon, registry: Registry) -> None:  # noqa: F811
    d = tidy_daemon
    name = f"{registry.addr}/round/trip:1"
    iid = d.client().api.inspect_image("busybox")["Id"]
    d.docker("tag", "busybox", name)
    since = time.time() - 1
    try:
        out = d.docker("push", name).stdout
        evs = list(d.client().events(since=since, until=time.time() + 1, decode=True, filters={"event": "push"}))
        # the shared daemon may carry other tests' pushes in this window: this registry's port is this test's own
        evs = [e for e in evs if e["Actor"]["ID"].startswith(registry.addr + "/")]
        assert [(e["Type"], e["Actor"]["ID"], e["Actor"]["Attributes"]["name"]) for e in evs] == [
            ("image", name, f"{registry.addr}/round/trip")
        ]
        lines = out.splitlines()
        assert lines[0] == f"The push refers to repository [{registry.addr}/round/trip]"
        m = PUSHED.search(out)
        assert m is not None and m.group(1) == "1"
        pushed = m.group(2)
        assert pushed == manifest_digest(registry, "round/trip", "1")
        assert re.fullmatch(r"[0-9a-f]{12}: Pushed", lines[-2]) or re.fullmatch(r"[0-9a-f]{12}: Pushed", lines[1])
        d.docker("rmi", name)
        d.docker("rmi", "busybox")
        out = d.docker("pull", name).stdout
        assert out.splitlines()[0] == "1: Pulling from round/trip"
        assert f"Digest: {pushed}" in out
        assert out.splitlines()[-2:] == [f"Status: Downloaded newer image for {name}", name]
        info = d.client().api.inspect_image(name)
        assert info["Id"] == iid
        assert info["RepoDigests"] == [f"{registry.addr}/round/trip@{pushed}"]
        assert d.docker("run", "--rm", name, "cat", "/etc/passwd").stdout.startswith("root:x:0:0")
        # pushing again: every layer is already there
        out = d.docker("push", name).stdout
        assert re.search(r"^[0-9a-f]{12}: Layer already exists$", out, re.M), out
        assert PUSHED.search(out).group(2) == pushed  # type: ignore[union-attr]
    finally:
        d.docker("tag", iid, "busybox:latest", check=False)
        d.docker("rmi", name, check=False)


def test_push_every_tag_and_mount_from_another_repository(tidy_daemon: GoraeDaemon, registry: Registry) -> None:  # noqa: F811
    d = tidy_daemon
    repo = f"{registry.addr}/all/tags"
    for t in ("a", "b"):
        d.docker("tag", "busybox", f"{repo}:{t}")
    try:
        out = d.docker("push", "--all-tags", repo).stdout
        assert [m.group(1) for m in PUSHED.finditer(out)] == ["a", "b"]
        assert tags_of(registry, "all/tags") == ["a", "b"]
        d.docker("tag", "busybox", f"{registry.addr}/other/repo:x")
        out = d.docker("push", f"{registry.addr}/other/repo:x").stdout
        assert re.search(r"^[0-9a-f]{12}: Mounted from all/tags$", out, re.M), out
        assert tags_of(registry, "other/repo") == ["x"]
        # docker-py: push without a tag pushes every tag; its stream ends with the aux result
        c = d.client()
        lines = list(c.api.push(repo, stream=True, decode=True))
        aux = [x["aux"] for x in lines if "aux" in x]
        assert [a["Tag"] for a in aux] == ["a", "b"]
        assert all(a["Digest"] == manifest_digest(registry, "all/tags", a["Tag"]) for a in aux)
    finally:
        d.docker("rmi", f"{repo}:a", f"{repo}:b", f"{registry.addr}/other/repo:x", check=False)


def test_push_unknown_tag_is_docker_error(gorae_daemon: GoraeDaemon, registry: Registry) -> None:  # noqa: F811
    r = gorae_daemon.docker("push", f"{registry.addr}/not/here:1", check=False)
    assert r.returncode == 1
    assert r.stderr.strip().endswith("An image does not exist locally with the tag: " + f"{registry.addr}/not/here")


@pytest.fixture
def auth_registry() -> Iterator[Registry]:
    r = Registry(htpasswd=("alice", "s3cret")).start()
    try:
        yield r
    finally:
        r.stop()


def test_login_and_push_pull_with_htpasswd(tidy_daemon: GoraeDaemon, auth_registry: Registry) -> None:
    d, r = tidy_daemon, auth_registry
    c = d.client()
    res = c.login(username="alice", password="s3cret", registry=r.addr, reauth=True)
    assert res == {"Status": "Login Succeeded", "IdentityToken": ""}
    with pytest.raises(docker.errors.APIError) as e:
        c.login(username="alice", password="wrong", registry=r.addr, reauth=True)
    assert e.value.status_code == 500  # as dockerd (a 401 would make docker's CLI prompt)
    assert e.value.explanation == f"login attempt to http://{r.addr}/v2/ failed with status: 401 Unauthorized"
    cfg = tempfile.mkdtemp(prefix="gorae-dcfg-")
    env = dict(d.env, DOCKER_CONFIG=cfg)
    name = f"{r.addr}/secret/img:1"
    d.docker("tag", "busybox", name)
    try:
        # the docker CLI: login stores the credentials (its side), push and pull send them
        res2 = subprocess.run(["docker", "login", "-u", "alice", "--password-stdin", r.addr], input="s3cret\n",
                              env=env, capture_output=True, text=True, timeout=60)
        assert res2.returncode == 0 and "Login Succeeded" in res2.stdout, res2.stderr
        res2 = subprocess.run(["docker", "push", name], env=env, capture_output=True, text=True, timeout=120)
        assert res2.returncode == 0, res2.stderr
        assert tags_of(r, "secret/img", ("alice", "s3cret")) == ["1"]
        d.docker("rmi", name)
        # without credentials: docker's error
        no = d.docker("pull", name, check=False)
        assert no.returncode == 1
        assert no.stderr.strip() == (  # dockerd's words, to the letter
            f'Error response from daemon: Head "http://{r.addr}/v2/secret/img/manifests/1": no basic auth credentials'
        )
        # docker-py with auth_config
        img = c.images.pull(f"{r.addr}/secret/img", tag="1", auth_config={"username": "alice", "password": "s3cret"})
        assert img.id == c.images.get("busybox").id
    finally:
        shutil.rmtree(cfg, ignore_errors=True)
        d.docker("rmi", name, check=False)


# ---- non-loopback registries: TLS and insecure-registries ------------------------------------------


@contextlib.contextmanager
def host_address() -> Iterator[str]:
    """A non-loopback address of this host on one end of a veth pair (no dummy module here; removed
    afterwards)."""
    dev = "gdr" + uuid.uuid4().hex[:8]
    ip = f"198.18.{int(dev[3:5], 16)}.{int(dev[5:7], 16) or 1}"
    subprocess.run(["ip", "link", "add", dev, "type", "veth", "peer", "name", dev + "p"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", f"{ip}/32", "dev", dev], check=True)
        subprocess.run(["ip", "link", "set", dev + "p", "up"], check=True)
        subprocess.run(["ip", "link", "set", dev, "up"], check=True)
        yield ip
    finally:
        subprocess.run(["ip", "link", "del", dev], check=False)


def test_plain_http_registry_refused_unless_insecure() -> None:
    with host_address() as ip:
        r = Registry(host_ip=ip).start()
        try:
            strict = new_daemon()
            try:
                res = strict.docker("pull", f"{r.addr}/x/y:1", check=False)
                assert res.returncode == 1
                assert res.stderr.strip() == (
                    f'Error response from daemon: Get "https://{r.addr}/v2/": '
                    "http: server gave HTTP response to HTTPS client"
                )
                strict.docker("tag", "busybox", f"{r.addr}/x/y:1")
                res = strict.docker("push", f"{r.addr}/x/y:1", check=False)
                assert res.returncode == 1
                assert "http: server gave HTTP response to HTTPS client" in res.stderr
            finally:
                strict.cleanup()
            for flag in (r.addr, f"{ip}/24"):  # host:port, and a CIDR
                ok = new_daemon(["--insecure-registry", flag])
                try:
                    ok.docker("tag", "busybox", f"{r.addr}/x/y:1")
                    ok.docker("push", f"{r.addr}/x/y:1")
                    ok.docker("rmi", f"{r.addr}/x/y:1")
                    out = ok.docker("pull", f"{r.addr}/x/y:1").stdout
                    assert f"Status: Downloaded newer image for {r.addr}/x/y:1" in out
                    cfg = ok.client().info()["RegistryConfig"]
                    if "/" in flag:
                        assert cfg["InsecureRegistryCIDRs"] == [flag, "127.0.0.0/8"]
                    else:
                        assert cfg["IndexConfigs"][flag] == {
                            "Name": flag, "Mirrors": [], "Secure": False, "Official": False
                        }
                finally:
                    ok.cleanup()
        finally:
            r.stop()


def test_tls_registry_trusts_the_certs_dir_ca() -> None:
    with host_address() as ip:
        r = Registry(host_ip=ip, tls=True).start()
        certs = tempfile.mkdtemp(prefix="gorae-certs-")
        d = new_daemon(["--certs-dir", certs])
        try:
            name = f"{r.addr}/tls/img:1"
            d.docker("tag", "busybox", name)
            res = d.docker("push", name, check=False)
            assert res.returncode == 1
            assert "x509: certificate signed by unknown authority" in res.stderr
            os.makedirs(os.path.join(certs, r.addr))
            shutil.copy(r.ca, os.path.join(certs, r.addr, "ca.crt"))
            d.docker("push", name)
            d.docker("rmi", name)
            assert f"Status: Downloaded newer image for {name}" in d.docker("pull", name).stdout
            # a client certificate without its key: docker's error
            Path(certs, r.addr, "client.cert").write_text("x")
            res = d.docker("pull", name, check=False)
            assert "missing key client.key for client certificate client.cert" in res.stderr
        finally:
            d.cleanup()
            r.stop()
            shutil.rmtree(certs, ignore_errors=True)


# ---- mirrors -------------------------------------------------------------------------------------


def test_registry_mirror_serves_docker_io(gorae_daemon: GoraeDaemon, registry: Registry) -> None:  # noqa: F811
    src = gorae_daemon
    src.docker("tag", "busybox", f"{registry.addr}/library/busybox:latest")
    try:
        src.docker("push", f"{registry.addr}/library/busybox:latest")
    finally:
        src.docker("rmi", f"{registry.addr}/library/busybox:latest", check=False)
    empty = Registry().start()  # the first mirror lacks the image: the pull goes on to the next (dockerd)
    d = new_daemon(
        ["--registry-mirror", f"http://{empty.addr}", "--registry-mirror", f"http://{registry.addr}"],
        with_busybox=False,
    )
    try:
        out = d.docker("pull", "busybox").stdout
        assert out.splitlines()[0] == "Using default tag: latest"
        assert out.splitlines()[1] == "latest: Pulling from library/busybox"
        assert out.splitlines()[-1] == "docker.io/library/busybox:latest"
        info = d.client().api.inspect_image("busybox")
        assert info["RepoTags"] == ["busybox:latest"]
        assert info["RepoDigests"][0].startswith("busybox@sha256:")
        assert info["Id"] == src.client().api.inspect_image("busybox")["Id"]
        assert d.docker("info", "-f", "{{json .RegistryConfig.Mirrors}}").stdout.strip() == json.dumps(
            [f"http://{empty.addr}/", f"http://{registry.addr}/"], separators=(",", ":")
        )
    finally:
        d.cleanup()
        empty.stop()


# ---- a real dockerd on the other side ------------------------------------------------------------


def image_tar(tag: str, layers: list[bytes]) -> bytes:
    """A docker-save tarball of an image made of these layer tars."""
    diff_ids = ["sha256:" + hashlib.sha256(x).hexdigest() for x in layers]
    cfg = json.dumps({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
        "created": "2026-01-01T00:00:00Z",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2026-01-01T00:00:00Z", "created_by": f"layer {i}"} for i in range(len(layers))],
    }).encode()
    cname = hashlib.sha256(cfg).hexdigest() + ".json"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        def add(name: str, data: bytes) -> None:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        add(cname, cfg)
        names = []
        for i, x in enumerate(layers):
            names.append(f"l{i}/layer.tar")
            add(names[-1], x)
        add("manifest.json", json.dumps([{"Config": cname, "RepoTags": [tag], "Layers": names}]).encode())
    return buf.getvalue()


@pytest.fixture(scope="module")
def dref() -> Iterator[object]:
    from cli_daemon import Daemon

    if not shutil.which("dockerd"):
        pytest.fail("dockerd is not installed")
    base = Path(tempfile.mkdtemp(prefix="gorae-dref-"))
    d = Daemon(base, "dref")
    try:
        yield d
    finally:
        d.stop()
        shutil.rmtree(base, ignore_errors=True)


def test_dockerd_pulls_what_gorae_pushed_and_back(tidy_daemon: GoraeDaemon, registry: Registry, dref) -> None:  # noqa: F811
    g = tidy_daemon
    rc = docker.DockerClient(base_url=dref.host)
    gc = g.client()
    with open(__import__("conftest").busybox_tar(), "rb") as f:
        base = f.read()
    layers = [base] + [layer_tar({f"d{i}": os.urandom(200_000)}) for i in range(3)]
    name_g = f"{registry.addr}/from/gorae:1"
    name_d = f"{registry.addr}/from/dockerd:1"
    try:
        gc.images.load(image_tar(name_g, layers))
        gid = gc.images.get(name_g).id
        g.docker("push", name_g)
        img = rc.images.pull(f"{registry.addr}/from/gorae", tag="1")
        assert img.id == gid
        assert rc.api.inspect_image(name_g)["RepoDigests"] == gc.api.inspect_image(name_g)["RepoDigests"]
        # and dockerd's push (its own compression), pulled by gorae
        layers2 = [base] + [layer_tar({f"e{i}": os.urandom(150_000)}) for i in range(2)]
        rc.images.load(image_tar(name_d, layers2))
        did = rc.images.get(name_d).id
        for _ in rc.api.push(f"{registry.addr}/from/dockerd", tag="1", stream=True):
            pass
        out = g.docker("pull", name_d).stdout
        assert "Already exists" in out  # busybox's layer was there
        assert gc.images.get(name_d).id == did
        assert rc.api.inspect_image(name_d)["RepoDigests"] == gc.api.inspect_image(name_d)["RepoDigests"]
        assert g.docker("run", "--rm", name_d, "ls", "/e0", "/e1").stdout.split() == ["/e0", "/e1"]
        # pushed on from gorae: every pulled layer is mounted (no recompression, no upload), and the manifest
        # gorae writes is byte for byte dockerd's (the same digest)
        copy = f"{registry.addr}/from/copy:1"
        g.docker("tag", name_d, copy)
        out = g.docker("push", copy).stdout
        mounted = re.findall(r"^[0-9a-f]{12}: Mounted from from/dockerd$", out, re.M)
        assert len(mounted) == 2, out  # busybox's layer came from gorae's own push: "Layer already exists"
        assert PUSHED.search(out).group(2) == manifest_digest(registry, "from/dockerd", "1")  # type: ignore[union-attr]
        # the progress of a pull, per layer, as dockerd reports it (downloads and extraction aside; dockerd's
        # transfer watcher coalesces updates, so its "Verifying Checksum" is sometimes skipped)
        for c in (gc, rc):
            c.images.remove(name_d, force=True)
            with contextlib.suppress(docker.errors.APIError):
                c.images.remove(copy, force=True)

        def per_layer(c: docker.DockerClient) -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            for x in c.api.pull(f"{registry.addr}/from/dockerd", tag="1", stream=True, decode=True):
                if x.get("id") and x["status"] not in ("Downloading", "Extracting", "Waiting", "Verifying Checksum"):
                    out.setdefault(x["id"], []).append(x["status"])
            return out

        assert per_layer(gc) == per_layer(rc)
    finally:
        g.docker("rmi", "-f", name_g, name_d, f"{registry.addr}/from/copy:1", check=False)
        for n in (name_g, name_d):
            with contextlib.suppress(docker.errors.APIError):
                rc.images.remove(n, force=True)


def test_push_of_many_layers_waits_beyond_five(tidy_daemon: GoraeDaemon, registry: Registry) -> None:  # noqa: F811
    d = tidy_daemon
    layers = [layer_tar({f"m{i}": os.urandom(50_000)}) for i in range(7)]
    name = f"{registry.addr}/many/layers:1"
    c = d.client()
    try:
        c.images.load(image_tar(name, layers))
        lines = list(c.api.push(f"{registry.addr}/many/layers", tag="1", stream=True, decode=True))
        ids = [hashlib.sha256(x).hexdigest()[:12] for x in layers]
        head = [(x.get("id"), x["status"]) for x in lines[1:10]]
        assert head == [(i, "Preparing") for i in ids] + [(ids[5], "Waiting"), (ids[6], "Waiting")]
        pushed = {x["id"] for x in lines if x.get("status") == "Pushed"}
        assert pushed == set(ids)
        assert lines[-1]["aux"]["Digest"] == manifest_digest(registry, "many/layers", "1")
        # what the registry holds pulls back to the same image
        iid = c.images.get(name).id
        d.docker("rmi", name)
        assert c.images.pull(f"{registry.addr}/many/layers", tag="1").id == iid
    finally:
        d.docker("rmi", "-f", name, check=False)


def _saved_layers(d: GoraeDaemon, ref: str) -> dict[str, bytes]:
    """The layer tars of `docker save ref` (docker-py), by blob name."""
    data = b"".join(d.client().api.get_image(ref))
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        index = json.loads(t.extractfile("manifest.json").read())  # type: ignore[union-attr]
        return {n: t.extractfile(n).read() for n in index[0]["Layers"]}  # type: ignore[union-attr]


def test_pulled_image_saves_the_pushed_tars_and_pushes_again(tidy_daemon: GoraeDaemon, registry: Registry) -> None:  # noqa: F811
    """Push an image of two layers, rmi it, pull it (its layers are kept as their compressed blobs): `docker
    save` gives the very tars pushed; a push to the same repository skips every layer, to another repository
    mounts them, and to another registry uploads them (compressed again from the kept blobs), which pulls
    back as the same image."""
    d = tidy_daemon
    tag = uuid.uuid4().hex
    df = f"FROM busybox\nRUN echo {tag} > /marker && head -c 300000 /dev/urandom > /noise\n"
    name = f"{registry.addr}/kept/src:{tag[:8]}"
    d.docker("build", "-q", "-t", name, "-", input=df, timeout=120)
    other = Registry().start()
    try:
        iid = d.client().api.inspect_image(name)["Id"]
        before = _saved_layers(d, name)
        assert len(before) == 2
        d.docker("push", name, timeout=120)
        d.docker("rmi", name)
        d.docker("pull", name, timeout=120)
        assert d.client().api.inspect_image(name)["Id"] == iid
        assert _saved_layers(d, name) == before
        out = d.docker("push", name).stdout
        assert len(re.findall(r"^[0-9a-f]{12}: Layer already exists$", out, re.M)) == 2, out
        d.docker("tag", name, f"{registry.addr}/kept/dst:1")
        out = d.docker("push", f"{registry.addr}/kept/dst:1").stdout
        assert len(re.findall(r"^[0-9a-f]{12}: Mounted from kept/src$", out, re.M)) == 2, out
        far = f"{other.addr}/kept/far:1"
        d.docker("tag", name, far)
        out = d.docker("push", far, timeout=120).stdout
        assert len(re.findall(r"^[0-9a-f]{12}: Pushed$", out, re.M)) == 2, out
        d.docker("rmi", name, f"{registry.addr}/kept/dst:1", far)
        d.docker("pull", far, timeout=120)
        assert d.client().api.inspect_image(far)["Id"] == iid
        assert d.docker("run", "--rm", far, "cat", "/marker").stdout == f"{tag}\n"
    finally:
        d.docker("rmi", "-f", name, f"{registry.addr}/kept/dst:1", f"{other.addr}/kept/far:1", check=False)
        other.stop()
