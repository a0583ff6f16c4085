"""The credentials `gorae pull`/`push` send, and docker's PrivilegeFunc: a 401 from the daemon prints "Login prior
to pull:", prompts, and retries once with the typed credentials. The Engine API client is a recording test
double here (dockerd 20.10 on this machine answers 500, not 401, so the compat tests cannot reach this path)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest

from gorae.cli.commands.registry import cmd_pull
from gorae.cli.context import Cli
from gorae.client.dockerconfig import ConfigFile
from gorae.client.errors import APIError


class _Response:
    def __init__(self, msgs: list[dict[str, Any]]) -> None:
        self.msgs = msgs

    def iter_json(self) -> list[dict[str, Any]]:
        return self.msgs


class RecordingAPI:
    """Answers the first `fail` requests with 401, then a short pull stream; keeps every request."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.calls: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []

    def request(self, method: str, path: str, params: Any = None, **kw: Any) -> _Response:
        self.calls.append(
            (
                method,
                path,
                dict(params or {}),
                json.loads(base64.urlsafe_b64decode(kw["headers"]["X-Registry-Auth"])),
            )
        )
        if len(self.calls) <= self.fail:
            raise APIError(401, "unauthorized: authentication required")
        return _Response(
            [
                {"status": "Pulling from app", "id": "1"},
                {"status": "Status: Downloaded newer image for reg:5000/app:1"},
            ]
        )

    def close(self) -> None:
        pass


def _cli(tmp_path: Path, api: RecordingAPI, config: dict[str, Any]) -> tuple[Cli, io.StringIO, io.StringIO]:
    (tmp_path / "config.json").write_text(json.dumps(config))
    out, err = io.StringIO(), io.StringIO()
    cli = Cli({"config": str(tmp_path)}, out=out, err=err)
    cli._api = api  # type: ignore[assignment]
    cli._config_file, _ = ConfigFile.load(str(tmp_path))
    return cli, out, err


def _pull_opts(**kw: Any) -> dict[str, Any]:
    return {
        "all_tags": False,
        "quiet": False,
        "platform": "",
        "disable_content_trust": True,
        "_set": set(),
        **kw,
    }


def test_pull_sends_the_stored_credentials_of_the_images_registry(tmp_path: Path) -> None:
    api = RecordingAPI(fail=0)
    cli, out, _ = _cli(
        tmp_path,
        api,
        {"auths": {"reg:5000": {"auth": "dTpw"}, "https://index.docker.io/v1/": {"auth": "aDp4"}}},
    )
    assert cmd_pull(cli, _pull_opts(), ["reg:5000/app:1"]) == 0
    assert api.calls == [
        (
            "POST",
            "/images/create",
            {"fromImage": "reg:5000/app", "tag": "1"},
            {"username": "u", "password": "p", "serveraddress": "reg:5000"},
        )
    ]
    assert (
        out.getvalue()
        == "1: Pulling from app\nStatus: Downloaded newer image for reg:5000/app:1\nreg:5000/app:1\n"
    )
    api2 = RecordingAPI(fail=0)
    cli, out, _ = _cli(tmp_path, api2, {"auths": {"https://index.docker.io/v1/": {"auth": "aDp4"}}})
    cmd_pull(cli, _pull_opts(quiet=True), ["busybox"])
    assert api2.calls[0][2:] == (
        {"fromImage": "docker.io/library/busybox", "tag": "latest"},
        {"username": "h", "password": "x", "serveraddress": "https://index.docker.io/v1/"},
    )
    assert out.getvalue() == "docker.io/library/busybox:latest\n"


def test_a_401_prompts_once_and_retries_with_the_typed_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("bob\nhunter2\n"))
    monkeypatch.setenv("DOCKER_CLI_HINTS", "false")
    api = RecordingAPI(fail=1)
    cli, out, err = _cli(tmp_path, api, {})
    assert cmd_pull(cli, _pull_opts(), ["reg:5000/app:1"]) == 0
    assert [c[3] for c in api.calls] == [
        {},
        {"username": "bob", "password": "hunter2", "serveraddress": "https://index.docker.io/v1/"},
    ]
    assert out.getvalue().startswith(
        "\nLogin prior to pull:\n"
        "Log in with your Docker ID or email address to push and pull images from Docker Hub. If you don't have a "
        "Docker ID, head over to https://hub.docker.com/ to create one.\nUsername: Password: \n1: Pulling from app\n"
    )
    assert "Info -> A Personal Access Token (PAT) can be used instead." in err.getvalue()


def test_a_second_401_is_the_daemons_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("bob\nhunter2\n"))
    api = RecordingAPI(fail=2)
    cli, _, _ = _cli(tmp_path, api, {})
    with pytest.raises(APIError) as e:
        cmd_pull(cli, _pull_opts(), ["reg:5000/app:1"])
    assert (e.value.status, len(api.calls)) == (401, 2)
