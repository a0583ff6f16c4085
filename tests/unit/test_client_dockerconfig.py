"""config.json and the credential stores (gorae/client/dockerconfig.py, credentials.py) as pure logic: docker's
field set and order, Go's JSON encoding, what survives a save, auth decoding errors, file modes, the helper
protocol through the test helper in tests/fakes, and hostile files through hypothesis. (The files docker itself
writes for the same logins are compared in tests/compat/test_cli_login.py.)"""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.client.credentials import (
    INDEX_SERVER,
    Credentials,
    CredentialsError,
    FileStore,
    HelperStore,
    auth_config_key,
    convert_to_hostname,
    parse_get_output,
    registry_auth_header,
)
from gorae.client.dockerconfig import AuthConfig, ConfigError, ConfigFile, decode_auth, go_string

HELPER = Path(__file__).resolve().parents[1] / "fakes" / "credential_helper.py"


def _load(tmp_path: Path, doc: object) -> ConfigFile:
    (tmp_path / "config.json").write_text(json.dumps(doc))
    cfg, warning = ConfigFile.load(str(tmp_path))
    assert warning is None
    return cfg


def test_save_writes_dockers_layout_and_drops_unknown_keys(tmp_path: Path) -> None:
    cfg = _load(
        tmp_path,
        {"zeta": 1, "psFormat": "x<y", "auths": {"b.example": {"auth": "dTpw", "email": "a@b"}}, "foo": [1]},
    )
    cfg.auths["a.example:5000"] = AuthConfig(
        username="user", password="pa:ss", serveraddress="a.example:5000"
    )
    cfg.save()
    assert (tmp_path / "config.json").read_text() == (
        '{\n\t"auths": {\n\t\t"a.example:5000": {\n\t\t\t"auth": "dXNlcjpwYTpzcw=="\n\t\t},\n'
        '\t\t"b.example": {\n\t\t\t"auth": "dTpw",\n\t\t\t"email": "a@b"\n\t\t}\n\t},\n'
        '\t"psFormat": "x\\u003cy"\n}'
    )


def test_keys_match_case_insensitively_and_struct_order_is_kept(tmp_path: Path) -> None:
    cfg = _load(
        tmp_path,
        {"experimental": "enabled", "PSFORMAT": "p", "credhelpers": {"r": "h"}, "proxies": {"default": {"noProxy": "n", "httpProxy": "h"}}},
    )  # fmt: skip
    out = json.loads(cfg.to_bytes())
    assert list(out) == ["auths", "psFormat", "credHelpers", "proxies", "experimental"]
    assert list(out["proxies"]["default"]) == ["httpProxy", "noProxy"]


def test_user_agent_header_is_never_saved(tmp_path: Path) -> None:
    cfg = _load(tmp_path, {"HttpHeaders": {"user-agent": "x", "X-Meta": "y"}})
    assert json.loads(cfg.to_bytes())["HttpHeaders"] == {"X-Meta": "y"}


def test_wrong_type_is_dockers_parse_error_and_keeps_the_rest(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"psFormat": 1, "imagesFormat": "i"}')
    cfg, warning = ConfigFile.load(str(tmp_path))
    assert warning == (
        f"parsing config file ({tmp_path}/config.json): json: cannot unmarshal number into Go struct field "
        "ConfigFile.psFormat of type string"
    )
    assert cfg.get("imagesFormat") == "i"


@pytest.mark.parametrize(
    ("auth", "error"),
    [("!!", "illegal base64 data at input byte 0"), ("dXNlcg==", "Invalid auth configuration file"),
     ("OnB3", "Invalid auth configuration file")],
)  # fmt: skip
def test_bad_auth_entries_are_dockers_errors(auth: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        decode_auth(auth)


def test_auth_decodes_into_username_password_and_address(tmp_path: Path) -> None:
    cfg = _load(tmp_path, {"auths": {"r:1": {"auth": base64.b64encode(b"u:p:q\x00").decode()}}})
    assert cfg.auths["r:1"] == AuthConfig(username="u", password="p:q", serveraddress="r:1")


def test_new_file_is_0600_and_an_existing_mode_is_kept(tmp_path: Path) -> None:
    cfg = ConfigFile(str(tmp_path / "d" / "config.json"))
    cfg.save()
    assert stat.S_IMODE(os.stat(tmp_path / "d" / "config.json").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "d").st_mode) == 0o700
    (tmp_path / "config.json").write_text("{}")
    os.chmod(tmp_path / "config.json", 0o644)
    cfg, _ = ConfigFile.load(str(tmp_path))
    cfg.save()
    assert stat.S_IMODE(os.stat(tmp_path / "config.json").st_mode) == 0o644
    assert sorted(os.listdir(tmp_path)) == ["config.json", "d"]  # no temp file left


