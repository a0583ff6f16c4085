"""Pull from a registry that misbehaves on purpose (tests/compat/tiny_registry.py: our own, on loopback):
compressed and OCI layers, platform selection, blobs that lie, a tar bomb, a client that goes away and a
daemon killed mid-pull. Each failure gets docker's error and leaves no image, blob or ingest behind; an
interrupted pull is completed by the next one, which reuses what was downloaded."""

from __future__ import annotations

import io
import os
import socket
import tarfile
import threading
import uuid

import docker
import pytest
from conftest import GoraeDaemon, busybox_tar, new_daemon, wait_for
from tiny_registry import TinyRegistry, digest, layer_tar


@pytest.fixture
def tiny():  # type: ignore[no-untyped-def]
    r = TinyRegistry().start()
    try:
        yield r
    finally:
        r.stop()


def _busybox() -> bytes:
    with open(busybox_tar(), "rb") as f:
        return f.read()


def pull_lines(d: GoraeDaemon, repo: str, tag: str, platform: str | None = None) -> list[dict]:
    api = docker.APIClient(base_url=d.host, timeout=120)
    try:
        return list(api.pull(repo, tag=tag, stream=True, decode=True, platform=platform))
    finally:
        api.close()


def blob_path(d: GoraeDaemon, dg: str) -> str:
    return os.path.join(d.data_root, "content", "blobs", "sha256", dg.split(":", 1)[1])


def ingests(d: GoraeDaemon) -> list[str]:
    return os.listdir(os.path.join(d.data_root, "content", "ingest"))


def image_ids(d: GoraeDaemon) -> set[str]:
    return set(d.docker("images", "-aq", "--no-trunc").stdout.split())


def test_gzip_zstd_and_plain_layers_in_an_oci_manifest(tidy_daemon: GoraeDaemon, tiny: TinyRegistry) -> None:
    d = tidy_daemon
    tars = [_busybox()] + [layer_tar({f"f{i}": f"layer {i}\n".encode() * 100}) for i in range(3)]
    mdigest, cdigest = tiny.add_image("multi/oci", "v1", tars, compress=["gzip", "gzip", "zstd", ""], oci=True)
    ref = f"{tiny.addr}/multi/oci"
    lines = pull_lines(d, ref, "v1")
    statuses = [(x.get("id"), x["status"]) for x in lines if "progressDetail" not in x or x["status"] != "Downloading"]
    assert lines[0] == {"status": "Pulling from multi/oci", "id": "v1"}
    assert lines[-2:] == [
        {"status": f"Digest: {mdigest}"},
        {"status": f"Status: Downloaded newer image for {ref}:v1"},
    ]
    assert [s for s in statuses if s[1] == "Pull complete"] == [
        (tiny_id, "Pull complete") for tiny_id in [x.get("id") for x in lines if x["status"] == "Pulling fs layer"]
    ]
    try:
        out = d.docker("run", "--rm", f"{ref}:v1", "cat", "/f0", "/f1", "/f2").stdout
        assert out == "".join(f"layer {i}\n" * 100 for i in range(3))
        info = d.client().api.inspect_image(f"{ref}:v1")
        assert info["Id"] == cdigest
        assert info["RepoDigests"] == [f"{ref}@{mdigest}"]
        again = pull_lines(d, ref, "v1")
        assert again[-1] == {"status": f"Status: Image is up to date for {ref}:v1"}
        # by digest: recorded as a RepoDigest, "Status" names the digest reference
        bydigest = pull_lines(d, ref, mdigest)
        assert bydigest[0] == {"status": "Pulling from multi/oci", "id": mdigest}
    finally:
        d.docker("rmi", "-f", cdigest, check=False)


