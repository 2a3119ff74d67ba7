"""Certificates by serial number and by subject: lookup, revocation and the events feed.

This is the core behind ``CertificateService`` and ``SubjectService``; the
servicers in ``api/`` only translate protos to the values here and back.

* **Lookup.** A serial is looked up in the ledger first. A certificate the
  gateway did not order (issued through the Sectigo portal, or before the
  gateway existed) is searched at the CA (``list`` by serial → ``details`` →
  ``collect``) and stored in the ledger, so the next lookup, the subject index
  and the events feed know it.
* **Revocation** is idempotent: a certificate the ledger (or the CA) already
  knows as revoked answers success without calling the CA. Every attempt — done,
  refused by the gateway, or failed at the CA — is appended to the audit trail
  with the caller's identity (DESIGN decision 14).
* **Hold, unhold, reactivate** are refused explicitly: Sectigo has no
  certificate hold (DESIGN decision 16).
* **Events feed.** Issued and revoked events, paged with an opaque cursor
  (see :class:`EventCursor`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import json
import logging
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from cryptography import x509

from service.authorities import ManagedCA
from service.connectors.base import (
    REASON_CERTIFICATE_REVOKED,
    REASON_NOT_FOUND,
    CollectRequest,
    DetailsRequest,
    ListRequest,
    OrderDetails,
    OrderStatus,
    RevokeReason,
    RevokeRequest,
)
from service.errors import (
    CagwError,
    CARejected,
    ConnectorError,
    FailedPrecondition,
    FieldViolation,
    InvalidRequest,
    NotFound,
    Unimplemented,
)
from service.ledger.base import (
    AuditEntry,
    CertificateEventRecord,
    CertificateRecord,
    Ledger,
    OrderState,
)
from service.x509 import format_serial, normalize_dn, parse_serial

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_COMMENT_LENGTH",
    "MAX_PAGE_SIZE",
    "STATUS_EXPIRED",
    "STATUS_NORMAL",
    "STATUS_PENDING",
    "STATUS_REVOKED",
    "ActionInput",
    "CertificateManager",
    "EventCursor",
    "EventsPage",
    "RevokeOrder",
    "RevokeOutcome",
    "SubjectItem",
    "SubjectRevokeOutcome",
    "certificate_status",
    "parse_iso_datetime",
    "parse_revoke_action",
]

log = logging.getLogger(__name__)

# How often GetCertificate asks the CA whether a certificate it knows as normal was revoked there.
STATUS_CHECK_INTERVAL = dt.timedelta(minutes=5)
MAX_STATUS_CHECKS_REMEMBERED = 100_000

Clock = Callable[[], dt.datetime]

# CAGW status words of a certificate; PENDING is a subject entry whose order has no certificate yet.
STATUS_NORMAL = "normal"
STATUS_REVOKED = "revoked"
STATUS_EXPIRED = "expired"
STATUS_PENDING = "PENDING"

REVOKE_ACTION = "RevokeAction"
# CAGW action types Sectigo cannot serve (DESIGN decision 16), with the audit word for each.
_HOLD_ACTIONS = {"HoldAction": "hold", "UnholdAction": "unhold", "ReactivateAction": "reactivate"}
MAX_COMMENT_LENGTH = 512  # Sectigo's limit for a revocation reason text

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500  # one page is at most this many events, whatever the caller prefers
_CA_LIST_PAGE = 10  # a serial matches one order; a few more cover a reissued order's history

_PENDING_STATES = frozenset({OrderState.RECEIVED, OrderState.SUBMITTED, OrderState.COLLECTING})


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def certificate_status(record: CertificateRecord, now: dt.datetime) -> str:
    """``revoked`` wins over ``expired``; ``expired`` once ``not_after`` has passed."""
    if record.status == STATUS_REVOKED:
        return STATUS_REVOKED
    if record.not_after < now:
        return STATUS_EXPIRED
    return STATUS_NORMAL


def parse_iso_datetime(text: str, *, field: str) -> dt.datetime:
    """An ISO 8601 date or date-time (``Z`` or an offset; none means UTC), as aware UTC."""
    try:
        parsed = dt.datetime.fromisoformat(text.strip())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.timezone.utc)
        # Dates at the calendar's edges overflow when moved to UTC: a client error, not a 500.
        return parsed.astimezone(dt.timezone.utc)
    except (ValueError, OverflowError):
        raise InvalidRequest.of([FieldViolation(
            field, "expected an ISO 8601 date-time like 2024-03-05T22:43:23.429Z", text[:100])]) from None


# ---------------------------------------------------------------- actions


@dataclass(frozen=True)
class ActionInput:
    """A CAGW action as the caller sent it (strings unchecked): what the servicers hand over."""

    type: str
    reason: str = ""
    comment: str = ""
    compromise_date: str = ""
    force: bool = False


@dataclass(frozen=True)
class RevokeOrder:
    """A validated ``RevokeAction``."""

    reason: RevokeReason
    comment: str = ""
    compromise_date: str = ""  # echoed as the caller wrote it (validated ISO 8601)
    force: bool = False

    def audit_detail(self) -> str:
        detail = f"reason={self.reason.cagw_name}"
        if self.compromise_date:
            detail += f"; compromiseDate={self.compromise_date}"
        if self.comment:
            detail += f"; comment={self.comment}"
        return detail


def _audit_word(action_type: str) -> str:
    if action_type == REVOKE_ACTION:
        return "revoke"
    return _HOLD_ACTIONS.get(action_type, "action")


def parse_revoke_action(action: ActionInput, *, field: str = "action") -> RevokeOrder:
    """Check a CAGW action; only ``RevokeAction`` can be served.

    Hold, unhold and reactivate raise :class:`Unimplemented` (Sectigo has no
    certificate hold); any other type, an unknown reason, a comment longer
    than 512 characters or a compromise date that is not ISO 8601 raise
    :class:`InvalidRequest` naming ``action.type``, ``action.reason``,
    ``action.comment`` or ``action.compromiseDate``. An empty reason means
    ``unspecified``.
    """
    if action.type in _HOLD_ACTIONS:
        raise Unimplemented(f"{action.type} is not available: Sectigo has no certificate hold, so certificates "
                            "can only be revoked (RevokeAction)", metadata={"action": action.type})
    if action.type != REVOKE_ACTION:
        expected = ", ".join((REVOKE_ACTION, *_HOLD_ACTIONS))
        raise InvalidRequest.of([FieldViolation(
            f"{field}.type", f"unknown action type {action.type!r}; expected one of {expected}"
            if action.type else f"action type is missing; expected one of {expected}", action.type[:100])])
    violations: list[FieldViolation] = []
    reason = RevokeReason.UNSPECIFIED
    if action.reason.strip():
        try:
            reason = RevokeReason.from_name(action.reason)
        except ValueError:
            names = ", ".join(r.cagw_name for r in RevokeReason)
            violations.append(FieldViolation(f"{field}.reason", f"unknown revocation reason; expected one of {names}",
                                             action.reason[:100]))
    if len(action.comment) > MAX_COMMENT_LENGTH:
        violations.append(FieldViolation(f"{field}.comment",
                                         f"comment is {len(action.comment)} characters long; "
                                         f"at most {MAX_COMMENT_LENGTH} are allowed"))
    compromise_date = action.compromise_date.strip()
    if compromise_date:
        try:
            parse_iso_datetime(compromise_date, field=f"{field}.compromiseDate")
        except InvalidRequest as exc:
            violations.extend(exc.violations)
    if violations:
        raise InvalidRequest.of(violations)
    return RevokeOrder(reason=reason, comment=action.comment.strip(), compromise_date=compromise_date,
                       force=action.force)


@dataclass(frozen=True)
class RevokeOutcome:
    serial_number: str  # canonical hex
    already_revoked: bool  # nothing was sent to the CA (or the CA said it already was)
    certificate: CertificateRecord | None  # None: revoked at the CA, which no longer serves its certificate


@dataclass(frozen=True)
class SubjectItem:
    """One certificate (or pending order) of a subject."""

    status: str  # normal | revoked | expired | PENDING
    order_id: str | None
    certificate: CertificateRecord | None
    created_at: dt.datetime


@dataclass(frozen=True)
class SubjectRevokeOutcome:
    dn: str  # normalised
    revoked: tuple[str, ...]  # serials revoked by this call
    already_revoked: tuple[str, ...]
    pending_orders: tuple[str, ...]  # orders without a certificate yet: nothing to revoke


# ---------------------------------------------------------------- events feed


@dataclass(frozen=True)
class EventCursor:
    """Where the next page of the events feed starts.

    On the wire it is url-safe base64 (no padding) of a small JSON object
    ``{"after_id": 12, "since": "2024-01-01T00:00:00+00:00", "offset": 50, "limit": 50}``:
    the last event id already returned, the ``startDate`` of the first page,
    how many events came before, and the page size in use (kept when a caller
    sends only the cursor, as CAGW clients do). It is opaque to callers; a
    cursor that does not decode to exactly that shape is refused. It is not
    signed: it only says how far a caller has read in a feed it may read anyway.
    """

    after_id: int = 0
    since: dt.datetime | None = None
    offset: int = 0
    limit: int = DEFAULT_PAGE_SIZE

    def encode(self) -> str:
        document = {"after_id": self.after_id, "since": self.since.isoformat() if self.since else None,
                    "offset": self.offset, "limit": self.limit}
        raw = json.dumps(document, separators=(",", ":")).encode("ascii")
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, text: str, *, field: str = "nextPageIndex") -> EventCursor:
        def bad(why: str) -> InvalidRequest:
            return InvalidRequest.of([FieldViolation(field, f"not a page index this gateway issued ({why}); "
                                                            "pass nextPageIndex back unchanged", text[:100])])

        token = text.strip()
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            document = json.loads(raw)
        except (binascii.Error, ValueError):
            raise bad("does not decode") from None
        if not isinstance(document, dict) or set(document) != {"after_id", "since", "offset", "limit"}:
            raise bad("unexpected content")
        after_id, since, offset, limit = (document[key] for key in ("after_id", "since", "offset", "limit"))
        if not _natural(after_id) or not _natural(offset):
            raise bad("bad position")
        if not _natural(limit) or not 1 <= limit <= MAX_PAGE_SIZE:
            raise bad("bad page size")
        if since is None:
            return cls(after_id=after_id, offset=offset, limit=limit)
        if not isinstance(since, str):
            raise bad("bad start date")
        try:
            moment = dt.datetime.fromisoformat(since).astimezone(dt.timezone.utc)
        except (ValueError, OverflowError):
            raise bad("bad start date") from None
        if dt.datetime.fromisoformat(since).tzinfo is None:
            raise bad("bad start date")
        return cls(after_id=after_id, since=moment, offset=offset, limit=limit)


def _natural(value: object) -> bool:
    # SQLite integers are signed 64-bit: a larger position is not a cursor this gateway wrote.
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


@dataclass(frozen=True)
class EventsPage:
    events: tuple[tuple[CertificateEventRecord, CertificateRecord | None], ...]  # certificate when asked for
    next_cursor: EventCursor  # always set: a feed reader resumes from it later, even after the last page
    more: bool
    total: int
    offset: int
    limit: int


# ---------------------------------------------------------------- the manager


class CertificateManager:
    """Lookup, revocation, subjects and the events feed over the ledger and the CAs' connectors."""

    def __init__(self, ledger: Ledger, *, clock: Clock = _utcnow,
                 status_check_interval: dt.timedelta = STATUS_CHECK_INTERVAL) -> None:
        self._ledger = ledger
        self._clock = clock
        self._status_check_interval = status_check_interval
        self._status_checked: dict[tuple[str, str], dt.datetime] = {}
        # One revocation at a time per certificate, so concurrent requests do not both reach the CA.
        self._locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = weakref.WeakValueDictionary()

    def now(self) -> dt.datetime:
        return self._clock()

    # -- lookup

    async def find(self, ca: ManagedCA, serial_text: str, *, field: str = "serialNumber") -> CertificateRecord:
        """The certificate with this serial (any hex form), from the ledger or else from the CA.

        Raises :class:`NotFound` (reason ``CERTIFICATE_NOT_FOUND``) when neither knows it.
        """
        serial = parse_serial(serial_text, field=field)
        record = await self._ledger.get_certificate(ca.id, format_serial(serial))
        if record is not None:
            return await self._refresh_status(ca, record)
        found, _ = await self._lookup_at_ca(ca, serial, tolerate_revoked=False)
        assert found is not None  # tolerate_revoked=False raises instead
        return found

    async def _refresh_status(self, ca: ManagedCA, record: CertificateRecord) -> CertificateRecord:
        """Keep the status current: a certificate revoked in Sectigo directly (not through the
        gateway) shows as revoked. Asked at most once per interval per certificate; when the CA
        cannot answer, the ledger's word stands."""
        if record.status == STATUS_REVOKED or record.order_id is None:
            return record
        key = (ca.id, record.serial_number)
        now = self._clock()
        checked = self._status_checked.get(key)
        if checked is not None and now - checked < self._status_check_interval:
            return record
        order = await self._ledger.get_order(record.order_id)
        if order is None or not order.ca_order_id:
            return record
        try:
            details = await ca.connector.details(DetailsRequest(order_id=order.ca_order_id))
        except CagwError as exc:
            log.debug("CA %s: status of %s not refreshed: %s", ca.id, record.serial_number, exc.message)
            return record
        if len(self._status_checked) >= MAX_STATUS_CHECKS_REMEMBERED:
            self._status_checked.clear()  # a bound on memory; at worst some certificates are asked again
        self._status_checked[key] = now
        if details.status is not OrderStatus.REVOKED:
            return record
        updated = await self._mark_revoked_at_ca(ca, record.serial_number, details,
                                                 comment="revoked at the CA, outside the gateway")
        return updated or record

    async def _mark_revoked_at_ca(self, ca: ManagedCA, hex_serial: str, details: OrderDetails, *,
                                  comment: str) -> CertificateRecord | None:
        """Record a revocation the CA reports (it does not say why: ``unspecified``)."""
        when = (dt.datetime.combine(details.revoked, dt.time(), dt.timezone.utc) if details.revoked is not None
                else self._clock())
        return await self._ledger.mark_revoked(ca.id, hex_serial, reason=RevokeReason.UNSPECIFIED.cagw_name,
                                               comment=comment, when=when)

    async def _lookup_at_ca(self, ca: ManagedCA, serial: int, *,
                            tolerate_revoked: bool) -> tuple[CertificateRecord | None, OrderDetails]:
        """Find a certificate the gateway did not order, store it, and return it with its CA order.

        With ``tolerate_revoked`` a certificate the CA reports revoked but will
        no longer hand out comes back as ``(None, details)`` instead of the CA's refusal.
        """
        hex_serial = format_serial(serial)
        listing = await ca.connector.list(ListRequest(serial_number=serial, size=_CA_LIST_PAGE))
        candidates = [item for item in listing.items if item.serial_number in (None, serial)]
        for item in candidates:
            try:
                details = await ca.connector.details(DetailsRequest(order_id=item.order_id))
            except CARejected as exc:
                if exc.reason == REASON_NOT_FOUND:
                    continue  # gone between the list and now
                raise
            if details.serial_number not in (None, serial):
                continue
            try:
                return await self._collect_and_store(ca, serial, details), details
            except NotFound:
                continue  # this order does not (or no longer) serve the serial
            except CARejected as exc:
                # Sectigo does not hand out a revoked certificate; a revocation only needs to know it is revoked.
                if tolerate_revoked and exc.reason == REASON_CERTIFICATE_REVOKED:
                    return None, details
                raise
        raise NotFound(f"CA {ca.id}: no certificate with serial number {hex_serial} (neither in the gateway's "
                       "ledger nor at the CA)", reason="CERTIFICATE_NOT_FOUND",
                       metadata={"ca_id": ca.id, "serial_number": hex_serial})

    async def _collect_and_store(self, ca: ManagedCA, serial: int, details: OrderDetails) -> CertificateRecord:
        hex_serial = format_serial(serial)
        result = await ca.connector.collect(CollectRequest(order_id=details.order_id))
        issued = result.issued
        certificate = x509.load_der_x509_certificate(issued.certificate_der) if issued is not None else None
        if issued is None or certificate is None or certificate.serial_number != serial:
            # The order exists but its certificate is not (or no longer) this serial.
            raise NotFound(f"CA {ca.id}: order {details.order_id} does not serve a certificate with serial number "
                           f"{hex_serial}", reason="CERTIFICATE_NOT_FOUND",
                           metadata={"ca_id": ca.id, "serial_number": hex_serial})
        subject = normalize_dn(certificate.subject)
        record = CertificateRecord(
            serial_number=hex_serial, ca_id=ca.id, order_id=None, certificate_der=issued.certificate_der,
            chain_der=issued.chain_der, subject_dn=subject, issuer_dn=normalize_dn(certificate.issuer),
            not_before=certificate.not_valid_before_utc, not_after=certificate.not_valid_after_utc,
            issued_at=certificate.not_valid_before_utc)
        await self._ledger.record_issued(None, record, subject_dns=[subject])
        log.info("CA %s: stored certificate %s found at the CA (order %s)", ca.id, hex_serial, details.order_id)
        if details.status is OrderStatus.REVOKED:
            record = await self._mark_revoked_at_ca(ca, hex_serial, details, comment="revoked at the CA") or record
        stored = await self._ledger.get_certificate(ca.id, hex_serial)
        return stored or record

    # -- revocation

    async def revoke(self, ca: ManagedCA, serial_text: str, action: ActionInput, *, actor: str) -> tuple[
            RevokeOrder, RevokeOutcome]:
        """Perform a certificate action (only revocation is possible) and audit it."""
        target = serial_text.strip()[:64]
        word = _audit_word(action.type)
        try:
            order = parse_revoke_action(action)
            serial = parse_serial(serial_text)
        except CagwError as exc:
            await self._audit(ca, actor, word, target, "refused", exc.message)
            raise
        outcome = await self._revoke_audited(ca, serial, order, actor=actor)
        return order, outcome

    async def _revoke_audited(self, ca: ManagedCA, serial: int, order: RevokeOrder, *, actor: str) -> RevokeOutcome:
        target = format_serial(serial)
        try:
            async with self._serial_lock(ca.id, target):
                outcome = await self._revoke_one(ca, serial, order)
        except ConnectorError as exc:
            await self._audit(ca, actor, "revoke", target, "failed", f"{order.audit_detail()}; {exc.message}")
            raise
        except CagwError as exc:
            await self._audit(ca, actor, "revoke", target, "refused", f"{order.audit_detail()}; {exc.message}")
            raise
        except Exception:
            await self._audit(ca, actor, "revoke", target, "failed", f"{order.audit_detail()}; internal error")
            raise
        note = "; already revoked" if outcome.already_revoked else ""
        await self._audit(ca, actor, "revoke", target, "ok", order.audit_detail() + note)
        return outcome

    async def _revoke_one(self, ca: ManagedCA, serial: int, order: RevokeOrder) -> RevokeOutcome:
        hex_serial = format_serial(serial)
        record = await self._ledger.get_certificate(ca.id, hex_serial)
        ca_order_id = ""
        if record is None:
            record, details = await self._lookup_at_ca(ca, serial, tolerate_revoked=True)
            ca_order_id = details.order_id
            if record is None or details.status is OrderStatus.REVOKED:
                return RevokeOutcome(hex_serial, already_revoked=True, certificate=record)
        elif record.order_id is not None:
            known = await self._ledger.get_order(record.order_id)
            ca_order_id = (known.ca_order_id or "") if known is not None else ""
        if record.status == STATUS_REVOKED:
            return RevokeOutcome(hex_serial, already_revoked=True, certificate=record)
        already = False
        try:
            await ca.connector.revoke(RevokeRequest(reason=order.reason, comment=order.comment,
                                                    order_id=ca_order_id, serial_number=serial))
        except CARejected as exc:
            if exc.reason != REASON_CERTIFICATE_REVOKED:
                raise
            already = True  # revoked at the CA behind the ledger's back: record it, and succeed
        compromised = (parse_iso_datetime(order.compromise_date, field="action.compromiseDate")
                       if order.compromise_date else None)
        marked = await self._ledger.mark_revoked(ca.id, hex_serial, reason=order.reason.cagw_name,
                                                 comment=order.comment, when=self._clock(),
                                                 compromise_date=compromised)
        log.info("CA %s: certificate %s revoked (%s)", ca.id, hex_serial, order.reason.cagw_name)
        return RevokeOutcome(hex_serial, already_revoked=already, certificate=marked or record)

    @asynccontextmanager
    async def _serial_lock(self, ca_id: str, serial: str) -> AsyncIterator[None]:
        key = (ca_id, serial)
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        async with lock:
            yield

    async def _audit(self, ca: ManagedCA, actor: str, action: str, target: str, outcome: str, detail: str) -> None:
        await self._ledger.append_audit(AuditEntry(time=self._clock(), ca_id=ca.id, actor=actor, action=action,
                                                   target=target, outcome=outcome, detail=detail[:1024]))

    # -- subjects

    async def subject(self, ca: ManagedCA, dn_text: str, *, field: str = "dn") -> tuple[str, list[SubjectItem]]:
        """The normalised DN and its certificates and pending orders, newest first.

        Failed and abandoned orders are left out (they will never have a
        certificate). Raises :class:`NotFound` (``SUBJECT_NOT_FOUND``) when nothing is left.
        """
        dn = normalize_dn(dn_text, field=field)
        now = self._clock()
        items: list[SubjectItem] = []
        seen: set[tuple[str | None, str | None]] = set()
        for entry in await self._ledger.subject_entries(ca.id, dn):
            certificate = entry.certificate
            key = (entry.order_id, certificate.serial_number if certificate else None)
            if key in seen:  # filed under both the requested and the issued DN
                continue
            seen.add(key)
            if certificate is not None:
                items.append(SubjectItem(certificate_status(certificate, now), entry.order_id, certificate,
                                         entry.created_at))
            elif entry.order_state in _PENDING_STATES:
                items.append(SubjectItem(STATUS_PENDING, entry.order_id, None, entry.created_at))
        if not items:
            raise NotFound(f"CA {ca.id}: no certificate or pending order for subject {dn!r}",
                           reason="SUBJECT_NOT_FOUND", metadata={"ca_id": ca.id, "dn": dn[:256]})
        items.sort(key=lambda item: item.created_at, reverse=True)  # stable: the ledger's order breaks ties
        return dn, items

    async def revoke_subject(self, ca: ManagedCA, dn_text: str, action: ActionInput, *, actor: str) -> tuple[
            RevokeOrder, SubjectRevokeOutcome]:
        """Revoke every certificate of a subject that is not revoked yet.

        Above ``gateway.subject-revoke-limit`` certificates the request is
        refused (:class:`FailedPrecondition`, ``SUBJECT_REVOKE_LIMIT``) unless
        ``action.force`` is set, so a mistyped DN cannot wipe out a fleet.
        Certificates are revoked one by one, each audited; if the CA fails half
        way the error is raised, and repeating the request finishes the job.
        """
        word = "revoke-subject" if action.type == REVOKE_ACTION else _audit_word(action.type)
        target = dn_text.strip()[:256]
        try:
            order = parse_revoke_action(action)
            dn, items = await self.subject(ca, dn_text)
        except CagwError as exc:
            await self._audit(ca, actor, word, target, "refused", exc.message)
            raise
        target = dn[:256]
        to_revoke = [item.certificate for item in items
                     if item.certificate is not None and item.status != STATUS_REVOKED]
        already = tuple(item.certificate.serial_number for item in items
                        if item.certificate is not None and item.status == STATUS_REVOKED)
        pending = tuple(item.order_id or "" for item in items if item.status == STATUS_PENDING)
        limit = ca.settings.gateway.subject_revoke_limit
        if len(to_revoke) > limit and not order.force:
            message = (f"CA {ca.id}: subject {dn!r} has {len(to_revoke)} certificates to revoke, more than the "
                       f"configured limit of {limit}; send action.force: true to revoke them all")
            await self._audit(ca, actor, word, target, "refused", message)
            raise FailedPrecondition(message, reason="SUBJECT_REVOKE_LIMIT",
                                     metadata={"ca_id": ca.id, "count": str(len(to_revoke)), "limit": str(limit)})
        revoked: list[str] = []
        for certificate in to_revoke:
            try:
                outcome = await self._revoke_audited(ca, int(certificate.serial_number, 16), order, actor=actor)
            except CagwError as exc:
                done = ", ".join(revoked) or "none"
                await self._audit(ca, actor, word, target, "failed",
                                  f"{order.audit_detail()}; stopped at {certificate.serial_number} "
                                  f"(revoked before: {done}): {exc.message}")
                raise
            if outcome.already_revoked:
                already += (outcome.serial_number,)
            else:
                revoked.append(outcome.serial_number)
        forced = "; forced" if order.force and len(to_revoke) > limit else ""
        await self._audit(ca, actor, word, target, "ok",
                          f"{order.audit_detail()}; revoked {len(revoked)}: {', '.join(revoked)}{forced}")
        return order, SubjectRevokeOutcome(dn=dn, revoked=tuple(revoked), already_revoked=already,
                                           pending_orders=pending)

    # -- events feed

    async def events(self, ca: ManagedCA, *, start_date: str, page_size: int, page_index: str,
                     with_certificates: bool) -> EventsPage:
        """One page of the issued/revoked feed.

        ``page_size`` 0 (absent) means the cursor's page size, else the default
        (50); larger than 500 is capped at 500. With a ``page_index`` (cursor)
        the cursor's start date wins over ``start_date``, so the totals of
        every page agree.
        """
        if page_size < 0:
            raise InvalidRequest.of([FieldViolation("preferredPageSize", "page size must not be negative",
                                                    str(page_size))])
        if page_index.strip():
            cursor = EventCursor.decode(page_index)
        else:
            since = parse_iso_datetime(start_date, field="startDate") if start_date.strip() else None
            cursor = EventCursor(since=since)
        limit = min(page_size or cursor.limit, MAX_PAGE_SIZE)
        records = await self._ledger.list_events(ca.id, after_id=cursor.after_id, since=cursor.since,
                                                 limit=limit + 1)
        more = len(records) > limit
        records = records[:limit]
        total = await self._ledger.count_events(ca.id, since=cursor.since)
        certificates: dict[str, CertificateRecord | None] = {}
        if with_certificates:
            for serial in dict.fromkeys(record.serial_number for record in records):
                certificates[serial] = await self._ledger.get_certificate(ca.id, serial)
        events = tuple((record, certificates.get(record.serial_number)) for record in records)
        last_id = records[-1].id if records else cursor.after_id
        next_cursor = EventCursor(after_id=last_id, since=cursor.since, offset=cursor.offset + len(records),
                                  limit=limit)
        return EventsPage(events=events, next_cursor=next_cursor, more=more, total=total, offset=cursor.offset,
                          limit=limit)
