"""The behaviour of the simulated SCM: enroll, collect, details, search, revoke, renew, replace.

:class:`SimulatedCertificateManager` takes parsed JSON bodies and query
values, applies SCM's rules and answers with JSON-ready dicts or raises
:class:`~.scm_errors.ScmError`. It knows nothing about HTTP, which keeps
``app.py`` to routing, authentication and faults.

Issuance is lazy: an ``Applied`` order turns ``Issued`` the first time it is
looked at after its due time on the injected clock (or, with
``issue_after_polls``, after that many pending collect answers), so no
background task and no real sleeping is needed.
"""

from __future__ import annotations

import datetime as dt
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from . import scm_errors
from .collect_formats import canonical_format, download_filename, render_collect
from .csr import (
    KeyInfo,
    check_key,
    common_name_of,
    csr_sans,
    merge_sans,
    parse_csr,
    parse_san_values,
    san_from_tag,
    san_to_tag,
    text_to_general_name,
)
from .local_ca import LocalCA
from .scm_errors import ScmError
from .settings import CertType, SimulatorSettings
from .state import Order, OrderBook, OrderStatus
from .views import details_json, format_serial, identity_json, order_certificate, parse_serial

# The serial helpers live in views.py; re-exported for callers that only know the manager.
__all__ = ["Clock", "CollectedFile", "SimulatedCertificateManager", "format_serial", "parse_serial"]

Clock = Callable[[], float]

_REVOCATION_CODES = frozenset({0, 1, 3, 4, 5})
_RENEWABLE = frozenset({OrderStatus.ISSUED, OrderStatus.EXPIRED})
_RENEW_ID_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class CollectedFile:
    """A collect download: the body and its attachment filename."""

    body: bytes
    filename: str


