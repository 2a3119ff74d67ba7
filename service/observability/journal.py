"""``CACallJournal``: the last connector calls made for each order, for ``cagw orders show``.

Kept in memory by this gateway since it started, bounded both ways: at most
:data:`PER_ORDER` calls per order and :data:`MAX_ORDERS` orders (the least
recently called forgotten first). A call is filed under what it is about
(:attr:`~service.connectors.guarded.CACall.subject`): the CA's order id, or the
order's marker (``cagw-order:<id>``) which an enroll carries in its comments
and a search looks for. Nothing here is a metric label, and nothing of the
request beyond that key is kept (no CSR, no names).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

from service.clock import utcnow
from service.connectors.guarded import CACall

__all__ = ["CACallJournal", "JournalEntry"]

PER_ORDER = 50
MAX_ORDERS = 5000
MAX_ERROR = 300
_MARKER = re.compile(r"cagw-order:[0-9a-fA-F-]{1,64}")


@dataclass(frozen=True)
class JournalEntry:
    time: dt.datetime
    ca_id: str
    operation: str
    outcome: str
    seconds: float
    error: str = ""


def _key(call: CACall) -> str:
    found = _MARKER.search(call.subject)
    return found.group(0) if found else call.subject.strip()[:64]


class CACallJournal:
    """See the module docstring."""

    def __init__(self, *, clock: Callable[[], dt.datetime] = utcnow, per_order: int = PER_ORDER,
                 max_orders: int = MAX_ORDERS) -> None:
        self._clock = clock
        self._per_order = per_order
        self._max_orders = max_orders
        self._calls: OrderedDict[tuple[str, str], deque[JournalEntry]] = OrderedDict()

    def record(self, call: CACall, *, started: dt.datetime, seconds: float) -> None:
        key = _key(call)
        if not key:
            return
        error = "" if call.error is None else str(getattr(call.error, "message", call.error))[:MAX_ERROR]
        entries = self._calls.pop((call.ca_id, key), None) or deque(maxlen=self._per_order)
        entries.append(JournalEntry(started, call.ca_id, call.operation, call.outcome, seconds, error))
        self._calls[(call.ca_id, key)] = entries  # now the most recent
        while len(self._calls) > self._max_orders:
            self._calls.popitem(last=False)

    def calls_for(self, ca_id: str, *keys: str | None) -> list[JournalEntry]:
        """Every kept call of CA ``ca_id`` filed under any of ``keys`` (marker, CA order id), oldest first."""
        found = [entry for key in dict.fromkeys(k for k in keys if k)
                 for entry in self._calls.get((ca_id, key), ())]
        return sorted(found, key=lambda entry: entry.time)

    def now(self) -> dt.datetime:
        return self._clock()
