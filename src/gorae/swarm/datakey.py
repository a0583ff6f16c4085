"""The cluster data key: secrets' and configs' payloads are stored in the cluster store encrypted with it.

The key is 32 random bytes kept outside the store, in the manager's `<data-root>/swarm/data.key` (mode 0600),
so a copy of etcd's data alone does not reveal a secret; with autolock on the file is itself sealed under the
unlock key (`gorae.swarm.autolock.Vault`). Payloads are sealed with AES-256-GCM, a fresh
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
from gorae.swarm.autolock import Vault

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

    def __init__(self, directory: Path, vault: Vault | None = None) -> None:
        self.path = directory / KEY_FILE
        self.vault = vault if vault is not None else Vault(directory)
        self.awaited = False  # a manager that joined waits for another manager's key: none is made here

    def exists(self) -> bool:
        return self.path.exists()

    def get(self) -> bytes:
        try:
            key = self.vault.read(self.path)
        except FileNotFoundError:
            if self.awaited:
                raise Unavailable("this manager has not received the cluster data key yet") from None
            key = AESGCM.generate_key(bit_length=256)
            self.vault.write(self.path, key)
            return key
        if len(key) != 32:
            raise SystemError_(f"{self.path} is not a cluster data key")
        return key

    def install(self, key: bytes) -> None:
        """Keep `key` (another manager's, fetched with the `data_key` operation) as this one's."""
        if len(key) != 32:
            raise SystemError_("a cluster data key is 32 bytes")
        self.awaited = False
        self.vault.write(self.path, key)

    def seal(self, plain: bytes, aad: str) -> str:
        return seal(self.get(), plain, aad)

    def open(self, sealed: str, aad: str) -> bytes:
        return open_sealed(self.get(), sealed, aad)
