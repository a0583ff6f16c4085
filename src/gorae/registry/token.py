"""JSON Web Tokens of the registry's token-auth mode: signing (the issuer) and verification (the registry).

Owns the compact JWS encoding (RS256 for RSA keys, ES256 for P-256 EC keys, as distribution's token server
issues), the claims distribution uses (`iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti`, `access`: a list of
`{"type", "name", "actions"}`), and the checks a registry makes: signature by the configured key, issuer,
audience (the service), expiry with a minute of clock skew. `verify` raises TokenInvalid, never returns a
half-checked token.
"""

from __future__ import annotations

import base64
import json
import os
import time
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

LEEWAY = 60


class TokenInvalid(Exception):
    """A token that is malformed, badly signed, expired, or not for this registry."""


PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError) as e:
        raise TokenInvalid(f"bad base64: {e}") from None


def load_private_key(path: str) -> PrivateKey:
    with open(path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path}: only RSA and EC (P-256) keys can sign registry tokens")
    return key


def load_public_key(path: str) -> PublicKey:
    """A PEM certificate or public key (what distribution's `rootcertbundle` holds)."""
    with open(path, "rb") as f:
        data = f.read()
    if b"CERTIFICATE" in data:
        key: Any = x509.load_pem_x509_certificate(data).public_key()
    elif b"PRIVATE KEY" in data:
        key = serialization.load_pem_private_key(data, password=None).public_key()
    else:
        key = serialization.load_pem_public_key(data)
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise ValueError(f"{path}: only RSA and EC (P-256) keys verify registry tokens")
    return key


def _key_id(public: PublicKey) -> str:
    """libtrust's key id: the first 240 bits of the SHA-256 of the DER public key, base32 in groups of 4."""
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashes.Hash(hashes.SHA256())
    digest.update(der)
    b32 = base64.b32encode(digest.finalize()[:30]).decode().rstrip("=")
    return ":".join(b32[i : i + 4] for i in range(0, 48, 4))


def sign(key: PrivateKey, claims: dict[str, Any]) -> str:
    alg = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
    header = {"typ": "JWT", "alg": alg, "kid": _key_id(key.public_key())}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}".encode()
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{signing_input.decode()}.{_b64(signature)}"


def issue(
    key: PrivateKey,
    *,
    issuer: str,
    service: str,
    subject: str,
    access: list[dict[str, Any]],
    expires_in: int = 300,
) -> str:
    now = int(time.time())
    claims = {
        "iss": issuer,
        "sub": subject,
        "aud": service,
        "exp": now + expires_in,
        "nbf": now - 10,
        "iat": now,
        "jti": _b64(os.urandom(12)),
        "access": access,
    }
    return sign(key, claims)


def verify(token: str, key: PublicKey, *, issuer: str, service: str) -> dict[str, Any]:
    """The claims of a token signed by `key` for `service` by `issuer`, still valid; TokenInvalid if not."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenInvalid("not a compact JWS")
    try:
        header = json.loads(_unb64(parts[0]))
        claims = json.loads(_unb64(parts[1]))
    except ValueError as e:
        raise TokenInvalid(f"bad JSON: {e}") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise TokenInvalid("header and claims must be objects")
    signature = _unb64(parts[2])
    signing_input = f"{parts[0]}.{parts[1]}".encode()
    alg = header.get("alg")
    try:
        if alg == "RS256" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey) and len(signature) == 64:
            der = encode_dss_signature(
                int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            )
            key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
        else:
            raise TokenInvalid(f"algorithm {alg!r} does not match the key")
    except InvalidSignature:
        raise TokenInvalid("bad signature") from None
    now = time.time()
    if claims.get("iss") != issuer:
        raise TokenInvalid("wrong issuer")
    aud = claims.get("aud")
    if aud != service and not (isinstance(aud, list) and service in aud):
        raise TokenInvalid("token is not for this service")
    exp, nbf = claims.get("exp"), claims.get("nbf", 0)
    if not isinstance(exp, int | float) or now > exp + LEEWAY:
        raise TokenInvalid("token expired")
    if not isinstance(nbf, int | float) or now < nbf - LEEWAY:
        raise TokenInvalid("token not valid yet")
    return claims


def granted(claims: dict[str, Any], kind: str, name: str, action: str) -> bool:
    """Whether the token's `access` claim grants `action` on `kind:name` ("*" grants every action)."""
    for entry in claims.get("access") or []:
        if not isinstance(entry, dict) or entry.get("type") != kind or entry.get("name") != name:
            continue
        actions = entry.get("actions") or []
        if isinstance(actions, list) and (action in actions or "*" in actions):
            return True
    return False
