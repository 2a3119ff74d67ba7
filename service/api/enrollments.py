"""EnrollmentService: CAGW enrollment (unary), the live status streams, and lookups by id.

The unary ``Enroll`` answers with the certificate when it was collected in
time, and otherwise with a ``PENDING`` enrollment carrying the enrollment id,
the CA's order id and the subject DN to look the certificate up later. It
always answers before the caller's gRPC deadline (or REST ``maxWait``) runs
out, so a caller never loses its enrollment id to a timeout.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import AsyncIterator

from cagw.v1 import enrollments_pb2 as pb
from google.protobuf import duration_pb2, timestamp_pb2

from service.api.pipeline import CallContext
from service.api.status import status_from_error
from service.authorities import CARegistry
from service.enrollment.backoff import BackoffSchedule
from service.enrollment.channel import OrderEvent, Phase
from service.enrollment.requests import EnrollmentInput, prepare_order
from service.enrollment.tracker import EnrollmentTracker
from service.errors import CagwError
from service.ledger.base import Ledger, OrderRecord
from service.x509 import format_validity, pem_bundle

__all__ = ["EnrollmentApi"]

# Answer this long before the caller's deadline, so the answer still reaches it.
DEADLINE_MARGIN = 0.5
MAX_WAIT_CAP = 3600.0

_STATES = {
    Phase.RECEIVED: pb.ENROLLMENT_STATE_RECEIVED,
    Phase.SUBMITTED: pb.ENROLLMENT_STATE_SUBMITTED,
    Phase.WAITING: pb.ENROLLMENT_STATE_WAITING,
    Phase.PENDING: pb.ENROLLMENT_STATE_PENDING,
    Phase.ISSUED: pb.ENROLLMENT_STATE_ISSUED,
    Phase.TIMED_OUT: pb.ENROLLMENT_STATE_TIMED_OUT,
    Phase.FAILED: pb.ENROLLMENT_STATE_FAILED,
}


def _input(request: pb.EnrollRequest, call: CallContext) -> EnrollmentInput:
    details = request.optional_certificate_request_details
    return EnrollmentInput(
        ca_id=request.ca_id, profile_id=request.profile_id, csr=request.csr,
        required_format=request.required_format.format,
        subject_variables=tuple((v.type, v.value) for v in request.subject_variables),
        subject_alt_names=tuple((s.type, s.value) for s in request.subject_alt_names),
        subject_dn=details.subject_dn, validity_period=details.validity_period,
        encoded_private_key=bool(details.encoded_private_key), properties=dict(request.properties),
        renewal=request.renewal, include_ca=request.include_ca if request.HasField("include_ca") else True,
        request_id=request.request_id, caller=call.caller)


def _timestamp(value: dt.datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def enrollment_message(order: OrderRecord, event: OrderEvent) -> pb.Enrollment:
    """The CAGW enrollment object of an order in its current state."""
    properties = {"profileId": order.profile_id, "enrollmentState": event.phase.value}
    if order.ca_order_id:
        properties["sectigoOrderId"] = order.ca_order_id
    subject = order.options.get("subject_dn") or order.requested_dn
    enrollment = pb.Enrollment(id=order.id, subject_name=subject, sectigo_order_id=order.ca_order_id or "",
                               properties=properties)
    certificate = event.certificate
    if event.phase is Phase.ISSUED and certificate is not None:
        include_ca = order.options.get("include_ca", "true") == "true"
        enrollment.status = "ISSUED"
        enrollment.serial_number = certificate.serial_number
        enrollment.validity_period = format_validity(certificate.not_before, certificate.not_after)
        enrollment.subject_name = order.options.get("subject_dn") or certificate.subject_dn
        if order.options.get("format") == "X509":
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


def event_message(order: OrderRecord, event: OrderEvent) -> pb.EnrollmentEvent:
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
        message.enrollment.CopyFrom(enrollment_message(order, event))
    if event.phase is Phase.FAILED and event.error is not None:
        message.error.CopyFrom(status_from_error(event.error))
    return message


class EnrollmentApi:
    def __init__(self, cas: CARegistry, tracker: EnrollmentTracker, ledger: Ledger) -> None:
        self._cas = cas
        self._tracker = tracker
        self._ledger = ledger

    async def _submit(self, request: pb.EnrollRequest, call: CallContext) -> OrderRecord:
        ca = self._cas.get(request.ca_id)
        order_request = await prepare_order(_input(request, call), ca=ca, ledger=self._ledger,
                                            now=dt.datetime.now(dt.timezone.utc))
        return (await self._tracker.submit(order_request)).order

    def _wait_budget(self, request: pb.EnrollRequest, call: CallContext) -> float:
        ca = self._cas.get(request.ca_id)
        schedule = BackoffSchedule.from_settings(ca.settings.backoff)
        # Enough for the whole foreground schedule plus one CA call per attempt.
        budget = sum(schedule.waits()) + schedule.max_attempts * ca.settings.gateway.request_timeout
        if request.HasField("max_wait"):
            # Seconds and nanos read directly: ToTimedelta() overflows on huge (valid) Durations.
            budget = min(budget, request.max_wait.seconds + request.max_wait.nanos / 1e9)
        remaining = call.time_remaining()
        if remaining is not None:
            budget = min(budget, remaining - DEADLINE_MARGIN)
        return max(0.0, min(budget, MAX_WAIT_CAP))

    async def Enroll(self, request: pb.EnrollRequest, call: CallContext) -> pb.EnrollResponse:
        budget = self._wait_budget(request, call)  # before the order exists: it cannot fail after
        order = await self._submit(request, call)
        event = await self._tracker.wait_settled(order.id, budget)
        if event.phase is Phase.FAILED:
            raise event.error or CagwError(event.detail or "the enrollment failed", reason="ORDER_FAILED")
        order = await self._ledger.get_order(order.id) or order
        return pb.EnrollResponse(enrollment=enrollment_message(order, event))

    async def EnrollAndWatch(self, request: pb.EnrollAndWatchRequest,
                             call: CallContext) -> AsyncIterator[pb.EnrollAndWatchResponse]:
        # Same fields and numbers as EnrollRequest: one conversion serves both.
        unary = pb.EnrollRequest.FromString(request.SerializeToString())
        order = await self._submit(unary, call)
        async for event in self._tracker.watch(order.id, until=lambda e: e.phase.settled):
            current = await self._ledger.get_order(order.id) or order
            yield pb.EnrollAndWatchResponse(event=event_message(current, event))

    async def GetEnrollment(self, request: pb.GetEnrollmentRequest, call: CallContext) -> pb.GetEnrollmentResponse:
        self._cas.get(request.ca_id)
        order = await self._tracker.get_order(request.ca_id, request.enrollment_id)
        event = await self._tracker.current_event(order.id)
        return pb.GetEnrollmentResponse(enrollment=enrollment_message(order, event),
                                        last_event=event_message(order, event))

    async def WatchEnrollment(self, request: pb.WatchEnrollmentRequest,
                              call: CallContext) -> AsyncIterator[pb.WatchEnrollmentResponse]:
        self._cas.get(request.ca_id)
        order = await self._tracker.get_order(request.ca_id, request.enrollment_id)
        async for event in self._tracker.watch(order.id):
            current = await self._ledger.get_order(order.id) or order
            yield pb.WatchEnrollmentResponse(event=event_message(current, event))
