"""Sectigo JSON and download bodies → the typed values of ``connectors/base.py``.

Pure functions: dates (``MM/dd/yyyy``), colon-hex serial numbers, PEM and
PKCS#7 certificate bundles, and the ``types``, ``customFields``, details and
list documents. Fields Sectigo leaves out, sends as ``null`` or as ``""`` all
read as "absent" (reference §2.5). A document of the wrong shape raises
``ValueError``; the connector turns that into ``SectigoBadResponse``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import pkcs7

from service.connectors.base import CAProfile, CustomField, OrderDetails, OrderSummary

from . import codes

__all__ = [
    "find_leaf",
    "format_serial",
    "order_certificates",
    "parse_certificates",
    "parse_custom_fields",
    "parse_date",
    "parse_details",
    "parse_order_summaries",
    "parse_profiles",
    "parse_serial",
]

log = logging.getLogger(__name__)

_DATE_FORMATS = ("%m/%d/%Y", "%m/%d/%Y %H:%M:%S", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ")
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.S)


def parse_date(value: object) -> dt.date | None:
    """A details date: ``MM/dd/yyyy`` as observed, with ISO forms tolerated; absent or unreadable → None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    for fmt in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    log.debug("unreadable Sectigo date %r ignored", text)
    return None


def parse_serial(value: object) -> int | None:
    """``"AB:CD:EF"`` (colon-separated hex, any case) → int; absent or not hex → None."""
    if not isinstance(value, str):
        return None
    digits = value.replace(":", "").replace(" ", "").strip()
    if not digits:
        return None
    try:
        return int(digits, 16)
    except ValueError:
        log.debug("unreadable Sectigo serial number %r ignored", value)
        return None


def format_serial(serial: int) -> str:
    """int → Sectigo's upper-case colon-separated hex bytes, without a DER sign byte (``AB:CD:..``)."""
    if serial < 0:
        raise ValueError("a certificate serial number is not negative")
    hex_digits = f"{serial:X}"
    if len(hex_digits) % 2:
        hex_digits = "0" + hex_digits
    return ":".join(hex_digits[i : i + 2] for i in range(0, len(hex_digits), 2))


# ---------------------------------------------------------------- certificates


