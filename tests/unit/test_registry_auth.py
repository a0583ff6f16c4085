"""The registry's auth pieces as pure logic: JWT signing and verification (RS256 and ES256, expiry, issuer,
audience, tampering), scope grants, htpasswd parsing, and the name/tag/digest grammar (hypothesis)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import bcrypt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.registry import names
from gorae.registry.auth import Htpasswd, _requested, _scope
from gorae.registry.errors import RegistryError
from gorae.registry.token import TokenInvalid, granted, issue, sign, verify

KEYS = {
    "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ec": ec.generate_private_key(ec.SECP256R1()),
}
ACCESS = [{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}]


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_token_round_trip(kind: str) -> None:
    key = KEYS[kind]
    tok = issue(key, issuer="iss", service="svc", subject="alice", access=ACCESS)
    header = json.loads(base64.urlsafe_b64decode(tok.split(".")[0] + "=="))
    assert header["alg"] == ("RS256" if kind == "rsa" else "ES256")
    claims = verify(tok, key.public_key(), issuer="iss", service="svc")
    assert (claims["sub"], claims["aud"], claims["access"]) == ("alice", "svc", ACCESS)
    assert granted(claims, "repository", "team/app", "push")
    assert not granted(claims, "repository", "team/app", "delete")
    assert not granted(claims, "repository", "team/other", "pull")


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_tokens_that_must_not_verify(kind: str) -> None:
    key = KEYS[kind]
    other = KEYS["ec" if kind == "rsa" else "rsa"]
    good = issue(key, issuer="iss", service="svc", subject="a", access=ACCESS)
    with pytest.raises(TokenInvalid, match="issuer"):
        verify(good, key.public_key(), issuer="other", service="svc")
    with pytest.raises(TokenInvalid, match="service"):
        verify(good, key.public_key(), issuer="iss", service="other")
    with pytest.raises(TokenInvalid):
        verify(good, other.public_key(), issuer="iss", service="svc")
    head, body, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    claims["access"][0]["name"] = "team/other"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenInvalid, match="signature"):
        verify(f"{head}.{forged}.{sig}", key.public_key(), issuer="iss", service="svc")
    expired = sign(key, {"iss": "iss", "aud": "svc", "exp": int(time.time()) - 120, "access": ACCESS})
    with pytest.raises(TokenInvalid, match="expired"):
        verify(expired, key.public_key(), issuer="iss", service="svc")
    none_alg = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    with pytest.raises(TokenInvalid):
        verify(f"{none_alg}.{body}.", key.public_key(), issuer="iss", service="svc")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_garbage_tokens_are_token_invalid(text: str) -> None:
    with pytest.raises(TokenInvalid):
        verify(text, KEYS["ec"].public_key(), issuer="iss", service="svc")


def test_scopes() -> None:
    assert _requested(["repository:team/app:pull,push", "repository:x:pull registry:catalog:*", "bogus"]) == [
        {"type": "repository", "name": "team/app", "actions": ["pull", "push"]},
        {"type": "repository", "name": "x", "actions": ["pull"]},
        {"type": "registry", "name": "catalog", "actions": ["*"]},
    ]
    assert _requested(["repository:host:5000/app:pull"]) == [
        {"type": "repository", "name": "host:5000/app", "actions": ["pull"]}
    ]
    assert _scope([("repository", "a", "pull"), ("repository", "a", "push")]) == "repository:a:pull,push"


def test_htpasswd_reads_bcrypt_entries(tmp_path: Path) -> None:
    h2y = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode().replace("$2b$", "$2y$", 1)
    f = tmp_path / "htpasswd"
    f.write_text(f"# users\nalice:{h2y}\n\n")
    h = Htpasswd(str(f))
    assert h.check("alice", "pw")
    assert h.check("alice", "pw")  # remembered
    assert not h.check("alice", "nope")
    assert not h.check("bob", "pw")
    f.write_text("carol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n")
    with pytest.raises(ValueError, match="only bcrypt"):
        Htpasswd(str(f))


# -- the grammar -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "library/busybox", "a.b/c_d/e__f/g--h", "x" * 255, "0/1/2"])
def test_valid_names(name: str) -> None:
    assert names.repository(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "A", "a/", "/a", "a//b", "a/../b", "..", "a/.b", "-a", "a_", "a___b", "x" * 256, "a b", "a/_x"],
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(RegistryError) as e:
        names.repository(name)
    assert e.value.code == "NAME_INVALID"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_every_accepted_name_is_safe(text: str) -> None:
    try:
        names.repository(text)
    except RegistryError:
        return
    assert ".." not in text.split("/") and len(text) <= 255 and text == text.lower()
    assert all(part and not part.startswith(("_", ".", "-")) for part in text.split("/"))


def test_digests() -> None:
    assert names.digest("sha256:" + "a" * 64) == "sha256:" + "a" * 64
    assert names.digest("sha512:" + "0" * 128)
    for bad in ["sha256:" + "A" * 64, "sha256:" + "a" * 63, "md5:" + "a" * 32, "sha256", "sha256:", ":x"]:
        with pytest.raises(RegistryError) as e:
            names.digest(bad)
        assert e.value.code == "DIGEST_INVALID"


def test_tags() -> None:
    assert names.tag("v1.0_rc-2") == "v1.0_rc-2"
    for bad in ["", ".x", "-x", "a/b", "x" * 129, "a:b"]:
        with pytest.raises(RegistryError):
            names.tag(bad)
