"""The `gorae registry gc` and storage flags of gorae/cmd/registry.py: Go-style durations (hypothesis over any
text), the S3 flags turned into distribution's option names, refusals."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.cmd.registry import _duration, _storage_options, build_parser


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("90", 90.0),
        ("1.5", 1.5),
        ("90s", 90.0),
        ("30m", 1800.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("2d", 172800.0),
        ("250ms", 0.25),
        ("1h0m10s", 3610.0),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert _duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "1x", "1h30", "m5", "1..5s", "-1h", "1 h", "1hh"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid duration"):
        _duration(text)


@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet="0123456789.smhd -xµ", max_size=12) | st.text(max_size=12))
def test_any_text_is_a_duration_or_refused(text: str) -> None:
    try:
        value = _duration(text)
    except argparse.ArgumentTypeError:
        return
    assert value >= 0


def test_s3_flags_become_distributions_options() -> None:
    args = build_parser().parse_args(
        [
            "gc",
            "--storage",
            "s3",
            "--s3-bucket",
            "b",
            "--s3-endpoint",
            "http://e:9000",
            "--s3-region",
            "r",
            "--s3-rootdirectory",
            "/x",
            "--storage-opt",
            "chunksize=6291456",
            "-d",
            "-m",
            "--grace",
            "10m",
        ]
    )
    assert _storage_options(args) == {
        "chunksize": "6291456",
        "bucket": "b",
        "regionendpoint": "http://e:9000",
        "region": "r",
        "rootdirectory": "/x",
    }
    assert (args.dry_run, args.delete_untagged, args.grace) == (True, True, 600.0)
    serve = build_parser().parse_args(["serve", "--storage", "s3", "--s3-bucket", "b"])
    assert _storage_options(serve) == {"bucket": "b"}
    args = build_parser().parse_args(["gc", "--s3-bucket", "b"])
    with pytest.raises(SystemExit, match="--s3-bucket needs --storage s3"):
        _storage_options(args)
    args = build_parser().parse_args(["gc", "--storage-opt", "nokey"])
    with pytest.raises(SystemExit, match="invalid --storage-opt 'nokey'"):
        _storage_options(args)
