"""Issued certificates as CAGW describes them (algorithms, DN forms, public key, validity)."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from dataclasses import field as dataclass_field

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from service.x509.dn import DNForms, dn_strings
from service.x509.serial import format_serial
from service.x509.validity import format_validity

_SIGNATURE_ALGORITHM_NAMES = {
    "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
    "1.2.840.113549.1.1.14": "sha224WithRSAEncryption",
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
    "1.2.840.113549.1.1.10": "rsassaPss",
    "1.2.840.10045.4.1": "ecdsa-with-SHA1",
    "1.2.840.10045.4.3.1": "ecdsa-with-SHA224",
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
    "1.2.840.10040.4.3": "dsa-with-SHA1",
    "2.16.840.1.101.3.4.3.2": "dsa-with-SHA256",
    "1.3.101.112": "Ed25519",
    "1.3.101.113": "Ed448",
    "2.16.840.1.101.3.4.3.17": "ML-DSA-44",
    "2.16.840.1.101.3.4.3.18": "ML-DSA-65",
    "2.16.840.1.101.3.4.3.19": "ML-DSA-87",
}
_PUBLIC_KEY_ALGORITHM_NAMES = {
    "1.2.840.113549.1.1.1": "RSA",
    "1.2.840.113549.1.1.10": "RSA",  # RSASSA-PSS keys
    "1.2.840.10045.2.1": "EC",
    "1.3.101.112": "Ed25519",
    "1.3.101.113": "Ed448",
    "1.2.840.10040.4.1": "DSA",
}


@dataclass(frozen=True)
class CertificateInfo:
    """What CAGW's certificate object shows about one certificate (``GET …/certificates/{sn}``)."""

    serial_number: int
    subject: DNForms
    issuer: DNForms
    not_before: dt.datetime  # aware, UTC
    not_after: dt.datetime  # aware, UTC
    signature_algorithm_oid: str  # signatureAlgID, e.g. 1.2.840.113549.1.1.11
    signature_algorithm_name: str  # certificateSignatureAlg, e.g. sha256WithRSAEncryption
    public_key_algorithm: str  # "RSA", "EC", …
    subject_public_key: str  # base64 SPKI DER
    version: str  # "3"
    certificate_data: str  # base64 DER
    der: bytes = dataclass_field(repr=False)

    @property
    def serial_hex(self) -> str:
        return format_serial(self.serial_number)

    @property
    def validity_period(self) -> str:
        return format_validity(self.not_before, self.not_after)


def describe_certificate(der: bytes) -> CertificateInfo:
    """Describe a DER certificate for the CAGW certificate object.

    Certificates come from the CA or the ledger, not from callers, so a bad
    one raises ``ValueError`` for the connector or ledger to translate.
    """
    certificate = x509.load_der_x509_certificate(der)
    signature_oid = certificate.signature_algorithm_oid.dotted_string
    key_oid = certificate.public_key_algorithm_oid.dotted_string
    try:
        spki = certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    except UnsupportedAlgorithm as exc:
        raise ValueError(f"certificate public key is not supported: {exc}") from exc
    return CertificateInfo(
        serial_number=certificate.serial_number,
        subject=dn_strings(certificate.subject),
        issuer=dn_strings(certificate.issuer),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        signature_algorithm_oid=signature_oid,
        signature_algorithm_name=_SIGNATURE_ALGORITHM_NAMES.get(signature_oid, signature_oid),
        public_key_algorithm=_PUBLIC_KEY_ALGORITHM_NAMES.get(key_oid, key_oid),
        subject_public_key=base64.b64encode(spki).decode("ascii"),
        version=str(certificate.version.value + 1),  # Version.v3 has the value 2
        certificate_data=base64.b64encode(der).decode("ascii"),
        der=der,
    )
