"""X.509 values the gateway reads from callers and CAs: CSRs, SANs, DNs, serials, validity.

This module owns the text ⇄ typed-value boundary for everything certificate
shaped. Its functions are pure (no I/O, no clock: ``now`` is passed in), and a
bad caller input raises :class:`~service.errors.InvalidRequest` whose
violations name the CAGW JSON field (``csr``, ``subjectAltNames[1].value``,
``optionalCertificateRequestDetails.validityPeriod``, ``serialNumber``, ``dn``).

Decisions a reader should know:

* **DN order.** An RFC 4514 string lists the *last* RDN of the certificate's
  sequence first (``CN=a,O=b,C=US`` is encoded C, O, CN). :func:`parse_dn`
  reverses accordingly, and every string this module prints (the normal form
  and the CAGW forms) uses the same most-specific-first order as CAGW's
  samples, so a DN copied from any of them parses back to the same
  :class:`~cryptography.x509.Name`.
* **DN normal form** (:func:`normalize_dn`, the ledger's subject key): RDNs in
  the order above; attribute types as lower-case short names (dotted OIDs for
  unknown types); values NFKC-normalised, case-folded, inner whitespace
  collapsed and outer whitespace dropped (LDAP's caseIgnoreMatch / RFC 4518,
  which is how directory users expect DNs to compare); the attributes of a
  multi-valued RDN sorted. RDN order stays significant, as in X.500.
* **Validity arithmetic.** A year is 365 days, a month 30 days, a week 7 days.
  Every request form resolves to an interval; the requested lifetime is the
  time from ``max(start, now)`` to its end, because Sectigo starts a
  certificate at issuance and cannot back- or post-date it.
* **SANs Sectigo cannot carry.** SSL enroll takes one comma-separated
  ``subjAltNames`` string of DNS names, IP addresses and e-mail addresses;
  :meth:`SubjectAltNameValue.as_sectigo` returns ``None`` for the other types
  so the caller can refuse them explicitly instead of dropping them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import encodings.idna
import hashlib
import ipaddress
import re
import unicodedata
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field as dataclass_field

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from service.errors import FieldViolation, InvalidRequest

__all__ = [
    "SAN_TYPES",
    "SECTIGO_SAN_TYPES",
    "CertificateInfo",
    "DNForms",
    "ParsedCSR",
    "SubjectAltNameValue",
    "check_key_allowed",
    "choose_term",
    "der_from_pem_bundle",
    "describe_certificate",
    "dn_strings",
    "format_serial",
    "format_serial_sectigo",
    "format_validity",
    "lifetime_days",
    "normalize_dn",
    "parse_csr",
    "parse_dn",
    "parse_serial",
    "parse_subject_alt_names",
    "parse_validity_period",
    "pem_bundle",
]

_VALIDITY_FIELD = "optionalCertificateRequestDetails.validityPeriod"
_MAX_ECHO = 256  # longest caller value copied into a violation


def _violation(field: str, description: str, value: str = "") -> InvalidRequest:
    if len(value) > _MAX_ECHO:
        value = value[:_MAX_ECHO] + "…"
    return InvalidRequest.of([FieldViolation(field, description, value)])


# ---------------------------------------------------------------------------
# Distinguished names
# ---------------------------------------------------------------------------

# (OID, the name we print, other names accepted on input). Printed names are
# RFC 4514 / RFC 4519 / PKCS#9 ones; aliases cover OpenSSL and Microsoft tools.
_ATTRIBUTE_TYPES: tuple[tuple[x509.ObjectIdentifier, str, tuple[str, ...]], ...] = (
    (NameOID.COMMON_NAME, "CN", ("commonName",)),
    (NameOID.SURNAME, "SN", ("surname",)),
    (NameOID.SERIAL_NUMBER, "serialNumber", ()),
    (NameOID.COUNTRY_NAME, "C", ("countryName",)),
    (NameOID.LOCALITY_NAME, "L", ("localityName",)),
    (NameOID.STATE_OR_PROVINCE_NAME, "ST", ("S", "stateOrProvinceName")),
    (NameOID.STREET_ADDRESS, "STREET", ("streetAddress",)),
    (NameOID.ORGANIZATION_NAME, "O", ("organizationName",)),
    (NameOID.ORGANIZATIONAL_UNIT_NAME, "OU", ("organizationalUnitName",)),
    (NameOID.TITLE, "title", ("T",)),
    (NameOID.GIVEN_NAME, "givenName", ("GN", "G")),
    (NameOID.INITIALS, "initials", ()),
    (NameOID.GENERATION_QUALIFIER, "generationQualifier", ()),
    (NameOID.DN_QUALIFIER, "dnQualifier", ()),
    (NameOID.PSEUDONYM, "pseudonym", ()),
    (NameOID.DOMAIN_COMPONENT, "DC", ("domainComponent",)),
    (NameOID.USER_ID, "UID", ("userId",)),
    (NameOID.EMAIL_ADDRESS, "emailAddress", ("E", "email")),
    (NameOID.POSTAL_CODE, "postalCode", ()),
    (NameOID.BUSINESS_CATEGORY, "businessCategory", ()),
    (NameOID.ORGANIZATION_IDENTIFIER, "organizationIdentifier", ()),
    (NameOID.JURISDICTION_COUNTRY_NAME, "jurisdictionC", ("jurisdictionCountryName",)),
    (NameOID.JURISDICTION_STATE_OR_PROVINCE_NAME, "jurisdictionST", ("jurisdictionStateOrProvinceName",)),
    (NameOID.JURISDICTION_LOCALITY_NAME, "jurisdictionL", ("jurisdictionLocalityName",)),
    (NameOID.UNSTRUCTURED_NAME, "unstructuredName", ()),
)
_OID_TO_NAME: dict[x509.ObjectIdentifier, str] = {oid: name for oid, name, _ in _ATTRIBUTE_TYPES}
_NAME_TO_OID: dict[str, x509.ObjectIdentifier] = {
    alias.lower(): oid for oid, name, aliases in _ATTRIBUTE_TYPES for alias in (name, *aliases)
}

_MAX_DN_LENGTH = 4096
_ASCII_WHITESPACE = " \t\r\n\f\v"
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_ESCAPABLE = frozenset(' "#+,;<=>\\')  # RFC 4514 "special" characters plus backslash
_ATTR_TYPE_RE = re.compile(r"(?:OID\.)?([0-9]+(?:\.[0-9]+)+)|([A-Za-z][A-Za-z0-9-]*)", re.IGNORECASE)
# BER string tags a "#hex" value may carry, and how to read their octets.
_BER_STRING_CODECS = {
    0x0C: "utf-8",  # UTF8String
    0x12: "ascii",  # NumericString
    0x13: "ascii",  # PrintableString
    0x14: "latin-1",  # TeletexString: in practice Latin-1
    0x16: "ascii",  # IA5String
    0x1A: "ascii",  # VisibleString
    0x1C: "utf-32-be",  # UniversalString
    0x1E: "utf-16-be",  # BMPString
}


class _DNSyntaxError(Exception):
    pass


@dataclass(frozen=True)
class DNForms:
    """One DN printed the ways CAGW's certificate object shows it, most specific RDN first.

    ``rfc2253_encoded``: ``CN=a, OU=b, O=c, C=US`` (comma and space);
    ``rfc2253_escaped``: ``CN=a,OU=b,O=c,C=US``;
    ``cagw_lowercase``: ``cn=a,ou=b,o=c,c=US`` (types lower-cased, values untouched);
    ``normalized``: :func:`normalize_dn`, the form the ledger indexes.
    """

    rfc2253_encoded: str
    rfc2253_escaped: str
    cagw_lowercase: str
    normalized: str


def parse_dn(text: str, *, field: str = "dn") -> x509.Name:
    """Parse an RFC 4514 (or RFC 2253) DN string into a :class:`~cryptography.x509.Name`.

    Accepted: escapes ``\\,`` ``\\+`` ``\\"`` ``\\\\`` ``\\#`` ``\\;`` ``\\<``
    ``\\>`` ``\\=`` ``\\ `` and hex pairs (``\\2C``; consecutive pairs are
    UTF-8, ``\\C3\\A9`` is "é"); ``#``-hex BER string values; RFC 2253
    quoted values (``O="Acme, Inc."``); multi-valued RDNs with ``+``; spaces
    around ``=``, ``,`` and ``+``; ``;`` as an RDN separator (RFC 2253 §4
    requires accepting it, and RFC 4514 makes an unescaped ``;`` in a value
    invalid, so it is unambiguous); attribute types in any case as short
    names (CN, O, OU, C, L, ST, STREET, DC, UID, emailAddress/E,
    serialNumber, …), dotted OIDs or ``OID.``-prefixed OIDs.

    The string's first RDN becomes the Name's last (RFC 4514 §2.1), so
    ``parse_dn(name.rfc4514_string()) == name``.

    >>> parse_dn("CN=web.example.com, O=Acme\\, Inc., C=US").rfc4514_string()
    'CN=web.example.com,O=Acme\\\\, Inc.,C=US'
    """
    built: list[x509.RelativeDistinguishedName] = []
    for rdn in _parse_dn_text(text, field):
        attributes: list[x509.NameAttribute[str | bytes]] = []
        for oid, value in rdn:
            try:
                attributes.append(x509.NameAttribute(oid, value))
            except ValueError as exc:
                raise _violation(field, f"{_type_name(oid)}: {exc}", text) from None
        try:
            built.append(x509.RelativeDistinguishedName(attributes))
        except ValueError as exc:
            raise _violation(field, f"RDN {'+'.join(_type_name(o) for o, _ in rdn)}: {exc}", text) from None
    return x509.Name(list(reversed(built)))


def _parse_dn_text(text: str, field: str) -> list[list[tuple[x509.ObjectIdentifier, str]]]:
    """The RDNs of a DN string in written order (most specific first), syntax checked only."""
    stripped = _strip_unescaped(text)
    if not stripped:
        raise _violation(field, "distinguished name is empty", text)
    if len(stripped) > _MAX_DN_LENGTH:
        raise _violation(field, f"distinguished name is longer than {_MAX_DN_LENGTH} characters", text)
    try:
        return _parse_rdns(stripped)
    except _DNSyntaxError as exc:
        raise _violation(field, f"not a valid RFC 4514 distinguished name: {exc}", text) from None


def _strip_unescaped(text: str) -> str:
    """Strip outer ASCII whitespace, but keep a trailing space that a backslash escapes (``CN=a\\ ``).

    Only ASCII: a value may legitimately end in, say, a no-break space.
    """
    stripped = text.strip(_ASCII_WHITESPACE)
    backslashes = len(stripped) - len(stripped.rstrip("\\"))
    if backslashes % 2:
        stripped = text.lstrip(_ASCII_WHITESPACE)[: len(stripped) + 1]
    return stripped


def _parse_rdns(text: str) -> list[list[tuple[x509.ObjectIdentifier, str]]]:
    rdns: list[list[tuple[x509.ObjectIdentifier, str]]] = []
    current: list[tuple[x509.ObjectIdentifier, str]] = []
    pos = 0
    while True:
        oid, pos = _parse_attribute_type(text, pos)
        value, pos = _parse_value(text, pos)
        current.append((oid, value))
        if pos == len(text):
            rdns.append(current)
            return rdns
        separator = text[pos]
        pos += 1
        if separator != "+":
            rdns.append(current)
            current = []
        if not text[pos:].strip():
            raise _DNSyntaxError(f"nothing after {separator!r} at the end")


def _parse_attribute_type(text: str, pos: int) -> tuple[x509.ObjectIdentifier, int]:
    pos = _skip_spaces(text, pos)
    match = _ATTR_TYPE_RE.match(text, pos)
    if match is None:
        raise _DNSyntaxError(f"expected an attribute type at position {pos + 1}")
    dotted, keyword = match.group(1), match.group(2)
    if dotted is not None:
        try:
            oid = x509.ObjectIdentifier(dotted)
        except ValueError:
            raise _DNSyntaxError(f"{dotted!r} is not a valid OID") from None
    else:
        found = _NAME_TO_OID.get(keyword.lower())
        if found is None:
            raise _DNSyntaxError(f"unknown attribute type {keyword!r} (use a dotted OID for other types)")
        oid = found
    pos = _skip_spaces(text, match.end())
    if pos >= len(text) or text[pos] != "=":
        raise _DNSyntaxError(f"expected '=' after {match.group(0)!r}")
    return oid, _skip_spaces(text, pos + 1)


def _parse_value(text: str, pos: int) -> tuple[str, int]:
    """Read one attribute value starting at ``pos``; return it and the position of the separator or end."""
    if pos < len(text) and text[pos] == "#":
        return _parse_hex_value(text, pos + 1)
    if pos < len(text) and text[pos] == '"':
        return _parse_quoted_value(text, pos + 1)
    raw = bytearray()
    significant = 0  # unescaped trailing spaces are not part of the value
    while pos < len(text) and text[pos] not in ",;+":
        char = text[pos]
        if char == "\\":
            pos = _read_escape(text, pos + 1, raw)
            significant = len(raw)
            continue
        raw += char.encode("utf-8")
        if char != " ":
            significant = len(raw)
        pos += 1
    return _decode_utf8(bytes(raw[:significant])), pos


def _parse_quoted_value(text: str, pos: int) -> tuple[str, int]:
    raw = bytearray()
    while True:
        if pos >= len(text):
            raise _DNSyntaxError("unterminated quoted value")
        char = text[pos]
        if char == '"':
            break
        if char == "\\":
            pos = _read_escape(text, pos + 1, raw)
            continue
        raw += char.encode("utf-8")
        pos += 1
    return _decode_utf8(bytes(raw)), _expect_separator(text, pos + 1)


def _parse_hex_value(text: str, pos: int) -> tuple[str, int]:
    start = pos
    while pos < len(text) and text[pos] in _HEX_DIGITS:
        pos += 1
    digits = text[start:pos]
    if not digits or len(digits) % 2:
        raise _DNSyntaxError("a '#' value needs an even number of hex digits")
    return _decode_ber_string(bytes.fromhex(digits)), _expect_separator(text, pos)


def _expect_separator(text: str, pos: int) -> int:
    pos = _skip_spaces(text, pos)
    if pos < len(text) and text[pos] not in ",;+":
        raise _DNSyntaxError(f"unexpected {text[pos]!r} at position {pos + 1}")
    return pos


def _read_escape(text: str, pos: int, out: bytearray) -> int:
    """Append the character escaped at ``pos`` (just after the backslash) to ``out``."""
    if pos >= len(text):
        raise _DNSyntaxError("a backslash ends the string")
    char = text[pos]
    if char in _HEX_DIGITS and pos + 1 < len(text) and text[pos + 1] in _HEX_DIGITS:
        out.append(int(text[pos : pos + 2], 16))
        return pos + 2
    if char in _ESCAPABLE:
        out += char.encode("utf-8")
        return pos + 1
    raise _DNSyntaxError(f"invalid escape '\\{char}' at position {pos}")


def _decode_utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _DNSyntaxError("hex escapes do not form valid UTF-8") from None


def _decode_ber_string(der: bytes) -> str:
    if len(der) < 2:
        raise _DNSyntaxError("a '#' value is too short to be BER")
    tag, length, offset = der[0], der[1], 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or len(der) < 2 + count:
            raise _DNSyntaxError("a '#' value has a bad BER length")
        length, offset = int.from_bytes(der[2 : 2 + count], "big"), 2 + count
    if len(der) != offset + length:
        raise _DNSyntaxError("a '#' value's BER length does not match its size")
    codec = _BER_STRING_CODECS.get(tag)
    if codec is None:
        raise _DNSyntaxError(f"a '#' value has BER tag 0x{tag:02X}, which is not a string type")
    try:
        return der[offset:].decode(codec)
    except UnicodeDecodeError:
        raise _DNSyntaxError("a '#' value's string does not decode") from None


def _skip_spaces(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] == " ":
        pos += 1
    return pos


def _type_name(oid: x509.ObjectIdentifier) -> str:
    return _OID_TO_NAME.get(oid, oid.dotted_string)


def _escape_value(value: str | bytes) -> str:
    """RFC 4514 §2.4 escaping; control characters become hex pairs so output stays printable."""
    if isinstance(value, bytes):  # only x500UniqueIdentifier (a BIT STRING) is bytes
        return "#" + value.hex()
    out: list[str] = []
    last = len(value) - 1
    for index, char in enumerate(value):
        if char in '\\"+,;<>' or (index == 0 and char in "# ") or (index == last and char == " "):
            out.append("\\" + char)
        elif char < " " or char == "\x7f":
            out.append(f"\\{ord(char):02X}")
        else:
            out.append(char)
    return "".join(out)


def _fold_value(value: str | bytes) -> str:
    if isinstance(value, bytes):
        return "#" + value.hex()
    # NFKC again after casefold: folding can undo composition ("ß\u0301" → "ss\u0301" → "sś"),
    # and without it the normal form would not be stable under re-normalisation.
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())
    return _escape_value(" ".join(folded.split()))


def normalize_dn(name_or_text: x509.Name | str, *, field: str = "dn") -> str:
    """The canonical string two DNs are compared by (the ledger's subject key).

    RDNs most specific first (the order RFC 4514 strings and CAGW use, i.e.
    the certificate's RDN sequence reversed); attribute types as lower-case
    short names or dotted OIDs; values NFKC-normalised, case-folded, with
    whitespace runs collapsed to one space and outer whitespace dropped; the
    attributes inside a multi-valued RDN sorted. Normalising the result
    again changes nothing.

    Text needs only to be syntactically valid: the attribute length rules
    :func:`parse_dn` enforces (CN 1–64 bytes, C two letters) are not applied,
    so a subject lookup still finds a certificate whose CA ignored them.

    >>> normalize_dn("CN = Web  Server , O=ACME+OU=Ops, c=us")
    'cn=web server,o=acme+ou=ops,c=us'
    """
    rdns: Iterable[Iterable[tuple[x509.ObjectIdentifier, str | bytes]]]
    if isinstance(name_or_text, str):
        rdns = _parse_dn_text(name_or_text, field)
    else:
        rdns = ([(attr.oid, attr.value) for attr in rdn] for rdn in reversed(name_or_text.rdns))
    return ",".join(
        "+".join(sorted(f"{_type_name(oid).lower()}={_fold_value(value)}" for oid, value in rdn)) for rdn in rdns
    )


def dn_strings(name: x509.Name) -> DNForms:
    """The CAGW string forms of ``name``, most specific RDN first (``CN=…,…,C=US``)."""
    rdns = list(reversed(name.rdns))

    def render(lower_types: bool) -> list[str]:
        rendered = []
        for rdn in rdns:
            parts = []
            for attr in rdn:
                type_name = _type_name(attr.oid)
                parts.append(f"{type_name.lower() if lower_types else type_name}={_escape_value(attr.value)}")
            rendered.append("+".join(parts))
        return rendered

    upper = render(lower_types=False)
    return DNForms(
        rfc2253_encoded=", ".join(upper),
        rfc2253_escaped=",".join(upper),
        cagw_lowercase=",".join(render(lower_types=True)),
        normalized=normalize_dn(name),
    )


# ---------------------------------------------------------------------------
# Subject alternative names
# ---------------------------------------------------------------------------

SAN_TYPES: tuple[str, ...] = (
    "dNSName",
    "rfc822Name",
    "iPAddress",
    "uniformResourceIdentifier",
    "directoryName",
    "registeredID",
)
#: The SAN types Sectigo's SSL enroll can carry in ``subjAltNames``.
SECTIGO_SAN_TYPES: frozenset[str] = frozenset({"dNSName", "iPAddress", "rfc822Name"})
_SAN_TYPE_BY_LOWER = {name.lower(): name for name in SAN_TYPES}
_MAX_SAN_VALUE = 2048

_LDH_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_DNS_DOTS_RE = re.compile("[.\u3002\uff0e\uff61]")  # IDNA treats the ideographic/full-width dots as dots
_EMAIL_LOCAL_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_URI_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_OID_RE = re.compile(r"[0-2](?:\.(?:0|[1-9][0-9]*))+")


@dataclass(frozen=True)
class SubjectAltNameValue:
    """One subject alternative name in CAGW form: ``type`` is a CAGW type name (``dNSName``, …)."""

    type: str
    value: str

    def as_sectigo(self) -> str | None:
        """The item for Sectigo's comma-separated ``subjAltNames``, or ``None`` if SSL enroll cannot carry it.

        DNS names, IP addresses and e-mail addresses go as they are (none of
        them can contain a comma once validated). ``uniformResourceIdentifier``,
        ``directoryName``, ``registeredID`` and a CSR's ``otherName`` have no
        place in that string: the caller must refuse them (naming the field),
        never drop them silently.
        """
        return self.value if self.type in SECTIGO_SAN_TYPES else None


class _BadValue(Exception):
    pass


def parse_subject_alt_names(
    items: Sequence[tuple[str, str]], *, field: str = "subjectAltNames", max_count: int = 100
) -> tuple[SubjectAltNameValue, ...]:
    """Validate and normalise CAGW ``subjectAltNames`` (``(type, value)`` pairs).

    Types match CAGW's names case-insensitively and are returned in CAGW's
    spelling. Values are normalised: DNS names lower-case A-labels (IDNA 2003
    via the standard library; a leading ``*.`` wildcard label is allowed);
    e-mail domains likewise; IP addresses in ``ipaddress``'s canonical text;
    directory names as ``CN=…,O=…`` (:class:`DNForms` ``rfc2253_escaped``);
    OIDs dotted. Duplicates after normalisation are dropped (first kept).
    Every problem is reported at once, each naming ``subjectAltNames[i].type``
    or ``subjectAltNames[i].value``.
    """
    if len(items) > max_count:
        raise _violation(field, f"too many subject alternative names ({len(items)}; at most {max_count})")
    violations: list[FieldViolation] = []
    result: list[SubjectAltNameValue] = []
    for index, (raw_type, raw_value) in enumerate(items):
        item_field = f"{field}[{index}]"
        san_type = _SAN_TYPE_BY_LOWER.get(raw_type.strip().lower())
        if san_type is None:
            violations.append(
                FieldViolation(
                    f"{item_field}.type",
                    f"unknown subject alternative name type {raw_type!r}; expected one of {', '.join(SAN_TYPES)}",
                    raw_type[:_MAX_ECHO],
                )
            )
            continue
        try:
            value = _normalize_san_value(san_type, raw_value, f"{item_field}.value")
        except _BadValue as exc:
            violations.append(FieldViolation(f"{item_field}.value", str(exc), raw_value[:_MAX_ECHO]))
            continue
        except InvalidRequest as exc:  # a directoryName that parse_dn refused
            violations.extend(exc.violations)
            continue
        san = SubjectAltNameValue(san_type, value)
        if san not in result:
            result.append(san)
    if violations:
        raise InvalidRequest.of(violations)
    return tuple(result)


def _normalize_san_value(san_type: str, raw: str, value_field: str) -> str:
    value = raw.strip()
    if not value:
        raise _BadValue(f"{san_type} value is empty")
    if len(value) > _MAX_SAN_VALUE:
        raise _BadValue(f"{san_type} value is longer than {_MAX_SAN_VALUE} characters")
    if san_type == "dNSName":
        return _dns_name(value, allow_wildcard=True)
    if san_type == "rfc822Name":
        return _email_address(value)
    if san_type == "iPAddress":
        return _ip_address(value)
    if san_type == "uniformResourceIdentifier":
        return _uri(value)
    if san_type == "directoryName":
        return dn_strings(parse_dn(value, field=value_field)).rfc2253_escaped
    return _registered_id(value)


def _dns_name(value: str, *, allow_wildcard: bool) -> str:
    name = value[:-1] if value.endswith(".") else value  # an absolute name's root dot has no place in a certificate
    if not name:
        raise _BadValue("DNS name is empty")
    labels = _DNS_DOTS_RE.split(name)
    wildcard = False
    if labels[0] == "*" and allow_wildcard:
        if len(labels) < 2:
            raise _BadValue("a wildcard needs a domain after '*.'")
        wildcard, labels = True, labels[1:]
    if all(label.isdigit() for label in labels) and len(labels) == 4:
        raise _BadValue(f"{value!r} looks like an IPv4 address; use type iPAddress")
    ascii_labels = [_dns_label(label, allow_wildcard) for label in labels]
    result = ".".join((["*"] if wildcard else []) + ascii_labels)
    if len(result) > 253:
        raise _BadValue(f"DNS name is {len(result)} characters long; at most 253 are allowed")
    return result


def _dns_label(label: str, allow_wildcard: bool) -> str:
    if not label:
        raise _BadValue("DNS name has an empty label")
    if "*" in label:
        if allow_wildcard:
            raise _BadValue("'*' is only allowed as the whole first label ('*.example.com')")
        raise _BadValue("'*' is not allowed here")
    if label.isascii():
        ascii_label = label.lower()
        if ascii_label.startswith("xn--"):
            try:
                ascii_label[4:].encode("ascii").decode("punycode")
            except UnicodeError:
                raise _BadValue(f"label {label!r} is not valid punycode") from None
    else:
        try:
            ascii_label = encodings.idna.ToASCII(label).decode("ascii").lower()
        except UnicodeError:
            raise _BadValue(f"label {label!r} is not a valid internationalised domain label") from None
    if len(ascii_label) > 63:
        raise _BadValue(f"label {label!r} is {len(ascii_label)} characters long; at most 63 are allowed")
    if not _LDH_LABEL_RE.fullmatch(ascii_label):
        raise _BadValue(f"label {label!r} may only hold letters, digits and inner hyphens")
    return ascii_label


def _email_address(value: str) -> str:
    local, at, domain = value.rpartition("@")
    if not at or not local:
        raise _BadValue("e-mail address must look like name@example.com")
    if not local.isascii():
        raise _BadValue("e-mail local part must be ASCII (rfc822Name cannot carry SmtpUTF8 mailboxes)")
    if len(local) > 64 or not _EMAIL_LOCAL_RE.fullmatch(local):
        raise _BadValue(f"e-mail local part {local!r} is not a valid dot-atom of at most 64 characters")
    address = f"{local}@{_dns_name(domain, allow_wildcard=False)}"
    if len(address) > 254:
        raise _BadValue("e-mail address is longer than 254 characters")
    return address


def _ip_address(value: str) -> str:
    if "/" in value or "%" in value:
        raise _BadValue("IP address must be a single address, without prefix length or zone")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise _BadValue(f"{value!r} is not an IPv4 or IPv6 address") from None


def _uri(value: str) -> str:
    if not value.isascii() or any(char.isspace() or not char.isprintable() for char in value):
        raise _BadValue("URI must be ASCII without spaces (percent-encode other characters)")
    scheme, colon, rest = value.partition(":")
    if not colon or not _URI_SCHEME_RE.fullmatch(scheme) or not rest:
        raise _BadValue("URI needs a scheme, like https://example.com/ or urn:…")
    try:
        parts = urllib.parse.urlsplit(value)
        host = parts.hostname
    except ValueError as exc:
        raise _BadValue(f"URI does not parse: {exc}") from None
    if rest.startswith("//") and not host:  # RFC 5280 4.2.1.6: an authority must name a host
        raise _BadValue("URI has an authority without a host")
    return value


def _registered_id(value: str) -> str:
    if not _OID_RE.fullmatch(value):
        raise _BadValue("registeredID must be a dotted OID like 1.3.6.1.4.1.311")
    try:
        return x509.ObjectIdentifier(value).dotted_string
    except ValueError:
        raise _BadValue(f"{value!r} is not a valid OID") from None


def _from_general_name(name: x509.GeneralName) -> SubjectAltNameValue:
    if isinstance(name, x509.DNSName):
        return SubjectAltNameValue("dNSName", name.value)
    if isinstance(name, x509.RFC822Name):
        return SubjectAltNameValue("rfc822Name", name.value)
    if isinstance(name, x509.IPAddress):
        return SubjectAltNameValue("iPAddress", str(name.value))
    if isinstance(name, x509.UniformResourceIdentifier):
        return SubjectAltNameValue("uniformResourceIdentifier", name.value)
    if isinstance(name, x509.DirectoryName):
        return SubjectAltNameValue("directoryName", dn_strings(name.value).rfc2253_escaped)
    if isinstance(name, x509.RegisteredID):
        return SubjectAltNameValue("registeredID", name.value.dotted_string)
    if isinstance(name, x509.OtherName):
        # No CAGW type for it; kept (not dropped) so the caller can refuse it explicitly.
        return SubjectAltNameValue("otherName", f"{name.type_id.dotted_string}:#{name.value.hex()}")
    raise ValueError(f"unsupported general name {type(name).__name__}")


# ---------------------------------------------------------------------------
# CSRs
# ---------------------------------------------------------------------------

_CSR_LABELS = frozenset({"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"})
_PEM_BLOCK_RE = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END ([A-Z0-9 ]+)-----", re.DOTALL)
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

    ``key_size`` uses Sectigo's ``keyTypes`` spelling: ``"2048"`` for RSA,
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
    """Refuse a CSR whose key the profile does not list (Sectigo ``keyTypes``: ``{"RSA": ["2048"], "EC": ["P-256"]}``).

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


# ---------------------------------------------------------------------------
# Serial numbers
# ---------------------------------------------------------------------------

_MAX_SERIAL_TEXT = 200
_HEX_RE = re.compile(r"[0-9a-fA-F]+")
_BYTE_RE = re.compile(r"[0-9a-fA-F]{1,2}")
_SERIAL_SEPARATOR_RE = re.compile(r"\s*:\s*|\s+")


def parse_serial(text: str, *, field: str = "serialNumber") -> int:
    """Read a serial number the way clients write it: hex in any case, any zero padding.

    Accepts ``5912bd91``, ``0000000091CA4B…`` (40-digit padded), ``0x5912BD91``
    and byte-separated ``59:12:BD:91`` / ``59 12 bd 91`` (each byte one or two
    digits). Refuses empty, non-hex and values longer than 20 bytes (RFC 5280).
    """
    stripped = text.strip()
    if not stripped:
        raise _violation(field, "serial number is empty", text)
    if len(stripped) > _MAX_SERIAL_TEXT:
        raise _violation(field, f"serial number is longer than {_MAX_SERIAL_TEXT} characters", text)
    if stripped[:2].lower() == "0x":
        stripped = stripped[2:]
    groups = _SERIAL_SEPARATOR_RE.split(stripped)
    if len(groups) > 1:
        if not all(_BYTE_RE.fullmatch(group) for group in groups):
            raise _violation(field, "serial number bytes separated by ':' or spaces must be 1-2 hex digits each", text)
        digits = "".join(group.rjust(2, "0") for group in groups)
    elif _HEX_RE.fullmatch(stripped):
        digits = stripped
    else:
        raise _violation(field, "serial number must be hexadecimal", text)
    serial = int(digits, 16)
    if serial.bit_length() > 160:
        raise _violation(field, "serial number is longer than 20 bytes (RFC 5280)", text)
    return serial


def format_serial(serial: int) -> str:
    """Canonical form: lower-case hex without leading zeros (``"0"`` for zero); the ledger key and the CAGW answer."""
    if serial < 0:
        raise ValueError("serial numbers are not negative")
    return f"{serial:x}"


def format_serial_sectigo(serial: int) -> str:
    """Colon-separated upper-case bytes (``0A:1B:2C``), as Sectigo and OpenSSL print serials."""
    digits = format_serial(serial).upper()
    if len(digits) % 2:
        digits = "0" + digits
    return ":".join(digits[i : i + 2] for i in range(0, len(digits), 2))


# ---------------------------------------------------------------------------
# Validity periods and terms
# ---------------------------------------------------------------------------

_NUMBER = r"(\d{1,9}(?:[.,]\d{1,9})?)"
_DURATION_RE = re.compile(
    rf"P(?!$)(?:{_NUMBER}Y)?(?:{_NUMBER}M)?(?:{_NUMBER}W)?(?:{_NUMBER}D)?"
    rf"(?:T(?=\d)(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?"
)
# What each duration component is worth, in days: a year is 365 days, a month 30.
_DURATION_UNITS_DAYS = (365.0, 30.0, 7.0, 1.0, 1 / 24, 1 / 1440, 1 / 86400)
_ONE_DAY = dt.timedelta(days=1)


def parse_validity_period(text: str, *, now: dt.datetime, field: str = _VALIDITY_FIELD) -> dt.timedelta | None:
    """The lifetime a caller asks for in ``validityPeriod``, or ``None`` when the text is blank.

    Forms (ISO 8601): ``start/end``, ``start/P…``, ``P…/end`` and bare
    durations (``P1Y3M10DT0H0M``, ``PT43200M``, ``P90D``). A year counts 365
    days, a month 30, a week 7. Times without an offset are UTC. Each form
    describes an interval (a bare duration starts ``now``); since Sectigo
    starts a certificate when it issues it, the answer is the time from
    ``max(start, now)`` to the interval's end. Intervals that end before they
    start, or before ``now``, are refused.

    >>> parse_validity_period("P90D", now=dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc))
    datetime.timedelta(days=90)
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    source = text.strip().upper()
    if not source:
        return None
    if "/" in source:
        left, _, right = source.partition("/")
        if left.startswith("P") and right.startswith("P"):
            raise _violation(field, "an interval needs a start or an end, not two durations", text)
        if left.startswith("P"):
            end = _iso_datetime(right, field, text)
            start = end - _iso_duration(left, field, text)
        elif right.startswith("P"):
            start = _iso_datetime(left, field, text)
            end = start + _iso_duration(right, field, text)
        else:
            start, end = _iso_datetime(left, field, text), _iso_datetime(right, field, text)
    elif source.startswith("P"):
        start = now
        end = now + _iso_duration(source, field, text)
    else:
        raise _violation(field, "expected an ISO 8601 duration (P90D) or interval (start/end)", text)
    if end <= start:
        raise _violation(field, "validity period must be positive (it ends before it starts)", text)
    if end <= now:
        raise _violation(field, "validity period ends in the past", text)
    return end - max(start, now)


def _iso_duration(text: str, field: str, original: str) -> dt.timedelta:
    match = _DURATION_RE.fullmatch(text)
    if match is None:
        raise _violation(field, f"{text!r} is not an ISO 8601 duration like P1Y3M10DT0H0M, PT43200M or P90D", original)
    days = sum(
        float(group.replace(",", ".")) * unit
        for group, unit in zip(match.groups(), _DURATION_UNITS_DAYS, strict=True)
        if group is not None
    )
    try:
        return dt.timedelta(days=days)
    except OverflowError:
        raise _violation(field, f"duration {text!r} is too long", original) from None


def _iso_datetime(text: str, field: str, original: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise _violation(field, f"{text!r} is not an ISO 8601 date-time like 2025-01-02T08:03:49Z", original) from None
    return parsed.replace(tzinfo=dt.timezone.utc) if parsed.tzinfo is None else parsed


def lifetime_days(lifetime: dt.timedelta) -> int:
    """Whole days covering ``lifetime`` (rounded up), the unit of Sectigo terms."""
    return -(-lifetime // _ONE_DAY)


def choose_term(requested_days: int | None, terms: Sequence[int]) -> int:
    """The profile term (days) to enroll with: the smallest ≥ the request, else the largest; none asked → the first.

    The first term when nothing is asked mirrors DESIGN decision 4 (and what
    Sectigo's own clients do). ``terms`` must not be empty.
    """
    if not terms:
        raise ValueError("the profile lists no terms")
    if requested_days is None:
        return terms[0]
    long_enough = [term for term in terms if term >= requested_days]
    return min(long_enough) if long_enough else max(terms)


def _iso_z(moment: dt.datetime) -> str:
    moment = moment.replace(tzinfo=dt.timezone.utc) if moment.tzinfo is None else moment.astimezone(dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def format_validity(not_before: dt.datetime, not_after: dt.datetime) -> str:
    """CAGW's ``validityPeriod``: ``2020-01-02T08:03:49Z/2023-01-02T08:33:49Z`` (UTC, whole seconds)."""
    return f"{_iso_z(not_before)}/{_iso_z(not_after)}"


# ---------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------

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


def _pem(label: str, der: bytes) -> str:
    body = base64.b64encode(der).decode("ascii")
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----\n"


def pem_bundle(ders: Iterable[bytes]) -> str:
    """Certificates as concatenated PEM blocks (64-column base64, ``\\n`` line ends), leaf first as given."""
    return "".join(_pem("CERTIFICATE", der) for der in ders)


def der_from_pem_bundle(text: str) -> list[bytes]:
    """The DER of every ``CERTIFICATE`` block in ``text``, in order.

    Text between blocks (OpenSSL's ``subject=`` lines) and blocks of other
    kinds are skipped; a certificate block whose body is not base64 raises
    ``ValueError``.
    """
    ders: list[bytes] = []
    for label, body, end_label in _PEM_BLOCK_RE.findall(text):
        if label != "CERTIFICATE" or end_label != "CERTIFICATE":
            continue
        try:
            ders.append(base64.b64decode("".join(body.split()), validate=True))
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"certificate block {len(ders) + 1} is not valid base64") from exc
    return ders
