"""``OrderBook``: the unfinished orders as the ledger last showed them, for gauges and state-change lines.

Every :class:`~service.ledger.base.OrderRecord` that comes out of the ledger
(an order created, updated, issued, read, resumed) is shown to
:meth:`OrderBook.seen`. The book keeps the state, attempts and creation time
of each unfinished order, so ``cagw_orders{ca,state}`` and
``cagw_oldest_pending_order_age_seconds{ca}`` are what the ledger says, after a
restart too (the resume reads every unfinished order), and no engine code has
to keep a count. A record whose state or attempts differ from the last one seen
is an order state change: it is counted (``cagw_order_transitions_total``) and
written as one log line (``cagw.orders``) with the enrollment id, the CA's
order id, the attempt and the outcome (the ledger's ``detail``).

A ledger shared by several gateways shows each gateway the orders it touches;
their gauges are that gateway's view.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from service.ledger.base import OrderRecord, OrderState
from service.observability.metrics import GatewayMetrics

__all__ = ["ORDER_LOG", "OrderBook"]

ORDER_LOG = "cagw.orders"
UNFINISHED = tuple(state for state in OrderState if not state.finished)
MAX_DETAIL = 300  # a CA's pending text is short; a longer one is cut, never logged whole

log = logging.getLogger(ORDER_LOG)


@dataclass
class _Entry:
    ca_id: str
    state: OrderState
    attempts: int
    version: int
    created_at: dt.datetime


class OrderBook:
    """Unfinished orders by id; see the module docstring."""

    def __init__(self, metrics: GatewayMetrics, *, clock: Callable[[], dt.datetime]) -> None:
        self._metrics = metrics
        self._clock = clock
        self._orders: dict[str, _Entry] = {}
        self._cas: set[str] = set()

    def add_ca(self, ca_id: str) -> None:
        """Show the CA's order gauges at zero before any order (a dashboard sees every CA)."""
        self._cas.add(ca_id)
        for state in UNFINISHED:
            self._metrics.orders.labels(ca_id, state.value).set(0)
        self._metrics.oldest_pending.labels(ca_id).set_function(lambda: self.oldest_age(ca_id))

    def seen(self, records: Iterable[OrderRecord | None], *, written: bool) -> None:
        """Records the ledger returned; ``written``: by a call that changes orders (then a record of an
        order the book does not know is a change too, else it is only taken in when unfinished)."""
        for record in records:
            if record is not None:
                self._seen(record, written=written)

    def oldest_age(self, ca_id: str) -> float:
        """Seconds since the oldest unfinished order of ``ca_id`` was created (0 when none)."""
        created = [entry.created_at for entry in self._orders.values() if entry.ca_id == ca_id]
        return max(0.0, (self._clock() - min(created)).total_seconds()) if created else 0.0

    def __len__(self) -> int:
        return len(self._orders)

    def _seen(self, record: OrderRecord, *, written: bool) -> None:
        entry = self._orders.get(record.id)
        if entry is not None and record.version <= entry.version:
            return  # nothing new, or a read that raced a newer write
        if entry is None and not written and record.state.finished:
            return  # reading a finished order the book has forgotten: nothing changed
        changed = entry is None or (entry.state, entry.attempts) != (record.state, record.attempts)
        self._count(record, entry, transition=written or entry is not None)
        if record.state.finished:
            self._orders.pop(record.id, None)
        else:
            self._orders[record.id] = _Entry(record.ca_id, record.state, record.attempts, record.version,
                                             record.created_at)
        if changed and (written or entry is not None):
            _log_change(record)

    def _count(self, record: OrderRecord, entry: _Entry | None, *, transition: bool) -> None:
        if record.ca_id not in self._cas:
            self.add_ca(record.ca_id)
        if entry is not None:
            self._metrics.orders.labels(entry.ca_id, entry.state.value).dec()
        if not record.state.finished:
            self._metrics.orders.labels(record.ca_id, record.state.value).inc()
        if transition and (entry is None or entry.state is not record.state):
            self._metrics.order_transitions.labels(record.ca_id, record.state.value).inc()


def _log_change(record: OrderRecord) -> None:
    detail = record.detail if len(record.detail) <= MAX_DETAIL else record.detail[:MAX_DETAIL] + "..."
    outcome = f"{record.error_reason}: {detail}" if record.error_reason else detail
    fields: dict[str, object] = {"enrollment_id": record.id, "ca": record.ca_id,
                                 "ca_order_id": record.ca_order_id or "", "state": record.state.value,
                                 "attempt": record.attempts, "outcome": outcome}
    if record.state is OrderState.ISSUED and record.serial_number:
        fields["serial_number"] = record.serial_number
        log.info("order %s %s (CA order %s, attempt %d): %s; serial %s", record.id, record.state.value,
                 record.ca_order_id or "-", record.attempts, outcome or "-", record.serial_number,
                 extra={"fields": fields})
        return
    log.info("order %s %s (CA order %s, attempt %d): %s", record.id, record.state.value,
             record.ca_order_id or "-", record.attempts, outcome or "-", extra={"fields": fields})