class SimulatedCertificateManager:
    """SCM's SSL and organization operations over an :class:`OrderBook` and a :class:`LocalCA`."""

    def __init__(self, settings: SimulatorSettings, *, ca: LocalCA, book: OrderBook, clock: Clock) -> None:
        self.settings = settings
        self.ca = ca
        self.book = book
        self._clock = clock

    def clock(self) -> float:
        """Now on the injected clock (the call log's timestamps)."""
        return self._clock()

    # -- catalogue -------------------------------------------------------------------------

    def cert_types(self, organization_id: str | None) -> list[dict[str, object]]:
        if organization_id is not None:
            org = _parse_int(organization_id)
            if org is None:
                raise scm_errors.bad_value("organizationId")
            if org not in self.settings.org_ids():
                raise scm_errors.organization_not_found(organization_id, status=400)
        return [t.to_json() for t in self.settings.cert_types]

    def custom_fields(self) -> list[dict[str, object]]:
        return [f.to_json() for f in self.settings.custom_fields]

    def organizations(self) -> list[dict[str, object]]:
        s = self.settings
        return [{"id": s.org_id, "name": s.org_name, "certTypes": ["SSL"], "departments": self._departments()}]

    def organization(self, org_id: str) -> dict[str, object]:
        s = self.settings
        wanted = _parse_int(org_id)
        common: dict[str, object] = {"certTypes": ["SSL"], "sslCertsApiEnabled": True, "clientCertsApiEnabled": False}
        if wanted == s.org_id:
            return {"id": s.org_id, "name": s.org_name, **common, "departments": self._departments()}
        for dept in s.departments:
            if dept.id == wanted:
                return {"id": dept.id, "name": dept.name, "parentName": s.org_name, **common}
        raise scm_errors.organization_not_found(org_id)

    def _departments(self) -> list[dict[str, object]]:
        s = self.settings
        return [{"id": d.id, "name": d.name, "parentName": s.org_name} for d in s.departments]

    # -- enroll ----------------------------------------------------------------------------

    def enroll(self, body: object, *, requester: str) -> dict[str, object]:
        """``POST /ssl/v1/enroll``: validate, record the order, answer ``{sslId, renewId}``."""
        data = _require_object(body)
        org_id = _int_field(data, "orgId", required=True)
        if org_id not in self.settings.org_ids():
            raise scm_errors.unknown_org_id()
        type_id = _int_field(data, "certType", required=True)
        assert org_id is not None and type_id is not None
        cert_type = self.settings.cert_type(type_id)
        if cert_type is None:
            raise scm_errors.unknown_cert_type()
        # Term is optional here: the profile's first term, as clients such as KFP default to.
        term = _int_field(data, "term", required=False) or cert_type.terms[0]
        if term not in cert_type.terms:
            raise scm_errors.invalid_term()
        csr = parse_csr(data.get("csr"))
        key = check_key(csr, cert_type)
        custom_fields = self._custom_fields(data.get("customFields"))
        extra_sans = parse_san_values(data.get("subjAltNames"), field_name="subjAltNames")
        common_name, sans = _names_for(csr, None, extra_sans)
        order = Order(
            ssl_id=self.book.allocate_id(),
            renew_id=_new_renew_id(),
            org_id=org_id,
            cert_type_id=cert_type.id,
            term=term,
            csr=csr.public_bytes(serialization.Encoding.PEM).decode("ascii"),
            common_name=common_name,
            sans=[san_to_tag(n) for n in sans],
            requester=requester,
            status=OrderStatus.APPLIED,
            requested_at=self._clock(),
            comments=_str_field(data, "comments", 1024),
            external_requester=_str_field(data, "externalRequester", 512),
            custom_fields=custom_fields,
        )
        _set_key(order, key)
        self._submit(order)
        self.book.add(order)
        return {"sslId": order.ssl_id, "renewId": order.renew_id}

    def _submit(self, order: Order) -> None:
        """Put a new (or reissued) order in the queue: ``Requested`` or ``Applied``."""
        if self.settings.require_approval:
            order.status = OrderStatus.REQUESTED
            order.issue_due_at = None
        else:
            self._apply(order)

    def _apply(self, order: Order) -> None:
        now = self._clock()
        order.status = OrderStatus.APPLIED
        order.approved_at = now
        order.issue_due_at = now + self.settings.issue_after
        order.pending_polls = 0

    def _custom_fields(self, raw: object) -> list[dict[str, str]]:
        fields: list[dict[str, str]] = []
        if raw is not None:
            if not isinstance(raw, list):
                raise scm_errors.bad_value("customFields")
            for item in raw:
                if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
                    raise scm_errors.bad_value("customFields")
                value = item.get("value", "")
                fields.append({"name": item["name"], "value": value if isinstance(value, str) else str(value)})
        given = {f["name"] for f in fields if f["value"]}
        if any(cf.mandatory and cf.name not in given for cf in self.settings.custom_fields):
            raise scm_errors.missing_custom_field()
        return fields

    # -- state machine ---------------------------------------------------------------------

    def _order(self, ssl_id: str) -> Order:
        number = _parse_int(ssl_id)
        order = self.book.get(number) if number is not None else None
        if order is None:
            raise scm_errors.unknown_ssl_id(ssl_id)
        self._advance(order, collect_poll=False)
        return order

    def _advance(self, order: Order, *, collect_poll: bool) -> None:
        """Move an order along with time (or collect polls): Applied → Issued → Expired."""
        now = self._clock()
        if order.status == OrderStatus.APPLIED:
            polls = self.settings.issue_after_polls
            if polls is not None:
                if not collect_poll:
                    return
                if order.pending_polls < polls:
                    order.pending_polls += 1
                    self.book.record(order)
                    return
            elif order.issue_due_at is None or now < order.issue_due_at:
                return
            self._issue(order)
            self.book.record(order)
        elif order.status == OrderStatus.ISSUED and order.expires_at is not None:
            if now >= order.expires_at:
                order.status = OrderStatus.EXPIRED
                self.book.record(order)

    def _issue(self, order: Order) -> None:
        csr = x509.load_pem_x509_csr(order.csr.encode("ascii"))
        public_key = csr.public_key()
        if not isinstance(public_key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
            raise scm_errors.unsupported_algorithm()  # check_key admitted only RSA and EC
        if self.settings.copy_csr_subject and len(csr.subject) > 0:
            subject = csr.subject
        else:
            subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, order.common_name[:64])])
        now = self._clock()
        not_before = dt.datetime.fromtimestamp(int(now), dt.UTC)
        certificate = self.ca.issue(
            public_key=public_key,
            subject=subject,
            sans=[san_from_tag(t) for t in order.sans],
            not_before=not_before,
            not_after=not_before + dt.timedelta(days=order.term),
            serial=_new_serial(),
        )
        order.certificate = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
        order.serial_number = certificate.serial_number
        order.issued_at = now
        order.expires_at = certificate.not_valid_after_utc.timestamp()
        order.status = OrderStatus.ISSUED

    # -- collect, details, search ----------------------------------------------------------

    def collect(self, ssl_id: str, fmt: str) -> CollectedFile:
        """``GET /ssl/v1/collect/{id}``: the file, or the pending / revoked / format errors."""
        number = _parse_int(ssl_id)
        order = self.book.get(number) if number is not None else None
        if order is None:
            raise scm_errors.unknown_ssl_id(ssl_id)
        canonical = canonical_format(fmt)
        if canonical is None:
            raise scm_errors.bad_format(fmt)
        self._advance(order, collect_poll=True)
        if order.status == OrderStatus.REVOKED:
            raise scm_errors.revoked_cannot_download()
        if order.status in (OrderStatus.REQUESTED, OrderStatus.APPLIED):
            raise ScmError(400, self.settings.pending_code, self.settings.pending_description)
        if order.certificate is None:
            raise scm_errors.state_not_issued(order.status.value)
        body = render_collect(canonical, order_certificate(order), [self.ca.certificate])
        return CollectedFile(body, download_filename(order.common_name, canonical))

    def details(self, ssl_id: str) -> dict[str, object]:
        """``GET /ssl/v1/{id}``: the details object, empty fields left out."""
        order = self._order(ssl_id)
        return details_json(order, cert_type=self.settings.cert_type(order.cert_type_id), ca=self.ca)

    def search(self, query: Mapping[str, str]) -> tuple[list[dict[str, object]], int]:
        """``GET /ssl/v1``: one page of ``SSLIdentity`` objects and the total match count."""
        size = _query_int(query, "size", default=self.settings.list_max_size)
        position = _query_int(query, "position", default=0)
        size = min(size, self.settings.list_max_size)
        predicates = self._filters(query)
        matches: list[Order] = []
        for order in sorted(self.book, key=lambda o: o.ssl_id):
            self._advance(order, collect_poll=False)
            if all(p(order) for p in predicates):
                matches.append(order)
        page = matches[position : position + size]
        return [identity_json(o) for o in page], len(matches)

    def _filters(self, query: Mapping[str, str]) -> list[Callable[[Order], bool]]:
        predicates: list[Callable[[Order], bool]] = []

        def text(name: str, getter: Callable[[Order], str]) -> None:
            if name in query:
                wanted = query[name].strip().lower()
                predicates.append(lambda o: getter(o).lower() == wanted)

        def number(name: str, getter: Callable[[Order], int]) -> None:
            if name in query:
                wanted = _parse_int(query[name])
                if wanted is None:
                    raise scm_errors.bad_value(name)
                predicates.append(lambda o: getter(o) == wanted)

        text("commonName", lambda o: o.common_name)
        text("status", lambda o: o.status.value)
        text("requester", lambda o: o.requester)
        text("externalRequester", lambda o: o.external_requester)
        number("orgId", lambda o: o.org_id)
        number("sslTypeId", lambda o: o.cert_type_id)
        if "subjectAlternativeName" in query:
            san = query["subjectAlternativeName"].strip().lower()
            predicates.append(lambda o: any(t.partition(":")[2].lower() == san for t in o.sans))
        if "serialNumber" in query:
            serial = parse_serial(query["serialNumber"])
            if serial is None:
                raise scm_errors.bad_value("serialNumber")
            predicates.append(lambda o: o.serial_number == serial)
        return predicates

    # -- revoke ----------------------------------------------------------------------------

    def revoke(self, ssl_id: str, body: object) -> None:
        """``POST /ssl/v1/revoke/{id}`` (204)."""
        order = self._order(ssl_id)
        self._revoke(order, body)

    def revoke_by_serial(self, serial: str, body: object) -> None:
        """``POST /ssl/v1/revoke/serial/{serial}`` (204)."""
        number = parse_serial(serial)
        order = self.book.by_serial(number) if number is not None else None
        replaced = self.book.by_previous_serial(number) if number is not None and order is None else None
        if replaced is not None and number is not None:
            # A certificate its order was issued again past (replace): revoked on its own, the order stays.
            _require_object(body)
            if number in replaced.revoked_previous:
                raise scm_errors.already_revoked()
            replaced.revoked_previous.append(number)
            self.book.record(replaced)
            return
        if order is None:
            raise scm_errors.serial_not_found(serial)
        self._advance(order, collect_poll=False)
        self._revoke(order, body)

    def _revoke(self, order: Order, body: object) -> None:
        data = _require_object(body)
        reason = data.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise scm_errors.missing_field("reason")
        if len(reason) > 512:
            raise scm_errors.bad_value("reason")
        # The DOC types reasonCode as a number, the OAS as a string enum: accept both.
        raw_code = data.get("reasonCode")
        code = None if raw_code is None else _parse_int(raw_code)
        if raw_code is not None and (code is None or code not in _REVOCATION_CODES):
            raise scm_errors.bad_value("reasonCode")
        if order.status == OrderStatus.REVOKED:
            raise scm_errors.already_revoked()
        if order.status not in (OrderStatus.ISSUED, OrderStatus.EXPIRED):
            raise scm_errors.not_issued_for_revoke()
        order.status = OrderStatus.REVOKED
        order.revoked_at = self._clock()
        order.revocation_reason_code = code if code is not None else 0
        order.revocation_reason = reason
        self.book.record(order)

    # -- renew, replace, approve, decline -------------------------------------------------

    def renew_by_id(self, ssl_id: str, body: object) -> dict[str, object]:
        """``POST /ssl/v1/renewById/{id}``: a new order; answers ``{"sslId": new}``."""
        new = self._renew(self._order(ssl_id), body)
        return {"sslId": new.ssl_id}

    def renew(self, renew_id: str, body: object) -> None:
        """``POST /ssl/v1/renew/{renewId}`` (204)."""
        order = self.book.by_renew_id(renew_id)
        if order is None:
            raise scm_errors.serial_not_found(f"renewId {renew_id}")
        self._advance(order, collect_poll=False)
        self._renew(order, body)

    def _renew(self, old: Order, body: object) -> Order:
        # KFP and PCM post an empty JSON string; an empty body or {} means "reuse the CSR".
        data = {} if body is None or body == "" else _require_object(body)
        if old.status not in _RENEWABLE:
            raise scm_errors.renew_wrong_state(old.status.value)
        cert_type = self._cert_type_of(old)
        csr_pem, common_name, sans = old.csr, old.common_name, list(old.sans)
        key_fields = (old.key_algorithm, old.key_size, old.key_type)
        if data.get("csr") is not None:
            csr = parse_csr(data["csr"])
            key = check_key(csr, cert_type)
            extra = [san_from_tag(t) for t in old.sans]
            common_name, names = _names_for(csr, None, extra)
            csr_pem = csr.public_bytes(serialization.Encoding.PEM).decode("ascii")
            sans = [san_to_tag(n) for n in names]
            key_fields = (key.algorithm, key.size, key.label)
        new = Order(
            ssl_id=self.book.allocate_id(),
            renew_id=_new_renew_id(),
            org_id=old.org_id,
            cert_type_id=old.cert_type_id,
            term=old.term,
            csr=csr_pem,
            common_name=common_name,
            sans=sans,
            requester=old.requester,
            status=OrderStatus.APPLIED,
            requested_at=self._clock(),
            comments=old.comments,
            external_requester=old.external_requester,
            custom_fields=[dict(f) for f in old.custom_fields],
            key_algorithm=key_fields[0],
            key_size=key_fields[1],
            key_type=key_fields[2],
            renewed_from=old.ssl_id,
        )
        self._submit(new)
        old.renewed = True
        old.renewed_at = self._clock()
        self.book.record(old)
        self.book.add(new)
        return new

    def replace(self, ssl_id: str, body: object) -> None:
        """``POST /ssl/v1/replace/{id}`` (204): same ``sslId``, new CSR, issued again."""
        order = self._order(ssl_id)
        data = _require_object(body)
        if data.get("csr") is None:
            raise scm_errors.missing_field("csr")
        reason = data.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise scm_errors.missing_field("reason")
        if order.status != OrderStatus.ISSUED:
            raise scm_errors.state_not_issued(order.status.value)
        csr = parse_csr(data["csr"])
        key = check_key(csr, self._cert_type_of(order))
        cn_override = data.get("commonName")
        if cn_override is not None and (not isinstance(cn_override, str) or not 1 <= len(cn_override) <= 64):
            raise scm_errors.bad_value("commonName")
        extra = parse_san_values(data.get("subjectAlternativeNames"), field_name="subjectAlternativeNames")
        common_name, sans = _names_for(csr, cn_override, extra)
        if order.serial_number is not None:
            order.previous_serials.append(order.serial_number)
        order.csr = csr.public_bytes(serialization.Encoding.PEM).decode("ascii")
        order.common_name = common_name
        order.sans = [san_to_tag(n) for n in sans]
        _set_key(order, key)
        order.certificate = None
        order.serial_number = None
        order.issued_at = None
        order.expires_at = None
        order.replaced_at = self._clock()
        self._submit(order)
        self.book.record(order)

    def issue_now(self, ssl_ids: list[int]) -> int:
        """Issue these ``Applied`` orders now, whatever ``issue_after`` says (a test or benchmark
        control, ``POST /__simulator/issue``); returns how many were issued."""
        issued = 0
        for ssl_id in ssl_ids:
            order = self.book.get(ssl_id)
            if order is None or order.status != OrderStatus.APPLIED:
                continue
            self._issue(order)
            self.book.record(order)
            issued += 1
        return issued

    def approve(self, ssl_id: str, body: object) -> None:
        """``POST /ssl/v1/approve/{id}`` (204): ``Requested`` → ``Applied``."""
        order = self._order(ssl_id)
        _optional_message(body)
        if order.status != OrderStatus.REQUESTED:
            raise scm_errors.wrong_state_to_approve(order.status.value)
        self._apply(order)
        self.book.record(order)

    def decline(self, ssl_id: str, body: object) -> None:
        """``POST /ssl/v1/decline/{id}`` (204): ``Requested`` → ``Declined``."""
        order = self._order(ssl_id)
        _optional_message(body)
        if order.status != OrderStatus.REQUESTED:
            raise scm_errors.wrong_state_to_approve(order.status.value, action="declined")
        order.status = OrderStatus.DECLINED
        order.declined_at = self._clock()
        self.book.record(order)

    def _cert_type_of(self, order: Order) -> CertType:
        cert_type = self.settings.cert_type(order.cert_type_id)
        if cert_type is None:  # the profile was removed from the settings after a restart
            raise scm_errors.unknown_cert_type()
        return cert_type


