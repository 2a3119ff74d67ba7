"""The circuit breaker of a CA against the simulator's fault injection (``/__simulator/faults``)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from cagw.v1 import certificate_authorities_pb2 as ca_pb
from cagw.v1 import certificate_authorities_pb2_grpc as ca_grpc
from cagw.v1 import certificates_pb2, certificates_pb2_grpc, enrollments_pb2, enrollments_pb2_grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from service.connectors.breaker import CircuitState
from service.x509 import normalize_dn
from tests.integration.observed import scrape
from tests.integration.stack import CA_ID, PROFILE_ID, Stack, running_stack
from tests.support.csr import make_csr

BREAKER = {"circuit-breaker": {"failure-threshold": "2", "window": "30s", "open-for": "200ms"},
           "retry-attempts": "1"}  # one HTTP try per call: each failing call is one failure


async def _simulator(stack: Stack, tmp: Path, method: str, body: Any = None) -> Any:
    context = ssl.create_default_context(cafile=str(tmp / "trust.pem"))
    async with aiohttp.ClientSession() as http:
        async with http.request(method, f"{stack.simulator.url}/__simulator/faults", json=body,
                                ssl=context) as response:
            assert response.status < 300, await response.text()
            return await response.json(content_type=None)


async def _status(stack: Stack) -> ca_pb.GetCertificateAuthorityStatusResponse:
    stub = ca_grpc.CertificateAuthorityServiceStub(stack.channel)
    return await stub.GetCertificateAuthorityStatus(ca_pb.GetCertificateAuthorityStatusRequest(ca_id=CA_ID))


def _error_details(error: grpc.aio.AioRpcError) -> tuple[error_details_pb2.ErrorInfo, float | None]:
    info, delay = error_details_pb2.ErrorInfo(), None
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            detail.Unpack(info)
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            delay = retry.retry_delay.ToNanoseconds() / 1e9
    return info, delay


async def test_ok_sustained_ca_failure_opens_the_circuit_and_a_probe_closes_it(tmp_path: Path) -> None:
    # Every status call asks the CA here (no status cache), so each one counts toward the breaker.
    async with running_stack(tmp_path, extra_gateway=BREAKER, sections={"lookups": {"ca-status-ttl": "0s"}}) as stack:
        enrollments = enrollments_pb2_grpc.EnrollmentServiceStub(stack.channel)
        issued = (await enrollments.Enroll(enrollments_pb2.EnrollRequest(
            ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr("before.example.com")))).enrollment
        assert issued.status == "ISSUED"
        await _simulator(stack, tmp_path, "POST", {"route": "any", "kind": "status", "status": 503, "count": None})

        # Two failed calls in a row: the circuit opens.
        for _ in range(2):
            assert (await _status(stack)).status == "DOWN"
        breaker = stack.gateway.observability.breakers[CA_ID]  # type: ignore[union-attr]
        assert breaker.state is CircuitState.OPEN
        enroll_calls = stack.simulator.stats.requests["enroll"]

        # New enrollments fail at once: UNAVAILABLE with RetryInfo, nothing written, nothing sent.
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await enrollments.Enroll(enrollments_pb2.EnrollRequest(
                ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr("during.example.com")))
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        info, delay = _error_details(caught.value)
        assert info.reason == "CA_CIRCUIT_OPEN" and delay is not None and 0 < delay <= 0.2
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{stack.rest_base}/v1/certificate-authorities/{CA_ID}/enrollments",
                                 json={"profileId": PROFILE_ID, "csr": make_csr("rest.example.com")}) as answer:
                # The documented enrollment status turns every domain failure into 404; the body says which.
                assert answer.status == 404
                assert (await answer.json())["error"]["code"] == "CA_CIRCUIT_OPEN"
        assert stack.simulator.stats.requests["enroll"] == enroll_calls
        ledger = stack.gateway.ledger
        assert ledger is not None
        assert await ledger.subject_entries(CA_ID, normalize_dn("CN=during.example.com")) == []
        assert await ledger.unfinished_orders() == []
        opened = await scrape(stack)

        # Look-ups answer from the ledger; health says DOWN because the circuit is open.
        certificates = certificates_pb2_grpc.CertificateServiceStub(stack.channel)
        found = await certificates.GetCertificate(certificates_pb2.GetCertificateRequest(
            ca_id=CA_ID, serial_number=issued.serial_number))
        assert found.certificate.serial_number == issued.serial_number
        down = await _status(stack)
        assert (down.status, down.message.code) == ("DOWN", "CA_CIRCUIT_OPEN")

        # The CA recovers; once half-open, the next call is the probe, and it closes the circuit.
        await _simulator(stack, tmp_path, "DELETE")
        await breaker.wait_closed()
        assert breaker.state is CircuitState.HALF_OPEN
        assert (await _status(stack)).status == "UP"
        assert breaker.state is CircuitState.CLOSED
        again = await enrollments.Enroll(enrollments_pb2.EnrollRequest(
            ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr("after.example.com")))
        assert again.enrollment.status == "ISSUED"
        closed = await scrape(stack)

    assert opened.value("cagw_ca_circuit_state", ca=CA_ID) == 2
    assert opened.value("cagw_ca_circuit_transitions_total", ca=CA_ID, state="open") == 1
    assert opened.value("cagw_calls_total", method="Enroll", transport="grpc", code="UNAVAILABLE") == 1
    assert opened.value("cagw_calls_total", method="Enroll", transport="rest", code="UNAVAILABLE") == 1
    assert opened.value("cagw_ca_calls_total", ca=CA_ID, operation="check", outcome="unavailable") == 2
    assert closed.value("cagw_ca_circuit_state", ca=CA_ID) == 0
    assert closed.value("cagw_ca_circuit_transitions_total", ca=CA_ID, state="half_open") == 1
    assert closed.value("cagw_ca_circuit_transitions_total", ca=CA_ID, state="closed") == 1
    assert closed.value("cagw_ca_calls_total", ca=CA_ID, operation="check", outcome="circuit_open") == 1
