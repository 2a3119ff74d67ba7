"""Collect attempts of a live gateway under a failing CA: counted, timed against their schedule, and
held back by the CA's open circuit without spending attempts (simulator fault injection over TLS)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import aiohttp
from cagw.v1 import enrollments_pb2, enrollments_pb2_grpc

from service.simulator import SimulatorSettings
from tests.integration.observed import scrape
from tests.integration.stack import CA_ID, PROFILE_ID, Stack, running_stack
from tests.support.csr import make_csr

OPEN_FOR = 0.4
BREAKER = {"circuit-breaker": {"failure-threshold": "2", "window": "30s", "open-for": f"{OPEN_FOR}s"},
           "retry-attempts": "1"}  # one HTTP try per call: each failing collect is one failure


async def _fault(stack: Stack, tmp: Path, body: Any) -> None:
    context = ssl.create_default_context(cafile=str(tmp / "trust.pem"))
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{stack.simulator.url}/__simulator/faults", json=body, ssl=context) as response:
            assert response.status < 300, await response.text()


async def test_ok_collects_wait_for_the_open_circuit_and_every_attempt_is_counted(tmp_path: Path) -> None:
    simulator = SimulatorSettings(issue_after_polls=2)
    async with running_stack(tmp_path, simulator=simulator, attempts=8, extra_gateway=BREAKER) as stack:
        await _fault(stack, tmp_path, {"route": "collect", "kind": "status", "status": 503, "count": 2})
        stub = enrollments_pb2_grpc.EnrollmentServiceStub(stack.channel)
        answer = await stub.Enroll(enrollments_pb2.EnrollRequest(ca_id=CA_ID, profile_id=PROFILE_ID,
                                                                 csr=make_csr("late.example.com")))
        assert answer.enrollment.status == "ISSUED"
        found = await scrape(stack)
        order = await stack.gateway.ledger.get_order(answer.enrollment.id)  # type: ignore[union-attr]
        collects = stack.simulator.stats.requests["collect"]
        enrolls = stack.simulator.stats.requests["enroll"]

    # Two 503s open the circuit; the third attempt waits for it, then two pending answers, then issued.
    assert found.value("cagw_collect_attempts_total", ca=CA_ID, outcome="unavailable") == 2
    assert found.value("cagw_collect_attempts_total", ca=CA_ID, outcome="pending") == 2
    assert found.value("cagw_collect_attempts_total", ca=CA_ID, outcome="issued") == 1
    assert found.value("cagw_collect_lateness_seconds_count", ca=CA_ID) == 5
    # The attempt held back by the open circuit ran late by most of its open time; the others did not.
    on_time = found.value("cagw_collect_lateness_seconds_bucket", ca=CA_ID, le="0.25")
    assert on_time == 4
    assert found.value("cagw_ca_circuit_transitions_total", ca=CA_ID, state="closed") == 1
    assert found.total("cagw_ca_calls_total", ca=CA_ID, operation="collect", outcome="circuit_open") == 0
    assert order is not None and order.attempts == 5  # no attempt spent on the open circuit
    # Each attempt reached the CA (the issued one downloads the certificate with its chain, in one
    # request); ordered once.
    assert (collects, enrolls) == (5, 1)
