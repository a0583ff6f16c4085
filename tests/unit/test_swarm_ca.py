"""The swarm CA (node certificates' shape, verification, forgeries refused) and join tokens (Docker's format,
the parser under hostile input, the CA-digest check a joining node makes)."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from gorae.errors import Forbidden, InvalidParameter
from gorae.swarm.ca import tokens
from gorae.swarm.ca.authority import MANAGER_ROLE, WORKER_ROLE, RootCA, new_key
from gorae.swarm.ids import ID_LEN, base36, new_id

TOKEN_RE = re.compile(r"^SWMTKN-1-[0-9a-z]{50}-[0-9a-z]{25}$")


@pytest.fixture(scope="module")
def ca() -> RootCA:
    return RootCA.create()


def test_ids_are_swarmkits_shape() -> None:
    ids = {new_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == ID_LEN == 25 and re.fullmatch(r"[0-9a-z]+", i) for i in ids)
    assert base36(0, 3) == "000" and base36(35) == "z" and base36(36) == "10"
    assert base36(2**128 - 1) == "f5lxx1zz5pnorynqglhzmsp33"


def test_root_ca(ca: RootCA) -> None:
    cert = ca.cert
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "swarm-ca"
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert ca.can_sign


def test_node_certificate(ca: RootCA) -> None:
    key = new_key()
    pem = ca.issue(key.public_key(), "node1abc", MANAGER_ROLE, "cluster9")
    cert = x509.load_pem_x509_certificate(pem)
    subj = {a.oid: a.value for a in cert.subject}
    assert subj == {
        NameOID.COMMON_NAME: "node1abc",
        NameOID.ORGANIZATIONAL_UNIT_NAME: "swarm-manager",
        NameOID.ORGANIZATION_NAME: "cluster9",
    }
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["swarm-manager", "node1abc"]
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert life == dt.timedelta(hours=2161)
    ident = ca.verify(pem)
    assert (ident.node_id, ident.role, ident.cluster_id) == ("node1abc", "swarm-manager", "cluster9")


def test_forged_certificate_refused(ca: RootCA) -> None:
    other = RootCA.create()  # same CN "swarm-ca", another key: a forgery
    forged = other.issue(new_key().public_key(), "evil", MANAGER_ROLE, "cluster9")
    with pytest.raises(Forbidden, match="not issued by this cluster's CA"):
        ca.verify(forged)
    with pytest.raises(Forbidden, match="invalid certificate"):
        ca.verify(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(ValueError):
        ca.issue(new_key().public_key(), "n", "swarm-admin", "c")


def test_worker_role_and_ca_without_key(ca: RootCA) -> None:
    pem = ca.issue(new_key().public_key(), "w1", WORKER_ROLE, "c")
    verifier = RootCA(ca.cert_pem, None)  # a worker holds only the certificate
    assert verifier.verify(pem).role == "swarm-worker"
    with pytest.raises(Forbidden):
        verifier.issue(new_key().public_key(), "w2", WORKER_ROLE, "c")


def test_token_format_and_digest(ca: RootCA) -> None:
    tok = tokens.generate(ca.cert_pem)
    assert TOKEN_RE.match(tok), tok
    parsed = tokens.parse(tok)
    assert parsed.ca_digest == tokens.ca_digest(ca.cert_pem)
    assert str(parsed) == tok
    tokens.check_ca(tok, ca.cert_pem)
    assert tokens.generate(ca.cert_pem) != tok  # a fresh secret each time


def test_token_of_another_ca_refused(ca: RootCA) -> None:
    other = RootCA.create()
    tok = tokens.generate(other.cert_pem)
    with pytest.raises(InvalidParameter) as exc:
        tokens.check_ca(tok, ca.cert_pem)
    assert str(exc.value) == (
        f"remote CA does not match fingerprint. Expected: {tokens.ca_digest(other.cert_pem)}"
    )


def test_known_digest_encoding() -> None:
    """The digest part is the sha256 as a base-36 number padded to 50 (swarmkit's encoding)."""
    t = tokens.JoinToken("0" * 63 + "1", "0" * 24 + "2")
    assert str(t) == "SWMTKN-1-" + "0" * 49 + "1-" + "0" * 24 + "2"
    full = tokens.JoinToken("f" * 64, "a" * 25)
    assert str(full).split("-")[2] == "6dp5qcb22im238nr3wvp0ic7q99w035jmy2iw7i6n43d37jtof"
    assert int("6dp5qcb22im238nr3wvp0ic7q99w035jmy2iw7i6n43d37jtof", 36) == 2**256 - 1
    assert tokens.parse(str(full)).ca_digest == "f" * 64


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "SWMTKN",
        "SWMTKN-1",
        "SWMTKN-2-" + "0" * 50 + "-" + "0" * 25,
        "swmtkn-1-" + "0" * 50 + "-" + "0" * 25,
        "SWMTKN-1-" + "0" * 49 + "-" + "0" * 25,
        "SWMTKN-1-" + "0" * 50 + "-" + "0" * 25 + "-x",
        "SWMTKN-1-" + "Z" * 50 + "-" + "0" * 25,
        "SWMTKN-1-" + "z" * 50 + "-" + "0" * 25,  # > 2**256
        "SWMTKN-1-" + "0" * 50 + "-" + "_" * 25,
    ],
)
def test_invalid_tokens(bad: str) -> None:
    with pytest.raises(InvalidParameter) as exc:
        tokens.parse(bad)
    assert str(exc.value) == "invalid join token"


@settings(max_examples=300)
@given(st.text(max_size=120))
def test_parser_hostile_text(text: str) -> None:
    try:
        parsed = tokens.parse(text)
    except InvalidParameter as e:
        assert str(e) == "invalid join token"
    else:
        assert TOKEN_RE.match(text) and str(parsed) == text


@given(st.integers(0, 2**256 - 1), st.integers(0, 2**128 - 1))
def test_parser_round_trip(digest: int, secret: int) -> None:
    tok = f"SWMTKN-1-{base36(digest, 50)}-{base36(secret, 25)}"
    parsed = tokens.parse(tok)
    assert int(parsed.ca_digest, 16) == digest and str(parsed) == tok


@given(st.text(alphabet="0123456789abcdefghijklmnopqrstuvwxyz-SWMTKN", max_size=90))
def test_parser_near_miss(text: str) -> None:
    try:
        tokens.parse(text)
    except InvalidParameter:
        assert not TOKEN_RE.match(text) or int(text.split("-")[2], 36) >= 2**256
