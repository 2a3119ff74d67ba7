"""The gateway on a PostgreSQL ledger: a second gateway on the same ledger (and the same CA) finishes
the order the first one left pending, and answers for it over gRPC and REST."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import grpc
import pytest

from cagw.v1 import enrollments_pb2, enrollments_pb2_grpc
from service.app import Gateway
from service.simulator import SimulatorSettings
from tests.integration.stack import CA_ID, PROFILE_ID, running_stack
from tests.support.csr import make_csr
from tests.unit.ledger_backends import POSTGRES_URL, postgres_reason, postgres_schema


@pytest.fixture
def server() -> None:
    reason = postgres_reason()
    if reason is not None:
        pytest.skip(reason)


async def test_ok_a_second_gateway_on_the_shared_ledger_finishes_a_pending_order(server: None,
                                                                                 tmp_path: Path) -> None:
    async with postgres_schema() as schema:
        # Leases renewed (and due orders claimed) every half second: the second gateway takes the order soon.
        ledger = {"ledger": {"url": POSTGRES_URL, "schema": schema, "lease-time": "2s", "lease-heartbeat": "500ms"}}
        # Issued only at the fourth collect: with two attempts the first gateway answers pending.
        async with running_stack(tmp_path, simulator=SimulatorSettings(issue_after_polls=3), attempts=2,
                                 extra_top=ledger) as first:
            pending = (await enrollments_pb2_grpc.EnrollmentServiceStub(first.channel).Enroll(
                enrollments_pb2.EnrollRequest(ca_id=CA_ID, profile_id=PROFILE_ID,
                                              csr=make_csr("pg-shared.example.com")))).enrollment
            assert pending.status == "PENDING"
            await first.gateway.stop()  # leaves the order unfinished in the shared ledger

            second = Gateway(first.config)
            await second.start()
            try:
                assert second.grpc is not None and second.grpc.port and second.rest is not None
                async with grpc.aio.insecure_channel(f"127.0.0.1:{second.grpc.port}") as channel:
                    last = None
                    async for message in enrollments_pb2_grpc.EnrollmentServiceStub(channel).WatchEnrollment(
                            enrollments_pb2.WatchEnrollmentRequest(ca_id=CA_ID, enrollment_id=pending.id),
                            timeout=20):
                        last = message.event
                assert last is not None and last.state == enrollments_pb2.ENROLLMENT_STATE_ISSUED, last
                url = f"http://127.0.0.1:{second.rest.port}/cagw/v1/certificate-authorities/{CA_ID}/enrollments/"
                async with aiohttp.ClientSession() as http, http.get(url + pending.id) as answer:
                    body = await answer.json()
                assert answer.status == 200 and body["enrollment"]["status"] == "ISSUED"
                assert body["enrollment"]["sectigoOrderId"] == pending.sectigo_order_id
            finally:
                await second.stop()
