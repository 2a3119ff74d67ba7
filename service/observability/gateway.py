"""``Observability``: the metrics, traces and order book of one gateway, and the wiring that feeds them.

:class:`~service.app.Gateway` builds one from its configuration (a test may
hand in its own, e.g. with an in-memory span exporter) and uses it to

- put :class:`~service.observability.middleware.ObservedCalls` first in the
  pipeline (:meth:`Observability.middleware`);
- observe the ledger (:meth:`Observability.observe_ledger`);
- put each CA's connector behind its circuit breaker, observed, with the HTTP
  exchange hooks (:meth:`Observability.guard`);
- serve ``GET /metrics`` on the ops listener (:meth:`Observability.scrape`), with the
  inventory's expiry gauges (:meth:`Observability.count_certificates`);
- hand the core its :class:`~service.observability.events.GatewayEvents`
  (:attr:`Observability.events`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from service import __version__
from service.clock import utcnow
from service.config import CASettings, Config, TracingSettings
from service.connectors.base import Connector
from service.connectors.breaker import CircuitBreaker
from service.connectors.guarded import GuardedConnector, guard_connector
from service.connectors.hooks import ExchangeObservable
from service.ledger.base import Ledger
from service.observability.certificates import CertificateGauges
from service.observability.connectors import CAObserver, exchange_hooks, watch_circuit
from service.observability.events import GatewayEvents
from service.observability.journal import CACallJournal
from service.observability.ledger import observe_ledger
from service.observability.metrics import GatewayMetrics
from service.observability.middleware import ObservedCalls
from service.observability.orders import OrderBook
from service.observability.tracing import Tracing, make_tracing

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

__all__ = ["Observability"]


class Observability:
    """See the module docstring.

    Example::

        observability = Observability.from_config(config)
        ledger = observability.observe_ledger(await open_ledger(config.ledger))
        connector = observability.guard(ca, create_connector(ca))
    """

    def __init__(self, *, tracing: Tracing, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.metrics = GatewayMetrics(version=__version__)
        self.tracing = tracing
        self.orders = OrderBook(self.metrics, clock=clock)
        self.breakers: dict[str, CircuitBreaker] = {}
        self.journal = CACallJournal(clock=clock)  # each order's last CA calls, for the operator
        self._ca_observer = CAObserver(self.metrics, tracing, self.journal)
        self._clock = clock

    @classmethod
    def from_config(cls, config: Config, *, span_exporter: SpanExporter | None = None) -> Observability:
        """Tracing as ``config.tracing`` says; a ``span_exporter`` turns it on (tests)."""
        return cls(tracing=make_tracing(config.tracing, exporter=span_exporter))

    @classmethod
    def untraced(cls) -> Observability:
        return cls(tracing=make_tracing(TracingSettings()))

    @property
    def events(self) -> GatewayEvents:
        return self.metrics

    def middleware(self) -> ObservedCalls:
        return ObservedCalls(self.metrics, self.tracing)

    def count_certificates(self, ledger: Ledger, ca_ids: Sequence[str]) -> CertificateGauges:
        """The expiry gauges of these CAs, counted from ``ledger`` (run :meth:`CertificateGauges.run`)."""
        return CertificateGauges(self.metrics.registry, ledger, ca_ids, clock=self._clock)

    def observe_ledger(self, ledger: Ledger, *,
                       on_error: Callable[[BaseException], None] | None = None) -> Ledger:
        return observe_ledger(ledger, metrics=self.metrics, orders=self.orders, tracing=self.tracing,
                              on_error=on_error)

    def guard(self, ca: CASettings, connector: Connector) -> GuardedConnector:
        """``connector`` behind a new circuit breaker of ``ca``, observed (calls, exchanges, circuit)."""
        breaker = CircuitBreaker(ca.gateway.circuit_breaker, name=ca.id)
        self.breakers[ca.id] = breaker
        watch_circuit(self.metrics, breaker, ca_id=ca.id)
        self.orders.add_ca(ca.id)
        if isinstance(connector, ExchangeObservable):
            connector.observe_exchanges(exchange_hooks(self.metrics, self.tracing))
        return guard_connector(connector, ca_id=ca.id, breaker=breaker, observer=self._ca_observer)

    def scrape(self) -> tuple[bytes, str]:
        """The ``/metrics`` answer: (body, content type)."""
        return self.metrics.render()

    async def close(self) -> None:
        await self.tracing.shutdown()
