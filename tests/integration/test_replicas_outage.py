"""The database cut off under load, with two replicas: every TCP connection to PostgreSQL goes
through a relay that the test takes down (connections cut, new ones refused) while enrollments are
in flight on both replicas, then brings back on the same port.

While it is down both replicas say NOT_SERVING and callers get UNAVAILABLE with RetryInfo; once it
is back both serve again without a restart, and every enrollment ends issued, ordered once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cagw.v1 import enrollments_pb2, enrollments_pb2_grpc
from service.simulator import SimulatorSettings
from tests.crash.test_unwritable_ledger import _reason_and_delay
from tests.e2e.processes import free_port
from tests.integration.replicas import Replica, needs_postgres, running_replicas
from tests.integration.stack import CA_ID, PROFILE_ID
from tests.support.csr import make_csr
from tests.unit.ledger_backends import POSTGRES_URL
from tests.unit.test_ledger_postgres import SERVER, Relay

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture(autouse=True)
def server() -> None:
    needs_postgres()


def _enrollments(replica: Replica) -> enrollments_pb2_grpc.EnrollmentServiceStub:
    return enrollments_pb2_grpc.EnrollmentServiceStub(replica.channel)  # type: ignore[no-untyped-call]


async def _health_becomes(replica: Replica, status: int, *, within: float) -> None:
    """The replica's health stream reaches ``status`` (it answers at once when it already is)."""
    async def watch() -> None:
        stream = health_pb2_grpc.HealthStub(replica.channel).Watch(health_pb2.HealthCheckRequest(service=""))
        async for answer in stream:
            if answer.status == status:
                stream.cancel()
                return
    await asyncio.wait_for(watch(), within)


@pytest.mark.slow
async def test_fail_the_database_cut_under_load_on_two_replicas_loses_no_order_and_both_recover(
        tmp_path: Path) -> None:
    relay = Relay(free_port())
    await relay.up()
    url = POSTGRES_URL.replace(SERVER.netloc.rpartition("@")[2], f"127.0.0.1:{relay.port}", 1)
    orders = 24
    refused: list[tuple[str, float]] = []  # (reason, retry delay) of each UNAVAILABLE a caller got
    try:
        async with running_replicas(tmp_path, 2, simulator=SimulatorSettings(issue_after_polls=4), attempts=20,
                                    timer="200ms", max_timer="200ms", url=url,
                                    ledger_options={"connect-timeout": "1s", "statement-timeout": "2s"}) as (
                sim, replicas):
            for replica in replicas:
                await _health_becomes(replica, SERVING, within=10)

            async def enroll(n: int) -> enrollments_pb2.Enrollment:
                """One caller: the same request id again after each UNAVAILABLE, as a client should."""
                request = enrollments_pb2.EnrollRequest(ca_id=CA_ID, profile_id=PROFILE_ID, request_id=f"outage-{n}",
                                                        csr=make_csr(f"o{n}.outage.example.com"))
                replica = replicas[n % 2]
                while True:
                    try:
                        answer = await _enrollments(replica).Enroll(request, timeout=30)
                    except grpc.aio.AioRpcError as exc:
                        assert exc.code() is grpc.StatusCode.UNAVAILABLE, exc
                        refused.append(_reason_and_delay(exc))
                        await asyncio.sleep(0.2)  # the client's back-off (the gateway asked for 1 s)
                        continue
                    if answer.enrollment.status == "ISSUED":
                        return answer.enrollment
                    assert answer.enrollment.status != "FAILED", answer.enrollment

            callers = [asyncio.create_task(enroll(n)) for n in range(orders)]
            # Cut the database once both replicas have orders at the CA still being collected.
            while sim.stats.requests["enroll"] < orders // 2:
                await asyncio.sleep(0.01)
            await relay.down()
            for replica in replicas:
                await _health_becomes(replica, NOT_SERVING, within=10)
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await _enrollments(replica).Enroll(enrollments_pb2.EnrollRequest(
                        ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr("while-down.outage.example.com")), timeout=10)
                assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
                reason, delay = _reason_and_delay(caught.value)
                assert reason == "LEDGER_UNAVAILABLE" and delay > 0
            await relay.up()
            for replica in replicas:
                await _health_becomes(replica, SERVING, within=15)  # by itself: no restart
            answers = await asyncio.wait_for(asyncio.gather(*callers), 90)
            assert len({a.id for a in answers}) == len({a.serial_number for a in answers}) == orders
            assert sim.stats.requests["enroll"] == orders  # none ordered twice, none lost
            # Callers in flight during the cut were told UNAVAILABLE with a retry delay, never an order's failure.
            assert refused and all(reason == "LEDGER_UNAVAILABLE" and delay > 0 for reason, delay in refused)
    finally:
        await relay.down()
