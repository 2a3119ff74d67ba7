"""The ops listener answers health without client certificates, and says DOWN while stopping."""

from __future__ import annotations

from pathlib import Path

import aiohttp

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
