"""From a caller's enrollment request to a validated order (a :class:`NewOrder` the tracker records).

Everything is checked before anything reaches the CA: the CSR (encoding,
size, signature, key type and size allowed by the profile), the subject DN,
the SANs (types, count, syntax, and what the CA can carry), the profile and
the term of the CA, the renewal target and the idempotency key. Every problem
is reported at once as a field violation named with CAGW's JSON field names.

Each check is a small function that adds its problems to a shared
:class:`Violations` and returns what it found (``None`` when it found nothing
usable), so later checks go on and the caller hears of every bad field.
:func:`prepare_order` runs them in the order their violations are reported.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ParamSpec, TypeVar

from cryptography import x509 as crypto_x509
from cryptography.x509.oid import NameOID

from service import x509 as x
from service.authorities import ManagedCA
from service.catalog import ResolvedProfile
from service.config import Secret
from service.connectors import base
from service.enrollment import server_side
from service.enrollment.violations import Violations
from service.enrollment.orders import FORMATS, Format, OrderOptions
from service.enrollment.properties import text_properties
from service.errors import InvalidRequest, NotFound, Unimplemented
from service.ledger.base import Ledger, NewOrder, OrderKind

__all__ = [
    "EnrollmentInput",
    "RenewalTarget",
    "Subject",
    "Violations",
    "check_key",
    "check_server_key_request",
    "check_request_fields",
    "check_subject_variables",
    "order_options",
    "prepare_order",
    "read_csr",
    "prepare",
    "renewal_target",
    "requested_validity",
    "required_format",
    "resolve_profile",
    "scoped_request_id",
    "server_key_subject",
    "subject_alt_names",
    "subject_of",
    "term_days",
    "unsupported",
]

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:~-]{1,128}$")
MAX_WAIT_SECONDS = 3600.0  # longest maxWait: an enroll that has not issued by then is better followed by watching
MAX_PROPERTIES = 64
MAX_PROPERTY_KEY = 128
MAX_PROPERTY_VALUE = 1024
CUSTOM_FIELD_PREFIX = "customField."
EXTERNAL_REQUESTER = "externalRequester"
# The order's own choice of automatic renewal ("true" or "false"), over its profile's.
AUTOMATIC_RENEWAL = "AutomaticRenewal"
_AUTOMATIC_RENEWAL_FIELD = f"properties.{AUTOMATIC_RENEWAL}"
RENEWAL_SERIAL = "RenewalSerialNumber"
_RENEWAL_SERIAL_FIELD = f"properties.{RENEWAL_SERIAL}"
_SUBJECT_DN_FIELD = "optionalCertificateRequestDetails.subjectDn"
_VALIDITY_FIELD = "optionalCertificateRequestDetails.validityPeriod"

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class EnrollmentInput:
    """The transport-neutral content of an enrollment request (CAGW field names in comments)."""

    ca_id: str
    profile_id: str  # profileId
    csr: str = ""  # csr
    required_format: str = ""  # requiredFormat.format
    protection_type: str = ""  # requiredFormat.protection.type (PKCS12)
    password: Secret | None = None  # requiredFormat.protection.password (PKCS12); None when not given
    subject_variables: tuple[tuple[str, str], ...] = ()  # subjectVariables[].type/value
    subject_alt_names: tuple[tuple[str, str], ...] = ()  # subjectAltNames[].type/value
    subject_dn: str = ""  # optionalCertificateRequestDetails.subjectDn
    validity_period: str = ""  # optionalCertificateRequestDetails.validityPeriod
    encoded_private_key: bool = False  # optionalCertificateRequestDetails.encodedPrivateKey was sent
    properties: Mapping[str, str] = field(default_factory=dict)
    property_values: Mapping[str, object] = field(default_factory=dict)  # properties with JSON values
    renewal: bool = False
    reissue: bool = False  # with RenewalSerialNumber: issue that certificate's CA order again for ``csr``
    reissue_reason: str = ""
    include_ca: bool = True
    request_id: str = ""
    caller: str = ""
    max_wait: float | None = None  # maxWait, seconds: longest a unary enroll waits for the certificate
    client: str = ""  # the caller's `clients` entry: owner of the order, scope of its idempotency key


def scoped_request_id(client: str, request_id: str) -> str:
    """The idempotency key as the ledger keeps it: per client, so two clients' equal keys are two
    keys (client names have no "/", so the scoped key is unambiguous)."""
    return f"{client}/{request_id}" if client else request_id


@dataclass(frozen=True)
class RenewalTarget:
    """The certificate a renewal renews, as this gateway issued it."""

    serial: str  # canonical
    ca_order_id: str
    subject_dn: str  # normalised
    auto_renew: bool | None = None  # the renewed order's own choice of automatic renewal


@dataclass(frozen=True)
class Subject:
    requested_dn: str = ""  # normalised: what the ledger files the order under
    display_dn: str = ""  # as the caller (or the CSR) wrote it: what answers show
    common_name: str = ""


def unsupported(request: EnrollmentInput, ca: ManagedCA) -> Unimplemented | None:
    """What ``ca`` does not serve, whatever else the request holds: PKCS12 when its server-side
    keys are switched off."""
    if server_side.wants_server_key(request.required_format):
        return server_side.server_key_refusal(ca)
    return None


def required_format(request: EnrollmentInput, problems: Violations) -> Format:
    """The answer's form, PEM when not given."""
    asked = request.required_format.strip().upper()
    for known in FORMATS:
        if asked == known:
            return known
    if asked:
        problems.add("requiredFormat.format", f"unknown format; use one of {', '.join(FORMATS)}",
                     request.required_format[:64])
    return "PEM"


