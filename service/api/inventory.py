"""CertificateInventoryService: the ledger's certificates of a CA, when to renew one, and their events as a stream.

Thin: each RPC resolves the CA, hands the request's fields to
:class:`service.lifecycle.Inventory` and builds the answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

from cagw.v1 import inventory_pb2 as pb

from service.api._convert import iso_z
from service.api.pipeline import CallContext
from service.authorities import CARegistry
from service.certificates.common import certificate_status
from service.config import parse_duration
from service.errors import FieldViolation, InvalidRequest
from service.ledger.base import InventoryEntry, OutboxEvent
from service.lifecycle import Inventory, InventoryQuery
from service.lifecycle.feed import CertificateEventStream, parse_after
from service.lifecycle.webhooks import event_fields, event_type

__all__ = ["InventoryApi"]


def _expiring_within(text: str) -> float | None:
    if not text.strip():
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InvalidRequest.of([FieldViolation("expiringWithin", str(exc), text[:100])]) from None


def inventory_message(entry: InventoryEntry, *, now: dt.datetime) -> pb.InventoryCertificate:
    certificate = entry.certificate
    names = ([entry.common_name] if entry.common_name else []) + [
        san.value for san in entry.subject_alt_names if san.value != entry.common_name]
    return pb.InventoryCertificate(
        serial_number=certificate.serial_number, status=certificate_status(certificate, now),
        subject_name=certificate.subject_dn, names=names, profile_id=entry.profile_id, owner=entry.owner,
        not_before=iso_z(certificate.not_before), not_after=iso_z(certificate.not_after),
        enrollment_id=certificate.order_id or "", replaced_by=entry.replaced_by or "",
        replacement_enrollment_id=entry.replacement_order_id or "",
        days_to_expiry=(certificate.not_after - now) // dt.timedelta(days=1),
        automatic_renewal="" if entry.auto_renew is None else "true" if entry.auto_renew else "false")


def lifecycle_event_message(outbox: OutboxEvent) -> pb.CertificateLifecycleEvent:
    event = outbox.event
    kind = event_type(outbox)
    fields = event_fields(outbox)
    return pb.CertificateLifecycleEvent(
        id=str(event.id), type=kind, serial_number=event.serial_number, time=iso_z(event.time),
        owner=outbox.owner, replaces=(outbox.renewal_of or "") if kind not in ("failed", "replaced") else "",
        reason=event.reason, detail=event.detail, enrollment_id=fields.get("enrollmentId", ""),
        replaced_by=fields.get("replacedBy", ""), renewal_of=fields.get("renewalOf", ""),
        expires_within=fields.get("expiresWithin", ""))


class InventoryApi:
    """Servicer of ``cagw.v1.CertificateInventoryService``."""

    def __init__(self, cas: CARegistry, inventory: Inventory, events: CertificateEventStream) -> None:
        self._cas = cas
        self._inventory = inventory
        self._events = events

    async def ListCertificates(self, request: pb.ListCertificatesRequest,
                               call: CallContext) -> pb.ListCertificatesResponse:
        call.caller_object.may("read", request.ca_id).check()  # the clients section's `read` grant
        ca = self._cas.get(request.ca_id)
        page = await self._inventory.list(ca, InventoryQuery(
            status=request.status, owner=request.owner, name=request.name,
            expiring_before=request.expiring_before, expiring_within=_expiring_within(request.expiring_within),
            issued_after=request.issued_after, page_size=request.page_size, page_token=request.page_token))
        now = self._inventory.now()
        return pb.ListCertificatesResponse(certificates=[inventory_message(entry, now=now) for entry in page.entries],
                                           next_page_token=page.next_page_token)

    async def GetRenewalInfo(self, request: pb.GetRenewalInfoRequest, call: CallContext) -> pb.GetRenewalInfoResponse:
        call.caller_object.may("read", request.ca_id).check()
        ca = self._cas.get(request.ca_id)
        entry, advice = await self._inventory.renewal_info(ca, request.serial_number)
        return pb.GetRenewalInfoResponse(
            suggested_window=pb.RenewalWindow(start=iso_z(advice.start), end=iso_z(advice.end)),
            explanation=advice.explanation, retry_after_seconds=int(advice.recheck_after.total_seconds()),
            certificate=inventory_message(entry, now=self._inventory.now()))

    async def WatchCertificateEvents(self, request: pb.WatchCertificateEventsRequest,
                                     call: CallContext) -> AsyncIterator[pb.WatchCertificateEventsResponse]:
        call.caller_object.may("read", request.ca_id).check()
        ca = self._cas.get(request.ca_id)
        if request.max_events < 0:
            raise InvalidRequest.of([FieldViolation("maxEvents", "must not be negative", str(request.max_events))])
        if not 0 <= request.idle_seconds <= 3600:
            raise InvalidRequest.of([FieldViolation("idleSeconds", "must be between 0 and 3600",
                                                    str(request.idle_seconds))])
        sent = 0
        async for outbox in self._events.watch(ca.id, parse_after(request.after), idle=request.idle_seconds):
            yield pb.WatchCertificateEventsResponse(event=lifecycle_event_message(outbox))
            sent += 1
            if sent == request.max_events:
                return
