"""JSON views of orders as SCM renders them: list items, details, serials and dates.

SCM leaves out null and empty fields (booleans and numbers stay), writes dates
as ``MM/dd/yyyy`` and serial numbers as colon-separated upper-case hex.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from service.connectors.sectigo.parsing import format_serial  # one notation for the client and the simulator

from .csr import general_name_label
from .local_ca import LocalCA
from .settings import CertType
from .state import Order

__all__ = [
    "compact",
    "details_json",
    "format_serial",
    "identity_json",
    "order_certificate",
    "parse_serial",
    "scm_date",
]

_VENDOR = "Sectigo Limited"
_REQUESTED_VIA = "REST API"
_ORDER_NUMBER_OFFSET = 7_000_000
_EKU_NAMES = {ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth", ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth"}


def parse_serial(text: str) -> int | None:
    """Accept ``0A:1B``, ``0a1b`` or ``0A-1B``; ``None`` when it is not hex."""
    cleaned = text.strip().replace(":", "").replace("-", "").replace(" ", "")
    if not cleaned:
        return None
    try:
        return int(cleaned, 16)
    except ValueError:
        return None


def scm_date(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%m/%d/%Y")


def compact(data: Mapping[str, Any]) -> dict[str, Any]:
    """Drop null and empty values the way SCM omits them; booleans and numbers stay."""
    return {k: v for k, v in data.items() if v is not None and v != "" and v != [] and v != {}}


def identity_json(order: Order) -> dict[str, object]:
    """An ``SSLIdentity`` list item: id, common name, SANs and (once issued) the serial."""
    return compact(
        {
            "sslId": order.ssl_id,
            "commonName": order.common_name,
            "subjectAlternativeNames": [t.partition(":")[2] for t in order.sans],
            "serialNumber": format_serial(order.serial_number) if order.serial_number is not None else None,
        }
    )


def details_json(order: Order, *, cert_type: CertType | None, ca: LocalCA) -> dict[str, object]:
    """The ``GET /ssl/v1/{id}`` object, shaped like sectigo-examples/ssl-details-issued.json."""
    certificate = order_certificate(order) if order.certificate is not None else None
    expires = (
        certificate.not_valid_after_utc.timestamp()
        if certificate is not None
        else order.requested_at + order.term * 86400
    )
    details: dict[str, Any] = {
        "commonName": order.common_name,
        "sslId": order.ssl_id,
        "id": order.ssl_id,
        "orgId": order.org_id,
        "status": order.status.value,
        "orderNumber": order.ssl_id + _ORDER_NUMBER_OFFSET,
        "backendCertId": str(order.ssl_id + _ORDER_NUMBER_OFFSET),
        "vendor": _VENDOR,
        "certType": cert_type.to_json() if cert_type is not None else {"id": order.cert_type_id},
        "validationType": cert_type.validation_type if cert_type is not None else None,
        "term": order.term,
        "requester": order.requester,
        "externalRequester": order.external_requester,
        "requestedVia": _REQUESTED_VIA,
        "comments": order.comments,
        "requested": scm_date(order.requested_at),
        "approved": scm_date(order.approved_at),
        "issued": scm_date(order.issued_at),
        "declined": scm_date(order.declined_at),
        "expires": scm_date(expires),
        "replaced": scm_date(order.replaced_at),
        "revoked": scm_date(order.revoked_at),
        "renewedDate": scm_date(order.renewed_at),
        "reasonCode": order.revocation_reason_code,
        "renewed": order.renewed,
        "serialNumber": format_serial(order.serial_number) if order.serial_number is not None else None,
        "keyAlgorithm": order.key_algorithm,
        "keySize": order.key_size,
        "keyType": order.key_type,
        "subjectAlternativeNames": [t.partition(":")[2] for t in order.sans],
        "customFields": order.custom_fields,
        "autoInstallDetails": {"state": "Not configured"},
        "autoRenewDetails": {"state": "Not scheduled"},
        "suspendNotifications": False,
    }
    if certificate is not None:
        details.update(_certificate_fields(certificate, ca.certificate.public_key()))
    return compact(details)


def order_certificate(order: Order) -> x509.Certificate:
    """The order's issued leaf, parsed."""
    assert order.certificate is not None
    return x509.load_pem_x509_certificate(order.certificate.encode("ascii"))


def _certificate_fields(certificate: x509.Certificate, issuer_key: object) -> dict[str, Any]:
    der = certificate.public_bytes(serialization.Encoding.DER)
    try:
        san_ext = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        san_labels = ", ".join(general_name_label(n) for n in san_ext)
    except x509.ExtensionNotFound:
        san_labels = ""
    algorithm = certificate.signature_hash_algorithm
    family = "ECDSA" if isinstance(issuer_key, ec.EllipticCurvePublicKey) else "RSA"
    return {
        "signatureAlg": f"{(algorithm.name if algorithm else '').upper()}WITH{family}",
        "keyUsages": _key_usages(certificate),
        "extendedKeyUsages": _extended_key_usages(certificate),
        "certificateDetails": compact(
            {
                "issuer": certificate.issuer.rfc4514_string(),
                "subject": certificate.subject.rfc4514_string(),
                "subjectAltNames": san_labels,
                "md5Hash": _fingerprint(der, hashes.MD5()),
                "sha1Hash": _fingerprint(der, hashes.SHA1()),
                "sha256Hash": _fingerprint(der, hashes.SHA256()),
            }
        ),
    }


def _fingerprint(der: bytes, algorithm: hashes.HashAlgorithm) -> str:
    digest = hashes.Hash(algorithm)
    digest.update(der)
    return digest.finalize().hex().upper()


def _key_usages(certificate: x509.Certificate) -> list[str]:
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return []
    names = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement")
    return [_camel(n) for n in names if getattr(usage, n)]


def _extended_key_usages(certificate: x509.Certificate) -> list[str]:
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return []
    return [_EKU_NAMES.get(oid, oid.dotted_string) for oid in usage]


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(p.title() for p in rest)
