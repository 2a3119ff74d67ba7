"""Who is calling: the client certificate a TLS listener verified, read once for both transports.

gRPC's auth context gives the certificate as PEM, Python's ssl as DER; both
become one :class:`~service.policy.PeerIdentity` (subject, URI SANs, SHA-256
fingerprint), so the policy and the audit trail read alike whether a revoke
came over gRPC or REST. Without a verified client certificate the caller is
``anonymous`` (DESIGN decision 9: loopback listeners without a client CA).
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from service.errors import InvalidRequest
from service.policy import ANONYMOUS, PeerIdentity
from service.x509 import normalize_dn

__all__ = ["ANONYMOUS", "caller_of", "identity_of"]


def _load(certificate: bytes) -> x509.Certificate | None:
    try:
        return (x509.load_pem_x509_certificate(certificate) if certificate.lstrip().startswith(b"-----")
                else x509.load_der_x509_certificate(certificate))
    except ValueError:
        return None


def _uri_sans(parsed: x509.Certificate) -> tuple[str, ...]:
    try:
        extension = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (x509.ExtensionNotFound, ValueError):
        return ()
    return tuple(extension.value.get_values_for_type(x509.UniformResourceIdentifier))


def identity_of(certificate: bytes | None) -> PeerIdentity:
    """The identity in a verified certificate given as PEM or DER (empty without one)."""
    parsed = _load(certificate) if certificate else None
    if parsed is None:
        return PeerIdentity()
    subject = parsed.subject.rfc4514_string()
    try:
        normalized = normalize_dn(parsed.subject) if subject else ""
    except InvalidRequest:
        normalized = ""
    return PeerIdentity(subject=subject, normalized_subject=normalized, uri_sans=_uri_sans(parsed),
                        sha256=hashlib.sha256(parsed.public_bytes(Encoding.DER)).hexdigest())


def caller_of(certificate: bytes | None) -> str:
    """The subject of a certificate given as PEM (gRPC's auth context) or DER (Python's ssl)."""
    return identity_of(certificate).text if certificate and _load(certificate) is not None else ANONYMOUS