def parse_certificates(body: bytes) -> list[x509.Certificate]:
    """Every certificate of a download body: PEM blocks (CERTIFICATE or PKCS7, in order) or DER PKCS#7.

    Raises ``ValueError`` when the body holds no certificate.
    """
    certificates: list[x509.Certificate] = []
    blocks = list(_PEM_BLOCK.finditer(body))
    if blocks:
        for block in blocks:
            label = block.group(1)
            if label in (b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"):
                certificates.append(x509.load_pem_x509_certificate(_normalise_pem(block.group(0), label)))
            elif label == b"PKCS7":
                certificates.extend(pkcs7.load_pem_pkcs7_certificates(block.group(0)))
    elif body.lstrip()[:1] == b"\x30":
        certificates.extend(pkcs7.load_der_pkcs7_certificates(body.strip()))
    if not certificates:
        raise ValueError("the download holds no certificate")
    return _distinct(certificates)


def _normalise_pem(block: bytes, label: bytes) -> bytes:
    if label == b"CERTIFICATE":
        return block
    return block.replace(b"BEGIN " + label, b"BEGIN CERTIFICATE").replace(b"END " + label, b"END CERTIFICATE")


def find_leaf(certificates: Sequence[x509.Certificate]) -> x509.Certificate | None:
    """The end-entity certificate of a bundle whose order is not documented (``x509``): the one
    certificate that issued none of the others and is not a CA. None when that is not exactly one."""
    issuers = [c.issuer for c in certificates]
    candidates = [c for index, c in enumerate(certificates)
                  if not any(issuer == c.subject for other, issuer in enumerate(issuers) if other != index)]
    if len(candidates) != 1 or _is_ca(candidates[0]):
        return None
    return candidates[0]


def _is_ca(certificate: x509.Certificate) -> bool:
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def order_certificates(
    leaf: x509.Certificate, others: Iterable[x509.Certificate]
) -> tuple[x509.Certificate, ...]:
    """The chain above ``leaf``: issuer first, then its issuer, up to the root; unrelated ones last.

    Sectigo does not document the order of its chain formats (reference §2.4), so the
    order is rebuilt from the signatures rather than trusted. The last certificate left
    goes last whether or not it signed the one before, so its signature is not checked.
    """
    pool = [c for c in _distinct(list(others)) if c != leaf]
    chain: list[x509.Certificate] = []
    current = leaf
    while len(pool) > 1:
        issuer = next((c for c in pool if _issued_by(current, c)), None)
        if issuer is None:
            break
        chain.append(issuer)
        pool.remove(issuer)
        if issuer.issuer == issuer.subject:
            break
        current = issuer
    return (*chain, *pool)


def _issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    if child.issuer != issuer.subject:
        return False
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


# ---------------------------------------------------------------- JSON documents


def parse_profiles(document: Any) -> tuple[CAProfile, ...]:
    """``GET /ssl/v1/types`` → profiles; ``id`` becomes the string profile id (Sectigo ``certType``)."""
    return tuple(_profile(item) for item in _array(document, "cert types"))


def _profile(item: Mapping[str, Any]) -> CAProfile:
    key_types = item.get("keyTypes") or {}
    if not isinstance(key_types, Mapping):
        raise ValueError("keyTypes is not an object")
    return CAProfile(
        id=_required_id(item, "id"),
        name=_text(item.get("name")),
        description=_text(item.get("description")),
        terms=tuple(int(term) for term in item.get("terms") or ()),
        key_types={str(alg): tuple(str(size) for size in sizes or ()) for alg, sizes in key_types.items()},
        use_secondary_org_name=bool(item.get("useSecondaryOrgName", False)),
    )


def parse_custom_fields(document: Any) -> tuple[CustomField, ...]:
    """``GET /ssl/v1/customFields`` → custom fields."""
    return tuple(
        CustomField(name=_text(item.get("name")), mandatory=item.get("mandatory") is True)
        for item in _array(document, "custom fields")
    )


def parse_details(document: Any) -> OrderDetails:
    """``GET /ssl/v1/{sslId}`` → order details."""
    if not isinstance(document, Mapping):
        raise ValueError("certificate details are not a JSON object")
    cert_type = document.get("certType")
    profile_id = ""
    if isinstance(cert_type, Mapping) and cert_type.get("id") is not None:
        profile_id = str(cert_type["id"])
    term = document.get("term")
    status_word = _text(document.get("status"))
    return OrderDetails(
        order_id=_required_id(document, "sslId", "id"),
        status=codes.order_status(status_word),
        ca_status=status_word,
        common_name=_text(document.get("commonName")),
        serial_number=parse_serial(document.get("serialNumber")),
        comments=_text(document.get("comments")),
        profile_id=profile_id,
        term_days=int(term) if isinstance(term, (int, str)) and str(term).strip().isdigit() else None,
        subject_alt_names=_names(document.get("subjectAlternativeNames")),
        requested=parse_date(document.get("requested")),
        expires=parse_date(document.get("expires")),
        revoked=parse_date(document.get("revoked")),
    )


def parse_order_summaries(document: Any) -> tuple[OrderSummary, ...]:
    """``GET /ssl/v1`` → order summaries (the ``SSLIdentity`` items)."""
    return tuple(
        OrderSummary(
            order_id=_required_id(item, "sslId", "id"),
            common_name=_text(item.get("commonName")),
            serial_number=parse_serial(item.get("serialNumber")),
            subject_alt_names=_names(item.get("subjectAlternativeNames")),
        )
        for item in _array(document, "certificate list")
    )


def _array(document: Any, what: str) -> list[Mapping[str, Any]]:
    if not isinstance(document, list) or not all(isinstance(item, Mapping) for item in document):
        raise ValueError(f"the {what} are not a JSON array of objects")
    return document


def _required_id(item: Mapping[str, Any], *keys: str) -> str:
    for key in keys:
        value = item.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int) or (isinstance(value, str) and value.strip()):
            return str(value).strip()
    raise ValueError(f"an item has no {' or '.join(keys)}")


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _names(value: object) -> tuple[str, ...]:
    """SANs come as an array in details and lists, and as a comma string elsewhere: accept both."""
    if isinstance(value, str):
        return tuple(name.strip() for name in value.split(",") if name.strip())
    if isinstance(value, list):
        return tuple(str(name).strip() for name in value if str(name).strip())
    return ()


def _distinct(certificates: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    return list(dict.fromkeys(certificates))  # certificates hash by their DER; order kept
