"""The pipeline's observing middleware and the open-circuit gate, around a servicer of the real contract."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from cagw.v1 import enrollments_pb2 as pb

from service.api.circuit import OpenCircuitGate
from service.api.pipeline import CallContext, MethodSpec, ServicePipeline, methods_of
from service.config import CircuitBreakerSettings
from service.connectors.breaker import CircuitBreaker, CircuitState
from service.errors import CAUnavailable, CircuitOpen, NotFound
from service.observability.metrics import GatewayMetrics
from service.observability.middleware import ObservedCalls
from service.observability.requestid import current_request_id
from service.observability.tracing import NO_TRACING
from tests.support.clocks import SecondsClock

SERVICE = pb.DESCRIPTOR.services_by_name["EnrollmentService"]


class Servicer:
    def __init__(self) -> None:
        self.called: list[str] = []
        self.request_ids: list[str] = []

    async def Enroll(self, request: pb.EnrollRequest, call: CallContext) -> pb.EnrollResponse:
        self.called.append("Enroll")
        self.request_ids.append(current_request_id())
        return pb.EnrollResponse()

    async def EnrollAndWatch(self, request: pb.EnrollAndWatchRequest,
                             call: CallContext) -> AsyncIterator[pb.EnrollAndWatchResponse]:
        self.called.append("EnrollAndWatch")
        for _ in range(3):
            yield pb.EnrollAndWatchResponse()

    async def CheckEnrollment(self, request: pb.CheckEnrollmentRequest,
                              call: CallContext) -> pb.CheckEnrollmentResponse:
        self.called.append("CheckEnrollment")
        return pb.CheckEnrollmentResponse(allowed=True)

    async def GetEnrollment(self, request: pb.GetEnrollmentRequest, call: CallContext) -> pb.GetEnrollmentResponse:
        self.called.append("GetEnrollment")
        raise NotFound("no such enrollment")

    async def WatchEnrollment(self, request: pb.WatchEnrollmentRequest,
                              call: CallContext) -> AsyncIterator[pb.WatchEnrollmentResponse]:
        self.called.append("WatchEnrollment")
        yield pb.WatchEnrollmentResponse()


def setup() -> tuple[ServicePipeline, Servicer, GatewayMetrics, CircuitBreaker, SecondsClock]:
    servicer, metrics, clock = Servicer(), GatewayMetrics(), SecondsClock(50.0)
    breaker = CircuitBreaker(CircuitBreakerSettings(failure_threshold=1, open_for=10.0), name="ca-1", clock=clock)
    pipeline = ServicePipeline(methods_of(servicer, SERVICE), [
        ObservedCalls(metrics, NO_TRACING), OpenCircuitGate({"ca-1": breaker}.get)])
    return pipeline, servicer, metrics, breaker, clock


def call(method: str, request_id: str = "") -> CallContext:
    return CallContext(method=f"/cagw.v1.EnrollmentService/{method}", transport="internal", request_id=request_id)


def spec(pipeline: ServicePipeline, method: str) -> MethodSpec:
    found = pipeline.method(f"/cagw.v1.EnrollmentService/{method}")
    assert found is not None
    return found


def count(metrics: GatewayMetrics, method: str, code: str) -> float:
    value = metrics.registry.get_sample_value("cagw_calls_total", {
        "service": "cagw.v1.EnrollmentService", "method": method, "transport": "internal", "code": code})
    return value or 0.0


async def open_circuit(breaker: CircuitBreaker) -> None:
    async def down() -> None:
        raise CAUnavailable("CA ca-1: HTTP 503", http_status=503)

    with pytest.raises(CAUnavailable):
        await breaker.call(down)
    assert breaker.state is CircuitState.OPEN


async def test_ok_calls_are_counted_with_their_code_and_bound_to_their_request_id(
        caplog: pytest.LogCaptureFixture) -> None:
    pipeline, servicer, metrics, _, _ = setup()
    caplog.set_level(logging.INFO, logger="cagw.access")
    await pipeline.call_unary(spec(pipeline, "Enroll"), pb.EnrollRequest(ca_id="ca-1"), call("Enroll", "rid-1"))
    await pipeline.call_unary(spec(pipeline, "Enroll"), pb.EnrollRequest(ca_id="ca-1"), call("Enroll"))
    with pytest.raises(NotFound):
        await pipeline.call_unary(spec(pipeline, "GetEnrollment"), pb.GetEnrollmentRequest(),
                                  call("GetEnrollment"))
    assert servicer.request_ids[0] == "rid-1" and len(servicer.request_ids[1]) == 32  # made when none was given
    assert (count(metrics, "Enroll", "OK"), count(metrics, "GetEnrollment", "NOT_FOUND")) == (2, 1)
    statuses = [getattr(record, "fields")["status"] for record in caplog.records]
    assert statuses == ["OK", "OK", "NOT_FOUND"]  # type: ignore[attr-defined]
    assert current_request_id() == ""


async def test_ok_a_stream_left_early_counts_as_cancelled_and_is_no_longer_open() -> None:
    pipeline, _, metrics, _, _ = setup()
    stream = pipeline.call_stream(spec(pipeline, "EnrollAndWatch"), pb.EnrollAndWatchRequest(ca_id="ca-1"),
                                  call("EnrollAndWatch"))
    await anext(stream)
    labels = {"service": "cagw.v1.EnrollmentService", "method": "EnrollAndWatch", "transport": "internal"}
    assert metrics.registry.get_sample_value("cagw_open_streams", labels) == 1
    await stream.aclose()  # type: ignore[attr-defined]
    assert metrics.registry.get_sample_value("cagw_open_streams", labels) == 0
    assert count(metrics, "EnrollAndWatch", "CANCELLED") == 1


async def test_fail_an_open_circuit_refuses_new_enrollments_before_the_servicer() -> None:
    pipeline, servicer, metrics, breaker, clock = setup()
    await open_circuit(breaker)
    clock.now += 4.0
    with pytest.raises(CircuitOpen) as caught:
        await pipeline.call_unary(spec(pipeline, "Enroll"), pb.EnrollRequest(ca_id="ca-1"), call("Enroll"))
    assert caught.value.retry_after == pytest.approx(6.0) and caught.value.metadata == {"ca_id": "ca-1"}
    stream = pipeline.call_stream(spec(pipeline, "EnrollAndWatch"), pb.EnrollAndWatchRequest(ca_id="ca-1"),
                                  call("EnrollAndWatch"))
    with pytest.raises(CircuitOpen):
        await anext(stream)
    assert servicer.called == []
    assert (count(metrics, "Enroll", "UNAVAILABLE"), count(metrics, "EnrollAndWatch", "UNAVAILABLE")) == (1, 1)


async def test_ok_the_gate_lets_through_other_methods_other_cas_and_the_half_open_probe() -> None:
    pipeline, servicer, _, breaker, clock = setup()
    await open_circuit(breaker)
    with pytest.raises(NotFound):
        await pipeline.call_unary(spec(pipeline, "GetEnrollment"), pb.GetEnrollmentRequest(ca_id="ca-1"),
                                  call("GetEnrollment"))
    await pipeline.call_unary(spec(pipeline, "Enroll"), pb.EnrollRequest(ca_id="other"), call("Enroll"))
    clock.now += 10.0
    await pipeline.call_unary(spec(pipeline, "Enroll"), pb.EnrollRequest(ca_id="ca-1"), call("Enroll"))
    assert servicer.called == ["GetEnrollment", "Enroll", "Enroll"]
