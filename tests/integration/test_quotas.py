"""Order limits: per client (pending, per hour) and per CA, checked before an order is written or sent.

Each limit is reached for real against the simulator (whose orders wait for an
approval that never comes, so they stay pending), and the refusal is shown on
gRPC (``RESOURCE_EXHAUSTED`` with ``RetryInfo``) and REST (429 with
``Retry-After``), with the simulator's order count unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from cagw.v1 import enrollments_pb2, enrollments_pb2_grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from service.app import Gateway
from service.simulator import SimulatorSettings
from tests.integration.stack import CA_ID, PROFILE_ID, Stack, make_csr, running_stack

PENDING_FOREVER = SimulatorSettings(require_approval=True)
EVERY = ["read", "enroll", "renew", "revoke"]


def _team(**limits: str) -> list[dict[str, Any]]:
    return [{"name": "team", "grants": [{"cas": ["*"], "operations": EVERY, "names": ["*.example.com"]}],
             "limits": limits}]


async def _enroll(channel: grpc.aio.Channel, cn: str, request_id: str = "",
                  csr: str = "") -> enrollments_pb2.Enrollment:
    stub = enrollments_pb2_grpc.EnrollmentServiceStub(channel)
    answer = await stub.Enroll(enrollments_pb2.EnrollRequest(ca_id=CA_ID, profile_id=PROFILE_ID,
                                                             csr=csr or make_csr(cn), request_id=request_id), timeout=10)
    return answer.enrollment


async def _refused(stack: Stack, channel: grpc.aio.Channel, cn: str) -> tuple[str, float]:
    """Refused over gRPC (reason, RetryInfo seconds) and over REST (429 with Retry-After)."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _enroll(channel, cn)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(caught.value)  # type: ignore[arg-type]
    assert status is not None
    retry = next(d for d in status.details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR))
    info = error_details_pb2.RetryInfo()
    retry.Unpack(info)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{stack.rest_base}/v1/certificate-authorities/{CA_ID}/enrollments",
                             json={"profileId": PROFILE_ID, "csr": make_csr(cn)}, ssl=stack.client_ssl) as response:
            assert response.status == 429
            assert int(response.headers["Retry-After"]) >= 1
            assert (await response.json())["error"]["code"] == "QUOTA_EXCEEDED"
    return caught.value.details() or "", info.retry_delay.seconds


async def test_fail_max_pending_of_a_client(tmp_path: Path) -> None:
    async with running_stack(tmp_path, simulator=PENDING_FOREVER, client_name="team",
                             clients=_team(**{"max-pending": "2"})) as stack:
        csr = make_csr("a.example.com")
        first = await _enroll(stack.channel, "a.example.com", request_id="first", csr=csr)
        await _enroll(stack.channel, "b.example.com")
        assert first.status == "PENDING" and len(stack.simulator.state) == 2
        message, retry = await _refused(stack, stack.channel, "c.example.com")
        assert "limits.max-pending 2" in message and retry > 0
        assert len(stack.simulator.state) == 2  # nothing was sent
        assert stack.gateway.observability is not None
        assert stack.gateway.observability.metrics.registry.get_sample_value(
            "cagw_quota_refusals_total", {"client": "team", "reason": "max-pending"}) == 2  # gRPC and REST
        again = await _enroll(stack.channel, "a.example.com", request_id="first", csr=csr)  # a retry: no new order
        assert again.id == first.id


async def test_fail_max_pending_orders_of_a_ca(tmp_path: Path) -> None:
    async with running_stack(tmp_path, simulator=PENDING_FOREVER, client_name="admin",
                             extra_gateway={"max-pending-orders": "1"}) as stack:
        await _enroll(stack.channel, "a.example.com")
        message, _ = await _refused(stack, stack.channel, "b.example.com")
        assert "gateway.max-pending-orders 1" in message and len(stack.simulator.state) == 1


async def test_fail_orders_per_hour_survive_a_restart(tmp_path: Path) -> None:
    async with running_stack(tmp_path, client_name="team", clients=_team(**{"orders-per-hour": "2"})) as stack:
        for cn in ("a.example.com", "b.example.com"):
            assert (await _enroll(stack.channel, cn)).status == "ISSUED"
        message, retry = await _refused(stack, stack.channel, "c.example.com")
        assert "limits.orders-per-hour 2" in message and 3000 < retry <= 3600
        await stack.gateway.stop()
        restarted = Gateway(stack.config)  # the same ledger: the count comes from it
        await restarted.start()
        try:
            assert restarted.grpc is not None and restarted.rest is not None
            assert stack.credentials is not None
            stack.rest_base = f"https://127.0.0.1:{restarted.rest.port}/cagw"
            async with grpc.aio.secure_channel(f"127.0.0.1:{restarted.grpc.port}", stack.credentials) as channel:
                await _refused(stack, channel, "d.example.com")
        finally:
            await restarted.stop()
        assert len(stack.simulator.state) == 2
