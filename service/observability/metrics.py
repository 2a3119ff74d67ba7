"""``GatewayMetrics``: every Prometheus family of the gateway, in one registry per gateway.

The families (docs/operations.md lists them with their labels and meaning):

=========================================== ===========================================
``cagw_calls_total``                        calls by service, method, transport, code
``cagw_call_duration_seconds``              their latency (whole stream for streams)
``cagw_open_streams``                       server streams open now (watches)
``cagw_ca_calls_total``                     connector calls by CA, operation, outcome
``cagw_ca_call_duration_seconds``           their latency (retries inside included)
``cagw_ca_http_requests_total``             HTTP exchanges with the CA by method, status
``cagw_ca_http_request_duration_seconds``   their latency
``cagw_ca_circuit_state``                   0 closed, 1 half-open, 2 open
``cagw_ca_circuit_transitions_total``       transitions by the state entered
``cagw_orders``                             unfinished orders by CA and state
``cagw_oldest_pending_order_age_seconds``   age of the oldest unfinished order per CA
``cagw_order_transitions_total``            order state changes by the state entered
``cagw_collect_attempts_total``             collect attempts by CA and outcome
``cagw_collect_lateness_seconds``           how late each attempt ran against its schedule
``cagw_collect_budget_deferred_total``      background collects the CA's budget deferred
``cagw_collect_budget_wait_seconds``        how long the budget deferred each background collect
``cagw_collect_budget_tokens``              tokens left in the CA's budget (at its latest slot)
``cagw_collect_budget_queued``              background collect slots handed out, not yet come
``cagw_collects_skipped_total``             background attempts a listing of pending orders spared
``cagw_policy_refusals_total``              caller policy refusals by client and reason
``cagw_quota_refusals_total``               quota refusals by client and reason
``cagw_ledger_operations_total``            ledger operations by operation and outcome
``cagw_ledger_operation_duration_seconds``  their latency
``cagw_ledger_sql_statements_total``        SQL statements the embedded ledger ran
``cagw_ledger_commits_total``               its commits (several writes may share one)
``cagw_certificates``                       certificates by CA, owner, status, expiry horizon
``cagw_build_info``                         1, labelled with the version
=========================================== ===========================================

Label values are bounded: CA ids and client names come from the configuration,
methods and operations from the code, codes and outcomes from fixed sets.
Nothing here takes a serial, DN, order id or request id as a label.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from service.observability.events import COLLECT_OUTCOMES

# No ``…_created`` series beside each counter and histogram: they double the scrape and no panel or
# alert reads them (a process-wide switch of the client library).
disable_created_metrics()  # type: ignore[no-untyped-call]

__all__ = ["GatewayMetrics"]

_CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_CA_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_LATENESS_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_BUDGET_BUCKETS = (0.1, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
_LEDGER_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


class GatewayMetrics:
    """The families (public attributes, for the observers that feed them) and the scrape."""

    def __init__(self, *, version: str = "") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        call = ["service", "method", "transport"]
        self.calls = Counter("cagw_calls_total", "Calls of the service methods, by result code (gRPC code names "
                             "on both transports).", [*call, "code"], registry=r)
        self.call_duration = Histogram("cagw_call_duration_seconds", "Latency of the service methods (a stream: "
                                       "from its start to its end).", call, buckets=_CALL_BUCKETS, registry=r)
        self.open_streams = Gauge("cagw_open_streams", "Server streams (enrollment watches) open now.", call,
                                  registry=r)
        self.ca_calls = Counter("cagw_ca_calls_total", "Connector calls to a CA by operation and outcome (ok, "
                                "unavailable, throttled, rejected, circuit_open, error).",
                                ["ca", "operation", "outcome"], registry=r)
        self.ca_call_duration = Histogram("cagw_ca_call_duration_seconds", "Latency of connector calls to a CA "
                                          "(retries included; calls refused by an open circuit not).",
                                          ["ca", "operation"], buckets=_CA_BUCKETS, registry=r)
        self.ca_http = Counter("cagw_ca_http_requests_total", "HTTP exchanges with a CA, by method and status "
                               "class (2xx, 4xx, 5xx, ...; 'none' when no answer came).",
                               ["ca", "method", "status"], registry=r)
        self.ca_http_duration = Histogram("cagw_ca_http_request_duration_seconds", "Latency of HTTP exchanges "
                                          "with a CA.", ["ca", "method"], buckets=_CA_BUCKETS, registry=r)
        self.circuit_state = Gauge("cagw_ca_circuit_state", "Circuit of a CA: 0 closed, 1 half-open, 2 open.",
                                   ["ca"], registry=r)
        self.circuit_transitions = Counter("cagw_ca_circuit_transitions_total", "Circuit transitions of a CA, "
                                           "by the state entered.", ["ca", "state"], registry=r)
        self._order_families(r)
        self.ledger_ops = Counter("cagw_ledger_operations_total", "Ledger operations by outcome (ok, conflict, "
                                  "unavailable, error).", ["operation", "outcome"], registry=r)
        self.ledger_duration = Histogram("cagw_ledger_operation_duration_seconds", "Latency of ledger "
                                         "operations.", ["operation"], buckets=_LEDGER_BUCKETS, registry=r)
        self._sql = _SqlCounts()
        r.register(self._sql)
        Gauge("cagw_build_info", "The gateway's version.", ["version"], registry=r).labels(version or "unknown").set(1)

    def _order_families(self, r: CollectorRegistry) -> None:
        self.orders = Gauge("cagw_orders", "Unfinished orders of a CA by ledger state (RECEIVED, SUBMITTED, "
                            "COLLECTING).", ["ca", "state"], registry=r)
        self.oldest_pending = Gauge("cagw_oldest_pending_order_age_seconds", "Age of the oldest unfinished "
                                    "order of a CA (0 when none).", ["ca"], registry=r)
        self.order_transitions = Counter("cagw_order_transitions_total", "Order state changes, by the ledger "
                                         "state entered.", ["ca", "state"], registry=r)
        self.collect_attempts = Counter("cagw_collect_attempts_total", "Collect attempts by outcome (issued, "
                                        "pending, unavailable, rejected, error).", ["ca", "outcome"], registry=r)
        self.collect_lateness = Histogram("cagw_collect_lateness_seconds", "How late each collect attempt ran "
                                          "against its scheduled time.", ["ca"], buckets=_LATENESS_BUCKETS,
                                          registry=r)
        self._budget_families(r)
        self.policy_refusals = Counter("cagw_policy_refusals_total", "Calls refused by the caller policy, by "
                                       "client and reason.", ["client", "reason"], registry=r)
        self.quota_refusals = Counter("cagw_quota_refusals_total", "Calls refused by a quota, by client and "
                                      "reason.", ["client", "reason"], registry=r)

    def _budget_families(self, r: CollectorRegistry) -> None:
        self.budget_deferred = Counter("cagw_collect_budget_deferred_total", "Background collects the CA's "
                                       "budget moved past their scheduled time.", ["ca"], registry=r)
        self.budget_wait = Histogram("cagw_collect_budget_wait_seconds", "How long the CA's budget deferred "
                                     "each background collect (0 when it had a token at the due time).", ["ca"],
                                     buckets=_BUDGET_BUCKETS, registry=r)
        self.budget_tokens = Gauge("cagw_collect_budget_tokens", "Tokens left in the CA's budget of background "
                                   "collects, as of the latest slot it handed out.", ["ca"], registry=r)
        self.collects_skipped = Counter("cagw_collects_skipped_total", "Background attempts that made no "
                                        "collect: the CA's listing of the orders it is still processing "
                                        "showed the order.", ["ca"], registry=r)
        self.budget_queued = Gauge("cagw_collect_budget_queued", "Background collect slots the CA's budget "
                                   "handed out that have not come yet, as of the latest one.", ["ca"], registry=r)

    def count_sql(self, source: Callable[[], tuple[int, int]]) -> None:
        """Serve ``source()`` — (SQL statements, commits) of the ledger so far — as the two ledger SQL
        counters; a ledger that counts nothing (PostgreSQL) never calls this, and they stay absent."""
        self._sql.source = source

    # ------------------------------------------------------------ the core's events (GatewayEvents)

    def collect_attempted(self, *, ca_id: str, lateness: float, outcome: str) -> None:
        self.collect_attempts.labels(ca_id, outcome if outcome in COLLECT_OUTCOMES else "error").inc()
        self.collect_lateness.labels(ca_id).observe(max(0.0, lateness))

    def collect_budgeted(self, *, ca_id: str, deferred: float, tokens: float, queued: int) -> None:
        if deferred > 0:
            self.budget_deferred.labels(ca_id).inc()
        self.budget_wait.labels(ca_id).observe(max(0.0, deferred))
        self.budget_tokens.labels(ca_id).set(tokens)
        self.budget_queued.labels(ca_id).set(queued)

    def collect_skipped(self, *, ca_id: str) -> None:
        self.collects_skipped.labels(ca_id).inc()

    def policy_refused(self, *, client: str, reason: str) -> None:
        self.policy_refusals.labels(client, reason).inc()

    def quota_refused(self, *, client: str, reason: str) -> None:
        self.quota_refusals.labels(client, reason).inc()

    # ------------------------------------------------------------ the scrape

    def render(self) -> tuple[bytes, str]:
        """The exposition of every family: (body, content type)."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _SqlCounts(Collector):
    """The ledger's own statement and commit counts, read at each scrape (nothing to feed)."""

    def __init__(self) -> None:
        self.source: Callable[[], tuple[int, int]] | None = None

    def collect(self) -> Iterator[Metric]:
        if self.source is None:
            return
        statements, commits = self.source()
        yield CounterMetricFamily("cagw_ledger_sql_statements", "SQL statements the embedded (SQLite) ledger "
                                  "ran, BEGIN and COMMIT included.", value=statements)
        yield CounterMetricFamily("cagw_ledger_commits", "Commits of the embedded (SQLite) ledger; writes "
                                  "queued together share one.", value=commits)

    def describe(self) -> Iterator[Metric]:
        return iter(())  # what it yields depends on the ledger: nothing to check at registration
