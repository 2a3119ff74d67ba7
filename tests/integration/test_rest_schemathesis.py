"""Property-based run of the served OpenAPI document against the live REST listener.

The whole stack (simulator + gateway with its real servicers) runs once for the
module in the session event loop. Schemathesis is synchronous (``requests``), so
each operation's Hypothesis run happens in a worker thread
(``asyncio.to_thread``) while the loop keeps serving. Every operation of the
document is run twice, with generated valid data (``positive``) and with data
that breaks the schema (``negative``); the CA id is pinned to the configured CA
so the requests reach the servicers instead of stopping at "no such CA".

A 5xx, an answer whose body, status or headers the document does not describe,
or a negative request that is accepted is a failure. Examples are bounded and
derandomized (the same cases every run), so CI is stable.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import hypothesis
import pytest
import pytest_asyncio
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cagw.v1 import certificate_authorities_pb2, certificates_pb2, enrollments_pb2, subjects_pb2
from service.simulator import SimulatorSettings
from tests.integration.stack import CA_ID, running_stack

MAX_EXAMPLES = 25
REQUEST_TIMEOUT = 10.0
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
NEGATIVE_CHECKS = [*CHECKS, negative_data_rejection]

# One operation per RPC (operationId "<Service>_<Method>") plus the health endpoint.
OPERATIONS = [f"{service.name}_{method.name}"
              for module in (certificate_authorities_pb2, enrollments_pb2, certificates_pb2, subjects_pb2)
              for service in module.DESCRIPTOR.services_by_name.values()
              for method in service.methods] + ["health"]


@dataclass
class Target:
    schema: Any  # schemathesis OpenApiSchema
    base_url: str  # scheme://host:port; the document's paths carry the context path


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def target(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Target]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    # Issued on the first collect: a request that does get through completes in ~50 ms.
    async with running_stack(tmp, simulator=SimulatorSettings(issue_after_polls=0)) as stack:
        async with aiohttp.ClientSession() as session:
            async with session.get(stack.rest_base + "/openapi.json") as response:
                assert response.status == 200
                document = await response.json()
        base_url = stack.rest_base.removesuffix("/cagw")
        yield Target(schema=schemathesis.openapi.from_dict(document), base_url=base_url)


def _run(target: Target, operation_id: str, mode: schemathesis.GenerationMode) -> None:
    """Hypothesis over one operation in ``mode`` (blocking: runs in a worker thread)."""
    operation = target.schema.find_operation_by_id(operation_id)
    pinned = {"caId": CA_ID} if any(p.name == "caId" for p in operation.path_parameters) else None
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=pinned)
    checks = NEGATIVE_CHECKS if mode is schemathesis.GenerationMode.NEGATIVE else CHECKS

    with requests.Session() as session:
        @hypothesis.settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
                             phases=[Phase.explicit, Phase.generate, Phase.shrink],
                             suppress_health_check=list(HealthCheck))
        @hypothesis.given(case=strategy)
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=target.base_url, session=session, checks=checks,
                                   timeout=REQUEST_TIMEOUT)

        check()


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
                         ids=["positive", "negative"])
@pytest.mark.parametrize("operation_id", OPERATIONS)
async def test_operation_conforms(target: Target, operation_id: str, mode: schemathesis.GenerationMode) -> None:
    await asyncio.to_thread(_run, target, operation_id, mode)
