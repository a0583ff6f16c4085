"""`gorae login` / `gorae logout` next to the docker 28 CLI (each with its own DOCKER_CONFIG) against Debian's
docker-registry with htpasswd (bcrypt) auth, through both daemon targets: outputs, exit statuses, the
config.json each writes (bytes and mode), the prompts under a pty, stored-credential logins, a credential
helper (the labelled test helper tests/fakes/credential_helper.py) and pulls/pushes that use what was
stored. Also the help texts of pull/push/login/logout."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_daemon import Daemon
from registry_peer import Registry, run, spawn, transcript

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run containers")

CLIS = ("docker", "gorae")
USER, PASSWORD = "alice", "s3cret<&>"
HELPER = Path(__file__).resolve().parents[1] / "fakes" / "credential_helper.py"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("authregistry"), users={USER: PASSWORD})
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    """A DOCKER_CONFIG per CLI (not created: both CLIs make it)."""
    return {which: tmp_path / which / "cfg" for which in CLIS}


def _norm(text: str, d: Path) -> str:
    return text.replace(str(d), "CFG").replace("gorae", "docker")


def _side_by_side(
    daemon: Daemon,
    dirs: dict[str, Path],
    *args: str,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, tuple[int, str, str]]:
    out = {}
    for which in CLIS:
        r = run(which, daemon, dirs[which], *args, input=input, extra_env=env)
        out[which] = (r.returncode, _norm(r.stdout, dirs[which]), _norm(r.stderr, dirs[which]))
    return out


def _file(d: Path) -> tuple[str, int] | None:
    f = d / "config.json"
    if not f.exists():
        return None
    return f.read_text(), stat.S_IMODE(f.stat().st_mode)


def _same_files(dirs: dict[str, Path]) -> tuple[str, int] | None:
    assert _file(dirs["gorae"]) == _file(dirs["docker"])
    return _file(dirs["docker"])


def test_login_with_password_flag_writes_dockers_config(
    daemon: Daemon, registry: Registry, dirs: dict[str, Path]
) -> None:
    res = _side_by_side(daemon, dirs, "login", "-u", USER, "-p", PASSWORD, registry.host)
    assert res["gorae"] == res["docker"]
    assert res["docker"] == (
        0,
        "Login Succeeded\n",
        "WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n\n"
        "WARNING! Your credentials are stored unencrypted in 'CFG/config.json'.\n"
        "Configure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n\n",
    )
    text, mode = _same_files(dirs) or ("", 0)
    assert mode == 0o600
    assert json.loads(text) == {"auths": {registry.host: {"auth": "YWxpY2U6czNjcmV0PCY+"}}}
    assert stat.S_IMODE(dirs["gorae"].stat().st_mode) == stat.S_IMODE(dirs["docker"].stat().st_mode)


def test_login_password_stdin_and_url_server_address(
    daemon: Daemon, registry: Registry, dirs: dict[str, Path]
) -> None:
    res = _side_by_side(
        daemon,
        dirs,
        "login",
        "-u",
        USER,
        "--password-stdin",
        f"http://{registry.host}/v2/",
        input=PASSWORD + "\r\n",
    )
    assert res["gorae"] == res["docker"]
    assert res["docker"][:2] == (0, "Login Succeeded\n")
    assert list(json.loads((_same_files(dirs) or ("{}", 0))[0])["auths"]) == [registry.host]


def test_wrong_password_is_the_daemons_error_and_stores_nothing(
    daemon: Daemon, registry: Registry, dirs: dict[str, Path]
) -> None:
    res = _side_by_side(daemon, dirs, "login", "-u", USER, "--password-stdin", registry.host, input="wrong")
    assert res["gorae"] == res["docker"]
    code, out, err = res["docker"]
    assert (code, out) == (1, "")
    assert err.startswith("Error response from daemon: ") and "401 Unauthorized" in err
    assert _same_files(dirs) is None


@pytest.mark.parametrize(
    "args",
    [
        ["login", "-u", "", "REG"],
        ["login", "--password-stdin", "REG"],
        ["login", "-u", "a", "-p", "x", "--password-stdin", "REG"],
        ["login", "-u", "a", "-p", "", "REG"],
        ["login", "REG"],  # stdin is not a terminal
        ["login", "-u", "a", "REG"],
        ["login", "a", "b"],
        ["logout", "a", "b"],
        ["login", "--bogus"],
    ],
)
def test_flag_and_tty_errors_match_docker(
    daemon: Daemon, registry: Registry, dirs: dict[str, Path], args: list[str]
) -> None:
    args = [registry.host if a == "REG" else a for a in args]
    res = _side_by_side(daemon, dirs, *args)
    assert res["gorae"] == res["docker"]
    assert res["docker"][0] != 0
    assert _same_files(dirs) is None


def test_login_reuses_stored_credentials_and_reports_bad_ones(
    daemon: Daemon, registry: Registry, dirs: dict[str, Path]
) -> None:
    _side_by_side(daemon, dirs, "login", "-u", USER, "--password-stdin", registry.host, input=PASSWORD)
    res = _side_by_side(daemon, dirs, "login", registry.host)
    assert res["gorae"] == res["docker"]
    assert res["docker"] == (
        0,
        "Login Succeeded\n",
        f"Authenticating with existing credentials... [Username: {USER}]\n\n"
        " Info -> To login with a different account, run 'docker logout' followed by 'docker login'\n\n\n",
    )
    for d in dirs.values():  # a password changed elsewhere
        doc = json.loads((d / "config.json").read_text())
        doc["auths"][registry.host]["auth"] = "YWxpY2U6b2xk"  # alice:old
        (d / "config.json").write_text(json.dumps(doc))
    res = _side_by_side(daemon, dirs, "login", registry.host)
    assert res["gorae"] == res["docker"]
    code, out, err = res["docker"]
    assert (code, out) == (1, "")
    assert "Login did not succeed, error: Error response from daemon: " in err
    assert err.endswith("Error: Cannot perform an interactive login from a non TTY device\n")
    _same_files(dirs)


def test_login_prompts_on_a_terminal_without_echoing_the_password(
    daemon: Daemon, registry: Registry, dirs: dict[str, Path]
) -> None:
    shown = {}
    for which in CLIS:
        child = spawn(which, daemon, dirs[which], "login", registry.host)
        child.expect(b"Username: ")
        child.sendline(USER.encode())
        child.expect(b"Password: ")
        child.sendline(PASSWORD.encode())
        shown[which] = _norm(transcript(child).decode(), dirs[which])
    assert shown["gorae"] == shown["docker"]
    assert PASSWORD not in shown["docker"]
    assert shown["docker"].endswith("Login Succeeded\r\n")
    assert json.loads((_same_files(dirs) or ("{}", 0))[0])["auths"][registry.host]["auth"]


def test_failed_stored_login_prompts_with_the_stored_username(
    daemon: Daemon, registry: Registry, dirs: dict[str, Path]
) -> None:
    shown = {}
    for which in CLIS:
        dirs[which].mkdir(parents=True)
        (dirs[which] / "config.json").write_text(
            json.dumps({"auths": {registry.host: {"auth": "YWxpY2U6b2xk"}}})
        )
        child = spawn(which, daemon, dirs[which], "login", registry.host)
        child.expect(b"Username \\(alice\\): ")
        child.sendline(b"")  # keep the stored username
        child.expect(b"Password: ")
        child.sendline(PASSWORD.encode())
        shown[which] = _norm(transcript(child).decode(), dirs[which])
    assert shown["gorae"] == shown["docker"]
    assert "Login did not succeed, error: " in shown["docker"]
    assert shown["docker"].endswith("Login Succeeded\r\n")
    _same_files(dirs)


def test_existing_file_keeps_what_docker_keeps(
    daemon: Daemon, registry: Registry, dirs: dict[str, Path]
) -> None:
    original = {
        "auths": {"other.example": {"auth": "dTpw", "email": "u@example.com"}},
        "psFormat": "table {{.ID}}",
        "HttpHeaders": {"X-Meta": "1", "User-Agent": "x"},
        "detachKeys": "ctrl-a",
        "currentContext": "default",
        "unknownKey": {"a": [1, 2]},
        "proxies": {"default": {"noProxy": "localhost", "httpProxy": "http://p:3128"}},
    }
    for d in dirs.values():
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps(original, indent=2))
        os.chmod(d / "config.json", 0o644)
    res = _side_by_side(daemon, dirs, "login", "-u", USER, "--password-stdin", registry.host, input=PASSWORD)
    assert res["gorae"] == res["docker"]
    text, mode = _same_files(dirs) or ("", 0)
    assert mode == 0o644
    assert "unknownKey" not in text and "User-Agent" not in text  # docker drops both on save
    assert json.loads(text)["auths"]["other.example"] == {"auth": "dTpw", "email": "u@example.com"}


def test_logout_variants_match_docker(daemon: Daemon, registry: Registry, dirs: dict[str, Path]) -> None:
    for d in dirs.values():
        d.mkdir(parents=True)
        (d / "config.json").write_text(
            json.dumps(
                {"auths": {f"https://{registry.host}": {"auth": "dTpw"}, registry.host: {"auth": "dTpw"}}}
            )
        )
    for args in (
        ["logout", f"http://{registry.host}/v2/"],
        ["logout", registry.host],
        ["logout"],
        ["logout", "never.example"],
    ):
        res = _side_by_side(daemon, dirs, *args)
        assert res["gorae"] == res["docker"], args
        assert res["docker"][0] == 0
        _same_files(dirs)
    assert json.loads((dirs["gorae"] / "config.json").read_text()) == {"auths": {}}


@pytest.fixture
def helper_env(tmp_path: Path) -> Iterator[dict[str, dict[str, str]]]:
    """The test credential helper as docker-credential-gtest on PATH, a separate store file per CLI."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    prog = bindir / "docker-credential-gtest"
    prog.write_text(f"#!{sys.executable}\n" + HELPER.read_text())
    prog.chmod(0o755)
    yield {
        which: {
            "PATH": f"{bindir}:{os.environ['PATH']}",
            "GORAE_TEST_CRED_FILE": str(tmp_path / f"{which}.json"),
        }
        for which in CLIS
    }


