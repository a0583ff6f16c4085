"""The registry's OCI conformance cases (tests/compat/test_registry_conformance.py, every one of them) again, on
S3 storage: `gorae registry serve --storage s3` against moto's S3 server. Same assertions, other driver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from registry_helpers import Registry, gorae_registry
from s3server import moto_s3
from test_registry_conformance import *  # noqa: F403  # the cases; `reg` below replaces the filesystem one


@pytest.fixture(scope="module")
def reg() -> Iterator[Registry]:  # noqa: F811
    with moto_s3() as s3:
        bucket = s3.new_bucket()
        args = [
            "--storage",
            "s3",
            "--s3-bucket",
            bucket,
            "--s3-endpoint",
            s3.endpoint,
            "--s3-region",
            "us-east-1",
        ]
        with gorae_registry(*args, "--s3-rootdirectory", "/conformance", env=s3.env()) as r:
            yield r
