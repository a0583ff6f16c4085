"""Swarm autolock: the manager unlock key (`SWMKEY-1-...`) and this manager's secret files sealed under it.

The unlock key is 32 random bytes shown as dockerd shows it: `SWMKEY-1-` + unpadded standard base64. With
`EncryptionConfig.AutoLockManagers` on, every manager keeps its secrets at rest sealed under a key-encryption
key (KEK) derived from the unlock key with HKDF-SHA256: the node TLS key, the root CA key, the etcd member's
TLS key and the cluster data key that seals secrets and configs (`SEALED_FILES`, under `<data root>/swarm/`).
A sealed file is `MAGIC` + base64(nonce + AES-256-GCM ciphertext + tag), its path inside the swarm directory
as associated data (a sealed file copied over another does not open).

A daemon that restarts with sealed files is *locked*: it starts nothing of the swarm (no etcd member, no swarm
port, no components) until `POST /swarm/unlock` brings a key that opens them. The cluster-wide key lives in
the Cluster object sealed with the cluster data key (`gorae.swarm.datakey`), so a copy of etcd's data does not
reveal it either; each manager re-seals its files when the key in the store changes (`Vault.reseal`). A
manager that was down during a rotation still opens with the key its files were sealed under; once unlocked it
sees the new key and re-seals.
"""

from __future__ import annotations

import base64
import os
import re
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gorae.errors import InvalidParameter, Unauthorized, Unavailable

PREFIX = "SWMKEY-1-"
MAGIC = b"gorae-sealed-v1\n"
SEALED_FILES = (
    "certificates/swarm-node.key",
    "certificates/swarm-root-ca.key",
    "etcd-tls/etcd.key",
    "data.key",
)
LOCKED = (
    'Swarm is encrypted and needs to be unlocked before it can be used. Please use "docker swarm unlock" to '
    "unlock it."
)
LOCKED_LEAVE = (
    "Swarm is encrypted and locked. Please unlock it first or use `--force` to ignore this message."
)
NOT_LOCKED = "swarm is not locked"
INVALID_STRING = "invalid key string"
INVALID_KEY = "swarm could not be unlocked: invalid key provided"
_B64 = re.compile(r"[A-Za-z0-9+/]*")


def new_key() -> str:
    """A new unlock key in dockerd's form."""
    return PREFIX + base64.b64encode(os.urandom(32)).decode().rstrip("=")


def parse_key(text: str) -> bytes:
    """The raw bytes of an unlock key, as swarmkit's ParseHumanReadableKey (Go's unpadded base64, which
    skips CR and LF); InvalidParameter("invalid key string") otherwise."""
    if not text.startswith(PREFIX):
        raise InvalidParameter(INVALID_STRING)
    body = text[len(PREFIX) :].replace("\r", "").replace("\n", "")
    if not _B64.fullmatch(body) or len(body) % 4 == 1:
        raise InvalidParameter(INVALID_STRING)
    return base64.b64decode(body + "=" * (-len(body) % 4))


def derive_kek(raw: bytes) -> bytes:
    """The key-encryption key of an unlock key's bytes (HKDF-SHA256; the unlock key is 256 random bits)."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"gorae swarm autolock", info=b"kek v1").derive(
        raw
    )


def seal(kek: bytes, plain: bytes, name: str) -> bytes:
    nonce = os.urandom(12)
    return MAGIC + base64.b64encode(nonce + AESGCM(kek).encrypt(nonce, plain, name.encode())) + b"\n"


def unseal(kek: bytes, sealed: bytes, name: str) -> bytes:
    """The plaintext of a sealed file; Unauthorized (dockerd's "invalid key provided") for another key."""
    try:
        raw = base64.b64decode(sealed[len(MAGIC) :].strip(), validate=True)
        return AESGCM(kek).decrypt(raw[:12], raw[12:], name.encode())
    except (ValueError, InvalidTag):
        raise Unauthorized(INVALID_KEY) from None


def is_sealed(data: bytes) -> bool:
    return data.startswith(MAGIC)


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` (mode 0600) through a temporary file and a rename."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Vault:
    """The secret files of this node's swarm directory `root`, sealed or not. `key` is the unlock key the
    files are sealed under now ("" while they are stored in the clear)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.key = ""
        self._kek: bytes | None = None
        self._mutex = threading.RLock()  # a re-seal (in a thread) and a write (a renewal) do not interleave

    def _name(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.root))
        except ValueError:
            return path.name

    def sealed(self) -> bool:
        """Whether any secret file is stored sealed (a daemon starting with such files comes up locked)."""
        for name in SEALED_FILES:
            try:
                with open(self.root / name, "rb") as f:
                    if is_sealed(f.read(len(MAGIC))):
                        return True
            except FileNotFoundError:
                continue
        return False

    @property
    def locked(self) -> bool:
        return self._kek is None and self.sealed()

    def read(self, path: Path) -> bytes:
        """A secret file's plaintext (Unavailable while the node is locked)."""
        with self._mutex:
            data = path.read_bytes()
            if not is_sealed(data):
                return data
            if self._kek is None:
                raise Unavailable(LOCKED)
            return unseal(self._kek, data, self._name(path))

    def write(self, path: Path, data: bytes) -> None:
        """Store a secret file: sealed while autolock is on, in the clear otherwise."""
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._mutex:
            if self._kek is not None:
                data = seal(self._kek, data, self._name(path))
            write_private(path, data)

    def unlock(self, key: str) -> None:
        """Open the files with `key` (InvalidParameter for a malformed key, Unauthorized for a wrong one);
        nothing changes on disk."""
        kek = derive_kek(parse_key(key))
        for name in SEALED_FILES:
            try:
                data = (self.root / name).read_bytes()
            except FileNotFoundError:
                continue
            if is_sealed(data):
                unseal(kek, data, name)
        self._kek, self.key = kek, key

    def reseal(self, key: str) -> bool:
        """Store every secret file sealed under `key` ("" : in the clear); True when anything changed. Each file
        is rewritten through a rename, so a crash leaves it under the old key or the new one."""
        with self._mutex:
            if key == self.key and (key or not self.sealed()):
                return False
            kek = derive_kek(parse_key(key)) if key else None
            for name in SEALED_FILES:
                path = self.root / name
                try:
                    plain = self.read(path)
                except FileNotFoundError:
                    continue
                write_private(path, seal(kek, plain, name) if kek is not None else plain)
            self._kek, self.key = kek, key
            return True

    def forget(self) -> None:
        """The node left the swarm (its files are gone)."""
        self._kek, self.key = None, ""
