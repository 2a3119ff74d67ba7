"""Subject alternative names: the CAGW ``subjectAltNames`` types, their syntax checks and normal forms."""

from __future__ import annotations

import encodings.idna
import ipaddress
import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509

from service.errors import FieldViolation, InvalidRequest
from service.x509._violations import _MAX_ECHO, _violation
from service.x509.dn import dn_strings, parse_dn

SAN_TYPES: tuple[str, ...] = (
    "dNSName",
    "rfc822Name",
    "iPAddress",
    "uniformResourceIdentifier",
    "directoryName",
    "registeredID",
)
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


def normalize_dns_name(value: str, *, field: str, allow_wildcard: bool = True) -> str:
    """One DNS name (or ``*.domain``) as certificates carry it: lower-case A-labels, no root dot."""
    if len(value) > _MAX_SAN_VALUE:
        raise _violation(field, f"DNS name is longer than {_MAX_SAN_VALUE} characters", value)
    try:
        return _dns_name(value.strip(), allow_wildcard=allow_wildcard)
    except _BadValue as exc:
        raise _violation(field, str(exc), value) from None
