"""The S3 storage driver against the driver conformance suite, on a real S3-compatible server (moto's server
mode, as a process), plus what is S3's own: multipart writers resumed across driver instances (as across
registry processes), parts of at least 5 MiB, root-directory confinement, credentials and errors."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from s3server import ACCESS_KEY, REGION, SECRET_KEY, MotoS3, moto_s3

from gorae.registry.storage.driver import InvalidPath, PathNotFound, StorageDriver, StorageError, check_path
from gorae.registry.storage.s3 import MIN_CHUNK, S3Driver, S3Options, _copy_ranges
from gorae.registry.storage.testsuite import DriverSuite, check_rejected, check_roundtrip

_SERVER: list[MotoS3] = []


@pytest.fixture(scope="module", autouse=True)
def s3() -> Iterator[MotoS3]:
    with moto_s3() as server:
        _SERVER.append(server)
        try:
            yield server
        finally:
            _SERVER.clear()


def make_s3_driver(server: MotoS3, bucket: str | None = None, root: str = "", **kw: object) -> S3Driver:
    return S3Driver(
        S3Options(
            bucket=bucket or server.new_bucket(),
            region=REGION,
            endpoint_url=server.endpoint,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            root_directory=root,
            chunk_size=kw.pop("chunk_size", MIN_CHUNK),  # type: ignore[arg-type]
        )
    )


class TestS3Driver(DriverSuite):
    """Every case of the shared suite, each on a fresh bucket under a root directory."""

    def make_driver(self) -> StorageDriver:
        return make_s3_driver(_SERVER[0], root="/registry/root")

    def destroy_driver(self, driver: StorageDriver) -> None:
        assert isinstance(driver, S3Driver)
        keys = _SERVER[0].keys(driver.bucket)
        client = _SERVER[0].client()
        for key in keys:
            client.delete_object(Bucket=driver.bucket, Key=key)
        client.delete_bucket(Bucket=driver.bucket)


class TestS3DriverNoRoot(TestS3Driver):
    """The same with the keys at the top of the bucket (no root directory)."""

    def make_driver(self) -> StorageDriver:
        return make_s3_driver(_SERVER[0])


def test_keys_live_under_the_root_directory(s3: MotoS3) -> None:
    bucket = s3.new_bucket()
    s3.client().put_object(Bucket=bucket, Key="outside", Body=b"not ours")
    d = make_s3_driver(s3, bucket, root="/reg/istry/")
    d.put_content("/docker/registry/v2/x", b"1")
    d.put_content("/y", b"2")
    assert s3.keys(bucket) == ["outside", "reg/istry/docker/registry/v2/x", "reg/istry/y"]
    assert d.list("/") == ["/docker", "/y"]
    assert [i.path for i in d.walk("/")] == [
        "/docker",
        "/docker/registry",
        "/docker/registry/v2",
        "/docker/registry/v2/x",
        "/y",
    ]
    d.delete("/docker")
    assert s3.keys(bucket) == ["outside", "reg/istry/y"]


def test_writer_parts_and_resume_across_drivers(s3: MotoS3) -> None:
    """An upload written by one driver instance, resumed by two others (as three registry processes would):
    a short first request (read back), a long one (parts of 5 MiB, then UploadPartCopy), a tail."""
    bucket = s3.new_bucket()
    first, second, third = (make_s3_driver(s3, bucket, root="r") for _ in range(3))
    a = os.urandom(1000)
    b = os.urandom(2 * MIN_CHUNK + 12345)
    c = os.urandom(777)
    w = first.writer("/up/data")
    w.write(a)
    w.close()
    assert second.stat("/up/data").size == len(a)
    w = second.writer("/up/data", append=True)
    assert w.size == len(a)
    for i in range(0, len(b), 1 << 20):
        w.write(b[i : i + (1 << 20)])
    assert w.size == len(a + b)
    w.close()
    assert third.stat("/up/data").size == len(a + b)
    assert third.reader("/up/data", len(a + b) - 10).read() == b[-10:]
    w = third.writer("/up/data", append=True)
    assert w.size == len(a + b)
    w.write(c)
    w.commit()
    assert first.get_content("/up/data") == a + b + c
    # no multipart upload is left behind
    assert s3.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_resumed_writer_adding_nothing_keeps_the_object(s3: MotoS3) -> None:
    d = make_s3_driver(s3)
    big = os.urandom(MIN_CHUNK + 1)
    d.put_content("/f", big)
    w = d.writer("/f", append=True)
    assert w.size == len(big)
    w.close()
    assert d.get_content("/f") == big
    w = d.writer("/f", append=True)
    w.write(b"!")
    w.close()
    assert d.get_content("/f") == big + b"!"


def test_cancel_aborts_the_multipart_upload(s3: MotoS3) -> None:
    d = make_s3_driver(s3)
    w = d.writer("/c/data")
    w.write(os.urandom(MIN_CHUNK + 10))  # one part uploaded
    assert len(s3.client().list_multipart_uploads(Bucket=d.bucket)["Uploads"]) == 1
    w.cancel()
    assert s3.client().list_multipart_uploads(Bucket=d.bucket).get("Uploads", []) == []
    with pytest.raises(PathNotFound):
        d.stat("/c/data")


def test_delete_aborts_uploads_of_dead_writers(s3: MotoS3) -> None:
    d = make_s3_driver(s3)
    w = d.writer("/u/1/data")
    w.write(os.urandom(MIN_CHUNK))  # a part uploaded, then the process "dies": no close
    d.put_content("/u/1/startedat", b"t")
    d.delete("/u/1")
    assert s3.client().list_multipart_uploads(Bucket=d.bucket).get("Uploads", []) == []
    assert s3.keys(d.bucket) == []


def test_small_chunk_size_is_refused(s3: MotoS3) -> None:
    with pytest.raises(ValueError, match="at least 5242880"):
        make_s3_driver(s3, chunk_size=MIN_CHUNK - 1)


def test_copy_ranges_cover_exactly() -> None:
    assert _copy_ranges(0) == []
    assert _copy_ranges(10) == [(0, 9)]
    five_gib = 5 * 1024**3
    assert _copy_ranges(five_gib) == [(0, five_gib - 1)]
    ranges = _copy_ranges(five_gib + 1)
    assert ranges == [(0, 2684354560), (2684354561, five_gib)]
    assert all(end - start + 1 >= MIN_CHUNK for start, end in ranges)


def test_errors_are_storage_errors(s3: MotoS3) -> None:
    missing = make_s3_driver(s3, bucket="gorae-no-such-bucket-" + uuid.uuid4().hex[:8])
    with pytest.raises(StorageError) as e:
        missing.put_content("/x", b"")
    assert "NoSuchBucket" in str(e.value)
    wrong = S3Driver(
        S3Options(
            bucket=s3.new_bucket(),
            endpoint_url="http://127.0.0.1:1",
            region=REGION,
            access_key="a",
            secret_key="b",
        )
    )
    with pytest.raises(StorageError):
        wrong.get_content("/x")


def test_credentials_from_the_environment(s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.delenv("REGISTRY_STORAGE_S3_ACCESSKEY", raising=False)
    opts = S3Options.from_env(s3.new_bucket(), endpoint_url=s3.endpoint, region=REGION)
    assert opts.access_key is None
    d = S3Driver(opts)
    d.put_content("/e", b"env")
    assert d.get_content("/e") == b"env"
    monkeypatch.setenv("REGISTRY_STORAGE_S3_ACCESSKEY", "k2")
    assert S3Options.from_env("b", endpoint_url=s3.endpoint).access_key == "k2"


_component = st.from_regex(r"[A-Za-z0-9._-]{1,30}", fullmatch=True).filter(lambda c: c not in (".", ".."))
valid_paths = st.lists(_component, min_size=1, max_size=5).map(lambda parts: "/" + "/".join(parts))
hostile_paths = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(["..", ".", "", "a", "b c", "\x00", "é", "~"]), max_size=5).map("/".join),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=valid_paths, content=st.binary(max_size=2048))
def test_any_valid_path_roundtrips_on_s3(s3: MotoS3, path: str, content: bytes) -> None:
    d = make_s3_driver(s3, bucket=_shared_bucket(s3), root="/p/" + uuid.uuid4().hex)
    check_roundtrip(d, path, content)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=hostile_paths)
def test_hostile_paths_never_reach_s3(s3: MotoS3, path: str) -> None:
    bucket = _shared_bucket(s3)
    d = make_s3_driver(s3, bucket=bucket, root="/h")
    try:
        check_path(path)
    except InvalidPath:
        check_rejected(d, path)
        assert [k for k in s3.keys(bucket) if not k.startswith("p/")] == []
    else:
        check_roundtrip(d, path, b"x")


_BUCKETS: dict[str, str] = {}


def _shared_bucket(s3: MotoS3) -> str:
    if s3.endpoint not in _BUCKETS:
        _BUCKETS[s3.endpoint] = s3.new_bucket()
    return _BUCKETS[s3.endpoint]


# -- the command line's S3 options ---------------------------------------------------------------------

from gorae.registry.storage.s3 import OPTION_NAMES, options_from_strings  # noqa: E402


def test_options_use_distributions_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REGISTRY_STORAGE_S3_ACCESSKEY", raising=False)
    monkeypatch.delenv("REGISTRY_STORAGE_S3_SECRETKEY", raising=False)
    opts = options_from_strings(
        {
            "bucket": "images",
            "region": "eu-west-1",
            "regionendpoint": "http://minio:9000",
            "rootdirectory": "/registry",
            "secure": "false",
            "skipverify": "true",
            "chunksize": str(16 << 20),
            "accesskey": "AK",
            "secretkey": "SK",
        }
    )
    assert opts == S3Options(
        bucket="images",
        region="eu-west-1",
        endpoint_url="http://minio:9000",
        access_key="AK",
        secret_key="SK",
        root_directory="/registry",
        secure=False,
        verify=False,
        chunk_size=16 << 20,
    )
    with pytest.raises(ValueError, match="unknown s3 option 'bukket'"):
        options_from_strings({"bukket": "x"})
    with pytest.raises(ValueError, match="needs a bucket"):
        options_from_strings({"region": "x"})
    with pytest.raises(ValueError, match="chunksize"):
        options_from_strings({"bucket": "b", "chunksize": "10m"})
    with pytest.raises(ValueError, match="secure: not a boolean"):
        options_from_strings({"bucket": "b", "secure": "maybe"})


@settings(max_examples=300, deadline=None)
@given(
    values=st.dictionaries(
        st.sampled_from(OPTION_NAMES) | st.text(max_size=12), st.text(max_size=30), max_size=6
    )
)
def test_any_option_strings_give_options_or_a_value_error(values: dict[str, str]) -> None:
    try:
        opts = options_from_strings(values)
    except ValueError as e:
        assert str(e)
        return
    assert opts.bucket == values["bucket"] and opts.bucket
    assert opts.chunk_size == int(values.get("chunksize", str(10 << 20)))
