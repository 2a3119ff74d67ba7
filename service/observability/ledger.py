"""``observe_ledger``: any ledger with each operation timed, counted and traced, its orders watched.

The gateway wraps its ledger once, at start-up, so the ledger needs no hook of
its own: every coroutine method of the ledger (whatever the backend, whatever
methods it gains) is timed into ``cagw_ledger_operation_duration_seconds``,
counted with its outcome in ``cagw_ledger_operations_total`` (``ok``;
``conflict`` for the answers a caller handles — a lost conditional update, a
duplicate, an unknown order; ``unavailable``; ``error``) and, with tracing on,
is a ``ledger <operation>`` span. Every order record it returns goes to the
:class:`~service.observability.orders.OrderBook`.

The operation label is the method's name: a fixed set.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

from service.errors import AlreadyExists, FailedPrecondition, NotFound
from service.ledger.base import Ledger, OrderRecord
from service.ledger.errors import DuplicateOrder, LedgerUnavailable, OrderChanged
from service.observability.metrics import GatewayMetrics
from service.observability.orders import OrderBook
from service.observability.tracing import Tracing

__all__ = ["observe_ledger", "unwrap_ledger"]

# Calls that change orders: a record they return is a change even for an order the book does not know.
_WRITES = frozenset({"create_order", "update_order", "record_issued"})
_UNOBSERVED = frozenset({"open", "close"})


def _outcome(exc: BaseException) -> str:
    if isinstance(exc, LedgerUnavailable):
        return "unavailable"
    if isinstance(exc, (FailedPrecondition, AlreadyExists, NotFound)):
        return "conflict"
    return "error"


def _records(result: object) -> Iterable[OrderRecord]:
    if isinstance(result, OrderRecord):
        return (result,)
    if isinstance(result, (list, tuple)):
        return (item for item in result if isinstance(item, OrderRecord))
    return ()


ErrorListener = Callable[[BaseException], None]


class _ObservedLedger:
    def __init__(self, inner: Ledger, *, metrics: GatewayMetrics, orders: OrderBook, tracing: Tracing,
                 on_error: ErrorListener | None = None) -> None:
        self._inner = inner
        self._metrics = metrics
        self._orders = orders
        self._tracing = tracing
        self._on_error = on_error
        self._wrapped: dict[str, Callable[..., Awaitable[Any]]] = {}

    def __repr__(self) -> str:
        return f"observed({self._inner!r})"

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name in _UNOBSERVED or name.startswith("_") or not inspect.iscoroutinefunction(attribute):
            return attribute
        wrapped = self._wrapped.get(name)
        if wrapped is None:
            wrapped = self._wrapped[name] = self._wrap(name, attribute)
        return wrapped

    def _wrap(self, name: str, method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        duration = self._metrics.ledger_duration.labels(name)
        ok = self._metrics.ledger_ops.labels(name, "ok")  # the usual outcome's series, looked up once

        @functools.wraps(method)
        async def observed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            outcome = "ok"
            with self._tracing.span(f"ledger {name}", attributes={"cagw.ledger.operation": name}) as span:
                try:
                    result = await method(*args, **kwargs)
                except BaseException as exc:
                    outcome = _outcome(exc) if isinstance(exc, Exception) else "error"
                    span.fail(outcome)
                    self._seen_in_error(exc)
                    if self._on_error is not None:
                        self._on_error(exc)
                    raise
                finally:
                    duration.observe(time.perf_counter() - started)
                    (ok if outcome == "ok" else self._metrics.ledger_ops.labels(name, outcome)).inc()
            written = name in _WRITES and not (name == "create_order" and result[1] is False)
            self._orders.seen(_records(result), written=written)
            return result

        return observed

    def _seen_in_error(self, exc: BaseException) -> None:
        if isinstance(exc, OrderChanged):
            self._orders.seen((exc.current,), written=False)
        elif isinstance(exc, DuplicateOrder):
            self._orders.seen((exc.existing,), written=False)


def observe_ledger(ledger: Ledger, *, metrics: GatewayMetrics, orders: OrderBook, tracing: Tracing,
                   on_error: ErrorListener | None = None) -> Ledger:
    """``ledger`` observed; see the module docstring. ``on_error`` sees every exception an operation
    raises (the gateway's :class:`~service.ledger_watch.LedgerWatch`). A ledger that counts its SQL
    statements and commits (``sql_counts()``, the SQLite one) has them served as metrics too."""
    sql_counts = getattr(ledger, "sql_counts", None)
    if callable(sql_counts):
        metrics.count_sql(sql_counts)
    return cast(Ledger, _ObservedLedger(ledger, metrics=metrics, orders=orders, tracing=tracing,
                                        on_error=on_error))


def unwrap_ledger(ledger: Ledger) -> Ledger:
    """The ledger an observed one wraps (any other as it is)."""
    return ledger._inner if isinstance(ledger, _ObservedLedger) else ledger
