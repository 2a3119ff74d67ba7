"""The OpenTelemetry side of :mod:`service.observability.tracing`: imported only when tracing is on.

Each gateway has its own ``TracerProvider`` (the process-wide one is left
alone, so two gateways in one process, as in tests, do not share exporters).
Spans are exported over OTLP/gRPC in batches, or handed one by one to the
exporter a caller gave (a test's in-memory exporter). The sampler follows the
caller's sampled flag and samples ``sample_ratio`` of the traces it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from service.config.settings import TracingSettings
from service.connectors.hooks import ExchangeOutcome, OutgoingRequest
from service.observability.spans import Attributes, Span

__all__ = ["OtelTracing"]

_SPAN_KEY = "cagw.otel.span"


class _Span:
    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def set_attribute(self, key: str, value: str | int | float | bool) -> None:
        self._span.set_attribute(key, value)

    def fail(self, description: str) -> None:
        self._span.set_status(Status(StatusCode.ERROR, description))


def _exporter(settings: TracingSettings) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    endpoint = settings.otlp_endpoint or ""
    exporter: SpanExporter = OTLPSpanExporter(endpoint=endpoint, insecure=urlsplit(endpoint).scheme == "http")
    return exporter


class OtelTracing:
    """Spans of one gateway; see the module docstring."""

    def __init__(self, settings: TracingSettings, *, exporter: SpanExporter | None = None) -> None:
        self._provider = TracerProvider(
            resource=Resource.create({"service.name": settings.service_name}),
            sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)))
        processor = (SimpleSpanProcessor(exporter) if exporter is not None
                     else BatchSpanProcessor(_exporter(settings)))
        self._provider.add_span_processor(processor)
        self._tracer = self._provider.get_tracer("cagw")
        self._propagator = TraceContextTextMapPropagator()

    @property
    def enabled(self) -> bool:
        return True

    @contextlib.contextmanager
    def server_span(self, name: str, *, carrier: Mapping[str, str], attributes: Attributes) -> Iterator[Span]:
        parent = self._propagator.extract(carrier=dict(carrier))
        with self._tracer.start_as_current_span(name, context=parent, kind=SpanKind.SERVER,
                                                attributes=dict(attributes), record_exception=False,
                                                set_status_on_exception=False) as span:
            yield _Span(span)

    @contextlib.contextmanager
    def span(self, name: str, *, attributes: Attributes) -> Iterator[Span]:
        with self._tracer.start_as_current_span(name, attributes=dict(attributes), record_exception=False,
                                                set_status_on_exception=False) as span:
            yield _Span(span)

    def exchange_started(self, request: OutgoingRequest) -> None:
        span = self._tracer.start_span(f"HTTP {request.method}", kind=SpanKind.CLIENT, attributes={
            "http.request.method": request.method, "url.path": request.path, "cagw.ca": request.ca_id,
            "http.request.resend_count": request.attempt - 1})
        request.extensions[_SPAN_KEY] = span
        carrier: dict[str, str] = {}
        self._propagator.inject(carrier, context=trace.set_span_in_context(span))
        request.add_headers.update(carrier)

    def exchange_ended(self, outcome: ExchangeOutcome) -> None:
        span: Any = outcome.request.extensions.pop(_SPAN_KEY, None)
        if span is None:
            return
        if outcome.status is not None:
            span.set_attribute("http.response.status_code", outcome.status)
        if outcome.error is not None or (outcome.status or 0) >= 500:
            described = type(outcome.error).__name__ if outcome.error is not None else f"HTTP {outcome.status}"
            span.set_status(Status(StatusCode.ERROR, described))
        span.end()

    async def shutdown(self) -> None:
        # The batch processor's last export blocks on the network: not on the event loop.
        await asyncio.get_running_loop().run_in_executor(None, self._provider.shutdown)