def test_save_through_a_symlink_replaces_its_target(tmp_path: Path) -> None:
    (tmp_path / "real.json").write_text('{"psFormat": "a"}')
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "config.json").symlink_to(tmp_path / "real.json")
    cfg, _ = ConfigFile.load(str(tmp_path / "c"))
    cfg.save()
    assert (tmp_path / "c" / "config.json").is_symlink()
    assert json.loads((tmp_path / "real.json").read_text()) == {"auths": {}, "psFormat": "a"}


def test_go_string_escapes_like_encoding_json() -> None:
    assert (
        go_string('a"\\\n\t\x01<>&\u2028é\b') == '"a\\"\\\\\\n\\t\\u0001\\u003c\\u003e\\u0026\\u2028é\\u0008"'
    )


@pytest.mark.parametrize(
    ("address", "host"),
    [("https://index.docker.io/v1/", "index.docker.io"), ("http://127.0.0.1:5000/", "127.0.0.1:5000"),
     ("reg.example/path", "reg.example"), ("reg:5000", "reg:5000"), ("https://[::1]:5000/x", "[::1]:5000")],
)  # fmt: skip
def test_convert_to_hostname(address: str, host: str) -> None:
    assert convert_to_hostname(address) == host


def test_registry_keys_and_header() -> None:
    assert auth_config_key("docker.io") == INDEX_SERVER
    assert auth_config_key("127.0.0.1:5000") == "127.0.0.1:5000"
    assert registry_auth_header(AuthConfig()) == "e30="
    header = registry_auth_header(AuthConfig(username="u", password="p", serveraddress="r"))
    assert base64.urlsafe_b64decode(header) == b'{"username":"u","password":"p","serveraddress":"r"}'


def test_file_store_finds_legacy_url_keys_and_erases(tmp_path: Path) -> None:
    cfg = _load(tmp_path, {"auths": {"https://reg:5000/v1/": {"auth": "dTpw"}}})
    store = FileStore(cfg)
    assert store.get("reg:5000").username == "u"
    store.erase("https://reg:5000/v1/")
    assert json.loads((tmp_path / "config.json").read_text()) == {"auths": {}}


@pytest.fixture
def helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test credential helper installed as docker-credential-gtest on PATH."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    prog = bindir / "docker-credential-gtest"
    prog.write_text(f"#!{sys.executable}\n" + HELPER.read_text())
    prog.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("GORAE_TEST_CRED_FILE", str(tmp_path / "creds.json"))
    return tmp_path / "creds.json"


def test_helper_round_trip_keeps_the_secret_out_of_the_file(tmp_path: Path, helper: Path) -> None:
    cfg = _load(tmp_path, {"credsStore": "gtest"})
    creds = Credentials(cfg)
    store = creds.store_for("reg:5000")
    assert isinstance(store, HelperStore)
    store.store(AuthConfig(username="alice", password="s3cret", serveraddress="reg:5000"))
    assert json.loads(helper.read_text()) == {"reg:5000": {"Username": "alice", "Secret": "s3cret"}}
    assert json.loads((tmp_path / "config.json").read_text()) == {
        "auths": {"reg:5000": {}},
        "credsStore": "gtest",
    }
    assert creds.get("reg:5000") == AuthConfig(username="alice", password="s3cret", serveraddress="reg:5000")
    assert creds.get("other:1") == AuthConfig()
    assert store.get_all() == {
        "reg:5000": AuthConfig(username="alice", password="s3cret", serveraddress="reg:5000")
    }
    store.erase("reg:5000")
    assert json.loads(helper.read_text()) == {}
    assert json.loads((tmp_path / "config.json").read_text()) == {"auths": {}, "credsStore": "gtest"}


def test_identity_tokens_travel_as_the_token_username(tmp_path: Path, helper: Path) -> None:
    cfg = _load(tmp_path, {"credHelpers": {"reg:5000": "gtest"}})
    creds = Credentials(cfg)
    creds.store_for("reg:5000").store(
        AuthConfig(username="alice", identitytoken="tok", serveraddress="reg:5000")
    )
    assert json.loads(helper.read_text()) == {"reg:5000": {"Username": "<token>", "Secret": "tok"}}
    assert creds.get("reg:5000") == AuthConfig(identitytoken="tok", serveraddress="reg:5000")
    assert isinstance(creds.store_for("elsewhere"), FileStore)  # credHelpers is per registry


