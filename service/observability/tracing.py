"""Traces, off by default: the small interface the gateway's observers use, and its two implementations.

With ``tracing.otlp-endpoint`` unset, :func:`make_tracing` returns
:data:`NO_TRACING`, whose spans are ``nullcontext`` objects: OpenTelemetry is
never imported and no span is ever built. With an endpoint (or an exporter a
test hands in), :mod:`service.observability._otel` imports the SDK and makes

- one server span per call, a child of the caller's W3C ``traceparent``
  (REST header or gRPC metadata) when it sent one;
- one span per connector call (``ca enroll``, ``ca collect`` ...) and per
  ledger operation (``ledger update_order`` ...), children of the call's span
  (an order's task keeps the span of the call that placed the order);
- one client span per HTTP exchange with the CA, whose ``traceparent`` is sent
  along, so the CA side can join the trace.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from service.config.settings import TracingSettings
from service.connectors.hooks import ExchangeOutcome, OutgoingRequest
from service.observability.spans import Attributes, Span, Tracing

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = ["NO_TRACING", "Attributes", "Span", "Tracing", "make_tracing"]

class _NoSpan:
    def set_attribute(self, key: str, value: str | int | float | bool) -> None:
        return None

    def fail(self, description: str) -> None:
        return None


class _NoTracing:
    _span = contextlib.nullcontext(_NoSpan())

    @property
    def enabled(self) -> bool:
        return False

    def server_span(self, name: str, *, carrier: Mapping[str, str],
                    attributes: Attributes) -> contextlib.AbstractContextManager[Span]:
        return self._span

    def span(self, name: str, *, attributes: Attributes) -> contextlib.AbstractContextManager[Span]:
        return self._span

    def exchange_started(self, request: OutgoingRequest) -> None:
        return None

    def exchange_ended(self, outcome: ExchangeOutcome) -> None:
        return None

    async def shutdown(self) -> None:
        return None


NO_TRACING: Tracing = _NoTracing()


def make_tracing(settings: TracingSettings, *, exporter: SpanExporter | None = None) -> Tracing:
    """:data:`NO_TRACING` unless an OTLP endpoint is configured or an exporter is given."""
    if not settings.enabled and exporter is None:
        return NO_TRACING
    from service.observability._otel import OtelTracing  # the SDK is imported here, and only here

    return OtelTracing(settings, exporter=exporter)
