"""k8s-file log reading and following (synthetic files; the real-conmon log is covered in test_runtime_conmon)."""

from __future__ import annotations

import asyncio

from gorae.runtime.logs import follow_log, format_time, parse_time_ns, read_log, to_ns

LOG = (
    b"2026-11-28T02:03:49.000000001+00:00 stdout F one\n"
    b"2026-11-28T02:03:50.000000000+00:00 stderr P par\n"
    b"2026-11-28T02:03:50.100000000+00:00 stdout P no-newline-\n"
    b"2026-11-28T02:03:50.200000000+00:00 stderr F tial\n"
    b"2026-11-28T02:03:51.500000000+00:00 stdout F joined\n"
    b"2026-11-28T02:03:52.000000000+00:00 stdout F \n"
    b"2026-11-28T02:03:53.000000000+00:00 stdout P tail-without-newline"
    b"\n"
)
T49 = parse_time_ns("2026-11-28T02:03:49.000000001+00:00")


def write(tmp_path, data=LOG):
    p = tmp_path / "ctr.log"
    p.write_bytes(data)
    return str(p)


def test_time_parsing_and_format():
    assert parse_time_ns("1970-01-01T00:00:01.5+00:00") == 1_500_000_000
    assert parse_time_ns("1970-01-01T00:00:01Z") == 10**9
    assert format_time(T49) == "2026-11-28T02:03:49.000000001Z"
    assert to_ns("1700000000.25") == 1_700_000_000_250_000_000
    assert to_ns(1.5) == 1_500_000_000 and to_ns(None) == 0


def test_bytes_exact_per_stream(tmp_path):
    p = write(tmp_path)
    out = list(read_log(p))
    assert out == [
        (1, b"one\n"),
        (2, b"partial\n"),
        (1, b"no-newline-joined\n"),
        (1, b"\n"),
        (1, b"tail-without-newline"),
    ]
    assert b"".join(d for s, d in read_log(p, stdout=False)) == b"partial\n"


def test_tail_since_until_timestamps(tmp_path):
    p = write(tmp_path)
    assert [d for _, d in read_log(p, tail=2)] == [b"\n", b"tail-without-newline"]
    assert list(read_log(p, tail=0)) == []
    assert len(list(read_log(p, tail=-1))) == 5
    since = str(T49 // 10**9 + 1)  # 02:03:50 exactly: kept (at or after)
    assert [d for _, d in read_log(p, since=since)][0] == b"partial\n"
    assert [d for _, d in read_log(p, since=float(since) + 0.05)][0] == b"no-newline-joined\n"
    until = str(T49 // 10**9 + 2)  # 02:03:51: a joined line carries its first chunk's time (50.1)
    assert [d for _, d in read_log(p, until=until)] == [b"one\n", b"partial\n", b"no-newline-joined\n"]
    ts = list(read_log(p, timestamps=True, tail=1))
    assert ts == [(1, b"2026-11-28T02:03:53.000000000Z tail-without-newline")]


def test_missing_and_garbage(tmp_path):
    assert list(read_log(str(tmp_path / "nope"))) == []
    p = write(tmp_path, b"garbage\n2026-11-28T02:03:49Z stdout F ok\nhalf-written 2026")
    assert list(read_log(p)) == [(1, b"ok\n")]


def test_follow_until_exit(tmp_path):
    p = tmp_path / "ctr.log"
    p.write_bytes(b"2026-11-28T02:03:49.000000001+00:00 stdout F old\n")

    async def go():
        done = asyncio.Event()

        async def writer():
            await asyncio.sleep(0.15)
            with open(p, "ab") as f:
                f.write(b"2026-11-28T02:03:50.000000000+00:00 stdout P ne")
                f.flush()
                await asyncio.sleep(0.15)
                f.write(b"w-partial\n2026-11-28T02:03:50.1+00:00 stdout F -line\n")
                f.write(b"2026-11-28T02:03:51.000000000+00:00 stderr F err\n")
            await asyncio.sleep(0.1)
            done.set()

        w = asyncio.create_task(writer())
        got = [x async for x in follow_log(str(p), tail=1, exited=done.wait(), poll_interval=0.05)]
        await w
        return got

    got = asyncio.run(go())
    # live partial chunks are passed on as written; an unfinished log line is never emitted half
    assert got == [(1, b"old\n"), (1, b"new-partial"), (1, b"-line\n"), (2, b"err\n")]