def check_server_key_request(request: EnrollmentInput, problems: Violations) -> None:
    """PKCS12: a password and no CSR (the gateway makes the key), no renewal (which keeps a key)."""
    server_side.check_protection(request.protection_type, request.password, problems)
    if request.csr.strip():
        problems.add("csr", "must be absent with requiredFormat PKCS12: the gateway makes the key; to use your "
                     "own key send the CSR with requiredFormat PEM or X509")
    if request.renewal:
        problems.add("renewal", "requiredFormat PKCS12 makes a new key, so it cannot renew; renew with a CSR")


def check_request_fields(request: EnrollmentInput, problems: Violations) -> None:
    """What no CA is asked about: no private key, a well-formed request id, bounded properties."""
    if request.encoded_private_key:
        problems.add("optionalCertificateRequestDetails.encodedPrivateKey",
                     "private keys are never sent to the gateway; send a CSR made with your own key")
    if request.request_id and not _REQUEST_ID.match(request.request_id):
        problems.add("requestId", "must be 1-128 characters of letters, digits and . _ : ~ -",
                     request.request_id[:128])
    if request.max_wait is not None and not 0 <= request.max_wait <= MAX_WAIT_SECONDS:
        problems.add("maxWait", f"must be between 0s and {MAX_WAIT_SECONDS:g}s (watch the enrollment to wait longer)",
                     f"{request.max_wait:g}s")
    if len(request.properties) > MAX_PROPERTIES:
        problems.add("properties", f"at most {MAX_PROPERTIES} properties")
    for key, value in request.properties.items():
        if len(key) > MAX_PROPERTY_KEY or len(value) > MAX_PROPERTY_VALUE:
            problems.add(f"properties.{key[:MAX_PROPERTY_KEY]}",
                         f"keys are at most {MAX_PROPERTY_KEY} and values at most {MAX_PROPERTY_VALUE} characters")


async def resolve_profile(request: EnrollmentInput, *, ca: ManagedCA, problems: Violations) -> ResolvedProfile | None:
    if not request.profile_id:
        problems.add("profileId", "is required")
        return None
    try:
        return await ca.catalog.get(request.profile_id)
    except NotFound:
        problems.add("profileId", f"CA {ca.id} has no such profile; list them at "
                     f"/v1/certificate-authorities/{ca.id}/profiles", request.profile_id[:128])
        return None


async def renewal_target(request: EnrollmentInput, *, ca_id: str, ledger: Ledger,
                         problems: Violations) -> RenewalTarget | None:
    """The certificate ``properties.RenewalSerialNumber`` names (with ``renewal: true`` only); it
    must have been issued through this gateway, since the CA renews by its order id. A reissue
    names its certificate the same way."""
    if not (request.renewal or request.reissue):
        return None
    raw_serial = request.properties.get(RENEWAL_SERIAL, "")
    if not raw_serial:
        problems.add(_RENEWAL_SERIAL_FIELD, "is required with renewal: true")
        return None
    serial_number = problems.attempt(x.parse_serial, raw_serial, field=_RENEWAL_SERIAL_FIELD)
    if serial_number is None:
        return None
    serial = x.format_serial(serial_number)
    old = await ledger.get_certificate(ca_id, serial)
    old_order = await ledger.get_order(old.order_id) if old and old.order_id else None
    if old is None or old_order is None or not old_order.ca_order_id:
        problems.add(_RENEWAL_SERIAL_FIELD, f"CA {ca_id} has no certificate issued through this gateway with "
                     "that serial", raw_serial[:64])
        return None
    return RenewalTarget(serial=serial, ca_order_id=old_order.ca_order_id, subject_dn=old.subject_dn,
                         auto_renew=OrderOptions.from_ledger(old_order.options).auto_renew)


