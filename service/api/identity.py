"""Who is calling: the subject of the client certificate a TLS listener verified.

The same RFC 4514 string for both transports, so the audit trail reads alike
whether a revoke came over gRPC or REST. Without a verified client certificate
the caller is ``anonymous`` (Decision 9: loopback listeners without a client CA).
"""

from __future__ import annotations

from cryptography import x509

__all__ = ["ANONYMOUS", "caller_of"]

ANONYMOUS = "anonymous"


def caller_of(certificate: bytes | None) -> str:
    """The subject of a certificate given as PEM (gRPC's auth context) or DER (Python's ssl)."""
    if not certificate:
        return ANONYMOUS
    try:
        parsed = (x509.load_pem_x509_certificate(certificate) if certificate.lstrip().startswith(b"-----")
                  else x509.load_der_x509_certificate(certificate))
    except ValueError:
        return ANONYMOUS
    return parsed.subject.rfc4514_string() or ANONYMOUS
