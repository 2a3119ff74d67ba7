"""Schemathesis over the served OpenAPI document, every path parameter pinned to a value that exists
(the CA, its profile, an issued serial, its subject, its enrollment) and every enrollment carrying a
valid CSR for the real profile, so generated members reach the deep checks and the simulator.

The contract conformance of each answer is :mod:`tests.integration.test_rest_schemathesis`'s job;
here a case fails on a 5xx (other than the deliberate 501), a traceback, or an answer naming the
simulator's address (the CA's host must never reach a caller).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import hypothesis
import pytest
import pytest_asyncio
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.checks import not_a_server_error

from service.simulator import SimulatorSettings
from tests.fuzz.budget import EXAMPLES as BUDGET
from tests.fuzz.budget import SEED
from tests.integration.stack import CA_ID, PROFILE_ID, make_csr, running_stack
from tests.integration.test_rest_schemathesis import CONFIG, ENROLL_OPERATIONS, OPERATIONS, _bound_stream

EXAMPLES = max(1, BUDGET // 5)
CSR = make_csr("deep.example.com")


@dataclass
class Served:
    schema: Any
    base_url: str
    seeds: dict[str, str]
    simulator_address: str


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Served]:
    async with running_stack(tmp_path_factory.mktemp("openapi-fuzz"), simulator=SimulatorSettings(issue_after_polls=0),
                             sections={"lookups": {"ca-lookups-per-second": "1000", "ca-lookup-burst": "1000"}}
                             ) as stack, aiohttp.ClientSession() as session:
        async with session.get(stack.rest_base + "/openapi.json") as response:
            document = await response.json()
        async with session.post(f"{stack.rest_base}/v1/certificate-authorities/{CA_ID}/enrollments",
                                json={"profileId": PROFILE_ID, "csr": make_csr("seed.example.com")}) as response:
            enrollment = (await response.json())["enrollment"]
        seeds = {"caId": CA_ID, "profileId": PROFILE_ID, "serialNumber": enrollment["serialNumber"],
                 "dn": enrollment["subjectName"], "enrollmentId": enrollment["id"]}
        yield Served(schemathesis.openapi.from_dict(document, config=CONFIG), stack.rest_base.removesuffix("/cagw"),
                     seeds, stack.simulator.url.removeprefix("https://"))


def _no_leak(address: str) -> Any:
    def no_traceback_and_no_ca_address(ctx: Any, response: Any, case: schemathesis.Case) -> None:
        text = response.content.decode("utf-8", "replace")
        assert "Traceback" not in text, text[:500]
        assert address not in text, f"the CA's address reached the caller: {text[:500]}"

    return no_traceback_and_no_ca_address


def _run(served: Served, operation_id: str) -> None:
    operation = served.schema.find_operation_by_id(operation_id)
    names = {p.name for p in operation.path_parameters}
    pinned = {name: value for name, value in served.seeds.items() if name in names} or None
    strategy = operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE, path_parameters=pinned)
    checks = [not_a_server_error, _no_leak(served.simulator_address)]

    with requests.Session() as session:
        @hypothesis.settings(max_examples=EXAMPLES, derandomize=SEED is None, database=None, deadline=None,
                             phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @hypothesis.given(case=strategy)
        def check(case: schemathesis.Case) -> None:
            if operation_id in ENROLL_OPERATIONS and isinstance(case.body, dict):
                case.body["csr"] = CSR
                case.body["profileId"] = PROFILE_ID
            _bound_stream(case, operation_id)  # an endless stream ends after a second of quiet
            case.call_and_validate(base_url=served.base_url, session=session, checks=checks, timeout=10.0)

        check()


@pytest.mark.parametrize("operation_id", OPERATIONS)
async def test_operation_survives_generated_requests(served: Served, operation_id: str) -> None:
    await asyncio.to_thread(_run, served, operation_id)