def _helper_state(env: dict[str, str]) -> tuple[object, str]:
    f = Path(env["GORAE_TEST_CRED_FILE"])
    store = json.loads(f.read_text()) if f.exists() else None
    log = Path(str(f) + ".log")
    return store, log.read_text() if log.exists() else ""


def test_credential_helper_round_trip(
    daemon: Daemon, registry: Registry, dirs: dict[str, Path], helper_env: dict[str, dict[str, str]]
) -> None:
    for d in dirs.values():
        d.mkdir(parents=True)
        (d / "config.json").write_text('{"credsStore": "gtest"}')

    def both(*args: str, input: str | None = None) -> dict[str, tuple[int, str, str]]:
        out = {}
        for which in CLIS:
            r = run(which, daemon, dirs[which], *args, input=input, extra_env=helper_env[which])
            out[which] = (r.returncode, _norm(r.stdout, dirs[which]), _norm(r.stderr, dirs[which]))
        return out

    res = both("login", "-u", USER, "--password-stdin", registry.host, input=PASSWORD)
    assert res["gorae"] == res["docker"] == (0, "Login Succeeded\n", "")  # no unencrypted warning
    assert _helper_state(helper_env["gorae"]) == _helper_state(helper_env["docker"])
    assert _helper_state(helper_env["docker"])[0] == {registry.host: {"Username": USER, "Secret": PASSWORD}}
    text, mode = _same_files(dirs) or ("", 0)
    assert json.loads(text) == {"auths": {registry.host: {}}, "credsStore": "gtest"}

    res = both("login", registry.host)  # stored credentials come back through `get`
    assert res["gorae"] == res["docker"]
    assert res["docker"][:2] == (0, "Login Succeeded\n")

    res = both("logout", registry.host)
    assert res["gorae"] == res["docker"]
    assert _helper_state(helper_env["gorae"]) == _helper_state(helper_env["docker"])
    assert _helper_state(helper_env["docker"])[0] == {}
    _same_files(dirs)