def test_layers_present_are_already_exists_and_downloads_wait(tidy_daemon: GoraeDaemon, tiny: TinyRegistry) -> None:
    d = tidy_daemon
    tars = [layer_tar({f"w{i}": uuid.uuid4().bytes}) for i in range(5)]
    _, c1 = tiny.add_image("w/one", "a", tars[:2])
    _, c2 = tiny.add_image("w/two", "b", tars)
    try:
        pull_lines(d, f"{tiny.addr}/w/one", "a")
        lines = pull_lines(d, f"{tiny.addr}/w/two", "b")
        ids = [progress_id(t) for t in tars]
        firsts = [(x["id"], x["status"]) for x in lines[1:8]]
        assert firsts == [
            (ids[0], "Already exists"),
            (ids[1], "Already exists"),
            (ids[2], "Pulling fs layer"),
            (ids[3], "Pulling fs layer"),
            (ids[4], "Pulling fs layer"),
        ] + firsts[5:]
        lines5 = pull_lines(d, f"{tiny.addr}/w/two", "b")
        assert lines5[-1]["status"].startswith("Status: Image is up to date")
    finally:
        d.docker("rmi", "-f", c1, c2, check=False)


def progress_id(blob: bytes) -> str:
    return digest(blob).split(":", 1)[1][:12]


def test_more_than_three_layers_wait(tidy_daemon: GoraeDaemon, tiny: TinyRegistry) -> None:
    d = tidy_daemon
    tars = [layer_tar({f"x{i}": uuid.uuid4().bytes}) for i in range(5)]
    _, c = tiny.add_image("w/five", "b", tars)
    try:
        lines = pull_lines(d, f"{tiny.addr}/w/five", "b")
        ids = [progress_id(t) for t in tars]
        head = [(x["id"], x["status"]) for x in lines[1:8]]
        assert head == [
            (ids[0], "Pulling fs layer"),
            (ids[1], "Pulling fs layer"),
            (ids[2], "Pulling fs layer"),
            (ids[3], "Pulling fs layer"),
            (ids[3], "Waiting"),
            (ids[4], "Pulling fs layer"),
            (ids[4], "Waiting"),
        ]
        for i in ids:
            mine = [x["status"] for x in lines if x.get("id") == i and x["status"] != "Downloading"]
            assert mine[-4:] == ["Verifying Checksum", "Download complete", "Extracting", "Pull complete"] or mine[
                -3:
            ] == ["Download complete", "Extracting", "Pull complete"]
    finally:
        d.docker("rmi", "-f", c, check=False)


def test_platform_selection_and_no_match(tidy_daemon: GoraeDaemon, tiny: TinyRegistry) -> None:
    d = tidy_daemon
    amd, camd = tiny.add_image("plat/x", "amd", [layer_tar({"arch": b"amd64\n"})])
    arm, carm = tiny.add_image(
        "plat/x", "arm", [layer_tar({"arch": b"arm64\n"})], config_extra={"architecture": "arm64"}
    )
    ldigest = tiny.add_list("plat/x", "multi", [(arm, {"os": "linux", "architecture": "arm64", "variant": "v8"}),
                                                (amd, {"os": "linux", "architecture": "amd64"})])
    tiny.add_list("plat/x", "armonly", [(arm, {"os": "linux", "architecture": "arm64"})])
    ref = f"{tiny.addr}/plat/x"
    try:
        lines = pull_lines(d, ref, "multi")
        assert lines[-2]["status"] == f"Digest: {ldigest}"
        assert d.client().api.inspect_image(f"{ref}:multi")["Id"] == camd
        lines = pull_lines(d, ref, "multi", platform="linux/arm64")
        assert d.client().api.inspect_image(f"{ref}:multi")["Id"] == carm
        lines = pull_lines(d, ref, "armonly")
        assert lines[-1]["error"] == "no matching manifest for linux/amd64 in the manifest list entries"
        r = d.docker("pull", f"{ref}:armonly", check=False)
        assert r.returncode == 1
        assert "no matching manifest for linux/amd64 in the manifest list entries" in r.stderr
        dist = d.client().api.inspect_distribution(f"{ref}:multi")
        assert dist["Descriptor"]["digest"] == ldigest
        assert dist["Platforms"] == [
            {"architecture": "arm64", "os": "linux", "variant": "v8"},
            {"architecture": "amd64", "os": "linux"},
        ]
    finally:
        d.docker("rmi", "-f", camd, carm, check=False)


