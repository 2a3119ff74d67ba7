"""Property-based run of the served OpenAPI document against the live REST listener.

The whole stack (simulator + gateway with its real servicers) runs once for the
module in the session event loop. Schemathesis is synchronous (``requests``), so
each operation's Hypothesis run happens in a worker thread
(``asyncio.to_thread``) while the loop keeps serving.

Every operation of the served document runs in up to three modes:

``positive``  data the document allows (the CA id pinned to the configured CA,
              so requests reach the servicers instead of stopping at "no such CA");
``negative``  data the document forbids (for operations with a query or a body:
              path values are free strings, nothing there can be invalid);
``seeded``    like positive, with path values that exist (a serial, a DN, an
              enrollment id) and bodies made usable (a valid CSR, a revocation
              with a known reason) so generated members reach issuance and
              revocation; only for operations where this differs from positive.

A 5xx other than the deliberate 501 (DESIGN decision 16), a status, header,
content type or body the document does not describe, an NDJSON line that does
not match its documented schema, or a negative request that is accepted is a
failure. Examples are bounded and derandomized (the same cases every run).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import hypothesis
import pytest
import pytest_asyncio
import requests
import schemathesis
from google.api import annotations_pb2
from hypothesis import HealthCheck, Phase
from openapi_schema_validator import OAS30ReadValidator
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from cagw.v1 import certificate_authorities_pb2, certificates_pb2, enrollments_pb2, inventory_pb2, subjects_pb2
from service.simulator import SimulatorSettings
from tests.integration.stack import CA_ID, PROFILE_ID, running_stack
from tests.support.csr import make_csr

MAX_EXAMPLES = 25
REQUEST_TIMEOUT = 10.0
NDJSON = "application/x-ndjson"

# 501 is a deliberate answer (hold, CA properties); every other 5xx is a bug.
# Built here rather than discovered, so a stray schemathesis.toml cannot change the run.
CONFIG = schemathesis.Config.from_dict({
    "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "501"]}},
})

METHODS = {f"{service.name}_{method.name}": method
           for module in (certificate_authorities_pb2, enrollments_pb2, certificates_pb2, subjects_pb2, inventory_pb2)
           for service in module.DESCRIPTOR.services_by_name.values()
           for method in service.methods}
# One operation per RPC (operationId "<Service>_<Method>"), one per additional binding
# ("<Service>_<Method>_<n>"), plus the health endpoint.
EXTRA_BINDINGS = {f"{name}_{n}": method for name, method in METHODS.items()
                  for n, _ in enumerate(method.GetOptions().Extensions[annotations_pb2.http].additional_bindings, 1)}
OPERATIONS = [*METHODS, *EXTRA_BINDINGS, "health"]
ENROLL_OPERATIONS = frozenset({"EnrollmentService_Enroll", "EnrollmentService_EnrollAndWatch"})
ACTION_OPERATIONS = frozenset({"CertificateService_PerformCertificateAction", "SubjectService_PerformSubjectAction"})
# Operations with a path value beyond caId that seeding replaces by one that exists.
SEEDED_PATHS = frozenset({"CertificateAuthorityService_GetProfile", "EnrollmentService_GetEnrollment",
                          "EnrollmentService_GetEnrollment_1",
                          "EnrollmentService_WatchEnrollment", "CertificateService_GetCertificate",
                          "SubjectService_GetSubject", "CertificateInventoryService_GetRenewalInfo"})
REVOCATION_REASONS = ("unspecified", "keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation")


@dataclass
class Target:
    schema: Any  # schemathesis OpenApiSchema
    document: dict[str, Any]  # the served OpenAPI document
    base_url: str  # scheme://host:port; the document's paths carry the context path
    seeds: dict[str, str]  # path values that exist in the gateway (seeded mode)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def target(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Target]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    # Issued at the first collect: a generated enrollment that gets through completes in ~50 ms.
    async with running_stack(tmp, simulator=SimulatorSettings(issue_after_polls=0)) as stack:
        async with aiohttp.ClientSession() as session:
            async with session.get(stack.rest_base + "/openapi.json") as response:
                assert response.status == 200
                document = await response.json()
            body = {"profileId": PROFILE_ID, "csr": make_csr("seed.example.com")}
            async with session.post(f"{stack.rest_base}/v1/certificate-authorities/{CA_ID}/enrollments",
                                    json=body) as response:
                assert response.status == 200
                enrollment = (await response.json())["enrollment"]
        seeds = {"caId": CA_ID, "profileId": PROFILE_ID, "serialNumber": enrollment["serialNumber"],
                 "dn": enrollment["subjectName"], "enrollmentId": enrollment["id"]}
        yield Target(schema=schemathesis.openapi.from_dict(document, config=CONFIG), document=document,
                     base_url=stack.rest_base.removesuffix("/cagw"), seeds=seeds)


# ---------------------------------------------------------------- checks


def ndjson_lines_conform(document: dict[str, Any]) -> Callable[..., None]:
    """A check for what schemathesis skips (it has no NDJSON deserializer): every line of a stream
    is one JSON object matching the documented line schema, with a ``result`` or a final ``error``."""
    components = {"components": document["components"]}

    def ndjson_lines_conform(ctx: Any, response: Any, case: schemathesis.Case) -> None:
        content_type = next(iter(response.headers.get("content-type", [""])), "")
        if not content_type.startswith(NDJSON):
            return
        documented = case.operation.definition.raw["responses"][str(response.status_code)]["content"][NDJSON]
        validator = OAS30ReadValidator({**documented["schema"], **components})
        lines = response.content.decode("utf-8").splitlines()
        for number, text in enumerate(lines, 1):
            line = json.loads(text)
            errors = sorted(validator.iter_errors(line), key=str)
            assert not errors, f"NDJSON line {number} does not match the document: {errors[0].message}\n{text}"
            assert len(line) == 1 and ("result" in line or "error" in line), f"line {number}: {text}"
            assert "error" not in line or number == len(lines), f"line {number}: an error line must be the last"

    return ndjson_lines_conform


# A dry run reports what is wrong with a request instead of failing on it: it answers 200 with
# `allowed: false` and every refusal, so "negative data is rejected" cannot hold for it (every other
# check still does; a missing profileId, the one field the contract requires, is a 400).
REPORTS_INVALID_DATA = frozenset({"EnrollmentService_CheckEnrollment"})


def _checks(target: Target, mode: str, operation: str = "") -> list[Callable[..., Any]]:
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
              response_schema_conformance, ndjson_lines_conform(target.document)]
    rejects = mode == "negative" and operation not in REPORTS_INVALID_DATA
    return [*checks, negative_data_rejection] if rejects else checks


# ---------------------------------------------------------------- the run


def _seed(case: schemathesis.Case, operation_id: str) -> None:
    """Seeded mode: make the generated body usable enough to get past validation.

    Enrollments get a fresh valid CSR and the configured profile (every other
    member stays generated), actions a revocation with a known reason.
    """
    body = case.body
    if not isinstance(body, dict):
        return
    if operation_id in ENROLL_OPERATIONS:
        body["csr"] = make_csr("fuzz.example.com")
        body["profileId"] = PROFILE_ID
    elif isinstance(body.get("action"), dict):
        body["action"]["type"] = "RevokeAction"
        body["action"]["reason"] = REVOCATION_REASONS[len(json.dumps(body)) % len(REVOCATION_REASONS)]


# Streams that go on until the caller ends them: bounded here when the case leaves the bound out,
# sets it to 0 ("no bound", a valid value) or to a number of seconds the request timeout would not
# wait for, so a valid request ends instead of running into the timeout. An invalid bound stays as
# generated. A valid case (positive, seeded) always gets the 1 s bound.
ENDLESS_STREAMS = {"CertificateInventoryService_WatchCertificateEvents": "idleSeconds"}


def _outlasts_the_timeout(value: object) -> bool:
    try:
        return float(str(value)) >= REQUEST_TIMEOUT / 2
    except ValueError:
        return False


def _bound_stream(case: schemathesis.Case, operation_id: str, mode: str = "positive") -> None:
    name = ENDLESS_STREAMS.get(operation_id)
    if name is None:
        return
    value = (case.query or {}).get(name, 0)
    if mode != "negative" or str(value) in ("0", "00", "-0", "+0") or _outlasts_the_timeout(value):
        case.query = {**(case.query or {}), name: 1}


def _run(target: Target, operation_id: str, mode: str) -> None:
    """Hypothesis over one operation in ``mode`` (blocking: runs in a worker thread)."""
    operation = target.schema.find_operation_by_id(operation_id)
    names = {p.name for p in operation.path_parameters}
    seeds = target.seeds if mode == "seeded" else {"caId": CA_ID}
    pinned = {name: value for name, value in seeds.items() if name in names} or None
    generation = schemathesis.GenerationMode.NEGATIVE if mode == "negative" else schemathesis.GenerationMode.POSITIVE
    strategy = operation.as_strategy(generation_mode=generation, path_parameters=pinned)
    checks = _checks(target, mode, operation_id)

    with requests.Session() as session:
        @hypothesis.settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
                             phases=[Phase.explicit, Phase.generate, Phase.shrink],
                             suppress_health_check=list(HealthCheck))
        @hypothesis.given(case=strategy)
        def check(case: schemathesis.Case) -> None:
            if mode == "seeded":
                _seed(case, operation_id)
            _bound_stream(case, operation_id, mode)
            case.call_and_validate(base_url=target.base_url, session=session, checks=checks,
                                   timeout=REQUEST_TIMEOUT)

        try:
            check()
        except hypothesis.errors.Unsatisfiable:
            pytest.skip(f"nothing of {operation_id} can be made invalid")


def _negatable(operation_id: str) -> bool:
    """True when the request has a field outside the path (a query parameter or a body member).

    Path values are free strings, so only those fields can be made invalid.
    """
    method = METHODS.get(operation_id)
    if method is None:
        return False
    rule = method.GetOptions().Extensions[annotations_pb2.http]
    bound = set(re.findall(r"\{([^}=]+)", getattr(rule, rule.WhichOneof("pattern"))))
    return any(field.name not in bound for field in method.input_type.fields)


RUNS = [pytest.param(operation, mode, id=f"{operation}-{mode}")
        for operation in OPERATIONS
        for mode in ("positive", "negative", "seeded")
        if (mode != "negative" or _negatable(operation))
        and (mode != "seeded" or operation in SEEDED_PATHS | ENROLL_OPERATIONS | ACTION_OPERATIONS)]


@pytest.mark.parametrize(("operation_id", "mode"), RUNS)
async def test_operation_conforms(target: Target, operation_id: str, mode: str) -> None:
    await asyncio.to_thread(_run, target, operation_id, mode)


async def test_every_operation_of_the_document_is_run(target: Target) -> None:
    """OPERATIONS comes from the descriptors; the served document must hold exactly those."""
    served = {operation["operationId"] for item in target.document["paths"].values() for operation in item.values()}
    assert served == set(OPERATIONS)
