"""Private keys and certificate signing requests for tests.

Keys are cached per kind (RSA generation is the slowest thing most tests would
do); ``fresh_key=True`` asks for a new one. Every CSR is signed anew, so two
CSRs built from one cached key still differ (ECDSA and the DER differ).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

__all__ = ["PrivateKey", "build_csr", "make_csr", "new_key", "pem_of", "private_key"]

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey

_CURVES: dict[str, ec.EllipticCurve] = {"ec256": ec.SECP256R1(), "ec384": ec.SECP384R1(), "ec521": ec.SECP521R1(),
                                         "k256": ec.SECP256K1()}
_KEYS: dict[str, PrivateKey] = {}


def new_key(kind: str = "ec256") -> PrivateKey:
    """A new key: ``ec256``/``ec384``/``ec521``/``k256``, ``ed25519`` or ``rsa<bits>`` (``rsa2048``)."""
    if kind.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(kind.removeprefix("rsa")))
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return ec.generate_private_key(_CURVES[kind])


def private_key(kind: str = "ec256") -> PrivateKey:
    """The cached key of ``kind`` (made on first use)."""
    if kind not in _KEYS:
        _KEYS[kind] = new_key(kind)
    return _KEYS[kind]


def build_csr(key: PrivateKey, *, subject: x509.Name, sans: Sequence[x509.GeneralName] | None = None
              ) -> x509.CertificateSigningRequest:
    """A CSR for ``subject`` (any ``x509.Name``, multi-valued RDNs included) signed by ``key``."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm)


def pem_of(csr: x509.CertificateSigningRequest) -> str:
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def make_csr(common_name: str | None = "www.example.com", *, sans: Sequence[str] = (), kind: str = "ec256",
             organization: str | None = None, extra_subject: Sequence[tuple[Any, str]] = (),
             fresh_key: bool = False) -> str:
    """A PEM CSR for ``O=organization, CN=common_name`` (either may be left out) plus
    ``extra_subject`` attributes (``(oid, value)`` pairs) and DNS ``sans``."""
    attributes = []
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    if common_name:
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    attributes += [x509.NameAttribute(oid, value) for oid, value in extra_subject]
    key = new_key(kind) if fresh_key else private_key(kind)
    return pem_of(build_csr(key, subject=x509.Name(attributes), sans=[x509.DNSName(s) for s in sans]))