def test_unknown_manifest_is_docker_404(gorae_daemon: GoraeDaemon, tiny: TinyRegistry) -> None:
    ref = f"{tiny.addr}/nope/x"
    with pytest.raises(docker.errors.NotFound) as e:
        pull_lines(gorae_daemon, ref, "y")
    assert e.value.explanation == f"manifest for {ref}:y not found: manifest unknown: manifest unknown"
    r = gorae_daemon.docker("pull", f"{ref}:y", check=False)
    assert r.returncode == 1
    assert r.stderr.strip() == f"Error response from daemon: manifest for {ref}:y not found: manifest unknown: manifest unknown"


def _assert_nothing_stored(d: GoraeDaemon, before: set[str], *digests: str) -> None:
    assert image_ids(d) == before
    for dg in digests:
        assert not os.path.exists(blob_path(d, dg))
    assert ingests(d) == []


def test_blob_whose_digest_lies_is_discarded(tidy_daemon: GoraeDaemon, tiny: TinyRegistry) -> None:
    d = tidy_daemon
    tar = layer_tar({"evil": b"not what the digest says\n"})
    fake = digest(b"something else")
    tiny.add_image("lie/digest", "1", [tar], layer_digests=[fake])
    before = image_ids(d)
    lines = pull_lines(d, f"{tiny.addr}/lie/digest", "1")
    assert lines[-1]["error"] == f"filesystem layer verification failed for digest {fake}"
    _assert_nothing_stored(d, before, fake, digest(tar))


def test_huge_declared_size_is_ignored_as_dockerd(tidy_daemon: GoraeDaemon, tiny: TinyRegistry) -> None:
    """A layer declared 2 GiB whose blob is 10 kB and matches its digest: dockerd 20.10 (checked here) reads to
    the end of what the registry sends and checks only the digest, so the pull succeeds; so does ours, in one
    request, without waiting for bytes that never come."""
    d = tidy_daemon
    tar = layer_tar({"small": b"x" * 1000})
    _, cid = tiny.add_image("lie/size", "1", [tar], layer_sizes=[2 << 30])
    try:
        lines = pull_lines(d, f"{tiny.addr}/lie/size", "1")
        assert lines[-1] == {"status": f"Status: Downloaded newer image for {tiny.addr}/lie/size:1"}
        assert [s for s in tiny.served if digest(tar) in s] == [f"GET /v2/lie/size/blobs/{digest(tar)}"]
        assert d.client().api.inspect_image(f"{tiny.addr}/lie/size:1")["Id"] == cid
        assert ingests(d) == []
    finally:
        d.docker("rmi", "-f", cid, check=False)


def test_escaping_layer_entries_stay_inside_the_layer(tidy_daemon: GoraeDaemon, tiny: TinyRegistry) -> None:
    """A layer whose entries climb out with "../" (a tar bomb aimed at the host) is applied inside its own
    root, never outside it (the archive guards clamp such names, as `docker cp` does)."""
    d = tidy_daemon
    name = "gorae-bomb-" + uuid.uuid4().hex
    bomb = layer_tar({"../../../../tmp/" + name: b"escaped\n"})
    _, c = tiny.add_image("bomb/x", "1", [_busybox(), bomb])
    try:
        pull_lines(d, f"{tiny.addr}/bomb/x", "1")
        assert not os.path.exists("/tmp/" + name)
        assert d.docker("run", "--rm", f"{tiny.addr}/bomb/x:1", "cat", "/tmp/" + name).stdout == "escaped\n"
    finally:
        d.docker("rmi", "-f", c, check=False)


def test_layer_that_is_not_a_tar_is_refused(tidy_daemon: GoraeDaemon, tiny: TinyRegistry) -> None:
    d = tidy_daemon
    junk = b"\x1f\x8b" + os.urandom(4096)  # claims gzip, is not
    tiny.add_image("bomb/junk", "1", [junk])
    before = image_ids(d)
    lines = pull_lines(d, f"{tiny.addr}/bomb/junk", "1")
    # dockerd 20.10: "failed to register layer: Error processing tar file(exit status 1): archive/tar: invalid
    # tar header" — the prefix is docker's, the rest our archive code's
    assert lines[-1]["error"].startswith("failed to register layer: invalid layer stream: "), lines[-1]
    _assert_nothing_stored(d, before, digest(junk))


