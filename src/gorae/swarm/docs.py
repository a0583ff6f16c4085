"""The Docker-shaped documents of swarm objects: the default cluster spec, a node's document, TLSInfo, and
the texts of dockerd's swarm errors."""

from __future__ import annotations

import base64
import copy
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

NOT_MANAGER = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this '
    "node to swarm and try again."
)
WORKER_NOT_MANAGER = (
    "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run "
    "this command on a manager node or promote the current node to a manager."
)
NOT_IN_SWARM = "This node is not part of a swarm"
ALREADY_IN_SWARM = (
    'This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.'
)
LAST_MANAGER_LEAVE = (
    "You are attempting to leave the swarm on a node that is participating as a manager. Removing the last "
    "manager erases all current state of the swarm. Use `--force` to ignore this message."
)


def inactive_info() -> dict[str, Any]:
    """/info's Swarm section on a node in no swarm."""
    return {
        "NodeID": "",
        "NodeAddr": "",
        "LocalNodeState": "inactive",
        "ControlAvailable": False,
        "Error": "",
        "RemoteManagers": None,
    }


DEFAULT_SPEC: dict[str, Any] = {
    "Name": "default",
    "Labels": {},
    "Orchestration": {"TaskHistoryRetentionLimit": 5},
    "Raft": {
        "SnapshotInterval": 10000,
        "KeepOldSnapshots": 0,
        "LogEntriesForSlowFollowers": 500,
        "ElectionTick": 10,
        "HeartbeatTick": 1,
    },
    "Dispatcher": {"HeartbeatPeriod": 5000000000},
    "CAConfig": {"NodeCertExpiry": 7776000000000000},
    "TaskDefaults": {},
    "EncryptionConfig": {"AutoLockManagers": False},
}


def default_spec() -> dict[str, Any]:
    return copy.deepcopy(DEFAULT_SPEC)


def tls_info(ca_pem: bytes) -> dict[str, str]:
    """TLSInfo as dockerd shows it: the root PEM, the issuer's subject and public key (DER, base64)."""
    cert = x509.load_pem_x509_certificate(ca_pem)
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "TrustRoot": ca_pem.decode(),
        "CertIssuerSubject": base64.b64encode(cert.subject.public_bytes()).decode(),
        "CertIssuerPublicKey": base64.b64encode(spki).decode(),
    }