# -- helpers -------------------------------------------------------------------------------


def _names_for(
    csr: x509.CertificateSigningRequest, cn_override: str | None, extra: list[x509.GeneralName]
) -> tuple[str, list[x509.GeneralName]]:
    """Common name and SAN list of a request: CN first (as public CAs do), then given, then CSR SANs."""
    from_csr = csr_sans(csr)
    common_name = cn_override or common_name_of(csr.subject)
    if not common_name:
        first_dns = next((n for n in [*extra, *from_csr] if isinstance(n, x509.DNSName)), None)
        if first_dns is None:
            raise scm_errors.missing_field("commonName")
        common_name = first_dns.value
    cn_name = text_to_general_name(common_name)
    head = [cn_name] if isinstance(cn_name, (x509.DNSName, x509.IPAddress)) else []
    return common_name, merge_sans(head, extra, from_csr)


def _set_key(order: Order, key: KeyInfo) -> None:
    order.key_algorithm = key.algorithm
    order.key_size = key.size
    order.key_type = key.label


def _new_renew_id() -> str:
    return "".join(secrets.choice(_RENEW_ID_ALPHABET) for _ in range(20))


def _new_serial() -> int:
    # 16 bytes like Sectigo's serials; the top bit clear keeps the DER integer positive and 16 bytes long.
    return secrets.randbits(127) | (1 << 126)


def _parse_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _require_object(body: object) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise scm_errors.malformed_body()
    return body


def _int_field(data: Mapping[str, Any], name: str, *, required: bool) -> int | None:
    raw = data.get(name)
    if raw is None or raw == "":
        if required:
            raise scm_errors.missing_field(name)
        return None
    value = _parse_int(raw)
    if value is None or value < 1:
        raise scm_errors.bad_value(name)
    return value


def _str_field(data: Mapping[str, Any], name: str, limit: int) -> str:
    raw = data.get(name)
    if raw is None:
        return ""
    if not isinstance(raw, str) or len(raw) > limit:
        raise scm_errors.bad_value(name)
    return raw


def _query_int(query: Mapping[str, str], name: str, *, default: int) -> int:
    if name not in query:
        return default
    value = _parse_int(query[name])
    if value is None or value < 0:
        raise scm_errors.bad_value(name)
    return value


def _optional_message(body: object) -> None:
    data = {} if body is None or body == "" else _require_object(body)
    message = data.get("message")
    if message is not None and (not isinstance(message, str) or len(message) > 512):
        raise scm_errors.bad_value("message")

