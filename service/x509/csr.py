"""PKCS#10 requests: decoding (PEM or base64 DER), signature and key checks, the profile's key types."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from service.x509._violations import _violation
from service.x509.dn import dn_strings, normalize_dn
from service.x509.pem import _PEM_BLOCK_RE, _pem
from service.x509.san import SubjectAltNameValue, _from_general_name

_CSR_LABELS = frozenset({"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"})
_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_CURVE_ALIASES = {
    alias: curve
    for curve, aliases in (
        ("P-256", ("p-256", "p256", "256", "secp256r1", "prime256v1")),
        ("P-384", ("p-384", "p384", "384", "secp384r1")),
        ("P-521", ("p-521", "p521", "521", "secp521r1")),
    )
    for alias in aliases
}


@dataclass(frozen=True)
class ParsedCSR:
    """A PKCS#10 request that parsed, has a supported key and a valid signature.

    ``key_size`` uses the spelling of CA profiles' key types (``CAProfile.key_types``): ``"2048"`` for RSA,
    ``"P-256"``/``"P-384"``/``"P-521"`` for EC. ``common_name`` is the first
    CN in the certificate's RDN sequence, or ``""``. ``san_values`` come from
    the CSR's extension request (an ``otherName`` appears with type
    ``otherName`` so it can be refused, not lost).
    """

    csr: x509.CertificateSigningRequest = dataclass_field(compare=False, repr=False)
    der: bytes = dataclass_field(repr=False)
    pem: str = dataclass_field(repr=False)
    subject_dn: str
    normalized_subject: str
    common_name: str
    san_values: tuple[SubjectAltNameValue, ...]
    key_type: str
    key_size: str

    def fingerprint(self, ca_id: str, profile_id: str) -> str:
        """SHA-256 hex over the CA id, the profile id and the DER: the duplicate-order key.

        Each id is length-prefixed so no choice of ids can make two different
        triples hash the same bytes.
        """
        digest = hashlib.sha256()
        for part in (ca_id.encode("utf-8"), profile_id.encode("utf-8")):
            digest.update(len(part).to_bytes(4, "big"))
            digest.update(part)
        digest.update(self.der)
        return digest.hexdigest()


def parse_csr(text: str, *, field: str = "csr", max_bytes: int = 16384) -> ParsedCSR:
    """Parse and check a caller's CSR: PEM (``CERTIFICATE REQUEST`` or ``NEW CERTIFICATE REQUEST``) or base64 DER.

    Surrounding whitespace and line breaks anywhere are fine, and so are
    JSON-doubled ``\\n`` escapes (base64 never contains a backslash). Refused,
    each with a violation on ``field``: empty, larger than ``max_bytes`` (UTF-8
    text), not base64, not a PKCS#10 request, a key other than RSA or EC
    P-256/P-384/P-521, a signature that does not verify.

    >>> parse_csr(pem_text).key_type  # doctest: +SKIP
    'RSA'
    """
    if not text.strip():
        raise _violation(field, "CSR is empty")
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise _violation(field, f"CSR is {size} bytes; at most {max_bytes} are accepted")
    der = _csr_der(text.replace("\\r", "").replace("\\n", "\n").strip(), field)
    try:
        csr = x509.load_der_x509_csr(der)
        subject = csr.subject
    except x509.InvalidVersion as exc:  # not a ValueError: a PKCS#10 version other than v1 (0)
        raise _violation(field, f"not a PKCS#10 v1 certificate request ({exc})") from None
    except ValueError:
        raise _violation(field, _not_a_csr_reason(der)) from None
    key_type, key_size = _csr_key(csr, field)
    try:
        signature_ok = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm):
        raise _violation(field, "CSR signature algorithm is not supported") from None
    if not signature_ok:
        raise _violation(field, "CSR signature does not verify: the request was altered or not signed by its key")
    try:
        extension = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        san_values = tuple(_from_general_name(name) for name in extension.value)
    except x509.ExtensionNotFound:
        san_values = ()
    except (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType) as exc:
        raise _violation(field, f"CSR extension request does not parse: {exc}") from None
    common_names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    first_cn = common_names[0].value if common_names else ""
    return ParsedCSR(
        csr=csr,
        der=der,
        pem=_pem("CERTIFICATE REQUEST", der),
        subject_dn=dn_strings(subject).rfc2253_escaped,
        normalized_subject=normalize_dn(subject),
        common_name=first_cn if isinstance(first_cn, str) else "",
        san_values=san_values,
        key_type=key_type,
        key_size=key_size,
    )


def _csr_der(text: str, field: str) -> bytes:
    if text.startswith("-----BEGIN"):
        match = _PEM_BLOCK_RE.fullmatch(text) if text.count("-----BEGIN") == 1 else None
        if match is None:
            raise _violation(field, "CSR PEM is malformed: expected one BEGIN/END CERTIFICATE REQUEST block")
        label, body, end_label = match.groups()
        if label != end_label:
            raise _violation(field, f"CSR PEM begins with {label!r} but ends with {end_label!r}")
        if label not in _CSR_LABELS:
            raise _violation(field, f"PEM block is a {label}, not a CERTIFICATE REQUEST")
        return _b64decode(body, field, "CSR PEM body is not valid base64")
    return _b64decode(text, field, "CSR is neither PEM nor valid base64 DER")


def _b64decode(text: str, field: str, description: str) -> bytes:
    try:
        decoded = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise _violation(field, description) from None
    if not decoded:
        raise _violation(field, description)
    return decoded


def _not_a_csr_reason(der: bytes) -> str:
    try:
        x509.load_der_x509_certificate(der)
    except ValueError:
        return "not a PKCS#10 certificate request (DER does not parse)"
    return "this is a certificate, not a certificate signing request"


def _csr_key(csr: x509.CertificateSigningRequest, field: str) -> tuple[str, str]:
    try:
        key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm):
        raise _violation(field, "CSR key type is not supported; use RSA or EC (P-256, P-384, P-521)") from None
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", str(key.key_size)
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve = _CURVE_NAMES.get(key.curve.name)
        if curve is None:
            message = f"EC curve {key.curve.name} is not supported; use P-256, P-384 or P-521"
            raise _violation(field, message, key.curve.name)
        return "EC", curve
    kind = type(key).__name__.removesuffix("PublicKey").lstrip("_")
    raise _violation(field, f"CSR key type {kind} is not supported; use RSA or EC (P-256, P-384, P-521)", kind)


def _canonical_key(algorithm: str, size: str) -> tuple[str, str]:
    algorithm = algorithm.strip().upper()
    if algorithm in ("EC", "ECC", "ECDSA"):
        return "EC", _CURVE_ALIASES.get(size.strip().lower(), size.strip())
    return algorithm, size.strip()


def check_key_allowed(
    csr: ParsedCSR, key_types: Mapping[str, Sequence[str]], *, field: str = "csr", profile: str = ""
) -> None:
    """Refuse a CSR whose key the profile does not list (``CAProfile.key_types``: ``{"RSA": ["2048"], "EC": ["P-256"]}``).

    An empty mapping allows every key. Algorithm names match
    case-insensitively (``ECDSA``/``ECC`` mean EC) and curve spellings such as
    ``prime256v1`` or ``secp384r1`` are understood; an algorithm listed with
    no sizes allows none. The violation says what is allowed, e.g.
    ``RSA 1024 is not allowed by profile 60515; allowed: RSA 2048, 4096; EC P-256``.
    """
    if not key_types:
        return
    allowed = {_canonical_key(algorithm, size) for algorithm, sizes in key_types.items() for size in sizes}
    if (csr.key_type, csr.key_size) in allowed:
        return
    listing = "; ".join(
        f"{_canonical_key(algorithm, '')[0]} {', '.join(_canonical_key(algorithm, size)[1] for size in sizes)}".rstrip()
        for algorithm, sizes in key_types.items()
    )
    where = f"profile {profile}" if profile else "this profile"
    requested = f"{csr.key_type} {csr.key_size}"
    raise _violation(field, f"{requested} is not allowed by {where}; allowed: {listing}", requested)


MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192
FLOOR_CURVES = ("P-256", "P-384")


def check_key_floor(csr: ParsedCSR, *, field: str = "csr", profile: str = "") -> None:
    """The gateway's own minimum when a profile lists no key types (a static profile, or the
    fallback while the CA cannot be asked): RSA 2048-8192 bits, EC P-256 or P-384."""
    if csr.key_type == "RSA" and MIN_RSA_BITS <= int(csr.key_size) <= MAX_RSA_BITS:
        return
    if csr.key_type == "EC" and csr.key_size in FLOOR_CURVES:
        return
    where = f"profile {profile}" if profile else "this profile"
    requested = f"{csr.key_type} {csr.key_size}"
    raise _violation(field, f"{requested} is not allowed: {where} lists no key types, so the gateway allows "
                     f"RSA {MIN_RSA_BITS}-{MAX_RSA_BITS} bits and EC {', '.join(FLOOR_CURVES)}", requested)
