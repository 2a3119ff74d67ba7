"""Random input through both transports of a live gateway: no 5xx, no INTERNAL, no hang, no traceback.

* gRPC: random bytes (and valid messages with random field values) as the request of every
  method of the contract, sent raw on a real channel;
* REST: enrollment bodies with the CA and profile that exist and a valid CSR, whose other members
  are hostile (SANs, subjectDn, validityPeriod, maxWait, properties), so the cases go past the
  first checks; and random bytes as the body of every route.

Each call has a deadline: a hang fails the test instead of stalling the suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import pytest
import pytest_asyncio
from google.protobuf.descriptor import FieldDescriptor
from hypothesis import given, seed
from hypothesis import strategies as st

from cagw.v1 import certificate_authorities_pb2, certificates_pb2, enrollments_pb2, inventory_pb2, subjects_pb2
from service.simulator import SimulatorSettings
from tests.fuzz.budget import EXAMPLES, SEED, fuzz_settings
from tests.integration.stack import CA_ID, PROFILE_ID, Stack, make_csr, running_stack

DEADLINE = 10.0
FORBIDDEN_CODES = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DEADLINE_EXCEEDED}
METHODS = [(f"/{service.full_name}/{method.name}", method)
           for module in (certificate_authorities_pb2, enrollments_pb2, certificates_pb2, subjects_pb2, inventory_pb2)
           for service in module.DESCRIPTOR.services_by_name.values() for method in service.methods]
_seeded = seed(int(SEED)) if SEED else (lambda f: f)
CSR = make_csr("fuzz.example.com")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    # Issued at the first collect, so a fuzzed enrollment that gets through is over in milliseconds.
    async with running_stack(tmp_path_factory.mktemp("fuzz"), simulator=SimulatorSettings(issue_after_polls=0),
                             sections={"lookups": {"ca-lookups-per-second": "1000", "ca-lookup-burst": "1000"}}
                             ) as running:
        yield running


# Streams that go on until the caller ends them (when the request sets no bound): a first answer,
# or a quiet stream still open after a moment, is what they should do; the call is then cancelled.
ENDLESS = {"/cagw.v1.CertificateInventoryService/WatchCertificateEvents"}
QUIET = 0.2


async def _grpc_call(stack: Stack, path: str, streaming: bool, payload: bytes) -> None:
    try:
        if streaming and path in ENDLESS:
            call = stack.channel.unary_stream(path)(payload, timeout=DEADLINE)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.read(), QUIET)
            call.cancel()
        elif streaming:
            call = stack.channel.unary_stream(path)(payload, timeout=DEADLINE)
            async for _ in call:
                pass
        else:
            await stack.channel.unary_unary(path)(payload, timeout=DEADLINE)
    except grpc.aio.AioRpcError as exc:
        assert exc.code() not in FORBIDDEN_CODES, f"{path}: {exc.code()} {exc.details()}"
        assert "Traceback" not in (exc.details() or "")


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type == FieldDescriptor.TYPE_STRING:
        return st.one_of(st.text(max_size=40), st.sampled_from([CA_ID, PROFILE_ID, CSR, "CN=a,O=b", "0badc0de"]))
    if field.type == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if field.type in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_ENUM):
        return st.integers(-(2 ** 31), 2 ** 31 - 1)
    if field.type == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=20)
    return st.nothing()


def _message(descriptor: Any) -> st.SearchStrategy[bytes]:
    """A valid message of the request type with random values in its scalar top-level fields."""
    scalars = {f.name: _scalar(f) for f in descriptor.fields
               if not f.is_repeated and f.message_type is None}

    def build(values: dict[str, Any]) -> bytes:
        message = descriptor._concrete_class()  # noqa: SLF001 - the generated class of the descriptor
        for name, value in values.items():
            setattr(message, name, value)
        return bytes(message.SerializeToString())

    return st.fixed_dictionaries({}, optional=scalars).map(build)


@pytest.mark.parametrize(("path", "method"), METHODS, ids=[path for path, _ in METHODS])
async def test_grpc_methods_take_any_bytes(stack: Stack, path: str, method: Any) -> None:
    loop = asyncio.get_running_loop()
    payloads: list[bytes] = []

    @_seeded
    @fuzz_settings(examples=max(1, EXAMPLES * 2 // 3))
    @given(payload=st.binary(max_size=300) | _message(method.input_type))
    def collect(payload: bytes) -> None:
        payloads.append(payload)

    await loop.run_in_executor(None, collect)  # hypothesis is synchronous: draw the cases, then send them
    for payload in [b"\xff", b"\x0a\xff\xff\xff\xff\x0f", b"\x08" * 50, *payloads]:
        await _grpc_call(stack, path, method.server_streaming, payload)


HOSTILE_TEXT = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["a.example.com,evil.example.net", "*.*.example.com", "www.example.com.", "a b", "\x00",
                     "9999-12-31T23:59:59Z/P10D", "P999999999Y", "0001-01-01T00:00:00+23:59/P1D", "CN=other",
                     "315576000000s", "-1s", "1e30s", "NaN", "CN=fuzz.example.com", "ops@example.com"]))
ENROLLMENT = st.fixed_dictionaries(
    {"profileId": st.just(PROFILE_ID), "csr": st.just(CSR)},
    optional={
        "subjectAltNames": st.lists(st.fixed_dictionaries({"type": st.sampled_from(
            ["dNSName", "rfc822Name", "iPAddress", "uniformResourceIdentifier", "x"]), "value": HOSTILE_TEXT}),
            max_size=3),
        "optionalCertificateRequestDetails": st.fixed_dictionaries({}, optional={
            "subjectDn": HOSTILE_TEXT, "validityPeriod": HOSTILE_TEXT}),
        "maxWait": HOSTILE_TEXT,
        "properties": st.dictionaries(HOSTILE_TEXT, HOSTILE_TEXT, max_size=3),
        "requiredFormat": st.fixed_dictionaries({"format": st.sampled_from(["PEM", "X509", "PKCS12", "x"])}),
        "subjectVariables": st.lists(st.fixed_dictionaries({"type": HOSTILE_TEXT, "value": HOSTILE_TEXT}),
                                     max_size=2),
        "renewal": st.booleans(),
        "includeCa": st.booleans(),
    })


async def _rest(http: aiohttp.ClientSession, stack: Stack, method: str, path: str, data: bytes) -> tuple[int, str]:
    async with asyncio.timeout(DEADLINE):
        async with http.request(method, stack.rest_base + path, data=data,
                                headers={"Content-Type": "application/json"}) as response:
            return response.status, await response.text()


def _draw(strategy: st.SearchStrategy[Any], examples: int) -> list[Any]:
    drawn: list[Any] = []

    @_seeded
    @fuzz_settings(examples=examples)
    @given(value=strategy)
    def collect(value: Any) -> None:
        drawn.append(value)

    collect()
    return drawn


async def test_rest_enrollments_with_hostile_members_never_fail_the_gateway(stack: Stack) -> None:
    bodies = await asyncio.get_running_loop().run_in_executor(None, _draw, ENROLLMENT, EXAMPLES * 2)
    path = f"/v1/certificate-authorities/{CA_ID}/enrollments"
    statuses: set[int] = set()
    async with aiohttp.ClientSession() as http:
        for body in bodies:
            status, text = await _rest(http, stack, "POST", path, json.dumps(body).encode())
            statuses.add(status)
            assert status < 500, (status, body, text)
            assert "Traceback" not in text
    assert 200 in statuses  # some cases went all the way to issuance


async def test_rest_routes_take_any_bytes_as_a_body(stack: Stack) -> None:
    bodies = await asyncio.get_running_loop().run_in_executor(None, _draw, st.binary(max_size=200), max(1, EXAMPLES // 2))
    routes = [("POST", f"/v1/certificate-authorities/{CA_ID}/enrollments"),
              ("POST", f"/v1/certificate-authorities/{CA_ID}/enrollments:watch"),
              ("POST", f"/v1/certificate-authorities/{CA_ID}/certificates/0badc0de/actions"),
              ("POST", f"/v1/certificate-authorities/{CA_ID}/subjects/CN%3Dfuzz/actions"),
              ("GET", f"/v1/certificate-authorities/{CA_ID}/certificate-events")]
    async with aiohttp.ClientSession() as http:
        for method, path in routes:
            for body in bodies:
                status, text = await _rest(http, stack, method, path, body)
                assert status < 500 or status == 501, (method, path, body, status, text)
                assert "Traceback" not in text