def test_helper_failures_carry_dockers_text(tmp_path: Path, helper: Path) -> None:
    cfg = _load(tmp_path, {"credsStore": "nosuchhelper"})
    with pytest.raises(CredentialsError) as e:
        Credentials(cfg).store_for("r").store(AuthConfig(username="u", password="p", serveraddress="r"))
    assert str(e.value) == (
        'error storing credentials - err: exec: "docker-credential-nosuchhelper": executable file not found in '
        "$PATH, out: ``"
    )
    cfg = _load(tmp_path, {"credsStore": "gtest"})
    with pytest.raises(CredentialsError) as e:
        Credentials(cfg).store_for("r").store(AuthConfig(password="p", serveraddress="r"))
    assert (
        str(e.value)
        == "error storing credentials - err: no credentials username, out: `no credentials username`"
    )


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=16,
)
FIELD_NAMES = st.sampled_from(
    ["auths", "psFormat", "credsStore", "credHelpers", "proxies", "plugins", "pruneFilters", "HttpHeaders",
     "AUTHS", "aliases", "other"]
)  # fmt: skip
AUTH_ENTRY = st.dictionaries(
    st.sampled_from(["auth", "email", "username", "identitytoken", "Auth"]),
    st.text(max_size=12) | st.just("dTpw") | st.none() | st.integers(),
)
DOC = st.dictionaries(
    FIELD_NAMES, JSON | st.dictionaries(st.text(max_size=8), AUTH_ENTRY, max_size=3), max_size=6
)


@settings(max_examples=300, deadline=None)
@given(DOC | JSON)
def test_any_file_loads_or_gives_a_parse_warning_and_saves_stably(doc: object) -> None:
    cfg = ConfigFile("/nonexistent/config.json")
    try:
        cfg.load_bytes(json.dumps(doc).encode())
    except ConfigError:
        return
    first = cfg.to_bytes()
    again = ConfigFile("/nonexistent/config.json")
    again.load_bytes(first)
    assert again.to_bytes() == first


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_any_bytes_load_without_crashing(data: bytes) -> None:
    cfg = ConfigFile("/nonexistent/config.json")
    try:
        cfg.load_bytes(data)
    except ConfigError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_hostnames_and_auth_entries_never_crash(text: str) -> None:
    host = convert_to_hostname(text)
    assert "/" not in host or "://" in text
    try:
        user, _ = decode_auth(text)
    except ConfigError:
        return
    assert user


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20), st.text(max_size=20), st.text(max_size=20))
def test_auth_header_is_base64url_of_the_go_json(user: str, password: str, server: str) -> None:
    header = registry_auth_header(AuthConfig(username=user, password=password, serveraddress=server))
    doc = json.loads(base64.urlsafe_b64decode(header).decode("utf-8", "surrogatepass"))
    expected = {k: v for k, v in (("username", user), ("password", password), ("serveraddress", server)) if v}
    assert doc == {
        k: v.encode("utf-16", "surrogatepass").decode("utf-16", "replace") for k, v in expected.items()
    }


def test_helper_get_answer_is_decoded_as_go_does() -> None:
    assert parse_get_output("r", '{"serverurl": "x", "USERNAME": "u", "Secret": "s"}') == AuthConfig(
        username="u", password="s", serveraddress="r"
    )
    assert parse_get_output("r", '{"Username": "<token>", "Secret": "t"}') == AuthConfig(
        identitytoken="t", serveraddress="r"
    )
    with pytest.raises(CredentialsError, match="Credentials.Username of type string"):
        parse_get_output("r", '{"Username": 1}')


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_any_helper_answer_is_credentials_or_a_credentials_error(doc: object) -> None:
    for out in (json.dumps(doc), json.dumps(doc)[:-1]):
        try:
            got = parse_get_output("reg:5000", out)
        except CredentialsError:
            continue
        assert got.serveraddress == "reg:5000"


# what docker 28 printed here after "WARNING: Error parsing config file (...): " for each file content
DOCKER_PARSE_ERRORS = [
    ('{"auths": ', "unexpected EOF"),
    ("{x", "invalid character 'x' looking for beginning of object key string"),
    ('{"a" 1}', "invalid character '1' after object key"),
    ('{"a": 1 2}', "invalid character '2' after object key:value pair"),
    ("[1 2", "invalid character '2' after array element"),
    ("{} garbage", None),
    ("nope", "invalid character 'o' in literal null (expecting 'u')"),
    ("", None),
    ("   ", None),
    ("null", None),
    ("[]", "json: cannot unmarshal array into Go value of type configfile.ConfigFile"),
    ('"s"', "json: cannot unmarshal string into Go value of type configfile.ConfigFile"),
    (
        '{"auths": {"x": {"auth": "dTpw"}}, }',
        "invalid character '}' looking for beginning of object key string",
    ),
]


@pytest.mark.parametrize(("content", "error"), DOCKER_PARSE_ERRORS)
def test_parse_errors_are_worded_as_docker_prints_them(content: str, error: str | None) -> None:
    cfg = ConfigFile("/nonexistent/config.json")
    if error is None:
        cfg.load_bytes(content.encode())
        return
    with pytest.raises(ConfigError) as e:
        cfg.load_bytes(content.encode())
    assert str(e.value) == error
