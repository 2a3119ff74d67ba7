"""A ledger that cannot be written — its disk full, its file read-only — under a live gateway: callers get
UNAVAILABLE with a retry delay, every health endpoint says NOT_SERVING, look-ups still answer, nothing
is corrupted, and once it can be written again the gateway serves by itself and finishes its orders.

A full disk is SQLite's ``max_page_count`` set to the pages the file has (it cannot grow), a read-only
file is ``query_only`` on the writer connection: ``SQLiteLedger.restrict_writes``, no root needed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import grpc
import pytest
from cagw.v1 import certificates_pb2, certificates_pb2_grpc, enrollments_pb2, enrollments_pb2_grpc
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from service.ledger import SQLiteLedger
from service.ledger.sqlite.check import check_database
from service.observability.ledger import unwrap_ledger
from service.simulator import SimulatorSettings
from tests.integration.stack import CA_ID, PROFILE_ID, Stack, running_stack
from tests.support.csr import make_csr


def _request(name: str) -> enrollments_pb2.EnrollRequest:
    return enrollments_pb2.EnrollRequest(ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr(name))


def _reason_and_delay(error: grpc.aio.AioRpcError) -> tuple[str, float]:
    reason, delay = "", 0.0
    status = rpc_status.from_call(error)
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            delay = retry.retry_delay.ToNanoseconds() / 1e9
    return reason, delay


async def _ops_health(stack: Stack) -> int:
    assert stack.gateway.ops is not None
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{stack.gateway.ops.port}/health") as response:
            return response.status


async def _serving_again(stack: Stack, *, within: float) -> None:
    async def watch() -> None:
        stream = health_pb2_grpc.HealthStub(stack.channel).Watch(health_pb2.HealthCheckRequest(service=""))
        async for answer in stream:
            if answer.status == health_pb2.HealthCheckResponse.SERVING:
                stream.cancel()
                return

    await asyncio.wait_for(watch(), within)


async def _fill_until_refused(stub: enrollments_pb2_grpc.EnrollmentServiceStub) -> tuple[list[str],
                                                                                         grpc.aio.AioRpcError]:
    """Enroll until the ledger refuses (a full file takes a few more orders into its free pages)."""
    accepted = []
    for n in range(200):
        try:
            accepted.append((await stub.Enroll(_request(f"fill-{n}.example.com"), timeout=10)).enrollment.id)
        except grpc.aio.AioRpcError as error:
            return accepted, error
    raise AssertionError("the full ledger took 200 orders")


@pytest.mark.parametrize("fault", ["full", "read_only"], ids=["fail-disk-full", "fail-read-only-file"])
async def test_fail_unwritable_ledger_is_unavailable_and_recovers_by_itself(tmp_path: Path, fault: str) -> None:
    async with running_stack(tmp_path, simulator=SimulatorSettings(issue_after_polls=2)) as stack:
        stub = enrollments_pb2_grpc.EnrollmentServiceStub(stack.channel)
        before = (await stub.Enroll(_request("before.example.com"))).enrollment
        ledger = unwrap_ledger(stack.gateway.ledger)  # type: ignore[arg-type]
        assert isinstance(ledger, SQLiteLedger)
        await ledger.restrict_writes(**{fault: True})

        accepted, refused = await _fill_until_refused(stub)
        reason, delay = _reason_and_delay(refused)
        health_down = (stack.gateway.health.serving(), await _ops_health(stack),
                       (await health_pb2_grpc.HealthStub(stack.channel).Check(health_pb2.HealthCheckRequest())).status)
        looked_up = await certificates_pb2_grpc.CertificateServiceStub(stack.channel).GetCertificate(
            certificates_pb2.GetCertificateRequest(ca_id=CA_ID, serial_number=before.serial_number))
        sound_meanwhile = check_database(ledger.path)

        await ledger.restrict_writes()  # writable again: nothing else is done by hand
        await _serving_again(stack, within=10)
        after = (await stub.Enroll(_request("after.example.com"))).enrollment
        # Orders accepted before the ledger refused, and stopped on it, are taken up again and finish.
        for enrollment_id in accepted:
            async for message in stub.WatchEnrollment(enrollments_pb2.WatchEnrollmentRequest(
                    ca_id=CA_ID, enrollment_id=enrollment_id), timeout=20):
                last = message.event.state
            assert last == enrollments_pb2.ENROLLMENT_STATE_ISSUED, enrollment_id
        unfinished = await ledger.unfinished_orders()
        at_ca = len(list(stack.simulator.manager.book))
        known = [o for o in await ledger.list_orders(limit=1000) if o.ca_order_id]

    assert refused.code() == grpc.StatusCode.UNAVAILABLE
    assert "cannot be written" in (refused.details() or "")
    assert (reason, delay) == ("LEDGER_UNWRITABLE", 5.0)
    assert health_down == (False, 503, health_pb2.HealthCheckResponse.NOT_SERVING)
    assert looked_up.certificate.serial_number == before.serial_number
    assert sound_meanwhile.ok, sound_meanwhile.findings
    assert after.status == "ISSUED" and unfinished == []
    assert at_ca == len(known)  # one CA order per ledger order: nothing ordered twice or unrecorded
    report = check_database(tmp_path / "ledger.db")
    assert report.ok, report.findings
