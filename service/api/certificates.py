"""CertificateService: a certificate by serial number, its actions, and the certificate events feed.

Thin: each RPC resolves the CA, hands plain values to
:class:`service.certificates.CertificateManager` and builds the CAGW answer.
Lookup falls back to the CA for certificates the gateway did not order;
revocation is idempotent and audited; hold and unhold answer UNIMPLEMENTED
(saying why: the CA or the gateway cannot serve them). ``$fields`` support is described in
:mod:`service.api._convert`; the events page size defaults to 50 and is
capped at 500.
"""

from __future__ import annotations


from cagw.v1 import certificates_pb2 as pb
from cagw.v1 import common_pb2

from service.api._convert import (
    FieldProjection,
    action_input,
    action_message,
    base64_der,
    certificate_message,
    chain_messages,
    iso_z,
)
from service.api.pipeline import CallContext
from service.authorities import CARegistry
from service.certificates import CertificateManager

__all__ = ["CertificateApi"]

EVENT_CERTIFICATE_PATH = "events.certificate"


class CertificateApi:
    """Servicer of ``cagw.v1.CertificateService``.

    >>> api = CertificateApi(cas, CertificateManager(ledger))
    >>> await api.GetCertificate(pb.GetCertificateRequest(ca_id="ca-ov", serial_number="5912BD91"), call)
    """

    def __init__(self, cas: CARegistry, certificates: CertificateManager) -> None:
        self._cas = cas
        # One manager serves both servicers, so a serial revoked through either is locked once.
        self._certificates = certificates

    async def GetCertificate(self, request: pb.GetCertificateRequest, call: CallContext) -> pb.GetCertificateResponse:
        ca = self._cas.get(request.ca_id)
        record = await self._certificates.find(ca, request.serial_number, caller=call.caller)
        response = pb.GetCertificateResponse(
            certificate=certificate_message(record, now=self._certificates.now()),
            chain=chain_messages(record))
        FieldProjection.parse(request.fields).apply(response)
        return response

    async def PerformCertificateAction(self, request: pb.PerformCertificateActionRequest,
                                       call: CallContext) -> pb.PerformCertificateActionResponse:
        ca = self._cas.get(request.ca_id)
        order, outcome = await self._certificates.revoke(ca, request.serial_number, action_input(request.action),
                                                         actor=call.caller)
        text = (f"Certificate {outcome.serial_number} was already revoked." if outcome.already_revoked
                else f"Certificate {outcome.serial_number} revoked.")
        return pb.PerformCertificateActionResponse(action=action_message(request.action, order),
                                                   message=common_pb2.Message(message=text))

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