def _start_pull_raw(d: GoraeDaemon, repo: str, tag: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.connect(d.socket)
    s.sendall(
        f"POST /v1.45/images/create?fromImage={repo}&tag={tag} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode()
    )
    return s


def _ingest_bytes(d: GoraeDaemon) -> int:
    base = os.path.join(d.data_root, "content", "ingest")
    total = 0
    for n in os.listdir(base):
        try:
            total += os.path.getsize(os.path.join(base, n, "data"))
        except OSError:
            pass
    return total


def _big_image(tiny: TinyRegistry, repo: str) -> tuple[list[bytes], str]:
    tars = [layer_tar({f"big{i}": os.urandom(3 << 20)}) for i in range(2)]
    _, c = tiny.add_image(repo, "1", [_busybox(), *tars])
    tiny.throttle = 0.01  # ~6 MiB/s: a pull takes about a second per layer
    return tars, c


def test_client_gone_cancels_and_next_pull_resumes(tidy_daemon: GoraeDaemon, tiny: TinyRegistry) -> None:
    d = tidy_daemon
    tars, c = _big_image(tiny, "slow/cancel")
    ref = f"{tiny.addr}/slow/cancel"
    before = image_ids(d)
    s = _start_pull_raw(d, ref, "1")
    wait_for(lambda: _ingest_bytes(d) > 1 << 20, timeout=30)
    s.close()
    wait_for(lambda: "pull of " + ref + ":1 cancelled" in d.log(), timeout=30)
    assert image_ids(d) == before
    assert len(ingests(d)) >= 1
    partial = _ingest_bytes(d)
    tiny.throttle = 0
    try:
        lines = pull_lines(d, ref, "1")
        assert lines[-1] == {"status": f"Status: Downloaded newer image for {ref}:1"}
        ranged = [x for x in tiny.served if "bytes=" in x]
        assert ranged, tiny.served  # the second pull asked only for the rest
        assert sum(int(x.rsplit("bytes=", 1)[1].rstrip("-")) for x in ranged) >= partial - (2 << 20)
        assert ingests(d) == []
    finally:
        d.docker("rmi", "-f", c, check=False)


def test_daemon_killed_mid_pull_then_pull_completes(tiny: TinyRegistry) -> None:
    d = new_daemon(with_busybox=False)
    try:
        tars, c = _big_image(tiny, "slow/kill")
        ref = f"{tiny.addr}/slow/kill"
        s = _start_pull_raw(d, ref, "1")
        wait_for(lambda: _ingest_bytes(d) > 1 << 20, timeout=30)
        d.kill9()
        s.close()
        partial = _ingest_bytes(d)
        d.start()
        assert image_ids(d) == set()  # no half image
        tiny.throttle = 0
        lines = pull_lines(d, ref, "1")
        assert lines[-1] == {"status": f"Status: Downloaded newer image for {ref}:1"}
        ranged = [x for x in tiny.served if "bytes=" in x]
        assert ranged and sum(int(x.rsplit("bytes=", 1)[1].rstrip("-")) for x in ranged) >= partial - (2 << 20)
        out = d.docker("run", "--rm", f"{ref}:1", "sha256sum", "/big0", "/big1").stdout
        assert out.split()[0::2] == [
            __import__("hashlib").sha256(t[512 : 512 + (3 << 20)]).hexdigest() for t in tars
        ]
        assert ingests(d) == []
    finally:
        d.cleanup()


def test_concurrent_pulls_of_one_image(tidy_daemon: GoraeDaemon, tiny: TinyRegistry) -> None:
    d = tidy_daemon
    tars = [layer_tar({f"c{i}": os.urandom(1 << 20)}) for i in range(3)]
    _, c = tiny.add_image("conc/x", "1", tars)
    results: list[list[dict]] = []

    def one() -> None:
        results.append(pull_lines(d, f"{tiny.addr}/conc/x", "1"))

    ts = [threading.Thread(target=one) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    try:
        assert len(results) == 3
        assert all("error" not in r[-1] for r in results), results
        assert d.client().api.inspect_image(f"{tiny.addr}/conc/x:1")["Id"] == c
    finally:
        d.docker("rmi", "-f", c, check=False)


def test_pull_all_tags(tidy_daemon: GoraeDaemon, tiny: TinyRegistry) -> None:
    d = tidy_daemon
    ids = [tiny.add_image("every/tag", t, [layer_tar({t: t.encode()})])[1] for t in ("a", "b", "c")]
    ref = f"{tiny.addr}/every/tag"
    try:
        out = d.docker("pull", "--all-tags", ref).stdout.splitlines()
        assert [x for x in out if "Pulling from" in x] == [f"{t}: Pulling from every/tag" for t in ("a", "b", "c")]
        assert out[-2:] == [f"Status: Downloaded newer image for {ref}", ref]
        got = {t: d.client().api.inspect_image(f"{ref}:{t}")["Id"] for t in ("a", "b", "c")}
        assert got == dict(zip(("a", "b", "c"), ids, strict=True))
    finally:
        d.docker("rmi", "-f", *ids, check=False)


def test_bearer_token_flow_and_refresh(tidy_daemon: GoraeDaemon, tiny: TinyRegistry) -> None:
    d = tidy_daemon
    tiny.token_users = {"bob": "pw"}
    _, c1 = tiny.add_image("auth/x", "1", [layer_tar({"one": b"1"})])
    _, c2 = tiny.add_image("auth/x", "2", [layer_tar({"two": b"2"})])
    ref = f"{tiny.addr}/auth/x"
    c = d.client()
    try:
        # anonymous: the token server refuses, docker's words for it, and a 500 (not a 401)
        r = d.docker("pull", f"{ref}:1", check=False)
        assert r.returncode == 1
        assert r.stderr.strip() == "Error response from daemon: unauthorized: anonymous access denied"
        assert tiny.token_requests[-1] == "service=tiny&scope=repository%3Aauth%2Fx%3Apull"
        with pytest.raises(docker.errors.APIError) as e:
            c.images.pull(ref, tag="1", auth_config={"username": "bob", "password": "nope"})
        assert e.value.explanation == "unauthorized: incorrect username or password"
        creds = {"username": "bob", "password": "pw"}
        assert c.images.pull(ref, tag="1", auth_config=creds).id == c1
        fetched = len(tiny.token_requests)
        assert c.images.pull(ref, tag="1", auth_config=creds).id == c1
        assert len(tiny.token_requests) == fetched  # the token was cached
        tiny.tokens.clear()  # revoked: the next request gets a 401 and a new token is fetched
        assert c.images.pull(ref, tag="2", auth_config=creds).id == c2
        assert len(tiny.token_requests) == fetched + 1
        dist = c.api.inspect_distribution(f"{ref}:2", auth_config=creds)
        assert dist["Platforms"] == [{"architecture": "amd64", "os": "linux"}]
    finally:
        d.docker("rmi", "-f", c1, c2, check=False)


def test_pull_and_push_events(tidy_daemon: GoraeDaemon, tiny: TinyRegistry) -> None:
    import time

    d = tidy_daemon
    _, cid = tiny.add_image("ev/x", "1", [layer_tar({"ev": b"1"})], config_extra={"config": {"Labels": {"k": "v"}}})
    since = time.time() - 1
    try:
        pull_lines(d, f"{tiny.addr}/ev/x", "1")
        evs = list(d.client().events(since=since, until=time.time() + 1, decode=True,
                                     filters={"type": "image", "event": "pull"}))
        assert [(e["Action"], e["Actor"]["ID"], e["Actor"]["Attributes"]) for e in evs if "/ev/x" in e["Actor"]["ID"]] == [
            ("pull", f"{tiny.addr}/ev/x:1", {"k": "v", "name": f"{tiny.addr}/ev/x"})
        ]
    finally:
        d.docker("rmi", "-f", cid, check=False)


def test_denied_repository_is_docker_pull_access_denied(gorae_daemon: GoraeDaemon, tiny: TinyRegistry) -> None:
    ref = f"{tiny.addr}/denied/x"
    r = gorae_daemon.docker("pull", f"{ref}:1", check=False)
    assert r.returncode == 1
    assert r.stderr.strip() == (
        f"Error response from daemon: pull access denied for {ref}, repository does not exist or may require "
        "'docker login': denied: requested access to the resource is denied"
    )


def test_login_against_a_token_registry(gorae_daemon: GoraeDaemon, tiny: TinyRegistry) -> None:
    tiny.token_users = {"bob": "pw"}
    c = gorae_daemon.client()
    assert c.login(username="bob", password="pw", registry=tiny.addr, reauth=True) == {
        "Status": "Login Succeeded",
        "IdentityToken": "rt-bob",  # the token server's refresh token: docker stores it instead of the password
    }
    assert "offline_token=true" in tiny.token_requests[-1]
    # the identity token alone pulls (the OAuth2 refresh-token grant)
    _, cid = tiny.add_image("idt/x", "1", [layer_tar({"idt": b"1"})])
    try:
        assert c.images.pull(f"{tiny.addr}/idt/x", tag="1", auth_config={"identitytoken": "rt-bob"}).id == cid
        assert tiny.token_requests[-1] == (
            "POST client_id=docker&grant_type=refresh_token&refresh_token=rt-bob&scope=repository:idt/x:pull"
            "&service=tiny"
        )
    finally:
        gorae_daemon.docker("rmi", "-f", cid, check=False)
    with pytest.raises(docker.errors.APIError) as e:
        c.login(username="bob", password="bad", registry=tiny.addr, reauth=True)
    assert e.value.status_code == 500  # as dockerd (a 401 would make docker's CLI prompt)
    assert e.value.explanation == f'Get "http://{tiny.addr}/v2/": unauthorized: incorrect username or password'


def test_single_platform_image_of_another_platform_is_pulled(tidy_daemon: GoraeDaemon, tiny: TinyRegistry) -> None:
    """dockerd 20.10 (checked here) pulls it all the same, without a warning."""
    d = tidy_daemon
    _, cid = tiny.add_image("plat/single", "1", [layer_tar({"a": b"1"})])
    ref = f"{tiny.addr}/plat/single"
    try:
        lines = pull_lines(d, ref, "1", platform="linux/arm64")
        assert lines[-1] == {"status": f"Status: Downloaded newer image for {ref}:1"}
        assert d.client().api.inspect_image(f"{ref}:1")["Id"] == cid
    finally:
        d.docker("rmi", "-f", cid, check=False)


def test_pulled_layers_kept_compressed_save_byte_identical_and_rmi_leaves_no_blob(
    tidy_daemon: GoraeDaemon, tiny: TinyRegistry
) -> None:
    """A pulled layer's tar is its compressed blob (not stored a second time uncompressed); `docker save`
    gives back the exact tars the registry's blobs hold; rmi deletes the blobs with the layers."""
    d = tidy_daemon
    tag = uuid.uuid4().hex
    ours = [layer_tar({f"k{i}": f"{tag} {i}\n".encode() * 5000}) for i in range(3)]
    tars = [_busybox(), *ours]  # busybox's layer "Already exists" (its tar is stored uncompressed)
    _, cdigest = tiny.add_image("kept/blobs", "v1", tars, compress=["gzip", "gzip", "zstd", "gzip"])
    ref = f"{tiny.addr}/kept/blobs:v1"
    compressed = [dg for dg, body in tiny.blobs.items() if body not in tars and dg != cdigest][1:]
    pull_lines(d, ref.rsplit(":", 1)[0], "v1")
    try:
        for t in ours:
            assert not os.path.exists(blob_path(d, digest(t)))  # no uncompressed copy
        kept = [dg for dg in compressed if os.path.exists(blob_path(d, dg))]
        assert len(kept) == 3
        saved = b"".join(d.client().api.get_image(ref))
        with tarfile.open(fileobj=io.BytesIO(saved)) as t:
            blobs = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}  # type: ignore[union-attr]
        for x in tars:
            assert blobs[f"blobs/sha256/{digest(x).split(':', 1)[1]}"] == x
        out = d.docker("run", "--rm", ref, "cat", "/k2").stdout
        assert out == f"{tag} 2\n" * 5000
    finally:
        d.docker("rmi", "-f", cdigest, check=False)
    assert [dg for dg in compressed if os.path.exists(blob_path(d, dg))] == []
    assert [t for t in ours if os.path.exists(blob_path(d, digest(t)))] == []
    assert os.path.exists(blob_path(d, digest(tars[0])))  # busybox's own image still has it
    assert ingests(d) == []
