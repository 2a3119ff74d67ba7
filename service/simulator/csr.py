"""CSR and SAN handling for enroll and replace: decode, verify, check the key.

SCM accepts the CSR as PEM (with or without newlines) or as bare base64 DER;
so does :func:`parse_csr`. Every refusal is the SCM error a real tenant sends.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from . import scm_errors
from .local_ca import IssuedKey
from .settings import CertType

__all__ = [
    "KeyInfo",
    "check_key",
    "common_name_of",
    "csr_sans",
    "general_name_label",
    "general_name_to_text",
    "merge_sans",
    "parse_csr",
    "parse_san_values",
    "san_from_tag",
    "san_to_tag",
    "text_to_general_name",
]

_ARMOUR = re.compile(r"-----(?:BEGIN|END)[A-Z0-9 ]*-----")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_HOSTNAME = re.compile(r"(?:\*\.)?[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62}))*\.?")
_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


@dataclass(frozen=True)
class KeyInfo:
    """The CSR key as SCM names it: ``RSA``/``2048`` or ``EC``/``P-256``."""

    algorithm: str
    parameter: str
    size: int
    public_key: IssuedKey

    @property
    def label(self) -> str:
        """The details ``keyType`` text, e.g. ``RSA - 2048`` or ``EC - P-256``."""
        return f"{self.algorithm} - {self.parameter}"


def parse_csr(text: object) -> x509.CertificateSigningRequest:
    """Decode and verify a CSR; -7 missing, -9 not base64, -10 not a CSR, -138 bad signature."""
    if not isinstance(text, str) or not text.strip():
        raise scm_errors.missing_field("csr")
    # Some clients double-escape newlines; a backslash is never base64, so dropping them is safe.
    body = _ARMOUR.sub("", text).replace("\\n", "").replace("\\r", "")
    body = "".join(body.split())
    if not body or not _BASE64.fullmatch(body):
        raise scm_errors.csr_not_base64()
    try:
        der = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise scm_errors.csr_not_base64() from exc
    try:
        csr = x509.load_der_x509_csr(der)
    except ValueError as exc:
        raise scm_errors.csr_decode_error() from exc
    try:
        valid = csr.is_signature_valid
    except Exception as exc:  # unsupported signature algorithms raise assorted errors
        raise scm_errors.csr_invalid() from exc
    if not valid:
        raise scm_errors.csr_invalid()
    return csr


def check_key(csr: x509.CertificateSigningRequest, cert_type: CertType) -> KeyInfo:
    """Check the CSR key against the profile's ``keyTypes`` (-11, -13, -141, -170)."""
    try:
        key = csr.public_key()
    except Exception as exc:  # keys cryptography cannot load
        raise scm_errors.unsupported_algorithm() from exc
    if isinstance(key, rsa.RSAPublicKey):
        info = KeyInfo("RSA", str(key.key_size), key.key_size, key)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        info = KeyInfo("EC", _CURVE_NAMES.get(key.curve.name, key.curve.name), key.curve.key_size, key)
    else:
        raise scm_errors.unsupported_algorithm()
    allowed = _allowed_parameters(cert_type, info.algorithm)
    if allowed is None:
        raise scm_errors.ecc_not_allowed() if info.algorithm == "EC" else scm_errors.unsupported_algorithm()
    if info.parameter.upper() not in {a.upper() for a in allowed}:
        sizes = [int(a) for a in allowed if a.isdigit()]
        if info.algorithm == "RSA" and sizes and info.size < min(sizes):
            raise scm_errors.key_too_small(min(sizes))
        raise scm_errors.unsupported_key_size()
    return info


def _allowed_parameters(cert_type: CertType, algorithm: str) -> Sequence[str] | None:
    aliases = {"EC": ("EC", "ECC", "ECDSA")}.get(algorithm, (algorithm,))
    for name, values in cert_type.key_types.items():
        if name.upper() in aliases:
            return values
    return None


def common_name_of(name: x509.Name) -> str | None:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attrs:
        return None
    value = attrs[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def parse_san_values(values: object, *, field_name: str) -> list[x509.GeneralName]:
    """Enroll's comma string (or replace's array) → general names; bad entries give -1601."""
    if values is None or values == "":
        return []
    if isinstance(values, str):
        items = values.split(",")
    elif isinstance(values, list) and all(isinstance(v, str) for v in values):
        items = list(values)
    else:
        raise scm_errors.bad_value(field_name)
    names: list[x509.GeneralName] = []
    for raw in items:
        item = raw.strip()
        if not item:
            continue
        name = text_to_general_name(item)
        if name is None:
            raise scm_errors.bad_value(field_name)
        names.append(name)
    return names


def text_to_general_name(item: str) -> x509.GeneralName | None:
    """``1.2.3.4`` → IP, ``a@b`` → e-mail, host names → DNS; anything else is ``None``."""
    try:
        return x509.IPAddress(ipaddress.ip_address(item))
    except ValueError:
        pass
    if "@" in item:
        return x509.RFC822Name(item)
    if len(item) <= 253 and _HOSTNAME.fullmatch(item):
        return x509.DNSName(item.lower().rstrip("."))
    return None


def general_name_to_text(name: x509.GeneralName) -> str:
    """The plain value SCM shows in ``subjectAlternativeNames``."""
    if isinstance(name, x509.IPAddress):
        return str(name.value)
    if isinstance(name, (x509.DNSName, x509.RFC822Name, x509.UniformResourceIdentifier)):
        return name.value
    return str(name.value)


def general_name_label(name: x509.GeneralName) -> str:
    """``dNSName=a.example`` as in ``certificateDetails.subjectAltNames``."""
    kind = {
        x509.DNSName: "dNSName",
        x509.IPAddress: "iPAddress",
        x509.RFC822Name: "rfc822Name",
        x509.UniformResourceIdentifier: "uniformResourceIdentifier",
    }.get(type(name), "otherName")
    return f"{kind}={general_name_to_text(name)}"


def merge_sans(*groups: Iterable[x509.GeneralName]) -> list[x509.GeneralName]:
    """Concatenate SAN groups, dropping duplicates (DNS names compare case-insensitively)."""
    seen: set[tuple[type, str]] = set()
    merged: list[x509.GeneralName] = []
    for group in groups:
        for name in group:
            key = (type(name), general_name_to_text(name).lower())
            if key not in seen:
                seen.add(key)
                merged.append(name)
    return merged


def csr_sans(csr: x509.CertificateSigningRequest) -> list[x509.GeneralName]:
    """The SANs requested inside the CSR (extension request), if any."""
    try:
        ext = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    except ValueError as exc:  # a malformed extension request
        raise scm_errors.csr_invalid() from exc
    return [n for n in ext.value if isinstance(n, (x509.DNSName, x509.IPAddress, x509.RFC822Name, x509.UniformResourceIdentifier))]


_TAGS: dict[type, str] = {
    x509.DNSName: "DNS",
    x509.IPAddress: "IP",
    x509.RFC822Name: "EMAIL",
    x509.UniformResourceIdentifier: "URI",
}


def san_to_tag(name: x509.GeneralName) -> str:
    """``DNS:a.example`` — how orders store SANs, so the type survives persistence."""
    return f"{_TAGS.get(type(name), 'DNS')}:{general_name_to_text(name)}"


def san_from_tag(tag: str) -> x509.GeneralName:
    kind, _, value = tag.partition(":")
    if kind == "IP":
        return x509.IPAddress(ipaddress.ip_address(value))
    if kind == "EMAIL":
        return x509.RFC822Name(value)
    if kind == "URI":
        return x509.UniformResourceIdentifier(value)
    return x509.DNSName(value)
