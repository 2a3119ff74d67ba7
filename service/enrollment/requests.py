"""From a caller's enrollment request to a validated order (a :class:`NewOrder` the tracker records).

Everything is checked before anything reaches the CA: the CSR (encoding,
size, signature, key type and size allowed by the profile), the subject DN,
the SANs (types, count, syntax, and what the CA can carry), the profile and
the term of the CA, the renewal target and the idempotency key. Every problem
is reported at once as a field violation named with CAGW's JSON field names.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from service.authorities import ManagedCA
from service.catalog import ResolvedProfile
from service.connectors import base
from service.errors import FieldViolation, InvalidRequest, NotFound, Unimplemented
from service.ledger.base import Ledger, NewOrder, OrderKind

__all__ = ["EnrollmentInput", "FORMATS", "prepare_order"]

FORMATS = ("PEM", "X509")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:~-]{1,128}$")
MAX_PROPERTIES = 64
MAX_PROPERTY_KEY = 128
MAX_PROPERTY_VALUE = 1024
CUSTOM_FIELD_PREFIX = "customField."
EXTERNAL_REQUESTER = "externalRequester"


@dataclass(frozen=True)
class EnrollmentInput:
    """The transport-neutral content of an enrollment request (CAGW field names in comments)."""

    ca_id: str
    profile_id: str  # profileId
    csr: str = ""  # csr
    required_format: str = ""  # requiredFormat.format
    subject_variables: tuple[tuple[str, str], ...] = ()  # subjectVariables[].type/value
    subject_alt_names: tuple[tuple[str, str], ...] = ()  # subjectAltNames[].type/value
    subject_dn: str = ""  # optionalCertificateRequestDetails.subjectDn
    validity_period: str = ""  # optionalCertificateRequestDetails.validityPeriod
    encoded_private_key: bool = False  # optionalCertificateRequestDetails.encodedPrivateKey was sent
    properties: Mapping[str, str] = field(default_factory=dict)
    renewal: bool = False
    include_ca: bool = True
    request_id: str = ""
    caller: str = ""


def _common_name(name: object) -> str:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    assert isinstance(name, x509.Name)
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


def _fingerprint(*parts: str | bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(4, "big") + data)
    return digest.hexdigest()


async def prepare_order(request: EnrollmentInput, *, ca: ManagedCA, ledger: Ledger,
                        now: dt.datetime) -> NewOrder:
    """Validate ``request`` for ``ca``; raise InvalidRequest naming every bad field."""
    from service import x509 as x

    violations: list[FieldViolation] = []

    def bad(field_name: str, description: str, value: str = "") -> None:
        violations.append(FieldViolation(field_name, description, value))

    def collect(exc: InvalidRequest) -> None:
        violations.extend(exc.violations or [FieldViolation("", exc.message)])

    if request.required_format.upper() == "PKCS12":
        raise Unimplemented("requiredFormat PKCS12 needs server-side key generation, which this gateway never "
                            "does: send a CSR and ask for PEM or X509", reason="SERVER_KEYGEN_NOT_OFFERED")
    fmt = request.required_format.upper() or "PEM"
    if fmt not in FORMATS:
        bad("requiredFormat.format", f"unknown format; use one of {', '.join(FORMATS)} (or PKCS12, not offered)",
            request.required_format)
    if request.encoded_private_key:
        bad("optionalCertificateRequestDetails.encodedPrivateKey",
            "private keys are never sent to the gateway; send a CSR made with your own key")
    if request.request_id and not _REQUEST_ID.match(request.request_id):
        bad("requestId", "must be 1-128 characters of letters, digits and . _ : ~ -", request.request_id[:128])
    if len(request.properties) > MAX_PROPERTIES:
        bad("properties", f"at most {MAX_PROPERTIES} properties")
    for key, value in request.properties.items():
        if len(key) > MAX_PROPERTY_KEY or len(value) > MAX_PROPERTY_VALUE:
            bad(f"properties.{key[:MAX_PROPERTY_KEY]}",
                f"keys are at most {MAX_PROPERTY_KEY} and values at most {MAX_PROPERTY_VALUE} characters")

    profile: ResolvedProfile | None = None
    if not request.profile_id:
        bad("profileId", "is required")
    else:
        try:
            profile = await ca.catalog.get(request.profile_id)
        except NotFound:
            bad("profileId", f"CA {ca.id} has no such profile; list them at "
                f"/v1/certificate-authorities/{ca.id}/profiles", request.profile_id[:128])

    # -- renewal target
    kind = OrderKind.ENROLL
    renewal_serial: str | None = None
    renewal_ca_order: str | None = None
    renewed_subject = ""
    if request.renewal:
        kind = OrderKind.RENEW
        raw_serial = request.properties.get("RenewalSerialNumber", "")
        if not raw_serial:
            bad("properties.RenewalSerialNumber", "is required with renewal: true")
        else:
            try:
                renewal_serial = x.format_serial(x.parse_serial(raw_serial, field="properties.RenewalSerialNumber"))
            except InvalidRequest as exc:
                collect(exc)
            if renewal_serial is not None:
                old = await ledger.get_certificate(ca.id, renewal_serial)
                old_order = await ledger.get_order(old.order_id) if old and old.order_id else None
                if old is None or old_order is None or not old_order.ca_order_id:
                    bad("properties.RenewalSerialNumber", f"CA {ca.id} has no certificate issued through this "
                        "gateway with that serial", raw_serial[:64])
                else:
                    renewal_ca_order = old_order.ca_order_id
                    renewed_subject = old.subject_dn

    # -- CSR, subject, SANs
    csr = None
    if request.csr.strip():
        try:
            csr = x.parse_csr(request.csr, field="csr")
        except InvalidRequest as exc:
            collect(exc)
    elif kind is OrderKind.ENROLL:
        bad("csr", "is required (PEM or base64 DER PKCS#10)")
    if csr is not None and profile is not None and profile.key_types:
        try:
            x.check_key_allowed(csr, profile.key_types, field="csr")
        except InvalidRequest as exc:
            collect(exc)

    requested_dn = ""
    display_dn = ""
    common_name = ""
    if request.subject_dn:
        try:
            name = x.parse_dn(request.subject_dn, field="optionalCertificateRequestDetails.subjectDn")
            requested_dn = x.normalize_dn(name)
            display_dn = request.subject_dn
            common_name = _common_name(name)
        except InvalidRequest as exc:
            collect(exc)
    elif csr is not None:
        requested_dn = csr.normalized_subject
        display_dn = csr.subject_dn
        common_name = csr.common_name
    elif renewed_subject:
        requested_dn = display_dn = renewed_subject
    if csr is not None and not csr.subject_dn and not request.subject_dn:
        bad("csr", "the CSR has an empty subject; give a subject or optionalCertificateRequestDetails.subjectDn")
    for index, (attr_type, value) in enumerate(request.subject_variables):
        if not attr_type or not value:
            bad(f"subjectVariables[{index}]", "type and value are both required")

    sans: Sequence[object] = ()
    try:
        if request.subject_alt_names:
            sans = x.parse_subject_alt_names(request.subject_alt_names, field="subjectAltNames")
        elif csr is not None:
            sans = csr.san_values
    except InvalidRequest as exc:
        collect(exc)
    carried_types = ca.connector.san_types if isinstance(ca.connector, base.SubjectAltNameTypes) else None
    typed_sans: list[base.SubjectAltName] = []
    for index, san in enumerate(sans):
        if carried_types is not None and san.type not in carried_types:  # type: ignore[attr-defined]
            source = f"subjectAltNames[{index}].type" if request.subject_alt_names else "csr"
            bad(source, f"the certificates of CA {ca.id} cannot carry {san.type} names")  # type: ignore[attr-defined]
        else:
            typed_sans.append(base.SubjectAltName(san.type, san.value))  # type: ignore[attr-defined]

    # -- term
    term = 0
    if profile is not None:
        requested_days: int | None = None
        if request.validity_period:
            try:
                period = x.parse_validity_period(request.validity_period, now=now,
                                                 field="optionalCertificateRequestDetails.validityPeriod")
                requested_days = None if period is None else x.lifetime_days(period)
            except InvalidRequest as exc:
                collect(exc)
        if profile.terms:
            term = x.choose_term(requested_days if requested_days is not None else profile.default_term,
                                 profile.terms)
        elif requested_days or profile.default_term:
            term = requested_days or profile.default_term or 0
        else:
            bad("profileId", f"profile {profile.id} has no term; set gateway.default-term or a term on the profile")

    if violations:
        raise InvalidRequest.of(violations)
    assert profile is not None

    options: dict[str, str] = {"format": fmt, "include_ca": "true" if request.include_ca else "false",
                               "subject_dn": display_dn}
    profile_options = ca.settings.gateway.profile_options.get(profile.id)
    if profile_options is not None:
        options.update({f"custom-field.{k}": v for k, v in profile_options.custom_fields.items()})
        if profile_options.external_requester:
            options["external-requester"] = profile_options.external_requester
    for key, value in request.properties.items():
        if key.startswith(CUSTOM_FIELD_PREFIX):
            options[f"custom-field.{key[len(CUSTOM_FIELD_PREFIX):]}"] = value
        elif key == EXTERNAL_REQUESTER:
            options["external-requester"] = value

    if renewal_ca_order:
        options["renewal_of_ca_order"] = renewal_ca_order
    csr_der = csr.der if csr is not None else b""
    return NewOrder(
        id="", marker="", ca_id=ca.id, profile_id=profile.id, ca_profile_id=profile.ca_profile_id, term_days=term,
        csr_pem=csr.pem if csr is not None else "",
        fingerprint=_fingerprint(ca.id, profile.id, kind.value, csr_der, renewal_serial or "", str(term)),
        requested_dn=requested_dn, common_name=common_name, subject_alt_names=tuple(typed_sans), kind=kind,
        request_id=request.request_id or None, renewal_of_serial=renewal_serial,
        requested_by=request.caller, options=options)
