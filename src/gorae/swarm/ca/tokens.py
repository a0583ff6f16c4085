"""Join tokens in Docker's format: `SWMTKN-1-<CA digest>-<secret>`.

The CA digest is the SHA-256 of the root CA certificate (PEM bytes) as a base-36 number zero-padded to 50
characters; the secret is 128 random bits in base 36, zero-padded to 25. A joining node reads the digest out
of its token and refuses a manager whose CA certificate does not hash to it (swarmkit's "remote CA does not
match fingerprint. Expected: <hex>"); the manager compares the whole token with the current worker or manager
token (so a rotated-away token is refused).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from gorae.errors import InvalidParameter
from gorae.swarm.ids import base36

PREFIX = "SWMTKN"
VERSION = "1"
DIGEST_LEN = 50  # ceil(log36(2**256))
SECRET_LEN = 25  # ceil(log36(2**128))
_B36 = set("0123456789abcdefghijklmnopqrstuvwxyz")


class InvalidJoinToken(InvalidParameter):
    def __init__(self) -> None:
        super().__init__("invalid join token")


@dataclass(frozen=True)
class JoinToken:
    ca_digest: str  # sha256 of the CA certificate, 64 hex digits
    secret: str  # the base-36 secret as written

    def __str__(self) -> str:
        return f"{PREFIX}-{VERSION}-{base36(int(self.ca_digest, 16), DIGEST_LEN)}-{self.secret}"


def ca_digest(ca_pem: bytes) -> str:
    return hashlib.sha256(ca_pem).hexdigest()


def generate(ca_pem: bytes) -> str:
    return str(JoinToken(ca_digest(ca_pem), base36(secrets.randbits(128), SECRET_LEN)))


def parse(token: str) -> JoinToken:
    """The token's parts (InvalidJoinToken for anything not SWMTKN-1-<digest>-<secret>)."""
    parts = token.split("-")
    if len(parts) != 4 or parts[0] != PREFIX or parts[1] != VERSION:
        raise InvalidJoinToken()
    digest, secret = parts[2], parts[3]
    if not digest or not secret or not set(digest) <= _B36 or not set(secret) <= _B36:
        raise InvalidJoinToken()
    if len(digest) != DIGEST_LEN or len(secret) != SECRET_LEN:
        raise InvalidJoinToken()
    value = int(digest, 36)
    if value >= 1 << 256:
        raise InvalidJoinToken()
    return JoinToken(format(value, "064x"), secret)


def check_ca(token: str, ca_pem: bytes) -> None:
    """Refuse a CA certificate whose digest is not the token's (swarmkit's message)."""
    expected = parse(token).ca_digest
    if not hmac.compare_digest(expected, ca_digest(ca_pem)):
        raise InvalidParameter(f"remote CA does not match fingerprint. Expected: {expected}")


def matches(token: str, current: str) -> bool:
    """The presented token is the current one (constant time)."""
    return hmac.compare_digest(token.encode(), current.encode())
