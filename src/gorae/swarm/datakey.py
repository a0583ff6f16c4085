"""The cluster data key: secrets' and configs' payloads are stored in the cluster store encrypted with it.

The key is 32 random bytes kept outside the store, in the manager's `<data-root>/swarm/data.key` (mode 0600),
so a copy of etcd's data alone does not reveal a secret. Payloads are sealed with AES-256-GCM, a fresh
96-bit nonce each, with the object's kind and ID as associated data (a sealed payload copied onto another
object does not open). A sealed value is text: `v1:` + base64(nonce + ciphertext + tag).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gorae.errors import SystemError_, Unavailable

PREFIX = "v1:"
KEY_FILE = "data.key"


def seal(key: bytes, plain: bytes, aad: str) -> str:
    nonce = os.urandom(12)
    return PREFIX + base64.b64encode(nonce + AESGCM(key).encrypt(nonce, plain, aad.encode())).decode()


def open_sealed(key: bytes, sealed: str, aad: str) -> bytes:
    """The payload `seal` sealed (SystemError_ when it was not sealed with this key for this object)."""
    if not sealed.startswith(PREFIX):
        raise SystemError_("sealed data of an unknown format")
    try:
        raw = base64.b64decode(sealed[len(PREFIX) :], validate=True)
        return AESGCM(key).decrypt(raw[:12], raw[12:], aad.encode())
    except (ValueError, InvalidTag):
        raise SystemError_("cannot decrypt sealed data: wrong cluster data key or damaged data") from None


class DataKey:
    """The key file of one manager, made on first use."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / KEY_FILE
        self.awaited = False  # a manager that joined waits for another manager's key: none is made here

    def exists(self) -> bool:
        return self.path.exists()

    def get(self) -> bytes:
        try:
            key = self.path.read_bytes()
        except FileNotFoundError:
            if self.awaited:
                raise Unavailable("this manager has not received the cluster data key yet") from None
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            key = AESGCM.generate_key(bit_length=256)
            tmp = self.path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(key)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            return key
        if len(key) != 32:
            raise SystemError_(f"{self.path} is not a cluster data key")
        return key

    def install(self, key: bytes) -> None:
        """Keep `key` (another manager's, fetched with the `data_key` operation) as this one's."""
        if len(key) != 32:
            raise SystemError_("a cluster data key is 32 bytes")
        self.awaited = False
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def seal(self, plain: bytes, aad: str) -> str:
        return seal(self.get(), plain, aad)

    def open(self, sealed: str, aad: str) -> bytes:
        return open_sealed(self.get(), sealed, aad)
