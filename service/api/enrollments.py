"""EnrollmentService: CAGW enrollment (unary), the live status streams, and lookups by id.

The unary ``Enroll`` answers with the certificate when it was collected in
time, and otherwise with a ``PENDING`` enrollment carrying the enrollment id,
the CA's order id and the subject DN to look the certificate up later. It
always answers before the caller's gRPC deadline (or REST ``maxWait``) runs
out, so a caller never loses its enrollment id to a timeout.

Each method converts the proto to the core's :class:`EnrollmentInput`, calls
the :class:`EnrollmentEngine` and converts the event it answers with.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import AsyncIterator
from urllib.parse import quote

from cagw.v1 import common_pb2
from cagw.v1 import enrollments_pb2 as pb
from google.protobuf import duration_pb2, json_format, timestamp_pb2

from service.api.pipeline import CallContext
from service.api.status import status_from_error
from service.config import Secret
from service.enrollment.engine import EnrollmentEngine, EnrollmentInput, OrderEvent, Phase
from service.x509 import format_validity, pem_bundle

__all__ = ["EnrollmentApi"]

_STATES = {
    Phase.RECEIVED: pb.ENROLLMENT_STATE_RECEIVED,
    Phase.SUBMITTED: pb.ENROLLMENT_STATE_SUBMITTED,
    Phase.WAITING: pb.ENROLLMENT_STATE_WAITING,
    Phase.PENDING: pb.ENROLLMENT_STATE_PENDING,
    Phase.ISSUED: pb.ENROLLMENT_STATE_ISSUED,
    Phase.TIMED_OUT: pb.ENROLLMENT_STATE_TIMED_OUT,
    Phase.FAILED: pb.ENROLLMENT_STATE_FAILED,
}


def _password(holder: pb.RequiredFormat | pb.GetEnrollmentRequest) -> Secret | None:
    """The protection password, wrapped so that no repr or log line shows it; None when absent."""
    if not holder.HasField("protection"):
        return None
    return Secret(holder.protection.password)


def enrollment_input(request: pb.EnrollRequest, call: CallContext) -> EnrollmentInput:
    details = request.optional_certificate_request_details
    max_wait = None
    if request.HasField("max_wait"):
        # Seconds and nanos read directly: ToTimedelta() overflows on huge (valid) Durations.
        max_wait = request.max_wait.seconds + request.max_wait.nanos / 1e9
    return EnrollmentInput(
        ca_id=request.ca_id, profile_id=request.profile_id, csr=request.csr,
        required_format=request.required_format.format,
        protection_type=request.required_format.protection.type.strip(),
        password=_password(request.required_format),
        subject_variables=tuple((v.type, v.value) for v in request.subject_variables),
        subject_alt_names=tuple((s.type, s.value) for s in request.subject_alt_names),
        subject_dn=details.subject_dn, validity_period=details.validity_period,
        encoded_private_key=bool(details.encoded_private_key), properties=dict(request.properties),
        property_values=json_format.MessageToDict(request.property_values) if request.HasField("property_values")
        else {},
        renewal=request.renewal, include_ca=request.include_ca if request.HasField("include_ca") else True,
        request_id=request.request_id, caller=call.caller, max_wait=max_wait)


def _timestamp(value: dt.datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def enrollment_message(event: OrderEvent) -> pb.Enrollment:
    """The CAGW enrollment object of an order in the state ``event`` reports."""
    order = event.order
    properties = {"profileId": order.profile_id, "enrollmentState": event.phase.value}
    if event.ca_order_id:
        properties["sectigoOrderId"] = event.ca_order_id
    enrollment = pb.Enrollment(id=order.id, subject_name=order.subject_dn, sectigo_order_id=event.ca_order_id or "",
                               properties=properties)
    certificate = event.certificate
    if event.phase is Phase.ISSUED and certificate is not None:
        include_ca = order.options.include_ca
        enrollment.status = "ISSUED"
        enrollment.serial_number = certificate.serial_number
        enrollment.validity_period = format_validity(certificate.not_before, certificate.not_after)
        enrollment.subject_name = order.options.subject_dn or certificate.subject_dn
        if order.options.required_format == "PKCS12":
            enrollment.body = base64.b64encode(event.keystore).decode() if event.keystore is not None else ""
        elif order.options.required_format == "X509":
            enrollment.body = base64.b64encode(certificate.certificate_der).decode()
        else:
            enrollment.body = pem_bundle([certificate.certificate_der, *(certificate.chain_der if include_ca else ())])
        if include_ca:
            enrollment.chain.extend(base64.b64encode(der).decode() for der in certificate.chain_der)
    elif event.phase is Phase.FAILED:
        enrollment.status = "FAILED"
    else:
        enrollment.status = "PENDING"
    return enrollment


def _detail(code: str, target: str, value: str, text: str) -> common_pb2.MessageDetail:
    return common_pb2.MessageDetail(code=code, target=target, value=value, message=text)


def enrollment_notice(event: OrderEvent) -> common_pb2.Message:
    """CAGW's ``message`` object of an enrollment answer: what happened and, while the order is
    pending, what to do next (the lookups a caller makes, with the values it needs)."""
    order = event.order
    base = f"/v1/certificate-authorities/{order.ca_id}"
    if event.phase is Phase.ISSUED and event.certificate is not None:
        return common_pb2.Message(code="ISSUED", message=f"Certificate {event.certificate.serial_number} issued.")
    if event.phase is Phase.FAILED:
        return common_pb2.Message(code="FAILED", message=f"Enrollment {order.id} failed: {event.detail}".strip())
    dn = order.subject_dn
    at_ca = f" (CA order {event.ca_order_id})" if event.ca_order_id else ""
    text = (f"Enrollment {order.id} is accepted{at_ca} but the certificate is not issued yet; no certificate is "
            f"in this answer. The gateway keeps collecting it. Ask again with GET {base}/enrollments/{order.id}, "
            f"or look up the subject with GET {base}/subjects/{{dn}} for the serial number, then GET "
            f"{base}/certificates/{{serialNumber}}.")
    details = [_detail("ENROLLMENT_ID", "enrollment.id", order.id, "the enrollment to ask about: "
                       f"GET {base}/enrollments/{order.id}")]
    if dn:
        details.append(_detail("SUBJECT_DN", "enrollment.subjectName", dn,
                               f"the subject to look up: GET {base}/subjects/{quote(dn, safe='')}"))
    if event.ca_order_id:
        details.append(_detail("CA_ORDER_ID", "enrollment.sectigoOrderId", event.ca_order_id,
                               "the order at the CA"))
    return common_pb2.Message(code="PENDING", message=text, details=details)


def event_message(event: OrderEvent) -> pb.EnrollmentEvent:
    message = pb.EnrollmentEvent(enrollment_id=event.order_id, state=_STATES[event.phase],
                                 time=_timestamp(event.time), sectigo_order_id=event.ca_order_id or "",
                                 attempt=event.attempt, max_attempts=event.max_attempts, detail=event.detail)
    if event.delay is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(round(event.delay * 1e9))
        message.delay.CopyFrom(delay)
    if event.next_attempt_at is not None:
        message.next_attempt_time.CopyFrom(_timestamp(event.next_attempt_at))
    if event.phase in (Phase.ISSUED, Phase.TIMED_OUT):
        message.enrollment.CopyFrom(enrollment_message(event))
    if event.phase is Phase.FAILED and event.error is not None:
        message.error.CopyFrom(status_from_error(event.error))
    return message


class EnrollmentApi:
    def __init__(self, engine: EnrollmentEngine) -> None:
        self._engine = engine

    async def Enroll(self, request: pb.EnrollRequest, call: CallContext) -> pb.EnrollResponse:
        event = await self._engine.enroll(enrollment_input(request, call), deadline=call.deadline)
        return pb.EnrollResponse(enrollment=enrollment_message(event), message=enrollment_notice(event))

    async def EnrollAndWatch(self, request: pb.EnrollAndWatchRequest,
                             call: CallContext) -> AsyncIterator[pb.EnrollAndWatchResponse]:
        # Same fields and numbers as EnrollRequest: one conversion serves both.
        unary = pb.EnrollRequest.FromString(request.SerializeToString())
        async for event in self._engine.enroll_and_watch(enrollment_input(unary, call)):
            yield pb.EnrollAndWatchResponse(event=event_message(event))

    async def GetEnrollment(self, request: pb.GetEnrollmentRequest, call: CallContext) -> pb.GetEnrollmentResponse:
        event = await self._engine.get(request.ca_id, request.enrollment_id,
                                       password=_password(request) if request.protection.password else None)
        return pb.GetEnrollmentResponse(enrollment=enrollment_message(event), last_event=event_message(event),
                                        message=enrollment_notice(event))

    async def WatchEnrollment(self, request: pb.WatchEnrollmentRequest,
                              call: CallContext) -> AsyncIterator[pb.WatchEnrollmentResponse]:
        async for event in self._engine.watch(request.ca_id, request.enrollment_id):
            yield pb.WatchEnrollmentResponse(event=event_message(event))
