"""Health: the ops listener answers without client certificates and says DOWN while draining or
stopping, and the REST and gRPC health endpoints follow the same source."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.integration.stack import running_stack


async def test_ok_ops_health_is_up_while_serving_and_down_once_stopping(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        ops = stack.gateway.ops
        assert ops is not None and ops.port
        url = f"http://127.0.0.1:{ops.port}/health"
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as response:
                assert (response.status, await response.json()) == (200, {"status": "UP"})
            stack.gateway.draining = True
            async with http.get(url) as response:
                assert (response.status, await response.json()) == (503, {"status": "DOWN"})
            async with http.get(f"{stack.rest_base}/health") as response:
                assert response.status == 503


async def test_ok_grpc_health_follows_the_same_source(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        stub = health_pb2_grpc.HealthStub(stack.channel)
        request = health_pb2.HealthCheckRequest(service="cagw.v1.EnrollmentService")
        assert (await stub.Check(request)).status == health_pb2.HealthCheckResponse.SERVING
        updates = stub.Watch(health_pb2.HealthCheckRequest(service=""))
        assert (await updates.read()).status == health_pb2.HealthCheckResponse.SERVING
        stack.gateway.draining = True
        assert (await updates.read()).status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert (await stub.Check(request)).status == health_pb2.HealthCheckResponse.NOT_SERVING
        stack.gateway.draining = False
        assert (await updates.read()).status == health_pb2.HealthCheckResponse.SERVING
        updates.cancel()
