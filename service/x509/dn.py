"""Distinguished names: RFC 4514 text and ``x509.Name``, the ledger's normal form, CAGW's printed forms."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from service.x509._violations import _violation

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


def attribute_mismatch(name: x509.Name, attribute: str, value: str) -> str | None:
    """Why ``name`` does not carry ``attribute=value`` (compared as :func:`normalize_dn` does),
    or ``None`` when it does. ``attribute`` is a type name (``cn``, ``O``, ``emailAddress``) or
    a dotted OID; anything else (a template variable) is not an attribute a certificate carries."""
    text = attribute.strip()
    oid = _NAME_TO_OID.get(text.lower())
    if oid is None:
        try:
            oid = x509.ObjectIdentifier(text[4:] if text.upper().startswith("OID.") else text)
        except ValueError:
            return f"{text!r} is not a subject attribute type (CN, O, OU, C, ...); the certificate carries none"
    carried = [attr.value for attr in name.get_attributes_for_oid(oid)]
    if not carried:
        return f"the certificate will carry no {_type_name(oid)} attribute (its subject is {name.rfc4514_string()})"
    if _fold_value(value) not in {_fold_value(v) for v in carried}:
        shown = ", ".join(f"{_type_name(oid)}={_escape_value(v)}" for v in carried)
        return f"the certificate will carry {shown}, not {_type_name(oid)}={_escape_value(value)}"
    return None


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
