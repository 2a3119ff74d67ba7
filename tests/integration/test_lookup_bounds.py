"""Look-ups that reach the CA are bounded: a burst of questions is not a burst of CA calls.

Counted at the simulator (its per-route request statistics): searching a serial costs a ``list``
call, a CA status costs a ``types`` call.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.stack import CA_ID, Stack, running_stack

CERTIFICATES = f"/v1/certificate-authorities/{CA_ID}/certificates/"


async def _get(http: aiohttp.ClientSession, stack: Stack, path: str) -> tuple[int, dict[str, Any], str]:
    async with http.get(stack.rest_base + path) as response:
        return response.status, await response.json(), response.headers.get("Retry-After", "")


async def test_ok_a_burst_of_look_ups_of_an_unknown_serial_is_one_search_at_the_ca(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack, aiohttp.ClientSession() as http:
        searches = stack.simulator.stats.requests
        before = searches["list"]
        burst = await asyncio.gather(*(_get(http, stack, CERTIFICATES + "0badc0de") for _ in range(30)))
        assert {(status, body["error"]["code"]) for status, body, _ in burst} == {(404, "CERTIFICATE_NOT_FOUND")}
        for _ in range(20):  # asked again and again: answered from memory
            status, body, _ = await _get(http, stack, CERTIFICATES + "0BADC0DE")
            assert status == 404 and "asked recently" in body["error"]["message"]
        assert searches["list"] - before == 1


async def test_fail_each_caller_s_searches_at_the_ca_are_rate_limited(tmp_path: Path) -> None:
    lookups = {"ca-lookups-per-second": "0.01", "ca-lookup-burst": "2", "unknown-serial-ttl": "0s"}
    async with running_stack(tmp_path, sections={"lookups": lookups}) as stack, aiohttp.ClientSession() as http:
        before = stack.simulator.stats.requests["list"]
        answers = [await _get(http, stack, CERTIFICATES + f"{serial:x}") for serial in range(0xA0, 0xA5)]
        assert [status for status, _, _ in answers] == [404, 404, 429, 429, 429]
        _, body, retry_after = answers[2]
        assert body["error"]["code"] == "LOOKUP_RATE_EXCEEDED" and int(retry_after) >= 1
        assert stack.simulator.stats.requests["list"] - before == 2


async def test_ok_ca_status_is_asked_once_for_a_burst(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack, aiohttp.ClientSession() as http:
        before = stack.simulator.stats.requests["types"]
        path = f"/v1/certificate-authorities/{CA_ID}/status"
        answers = await asyncio.gather(*(_get(http, stack, path) for _ in range(25)))
        answers += [await _get(http, stack, path) for _ in range(10)]
        assert {(status, body["status"]) for status, body, _ in answers} == {(200, "UP")}
        assert stack.simulator.stats.requests["types"] - before == 1


@pytest.mark.parametrize("serial", ["", "zz", "-1"])
async def test_fail_a_serial_that_is_not_one_costs_nothing(tmp_path: Path, serial: str) -> None:
    async with running_stack(tmp_path) as stack, aiohttp.ClientSession() as http:
        before = stack.simulator.stats.requests["list"]
        async with http.get(stack.rest_base + CERTIFICATES + serial) as response:
            assert response.status in (400, 404)
        assert stack.simulator.stats.requests["list"] == before
