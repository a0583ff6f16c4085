"""Property tests with hostile archives: whatever the names, links and whiteouts, apply_layer and
extract_to either succeed or raise InvalidParameter, and nothing outside the target changes (sibling
dirs, a 0400 witness, link counts of outside files, the host's /etc)."""

from __future__ import annotations

import io
import os
import tarfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_archive_support import E, Scratch, outside_state, scratch, tar_bytes

from gorae.archive import apply_layer, extract_to, stat_path, tar_path
from gorae.errors import InvalidParameter, NotFound

_COMMON = ["a", "b", "etc", "..", ".", "", ".wh.a", ".wh.b", ".wh..wh..opq", "x" * 200]
_REFUSED = [
    ".wh..",
    ".wh...",
    ".wh.",
]  # whiteouts reaching outside their directory: rare, or they stop every layer
COMPONENTS = _COMMON * 8 + _REFUSED
# "@OUT" / "@BASE" are replaced by the absolute host paths of the outside dir / the scratch base
TARGETS = [
    "@OUT",
    "@OUT/etc",
    "@OUT/etc/passwd",
    "@BASE",
    "@BASE/witness",
    "/",
    "/etc",
    "/etc/passwd",
    "../outside",
]

component = st.sampled_from(COMPONENTS)
path = st.builds(
    lambda lead, parts: lead + "/".join(parts),
    st.sampled_from(["", "/", "./", "../"]),
    st.lists(component, min_size=1, max_size=6),
)
target = st.one_of(
    path, st.sampled_from(TARGETS), st.builds(lambda n: "../" * n + "outside/etc", st.integers(1, 6))
)
kind = st.sampled_from(["dir", "file", "file", "sym", "sym", "link", "fifo", "chr"])
mode = st.sampled_from([0o755, 0o644, 0o4755, 0o2700, 0o1777, 0o000, 0o777])
entry = st.builds(
    lambda k, n, t, m, data: E(
        k, n, data=data if k == "file" else b"", mode=m, target=t if k in ("sym", "link") else ""
    ),
    kind,
    path,
    target,
    mode,
    st.binary(max_size=64),
)
layers = st.lists(st.lists(entry, min_size=1, max_size=12), min_size=1, max_size=3)


def _materialize(e: E, s: Scratch) -> E:
    out = os.path.join(s.base, "outside")
    t = e.target.replace("@OUT", out).replace("@BASE", s.base)
    return E(e.kind, e.name, data=e.data, mode=e.mode, target=t)


def _host_etc() -> set[str]:
    return set(os.listdir("/etc"))


# docs/mutation.md: under mutmut each mutant must run in seconds, so GORAE_MUTATION=1 shrinks every
# property to a few derandomized (repeatable) examples.
_MUTATION = os.environ.get("GORAE_MUTATION") == "1"


def _examples(n: int) -> int:
    return 8 if _MUTATION else n


SETTINGS = settings(
    max_examples=_examples(150),
    derandomize=_MUTATION,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@SETTINGS
@given(layers=layers, whiteouts=st.sampled_from(["overlay", "remove"]))
def test_hostile_layers_stay_inside_root(layers: list[list[E]], whiteouts: str) -> None:
    host = _host_etc()
    with scratch() as s:
        before = outside_state(s)
        for layer in layers:
            data = tar_bytes(*[_materialize(e, s) for e in layer])
            try:
                apply_layer(s.root, io.BytesIO(data), whiteouts=whiteouts)  # type: ignore[arg-type]
            except InvalidParameter:
                pass
        assert outside_state(s) == before
        # and reading the result back never leaves the root either
        out = io.BytesIO()
        tar_path(s.root, "/", out)
        with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
            for m in tf.getmembers():
                if m.isreg():
                    fh = tf.extractfile(m)
                    assert fh is not None and fh.read() not in (b"outside", b"witness")
    assert _host_etc() == host


@SETTINGS
@given(
    layer=st.lists(entry, min_size=1, max_size=12), dest=st.sampled_from(["/", "/d", "/dl", "/dl/x", "/dd"])
)
def test_hostile_copy_into_container_stays_inside_root(layer: list[E], dest: str) -> None:
    host = _host_etc()
    with scratch() as s:
        os.mkdir(s.path("d"))
        os.symlink("/d", s.path("dl"))
        os.symlink(
            os.path.join(s.base, "outside"), s.path("dd")
        )  # absolute host path: container's, not host's
        before = outside_state(s)
        data = tar_bytes(*[_materialize(e, s) for e in layer])
        try:
            extract_to(s.root, dest, io.BytesIO(data))
        except (InvalidParameter, NotFound):
            pass
        assert outside_state(s) == before
    assert _host_etc() == host


@SETTINGS
@given(p=path)
def test_stat_and_tar_path_never_leave_root(p: str) -> None:
    with scratch() as s:
        os.makedirs(s.path("a/b"))
        os.symlink("/", s.path("a/root"))
        os.symlink("../../../../..", s.path("etc"))
        os.symlink(os.path.join(s.base, "outside"), s.path("b"))
        with open(s.path("a/b/in"), "w") as fh:
            fh.write("inside")
        try:
            st = stat_path(s.root, p)
        except (NotFound, InvalidParameter):
            return
        assert not st.link_target or st.link_target.startswith("/")
        out = io.BytesIO()
        tar_path(s.root, p, out)
        with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tf:
            for m in tf.getmembers():
                if m.isreg():
                    fh = tf.extractfile(m)
                    assert fh is not None and fh.read() == b"inside"


@settings(max_examples=_examples(200), derandomize=_MUTATION, deadline=None)
@given(
    data=st.binary(max_size=4096),
    prefix=st.sampled_from([b"", b"\x1f\x8b\x08\x00", b"\x28\xb5\x2f\xfd", b"BZh9"]),
)
def test_random_bytes_are_invalid_parameter_or_empty(data: bytes, prefix: bytes) -> None:
    with scratch() as s:
        before = outside_state(s)
        try:
            apply_layer(s.root, io.BytesIO(prefix + data))
        except InvalidParameter:
            pass
        assert outside_state(s) == before


@settings(max_examples=_examples(100), derandomize=_MUTATION, deadline=None)
@given(data=st.binary(min_size=1, max_size=512), at=st.integers(0, 4000))
def test_corrupted_valid_tar(data: bytes, at: int) -> None:
    good = tar_bytes(E("dir", "etc"), E("file", "etc/f", data=b"x" * 700), E("sym", "l", target="/etc"))
    at = min(at, len(good))
    bad = good[:at] + data + good[at + len(data) :]
    with scratch() as s:
        before = outside_state(s)
        try:
            apply_layer(s.root, io.BytesIO(bad))
        except InvalidParameter:
            pass
        assert outside_state(s) == before
