"""What the gateway sees of its CAs: connector calls, HTTP exchanges and circuit transitions.

:class:`CAObserver` is the :class:`~service.connectors.guarded.ConnectorObserver`
of every CA (``cagw_ca_calls_total``, ``cagw_ca_call_duration_seconds``, a span
per call); :func:`exchange_hooks` are the hooks a connector that speaks HTTP
calls around each exchange (``cagw_ca_http_requests_total``, its latency, a
client span and its ``traceparent``); :func:`watch_circuit` shows a breaker's
state in ``cagw_ca_circuit_state`` and counts its transitions.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from service.connectors.breaker import CircuitBreaker, CircuitState
from service.connectors.guarded import CACall
from service.connectors.hooks import ExchangeHooks, ExchangeOutcome
from service.observability.journal import CACallJournal
from service.observability.metrics import GatewayMetrics
from service.observability.tracing import Tracing

__all__ = ["CAObserver", "exchange_hooks", "watch_circuit"]


class CAObserver:
    """Counts, times and traces each connector call; files it in the journal of its order."""

    def __init__(self, metrics: GatewayMetrics, tracing: Tracing, journal: CACallJournal | None = None) -> None:
        self._metrics = metrics
        self._tracing = tracing
        self._journal = journal

    @contextlib.contextmanager
    def observe(self, call: CACall) -> Iterator[None]:
        with self._journaled(call):
            with self._observed(call):
                yield

    @contextlib.contextmanager
    def _journaled(self, call: CACall) -> Iterator[None]:
        if self._journal is None:
            yield
            return
        began, started = self._journal.now(), time.perf_counter()
        try:
            yield
        finally:
            self._journal.record(call, started=began, seconds=time.perf_counter() - started)

    @contextlib.contextmanager
    def _observed(self, call: CACall) -> Iterator[None]:
        started = time.perf_counter()
        with self._tracing.span(f"ca {call.operation}", attributes={
                "cagw.ca": call.ca_id, "cagw.ca.operation": call.operation}) as span:
            try:
                yield
            finally:
                self._metrics.ca_calls.labels(call.ca_id, call.operation, call.outcome).inc()
                if call.outcome != "circuit_open":  # refused at once: its zero would only blur the latency
                    self._metrics.ca_call_duration.labels(call.ca_id, call.operation).observe(
                        time.perf_counter() - started)
                span.set_attribute("cagw.ca.outcome", call.outcome)
                if call.outcome != "ok":
                    span.fail(call.outcome)


def _status_class(status: int | None) -> str:
    return "none" if status is None else f"{status // 100}xx"


def exchange_hooks(metrics: GatewayMetrics, tracing: Tracing) -> ExchangeHooks:
    """The hooks every HTTP-speaking connector gets."""

    def ended(outcome: ExchangeOutcome) -> None:
        request = outcome.request
        metrics.ca_http.labels(request.ca_id, request.method, _status_class(outcome.status)).inc()
        metrics.ca_http_duration.labels(request.ca_id, request.method).observe(outcome.seconds)

    if not tracing.enabled:
        return ExchangeHooks(on_response=(ended,))
    return ExchangeHooks(on_request=(tracing.exchange_started,), on_response=(ended, tracing.exchange_ended))


def watch_circuit(metrics: GatewayMetrics, breaker: CircuitBreaker, *, ca_id: str) -> None:
    """Show ``breaker`` as ``cagw_ca_circuit_state{ca}`` (read at each scrape) and count its transitions."""
    metrics.circuit_state.labels(ca_id).set_function(lambda: breaker.state.number)
    for state in CircuitState:
        metrics.circuit_transitions.labels(ca_id, state.value)  # every series exists, at 0

    def moved(name: str, old: CircuitState, new: CircuitState) -> None:
        metrics.circuit_transitions.labels(ca_id, new.value).inc()

    breaker.watch(moved)