def test_missing_helper_fails_as_docker(daemon: Daemon, registry: Registry, dirs: dict[str, Path]) -> None:
    for d in dirs.values():
        d.mkdir(parents=True)
        (d / "config.json").write_text(json.dumps({"credHelpers": {registry.host: "nosuchhelper"}}))
    res = _side_by_side(daemon, dirs, "login", "-u", USER, "--password-stdin", registry.host, input=PASSWORD)
    assert res["gorae"] == res["docker"]
    assert res["docker"][0] == 1
    assert (
        'Error saving credentials: error storing credentials - err: exec: "docker-credential-nosuchhelper"'
        in (res["docker"][2])
    )


def test_pull_and_push_send_the_stored_credentials(
    daemon: Daemon, registry: Registry, dirs: dict[str, Path]
) -> None:
    target = {which: f"{registry.host}/{which}-auth:1" for which in CLIS}
    for which in CLIS:
        r = run("docker", daemon, dirs["docker"], "tag", "busybox", target[which])
        assert r.returncode == 0, r.stderr
    try:
        anonymous = {}
        for which in CLIS:
            r = run(which, daemon, dirs[which], "push", target[which])
            anonymous[which] = (r.returncode, r.stdout.replace(which, "X"), r.stderr.replace(which, "X"))
        assert anonymous["gorae"] == anonymous["docker"]
        assert anonymous["docker"][0] == 1 and "no basic auth credentials" in anonymous["docker"][2]
        _side_by_side(daemon, dirs, "login", "-u", USER, "--password-stdin", registry.host, input=PASSWORD)
        for which in CLIS:
            r = run(which, daemon, dirs[which], "push", "-q", target[which])
            assert (r.returncode, r.stdout, r.stderr) == (0, f"{target[which]}\n", ""), which
            status, _, body = registry.get(f"/v2/{which}-auth/tags/list", USER, PASSWORD)
            assert (status, json.loads(body)["tags"]) == (200, ["1"])
            run("docker", daemon, dirs["docker"], "rmi", target[which])
            r = run(which, daemon, dirs[which], "pull", "-q", target[which])
            assert (r.returncode, r.stdout, r.stderr) == (0, f"{target[which]}\n", ""), which
    finally:
        run("docker", daemon, dirs["docker"], "rmi", *target.values())


def test_docker_hub_login_falls_back_to_the_prompt_offline(daemon: Daemon, dirs: dict[str, Path]) -> None:
    """No network here: docker's web (device-code) login cannot start, so it prompts; so does gorae."""
    shown = {}
    for which in CLIS:
        child = spawn(which, daemon, dirs[which], "login")
        child.expect(b"Username: ")
        child.sendline(b"")  # no username: docker's "Non-null Username Required"
        shown[which] = _norm(transcript(child).decode(), dirs[which])
        assert child.exitstatus == 1
    assert shown["gorae"] == shown["docker"]
    assert shown["docker"].startswith(
        "Failed to start web-based login - falling back to command line login..."
    )
    assert shown["docker"].endswith("Username: \r\nError: Non-null Username Required\r\n")
