"""CertificateService: a certificate by serial number, its actions, and the certificate events feed.

Thin: each RPC resolves the CA, hands plain values to
:class:`service.certificates.CertificateManager` and builds the CAGW answer.
Lookup falls back to the CA for certificates the gateway did not order;
revocation is idempotent and audited; ``RenewAction`` and ``ReissueAction``
become orders of the enrollment engine (:mod:`service.enrollment.replacement`)
and answer ``COMPLETED`` with the new certificate when it is issued in time,
else ``ACCEPTED`` (REST 202) with the enrollment id to follow; hold and unhold
answer UNIMPLEMENTED (saying why: the CA or the gateway cannot serve them).
``$fields`` support is described in :mod:`service.api._convert`; the events
page size defaults to 50 and is capped at 500.
"""

from __future__ import annotations

import uuid

from cagw.v1 import certificates_pb2 as pb
from cagw.v1 import common_pb2

from service.api._convert import (
    ACTION_COMPLETED,
    FieldProjection,
    action_input,
    action_message,
    base64_der,
    certificate_message,
    chain_messages,
    iso_z,
)
from service.api.enrollments import enrollment_message
from service.api.pipeline import CallContext
from service.authorities import CARegistry, ManagedCA
from service.certificates import CertificateManager
from service.enrollment.engine import CertificateReplacement, EnrollmentEngine, OrderEvent, Phase
from service.errors import Unimplemented

__all__ = ["CertificateApi"]

EVENT_CERTIFICATE_PATH = "events.certificate"
RENEW_ACTION = "RenewAction"
REISSUE_ACTION = "ReissueAction"
ACTION_ACCEPTED = "ACCEPTED"


class CertificateApi:
    """Servicer of ``cagw.v1.CertificateService``.

    >>> api = CertificateApi(cas, CertificateManager(ledger))
    >>> await api.GetCertificate(pb.GetCertificateRequest(ca_id="ca-ov", serial_number="5912BD91"), call)
    """

    def __init__(self, cas: CARegistry, certificates: CertificateManager, *,
                 engine: EnrollmentEngine | None = None) -> None:
        self._cas = cas
        # One manager serves both servicers, so a serial revoked through either is locked once.
        self._certificates = certificates
        self._engine = engine  # renew and reissue are enrollments; without an engine they are refused

    async def GetCertificate(self, request: pb.GetCertificateRequest, call: CallContext) -> pb.GetCertificateResponse:
        ca = self._cas.get(request.ca_id)
        record = await self._certificates.find(ca, request.serial_number)
        response = pb.GetCertificateResponse(
            certificate=certificate_message(record, now=self._certificates.now()),
            chain=chain_messages(record))
        FieldProjection.parse(request.fields).apply(response)
        return response

    async def PerformCertificateAction(self, request: pb.PerformCertificateActionRequest,
                                       call: CallContext) -> pb.PerformCertificateActionResponse:
        ca = self._cas.get(request.ca_id)
        kind = request.action.type.strip()
        if kind in (RENEW_ACTION, REISSUE_ACTION):
            return await self._replace(ca, request, kind, call)
        order, outcome = await self._certificates.revoke(ca, request.serial_number, action_input(request.action),
                                                         actor=call.caller)
        text = (f"Certificate {outcome.serial_number} was already revoked." if outcome.already_revoked
                else f"Certificate {outcome.serial_number} revoked.")
        return pb.PerformCertificateActionResponse(action=action_message(request.action, order),
                                                   message=common_pb2.Message(message=text))

    async def _replace(self, ca: ManagedCA, request: pb.PerformCertificateActionRequest, kind: str,
                       call: CallContext) -> pb.PerformCertificateActionResponse:
        if self._engine is None:
            raise Unimplemented(f"{kind} is not served here: this gateway runs no enrollment engine",
                                metadata={"action": kind})
        event = await self._engine.replace_certificate(CertificateReplacement(
            ca_id=ca.id, serial_number=request.serial_number, reissue=kind == REISSUE_ACTION,
            csr=request.action.csr, comment=request.action.comment, caller=call.caller), deadline=call.deadline)
        enrollment = enrollment_message(event)
        issued = event.phase is Phase.ISSUED
        action = common_pb2.Action(type=kind, id=str(uuid.uuid4()), status=ACTION_COMPLETED if issued
                                   else ACTION_ACCEPTED, comment=request.action.comment,
                                   properties={**request.action.properties, "enrollmentId": enrollment.id})
        if issued:
            action.properties["serialNumber"] = enrollment.serial_number
        return pb.PerformCertificateActionResponse(action=action, enrollment=enrollment,
                                                   message=common_pb2.Message(message=_replaced_text(kind, event)))

    async def ListCertificateEvents(self, request: pb.ListCertificateEventsRequest,
                                    call: CallContext) -> pb.ListCertificateEventsResponse:
        ca = self._cas.get(request.ca_id)
        projection = FieldProjection.parse(request.fields)
        page = await self._certificates.events(
            ca, start_date=request.start_date, page_size=request.preferred_page_size,
            page_index=request.next_page_index, with_certificates=not projection.excludes(EVENT_CERTIFICATE_PATH))
        response = pb.ListCertificateEventsResponse(
            events=[pb.CertificateEvent(action=event.action, event=event.id, event_date=iso_z(event.time),
                                        certificate=base64_der(certificate.certificate_der) if certificate else "",
                                        serial_number=event.serial_number, detail=event.detail, reason=event.reason)
                    for event, certificate in page.events],
            next_page_index=page.next_cursor.encode(), more_pages=page.more, has_more=page.more,
            metadata=pb.EventsMetadata(current_count=len(page.events), total_count=page.total,
                                       current_offset=page.offset, current_limit=page.limit))
        projection.apply(response)
        return response


def _replaced_text(kind: str, event: OrderEvent) -> str:
    what = "renewal" if kind == RENEW_ACTION else "reissue"
    base = f"/v1/certificate-authorities/{event.order.ca_id}"
    if event.phase is Phase.ISSUED and event.certificate is not None:
        return f"{kind}: the {what} is issued, serial {event.certificate.serial_number}."
    return (f"{kind}: the {what} is accepted as enrollment {event.order_id} but not issued yet; the gateway keeps "
            f"collecting it. Follow it with GET {base}/enrollments/{event.order_id}. The old certificate is "
            "unchanged and still answers by its serial.")
