"""Who is calling: the subject of the client certificate a TLS listener verified.

The same RFC 4514 string for both transports, so the audit trail reads alike
whether a revoke came over gRPC or REST. Without a verified client certificate
the caller is ``anonymous`` (Decision 9: loopback listeners without a client CA).
"""

from __future__ import annotations

from cryptography import x509

__all__ = ["ANONYMOUS", "caller_from_der", "caller_from_pem"]

ANONYMOUS = "anonymous"


def caller_from_der(der: bytes | None) -> str:
    if not der:
        return ANONYMOUS
    try:
        return x509.load_der_x509_certificate(der).subject.rfc4514_string() or ANONYMOUS
    except ValueError:
        return ANONYMOUS


def caller_from_pem(pem: bytes | None) -> str:
    if not pem:
        return ANONYMOUS
    try:
        return x509.load_pem_x509_certificate(pem).subject.rfc4514_string() or ANONYMOUS
    except ValueError:
        return ANONYMOUS
