"""Traces of a live gateway, collected with the SDK's in-memory exporter; and nothing of them when off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from cagw.v1 import enrollments_pb2, enrollments_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from service.config import TracingSettings
from service.connectors.guarded import unwrap
from service.connectors.hooks import ExchangeHooks, OutgoingRequest
from service.connectors.sectigo import SectigoConnector
from service.observability.connectors import exchange_hooks
from service.observability.gateway import Observability
from service.observability.metrics import GatewayMetrics
from service.observability.tracing import make_tracing
from tests.integration.stack import CA_ID, PROFILE_ID, running_stack
from tests.support.csr import make_csr
from tests.support.settings import ca_entry, config_document, parse_document

ROOT = Path(__file__).resolve().parents[2]
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN}-01"


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def _in_trace(spans: tuple[ReadableSpan, ...], trace_id: str) -> list[ReadableSpan]:
    return [span for span in spans if span.context is not None and _hex(span.context.trace_id, 32) == trace_id]


def _children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [span for span in spans if span.parent is not None and span.parent.span_id == parent.context.span_id]


async def test_ok_a_call_its_ledger_operations_and_its_ca_requests_are_one_trace(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    sent: list[dict[str, str]] = []
    observability = Observability(tracing=make_tracing(TracingSettings(), exporter=exporter))
    async with running_stack(tmp_path, observability=observability) as stack:
        assert stack.gateway.cas is not None
        connector = unwrap(stack.gateway.cas.get(CA_ID).connector)
        assert isinstance(connector, SectigoConnector)

        def record(request: OutgoingRequest) -> None:  # runs after the tracing hook: sees what it asked to send
            sent.append(dict(request.add_headers))

        connector.observe_exchanges(ExchangeHooks(on_request=(record,)))
        stub = enrollments_pb2_grpc.EnrollmentServiceStub(stack.channel)
        response = await stub.Enroll(enrollments_pb2.EnrollRequest(
            ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr("traced.example.com")),
            metadata=(("traceparent", TRACEPARENT),))
        assert response.enrollment.status == "ISSUED"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{stack.rest_base}/v1/certificate-authorities") as answer:
                assert answer.status == 200
    spans = exporter.get_finished_spans()
    traced = _in_trace(spans, TRACE_ID)
    (call,) = [span for span in traced if span.name == "cagw.v1.EnrollmentService/Enroll"]
    assert call.kind is SpanKind.SERVER and call.parent is not None and _hex(call.parent.span_id, 16) == PARENT_SPAN
    assert call.attributes is not None and call.attributes["cagw.transport"] == "grpc"
    assert call.attributes["rpc.grpc.status_code"] == 0
    names = {span.name for span in _children(traced, call)}
    assert {"ledger create_order", "ca enroll", "ca collect"} <= names  # the order's task keeps the call's span
    (enroll,) = [span for span in traced if span.name == "ca enroll"]
    (http_post,) = _children(traced, enroll)
    assert (http_post.name, http_post.kind) == ("HTTP POST", SpanKind.CLIENT)
    assert http_post.attributes is not None and http_post.attributes["http.response.status_code"] == 200
    assert http_post.context is not None
    # The traceparent sent to the CA is the HTTP span's, in the caller's trace.
    assert f"00-{TRACE_ID}-{_hex(http_post.context.span_id, 16)}" in [h["traceparent"][:-3] for h in sent]
    assert all(set(headers) == {"traceparent"} for headers in sent)
    # A call without traceparent starts a trace of its own.
    (listing,) = [span for span in spans
                  if span.name == "cagw.v1.CertificateAuthorityService/ListCertificateAuthorities"]
    assert listing.parent is None and listing.context is not None and _hex(listing.context.trace_id, 32) != TRACE_ID
    assert listing.attributes is not None and listing.attributes["cagw.transport"] == "rest"


@pytest_asyncio.fixture(loop_scope="session")
async def recording_ca() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A stand-in CA on loopback that answers every request with ``[]`` and keeps its headers."""
    seen: list[dict[str, str]] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.json_response([])

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_ok_the_ca_receives_the_traceparent_of_its_request(
        tmp_path: Path, recording_ca: tuple[str, list[dict[str, str]]]) -> None:
    url, seen = recording_ca
    config = parse_document(config_document(tmp_path, ca_entry(ca_id="rec", properties={
        "url": f"{url}/api", "login": "gw", "login-password": "pw-not-to-be-seen"})), tmp_path)
    exporter = InMemorySpanExporter()
    tracing = make_tracing(TracingSettings(), exporter=exporter)
    connector = SectigoConnector.from_settings(config.managed_cas[0])
    connector.observe_exchanges(exchange_hooks(GatewayMetrics(), tracing))
    async with connector:
        with tracing.span("parent", attributes={}):
            await connector.check()
    (http_get,) = [span for span in exporter.get_finished_spans() if span.name == "HTTP GET"]
    (parent,) = [span for span in exporter.get_finished_spans() if span.name == "parent"]
    assert http_get.context is not None and parent.context is not None
    assert http_get.parent is not None and http_get.parent.span_id == parent.context.span_id
    (headers,) = seen
    version, trace_id, span_id, flags = headers["traceparent"].split("-")
    assert (version, trace_id, span_id) == ("00", _hex(http_get.context.trace_id, 32),
                                            _hex(http_get.context.span_id, 16))
    assert int(flags, 16) & 1  # sampled
    assert headers["password"] == "pw-not-to-be-seen"  # the request's own headers went out unchanged


TRACING_OFF_START = textwrap.dedent("""
    import asyncio, json, sys, tempfile
    from pathlib import Path
    from tests.integration.stack import CA_ID, PROFILE_ID, running_stack
    from tests.support.csr import make_csr
    from cagw.v1 import enrollments_pb2, enrollments_pb2_grpc

    async def main(traced):
        observability = None
        if traced:
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
            from service.config import TracingSettings
            from service.observability.gateway import Observability
            from service.observability.tracing import make_tracing
            observability = Observability(tracing=make_tracing(TracingSettings(), exporter=InMemorySpanExporter()))
        with tempfile.TemporaryDirectory() as tmp:
            async with running_stack(Path(tmp), observability=observability) as stack:
                stub = enrollments_pb2_grpc.EnrollmentServiceStub(stack.channel)
                answer = await stub.Enroll(enrollments_pb2.EnrollRequest(
                    ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr("off.example.com")))
                issued = answer.enrollment.status == "ISSUED"
        loaded = sorted(name for name in sys.modules if name.split(".")[0] == "opentelemetry")
        print(json.dumps({"issued": issued, "loaded": loaded}))

    asyncio.run(main(sys.argv[1] == "traced"))
""")


@pytest.mark.parametrize(("mode", "expect_loaded"), [("off", False), ("traced", True)],
                         ids=["ok-off-imports-nothing", "ok-on-imports-the-sdk"])
def test_tracing_off_imports_no_opentelemetry(mode: str, expect_loaded: bool) -> None:
    environment = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'generated'}"}
    result = subprocess.run([sys.executable, "-c", TRACING_OFF_START, mode], capture_output=True, text=True,
                            cwd=ROOT, env=environment, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["issued"] is True
    assert bool(report["loaded"]) is expect_loaded, report["loaded"]