def read_csr(request: EnrollmentInput, problems: Violations) -> x.ParsedCSR | None:
    """The caller's CSR; required unless renewing (a renewal may reuse the old key)."""
    if request.csr.strip():
        return problems.attempt(x.parse_csr, request.csr, field="csr")
    if not request.renewal:
        problems.add("csr", "is required (PEM or base64 DER PKCS#10)")
    return None


def check_key(csr: x.ParsedCSR | None, profile: ResolvedProfile | None, problems: Violations) -> None:
    """The CSR's key type and size must be one the profile lists; a profile that lists none still
    refuses weak keys (:func:`~service.x509.check_key_floor`)."""
    if csr is None or profile is None:
        return
    if profile.key_types:
        problems.attempt(x.check_key_allowed, csr, profile.key_types, field="csr")
    else:
        problems.attempt(x.check_key_floor, csr, field="csr", profile=profile.id)


def _common_name(name: crypto_x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


def subject_of(request: EnrollmentInput, *, csr: x.ParsedCSR | None, renewal: RenewalTarget | None,
               problems: Violations) -> Subject:
    """The subject the certificate will carry: the CSR's, else (renewing without a CSR) the renewed
    certificate's. The CA issues the CSR's subject, so a ``subjectDn`` that differs from it after
    normalisation is refused rather than echoed and filed under a name the certificate never has."""
    subject = Subject()
    name: crypto_x509.Name | None = None
    if csr is not None:
        subject = Subject(csr.normalized_subject, csr.subject_dn, csr.common_name)
        name = csr.csr.subject
    elif renewal is not None:
        subject = Subject(renewal.subject_dn, renewal.subject_dn)
        name = _parsed_or_none(renewal.subject_dn)
    if request.subject_dn:
        given = problems.attempt(x.parse_dn, request.subject_dn, field=_SUBJECT_DN_FIELD)
        if given is not None and name is None:
            name = given  # no CSR to compare with (it is missing, and refused for that)
        elif given is not None and x.normalize_dn(given) != subject.requested_dn:
            problems.add(_SUBJECT_DN_FIELD,
                         f"differs from the subject the certificate will carry ({subject.display_dn or 'empty'}); "
                         "the CA issues the CSR's subject: leave subjectDn out or make it the same DN",
                         request.subject_dn[:256])
    if csr is not None and not csr.subject_dn:
        problems.add("csr", "the CSR has an empty subject; the CA issues the CSR's subject, so put it in the CSR")
    check_subject_variables(request, name, problems)
    return subject


def _parsed_or_none(dn: str) -> crypto_x509.Name | None:
    try:
        return x.parse_dn(dn)
    except InvalidRequest:
        return None


def check_subject_variables(request: EnrollmentInput, name: crypto_x509.Name | None, problems: Violations) -> None:
    """Each ``subjectVariables`` entry must be an attribute, with that value, of the subject the
    certificate will carry (``name``): one it would not carry is refused by name, never dropped."""
    for index, (attr_type, value) in enumerate(request.subject_variables):
        if not attr_type or not value:
            problems.add(f"subjectVariables[{index}]", "type and value are both required")
            continue
        problem = x.attribute_mismatch(name, attr_type, value) if name is not None else None
        if problem is not None:
            problems.add(f"subjectVariables[{index}]", f"{attr_type}: {problem}; the subject comes from the CSR "
                         f"or {_SUBJECT_DN_FIELD}", f"{attr_type[:32]}={value[:64]}")


def subject_alt_names(request: EnrollmentInput, *, csr: x.ParsedCSR | None, ca: ManagedCA,
                      problems: Violations) -> tuple[base.SubjectAltName, ...]:
    """``subjectAltNames`` when given, else the CSR's; each must be a type the CA can carry (the
    connector's optional ``SubjectAltNameTypes``), never silently dropped."""
    sans: tuple[x.SubjectAltNameValue, ...] | None = ()
    if request.subject_alt_names:
        sans = problems.attempt(x.parse_subject_alt_names, request.subject_alt_names, field="subjectAltNames")
    elif csr is not None:  # the CSR's names get exactly the checks of the request's: nothing unvalidated reaches the CA
        sans = problems.attempt(x.parse_subject_alt_names, [(san.type, san.value) for san in csr.san_values],
                                field="csr.subjectAltNames")
    carried = ca.connector.san_types if isinstance(ca.connector, base.SubjectAltNameTypes) else None
    typed: list[base.SubjectAltName] = []
    for index, san in enumerate(sans or ()):
        if carried is not None and san.type not in carried:
            source = f"subjectAltNames[{index}].type" if request.subject_alt_names else "csr"
            problems.add(source, f"the certificates of CA {ca.id} cannot carry {san.type} names")
        else:
            typed.append(base.SubjectAltName(san.type, san.value))
    return tuple(typed)


def requested_validity(request: EnrollmentInput, *, now: dt.datetime, problems: Violations) -> dt.timedelta | None:
    """The lifetime ``validityPeriod`` asks for; ``None`` when it asks for none (absent, blank, or a
    zero duration such as ``PT0M``, which CAGW clients send when no lifetime is configured)."""
    if not request.validity_period.strip() or x.is_zero_duration(request.validity_period):
        return None
    return problems.attempt(x.parse_validity_period, request.validity_period, now=now, field=_VALIDITY_FIELD)


def _days(terms: tuple[int, ...]) -> str:
    return ", ".join(str(t) for t in sorted(terms)) + " days"


def term_days(request: EnrollmentInput, *, profile: ResolvedProfile | None, now: dt.datetime,
              problems: Violations, rounding: str = "exact") -> int:
    """The term to order for ``validityPeriod``, never longer than it asks for: the longest profile
    term within it (refused, listing the terms, when none is), or with ``rounding="up"`` the
    shortest term covering it. No validity asked: the profile's default or first term."""
    if profile is None:
        return 0
    lifetime = requested_validity(request, now=now, problems=problems)
    if lifetime is None:
        if profile.terms:
            return x.choose_term(profile.default_term, profile.terms)
        if profile.default_term:
            return profile.default_term
        problems.add("profileId", f"profile {profile.id} has no term; set gateway.default-term or a term on the "
                     "profile")
        return 0
    if rounding == "up":
        return x.choose_term(x.lifetime_days(lifetime), profile.terms) if profile.terms else x.lifetime_days(lifetime)
    within = x.whole_days_within(lifetime)
    term = x.longest_term_within(within, profile.terms) if profile.terms else (within or None)
    if term is None:
        offered = f"the terms profile {profile.id} offers are {_days(profile.terms)}" if profile.terms \
            else "certificates are issued for whole days"
        problems.add(_VALIDITY_FIELD, f"asks for {within} whole days, shorter than any term this CA issues: "
                     f"{offered}; ask for one of them, or send no validityPeriod for the default",
                     request.validity_period[:64])
        return 0
    return term


def server_key_subject(request: EnrollmentInput, problems: Violations) -> Subject:
    """PKCS12: the subject from ``subjectDn`` and/or ``subjectVariables`` (there is no CSR)."""
    name = server_side.server_key_subject(request.subject_dn, request.subject_variables, problems)
    for index, (attr_type, value) in enumerate(request.subject_variables):
        if not attr_type or not value:
            problems.add(f"subjectVariables[{index}]", "type and value are both required")
    if name is None:
        return Subject()
    display = request.subject_dn or x.dn_strings(name).rfc2253_escaped
    return Subject(x.normalize_dn(name), display, _common_name(name))


def automatic_renewal(request: EnrollmentInput, renewal: RenewalTarget | None, problems: Violations) -> bool | None:
    """``properties.AutomaticRenewal`` (``true``/``false``, a JSON boolean too); without it, a
    renewal or reissue keeps the choice of the order it renews, and any other order has none
    (its profile decides)."""
    raw = request.properties.get(AUTOMATIC_RENEWAL)
    if raw is None:
        return renewal.auto_renew if renewal is not None else None
    text = raw.strip().lower()
    if text not in ("true", "false"):
        problems.add(_AUTOMATIC_RENEWAL_FIELD, "must be true or false", raw[:16])
        return None
    return text == "true"


def order_options(request: EnrollmentInput, *, required: Format, subject: Subject, ca: ManagedCA,
                  profile: ResolvedProfile, renewal: RenewalTarget | None, server_key: str = "",
                  auto_renew: bool | None = None) -> OrderOptions:
    """The order's options: the profile's configured custom fields and external requester, which
    the request's ``customField.<name>`` and ``externalRequester`` properties override."""
    custom_fields: dict[str, str] = {}
    external_requester = ""
    configured = ca.settings.gateway.profile_options.get(profile.id)
    if configured is not None:
        custom_fields.update(configured.custom_fields)
        external_requester = configured.external_requester
    for key, value in request.properties.items():
        if key.startswith(CUSTOM_FIELD_PREFIX):
            custom_fields[key[len(CUSTOM_FIELD_PREFIX):]] = value
        elif key == EXTERNAL_REQUESTER:
            external_requester = value
    return OrderOptions(required_format=required, include_ca=request.include_ca, subject_dn=subject.display_dn,
                        custom_fields=custom_fields, external_requester=external_requester,
                        renewal_of_ca_order=renewal.ca_order_id if renewal is not None else "",
                        reissue_reason=request.reissue_reason if request.reissue else "", server_key=server_key,
                        auto_renew=auto_renew)


def _fingerprint(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(4, "big") + data)
    return digest.hexdigest()


async def prepare_order(request: EnrollmentInput, *, ca: ManagedCA, ledger: Ledger, now: dt.datetime,
                        problems: Violations) -> NewOrder | None:
    """Validate ``request`` for ``ca``, adding every problem to ``problems``; the order to record
    (its ``id`` and ``marker`` are the tracker's to give), or None when there was any problem."""
    order, _ = await prepare(request, ca=ca, ledger=ledger, now=now, problems=problems)
    return order


async def prepare(request: EnrollmentInput, *, ca: ManagedCA, ledger: Ledger, now: dt.datetime,
                  problems: Violations) -> tuple[NewOrder | None, x.ParsedCSR | None]:
    """:func:`prepare_order`, also answering the parsed CSR (whose names the caller policy checks)."""
    properties, refused = text_properties(request.properties, request.property_values)
    problems.items.extend(refused)
    request = dataclasses.replace(request, properties=properties, property_values={})
    required = required_format(request, problems)
    server_key = required == "PKCS12" and ca.settings.gateway.server_side_keys  # else refused as unsupported
    check_request_fields(request, problems)
    if server_key:
        check_server_key_request(request, problems)
    profile = await resolve_profile(request, ca=ca, problems=problems)
    renewal = await renewal_target(request, ca_id=ca.id, ledger=ledger, problems=problems)
    csr = None if server_key else read_csr(request, problems)
    check_key(csr, profile, problems)
    key_spec = server_side.server_key_spec(profile, request.properties, problems) if server_key else None
    subject = (server_key_subject(request, problems) if server_key
               else subject_of(request, csr=csr, renewal=renewal, problems=problems))
    sans = subject_alt_names(request, csr=csr, ca=ca, problems=problems)
    term = term_days(request, profile=profile, now=now, problems=problems,
                     rounding=ca.settings.gateway.validity_rounding)
    auto_renew = automatic_renewal(request, renewal, problems)
    if problems or profile is None:
        return None, csr
    kind = OrderKind.REISSUE if request.reissue else OrderKind.RENEW if request.renewal else OrderKind.ENROLL
    options = order_options(request, required=required, subject=subject, ca=ca, profile=profile, renewal=renewal,
                            server_key=str(key_spec) if key_spec is not None else "", auto_renew=auto_renew)
    renewal_serial = renewal.serial if renewal is not None else None
    # The client is part of the fingerprint: one client's pending order is never another's answer.
    owner = (request.client,) if request.client else ()
    if key_spec is not None:  # the CSR (and so the usual fingerprint) comes later, from a key made for the order
        fingerprint = server_side.server_key_fingerprint(
            ca.id, profile.id, kind.value, str(key_spec), subject.requested_dn, str(term),
            *(f"{san.type}:{san.value}" for san in sans), *owner, request_id=request.request_id)
    else:
        fingerprint = _fingerprint(ca.id, profile.id, kind.value, csr.der if csr is not None else b"",
                                   renewal_serial or "", str(term), *owner)
    return NewOrder(
        id="", marker="", ca_id=ca.id, profile_id=profile.id, ca_profile_id=profile.ca_profile_id, term_days=term,
        csr_pem=csr.pem if csr is not None else "",
        fingerprint=fingerprint,
        requested_dn=subject.requested_dn, common_name=subject.common_name, subject_alt_names=sans, kind=kind,
        request_id=scoped_request_id(request.client, request.request_id) if request.request_id else None,
        renewal_of_serial=renewal_serial, requested_by=request.caller, options=options.to_ledger(),
        client=request.client), csr
