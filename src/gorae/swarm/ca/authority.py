"""The cluster root CA and node certificates (swarmkit's shapes, made with `cryptography`).

Root: ECDSA P-256, CN `swarm-ca`, valid 20 years. A node certificate: CN the node ID, OU its role
(`swarm-manager` or `swarm-worker`), O the cluster ID, DNS names the role and the node ID, valid 90 days,
back-dated an hour for clock skew, usable for TLS server and client auth (every node-to-node connection is
mutual TLS). `verify` accepts only a certificate this CA signed, in its validity, with a known role.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gorae.errors import Forbidden

ROOT_CN = "swarm-ca"
MANAGER_ROLE = "swarm-manager"
WORKER_ROLE = "swarm-worker"
ROLES = (MANAGER_ROLE, WORKER_ROLE)
ROOT_VALIDITY = dt.timedelta(days=20 * 365)
NODE_VALIDITY = dt.timedelta(hours=2160)  # swarmkit's DefaultNodeCertExpiration
BACKDATE = dt.timedelta(hours=1)
_PRINTABLE = _ASN1Type.PrintableString


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def cert_times(cert_pem: bytes) -> tuple[dt.datetime, dt.datetime]:
    """A certificate's validity (not before, not after), in UTC."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    return cert.not_valid_before_utc, cert.not_valid_after_utc


def renewal_due(not_before: dt.datetime, not_after: dt.datetime, now: dt.datetime, fraction: float) -> bool:
    """A node renews its certificate once `fraction` (swarmkit: a random point in 50–80 %) of its validity has
    passed, or when it is already expired."""
    lifetime = not_after - not_before
    return now >= not_before + lifetime * fraction or now >= not_after


def load_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("not an ECDSA key")
    return key


@dataclass(frozen=True)
class NodeIdentity:
    node_id: str
    role: str
    cluster_id: str
    not_after: dt.datetime


class RootCA:
    """A root CA certificate and (on managers) its key."""

    def __init__(self, cert_pem: bytes, key: ec.EllipticCurvePrivateKey | None) -> None:
        self.cert_pem = cert_pem
        self.cert = x509.load_pem_x509_certificate(cert_pem)
        self.key = key

    @classmethod
    def create(cls) -> RootCA:
        key = new_key()
        # PrintableString, as Go's x509 writes it (dockerd's CertIssuerSubject bytes)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ROOT_CN, _type=_PRINTABLE)])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + ROOT_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert.public_bytes(serialization.Encoding.PEM), key)

    @property
    def can_sign(self) -> bool:
        return self.key is not None

    def issue(
        self,
        public_key: ec.EllipticCurvePublicKey,
        node_id: str,
        role: str,
        cluster_id: str,
        ips: tuple[str, ...] = (),
        validity: dt.timedelta = NODE_VALIDITY,
    ) -> bytes:
        """A node certificate (PEM) for `public_key`; only the key is taken from the requester. `ips` adds IP
        names (the etcd member's certificate: etcd checks the URL's address); `validity` is the cluster's
        CAConfig.NodeCertExpiry."""
        if self.key is None:
            raise Forbidden("this node's CA cannot sign certificates")
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        now = _now()
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, cluster_id),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
                x509.NameAttribute(NameOID.COMMON_NAME, node_id),
            ]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE)
            .not_valid_after(now + validity)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName(role), x509.DNSName(node_id)]
                    + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
                ),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM)

    def verify(self, cert_pem: bytes) -> NodeIdentity:
        """The identity in a node certificate this CA signed and that is valid now (Forbidden otherwise)."""
        try:
            cert = x509.load_pem_x509_certificate(cert_pem)
        except ValueError as e:
            raise Forbidden(f"invalid certificate: {e}") from e
        if cert.issuer != self.cert.subject:
            raise Forbidden("certificate not issued by this cluster's CA")
        pub = self.cert.public_key()
        if not isinstance(pub, ec.EllipticCurvePublicKey) or cert.signature_hash_algorithm is None:
            raise Forbidden("certificate not issued by this cluster's CA")
        try:
            pub.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        except InvalidSignature:
            raise Forbidden("certificate not issued by this cluster's CA") from None
        now = _now()
        if not (cert.not_valid_before_utc <= now <= cert.not_valid_after_utc):
            raise Forbidden("certificate has expired or is not yet valid")

        def one(oid: x509.ObjectIdentifier) -> str:
            attrs = cert.subject.get_attributes_for_oid(oid)
            if len(attrs) != 1:
                raise Forbidden("certificate subject is not a swarm node's")
            return str(attrs[0].value)

        role = one(NameOID.ORGANIZATIONAL_UNIT_NAME)
        if role not in ROLES:
            raise Forbidden(f"certificate role {role!r} is not a swarm role")
        return NodeIdentity(
            one(NameOID.COMMON_NAME), role, one(NameOID.ORGANIZATION_NAME), cert.not_valid_after_utc
        )
