"""The progress renderer (gorae/cli/progress.py) against bytes the docker 28 CLI printed for the same daemon
stream (a real dockerd pulling from Debian's docker-registry, recorded once, under a 150-column pty and through
a pipe), docker's JSONProgress.String() cases, and arbitrary streams through hypothesis."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.cli.progress import ProgressRenderer, go_duration, progress_string, show_progress
from gorae.client.errors import StreamError

# POST /images/create?fromImage=127.0.0.1:33433/big&tag=1 on dockerd 20.10 (one layer present, one pulled)
DOCKERD_PULL = """\
{"status":"Pulling from big","id":"1"}
{"status":"Already exists","progressDetail":{},"id":"0331814b8a78"}
{"status":"Pulling fs layer","progressDetail":{},"id":"9002ce284de1"}
{"status":"Downloading","progressDetail":{"current":98304,"total":8391317},"progress":"[\\u003e    ]   98.3kB/8.391MB","id":"9002ce284de1"}
{"status":"Verifying Checksum","progressDetail":{},"id":"9002ce284de1"}
{"status":"Download complete","progressDetail":{},"id":"9002ce284de1"}
{"status":"Extracting","progressDetail":{"current":98304,"total":8391317},"progress":"[\\u003e   ]   98.3kB/8.391MB","id":"9002ce284de1"}
{"status":"Extracting","progressDetail":{"current":8391317,"total":8391317},"progress":"[=====\\u003e]  8.391MB/8.391MB","id":"9002ce284de1"}
{"status":"Pull complete","progressDetail":{},"id":"9002ce284de1"}
{"status":"Digest: sha256:4bab17e497cc423454a5623ee193daabde93cc02ec0cb34ca936d248cad1fbb6"}
{"status":"Status: Downloaded newer image for 127.0.0.1:33433/big:1"}
"""

# what `docker pull 127.0.0.1:33433/big:1` (docker 28.2.2) wrote for it on a 150-column pty (the pty turns
# "\n" into "\r\n"; the final reference line is the command's, not the renderer's)
DOCKER_TTY = (
    b"1: Pulling from big\r\n\r\n\x1b[1A\x1b[2K\r0331814b8a78: Already exists \r\x1b[1B\r\n\x1b[1A\x1b[2K\r"
    b"9002ce284de1: Pulling fs layer \r\x1b[1B\x1b[1A\x1b[2K\r9002ce284de1: Downloading "
    b"[>                                                  ]   98.3kB/8.391MB\r\x1b[1B\x1b[1A\x1b[2K\r"
    b"9002ce284de1: Verifying Checksum \r\x1b[1B\x1b[1A\x1b[2K\r9002ce284de1: Download complete \r\x1b[1B"
    b"\x1b[1A\x1b[2K\r9002ce284de1: Extracting [>                                                  ]   "
    b"98.3kB/8.391MB\r\x1b[1B\x1b[1A\x1b[2K\r9002ce284de1: Extracting "
    b"[==================================================>]  8.391MB/8.391MB\r\x1b[1B\x1b[1A\x1b[2K\r"
    b"9002ce284de1: Pull complete \r\x1b[1BDigest: sha256:4bab17e497cc423454a5623ee193daabde93cc02ec0cb34ca936"
    b"d248cad1fbb6\r\nStatus: Downloaded newer image for 127.0.0.1:33433/big:1\r\n"
)

# the same pull with stdout a pipe
DOCKER_PLAIN = """\
1: Pulling from big
0331814b8a78: Already exists
9002ce284de1: Pulling fs layer
9002ce284de1: Verifying Checksum
9002ce284de1: Download complete
9002ce284de1: Pull complete
Digest: sha256:4bab17e497cc423454a5623ee193daabde93cc02ec0cb34ca936d248cad1fbb6
Status: Downloaded newer image for 127.0.0.1:33433/big:1
"""


def _render(text: str, *, terminal: bool, width: int = 150) -> str:
    out = io.StringIO()
    r = ProgressRenderer(out, terminal=terminal, width=lambda: width)
    for line in text.splitlines():
        r.feed(json.loads(line))
    return out.getvalue()


def test_terminal_rendering_is_dockers_byte_for_byte() -> None:
    assert _render(DOCKERD_PULL, terminal=True).replace("\n", "\r\n").encode() == DOCKER_TTY


def test_plain_rendering_prints_each_state_once_without_bars() -> None:
    assert _render(DOCKERD_PULL, terminal=False) == DOCKER_PLAIN


def test_narrow_terminal_drops_the_bar_but_keeps_counts() -> None:
    out = _render(DOCKERD_PULL, terminal=True, width=80)
    assert "9002ce284de1: Downloading   98.3kB/8.391MB\r" in out
    assert "[>" not in out and "[=" not in out


@pytest.mark.parametrize(
    ("detail", "width", "expected"),
    [
        ({}, 200, ""),
        ({"current": 0, "total": 0}, 200, ""),
        ({"current": 1500}, 200, "   1.5kB"),
        ({"current": 7, "units": "items"}, 200, "7 items"),
        ({"current": 5, "total": 10, "units": "files"}, 80, "5/10 files"),
        ({"current": 12, "total": 10, "units": "files"}, 80, "12 files"),
        ({"current": 3_000_000, "total": 2_000_000}, 80, "     3MB"),
        ({"current": 1, "total": 2, "hidecounts": True}, 200, "[=========================>                         ] "),
        ({"current": 1_000_000, "total": 4_000_000, "start": 990}, 200,
         "[" + "=" * 12 + ">" + " " * 38 + "]      1MB/4MB 30s"),
        ({"current": 1_000_000, "total": 4_000_000, "start": 990}, 50, "     1MB/4MB"),
        ({"current": 4_000_000, "total": 4_000_000, "start": 990}, 200,
         "[==================================================>]      4MB/4MB"),
    ],
)  # fmt: skip
def test_progress_string_matches_jsonprogress(detail: dict[str, object], width: int, expected: str) -> None:
    assert progress_string(detail, width, now=1000.0) == expected


@pytest.mark.parametrize(
    ("ns", "text"),
    [(0, "0s"), (45 * 10**9, "45s"), (120 * 10**9, "2m0s"), (3723 * 10**9, "1h2m3s"), (-5 * 10**9, "-5s")],
)
def test_go_duration(ns: int, text: str) -> None:
    assert go_duration(ns) == text


def test_error_detail_ends_the_stream_with_the_daemons_text() -> None:
    out = io.StringIO()
    r = ProgressRenderer(out, terminal=False)
    r.feed({"status": "Pulling from x", "id": "1"})
    with pytest.raises(StreamError) as e:
        r.feed({"errorDetail": {"message": "manifest unknown"}, "error": "manifest unknown"})
    assert str(e.value) == "manifest unknown"
    assert out.getvalue() == "1: Pulling from x\n"


def test_aux_goes_to_the_callback_and_quiet_prints_nothing() -> None:
    seen: list[object] = []
    out = io.StringIO()
    show_progress(
        [{"status": "x"}, {"aux": {"Tag": "1", "Digest": "sha256:ab", "Size": 3}}],
        out,
        quiet=True,
        on_aux=seen.append,
    )
    assert out.getvalue() == ""
    assert seen == [{"Tag": "1", "Digest": "sha256:ab", "Size": 3}]


def test_stream_messages_and_timestamps() -> None:
    out = io.StringIO()
    r = ProgressRenderer(out, terminal=False)
    r.feed({"stream": "Step 1/2\n"})
    r.feed({"status": "pull", "id": "busybox", "from": "src"})
    assert out.getvalue() == "Step 1/2\nbusybox: (from src) pull\n"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
KEYS = st.sampled_from(
    [
        "status",
        "id",
        "progress",
        "progressDetail",
        "stream",
        "aux",
        "from",
        "time",
        "timeNano",
        "error",
        "errorDetail",
    ]
)
DETAIL = st.dictionaries(
    st.sampled_from(["current", "total", "start", "units", "hidecounts"]),
    st.integers(min_value=-(2**70), max_value=2**70) | st.floats() | st.text(max_size=5) | st.booleans(),
)
MESSAGE = st.dictionaries(KEYS, JSON | DETAIL, max_size=6) | JSON


@settings(max_examples=400, deadline=None)
@given(st.lists(MESSAGE, max_size=12), st.booleans(), st.integers(min_value=0, max_value=400))
def test_any_stream_renders_or_raises_stream_error_only(
    msgs: list[object], terminal: bool, width: int
) -> None:
    out = io.StringIO()
    r = ProgressRenderer(out, terminal=terminal, width=lambda: width)
    for m in msgs:
        try:
            r.feed(m)
        except StreamError:
            break
    assert isinstance(out.getvalue(), str)
