"""Revocation: CAGW actions checked, one certificate or a whole subject revoked, every attempt audited."""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from service.authorities import ManagedCA
from service.certificates.common import STATUS_PENDING, STATUS_REVOKED, parse_iso_datetime
from service.certificates.lookup import CertificateLookup
from service.certificates.subjects import SubjectIndex
from service.clock import Clock
from service.connectors.base import (
    REASON_CERTIFICATE_REVOKED,
    CertificateHold,
    CertificateReplace,
    CommentLimit,
    DetailsRequest,
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
    Unimplemented,
)
from service.ledger.base import AuditEntry, CertificateRecord, Ledger
from service.x509 import format_serial, parse_serial

log = logging.getLogger(__name__)

REVOKE_ACTION = "RevokeAction"
# CAGW action types that suspend or reinstate a certificate, with the audit word for each. The
# gateway refuses them explicitly (DESIGN decision 16), saying whether the CA or the gateway lacks it.
_HOLD_ACTIONS = {"HoldAction": "hold", "UnholdAction": "unhold", "ReactivateAction": "reactivate"}


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


def _hold_refused(action_type: str, ca: ManagedCA) -> Unimplemented:
    if isinstance(ca.connector, CertificateHold):
        # The CA could, but the ledger has no state for a suspended (and later reinstated) certificate.
        why = "the gateway cannot record a suspended certificate yet"
    else:
        why = f"{ca.plugin.vendor} has no certificate hold"
    return Unimplemented(f"{action_type} is not available: {why}, so certificates can only be revoked "
                         "(RevokeAction)", metadata={"action": action_type})


def parse_revoke_action(action: ActionInput, ca: ManagedCA, *, field: str = "action") -> RevokeOrder:
    """Check a CAGW action for ``ca``; only ``RevokeAction`` can be served.

    Hold, unhold and reactivate raise :class:`Unimplemented` (saying whether
    the CA has no certificate hold or the gateway cannot record one); any other
    type, an unknown reason, a comment longer than the CA takes (its
    ``CommentLimit``) or a compromise date that is not ISO 8601 raise
    :class:`InvalidRequest` naming ``action.type``, ``action.reason``,
    ``action.comment`` or ``action.compromiseDate``. An empty reason means
    ``unspecified``.
    """
    if action.type in _HOLD_ACTIONS:
        raise _hold_refused(action.type, ca)
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
    limit = ca.connector.max_comment_length if isinstance(ca.connector, CommentLimit) else None
    if limit is not None and len(action.comment) > limit:
        violations.append(FieldViolation(f"{field}.comment",
                                         f"comment is {len(action.comment)} characters long; "
                                         f"at most {limit} are allowed"))
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
class SubjectRevokeOutcome:
    dn: str  # normalised
    revoked: tuple[str, ...]  # serials revoked by this call
    already_revoked: tuple[str, ...]
    pending_orders: tuple[str, ...]  # orders without a certificate yet: nothing to revoke


# ---------------------------------------------------------------- events feed


class Revocations:
    """Revokes certificates and subjects, idempotently, one revocation per serial at a time."""

    def __init__(self, ledger: Ledger, lookup: CertificateLookup, subjects: SubjectIndex, *, clock: Clock) -> None:
        self._ledger = ledger
        self._lookup = lookup
        self._subjects = subjects
        self._clock = clock
        # One revocation at a time per certificate, so concurrent requests do not both reach the CA.
        self._locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = weakref.WeakValueDictionary()

    async def revoke(self, ca: ManagedCA, serial_text: str, action: ActionInput, *, actor: str) -> tuple[
            RevokeOrder, RevokeOutcome]:
        """Perform a certificate action (only revocation is possible) and audit it."""
        target = serial_text.strip()[:64]
        word = _audit_word(action.type)
        try:
            order = parse_revoke_action(action, ca)
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
            record, details = await self._lookup.find_at_ca(ca, serial, tolerate_revoked=True)
            ca_order_id = details.order_id
            if record is None or details.status is OrderStatus.REVOKED:
                return RevokeOutcome(hex_serial, already_revoked=True, certificate=record)
        elif record.order_id is not None:
            known = await self._ledger.get_order(record.order_id)
            ca_order_id = (known.ca_order_id or "") if known is not None else ""
        if record.status == STATUS_REVOKED:
            return RevokeOutcome(hex_serial, already_revoked=True, certificate=record)
        ca_order_id = await self._order_still_holding(ca, ca_order_id, serial)
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

    @staticmethod
    async def _order_still_holding(ca: ManagedCA, ca_order_id: str, serial: int) -> str:
        """``ca_order_id`` when revoking by it revokes this certificate, else ``""`` (revoke by serial).

        A CA that can reissue (``CertificateReplace``) may have issued the order again for a new
        key since: revoking the order would then revoke the new certificate, not this one."""
        if not ca_order_id or not isinstance(ca.connector, CertificateReplace):
            return ca_order_id
        details = await ca.connector.details(DetailsRequest(order_id=ca_order_id))
        return ca_order_id if details.serial_number in (None, serial) else ""

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
            order = parse_revoke_action(action, ca)
            dn, items = await self._subjects.subject(ca, dn_text)
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
