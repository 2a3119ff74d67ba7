"""Order events and the channel that fans one order's events out to its watchers.

One task per order produces events; any number of watchers (streams, unary
callers waiting for an answer) subscribe to the order's channel. The channel
keeps the latest event so a late watcher starts with the current state.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from service.enrollment.orders import OrderView
from service.errors import CagwError
from service.ledger.base import CertificateRecord

__all__ = ["OrderChannel", "OrderEvent", "Phase"]


class Phase(enum.Enum):
    RECEIVED = "RECEIVED"
    SUBMITTED = "SUBMITTED"
    WAITING = "WAITING"
    PENDING = "PENDING"
    ISSUED = "ISSUED"
    TIMED_OUT = "TIMED_OUT"
    FAILED = "FAILED"

    @property
    def settled(self) -> bool:
        """A unary caller has its answer: the certificate, the pending answer, or the failure."""
        return self in (Phase.ISSUED, Phase.TIMED_OUT, Phase.FAILED)

    @property
    def final(self) -> bool:
        """Nothing more will happen to the order."""
        return self in (Phase.ISSUED, Phase.FAILED)


@dataclass(frozen=True)
class OrderEvent:
    """One state of an order, with everything an answer about it needs (no ledger read)."""

    order: OrderView
    phase: Phase
    time: dt.datetime
    ca_order_id: str | None = None
    attempt: int = 0
    max_attempts: int = 0
    delay: float | None = None
    next_attempt_at: dt.datetime | None = None
    detail: str = ""
    error: CagwError | None = None
    certificate: CertificateRecord | None = None
    background: bool = False  # produced after the foreground attempts ran out
    # PKCS12 orders, ISSUED: key, certificate and chain under the caller's password. Only the
    # answer to a caller who gave (or whose order task still holds) that password carries it.
    keystore: bytes | None = field(default=None, repr=False)

    @property
    def order_id(self) -> str:
        return self.order.id


_CLOSED = object()


class OrderChannel:
    """Latest event + subscriber queues of one order."""

    def __init__(self, order_id: str) -> None:
        self.order_id = order_id
        self.latest: OrderEvent | None = None
        self.settled = asyncio.Event()
        self.finished = asyncio.Event()
        self._queues: set[asyncio.Queue[object]] = set()

    def publish(self, event: OrderEvent) -> None:
        self.latest = event
        for queue in self._queues:
            queue.put_nowait(event)
        if event.phase.settled:
            self.settled.set()
        if event.phase.final:
            self.finished.set()

    def close(self) -> None:
        """No more events (the tracker is stopping or the order ended)."""
        self.finished.set()
        self.settled.set()
        for queue in self._queues:
            queue.put_nowait(_CLOSED)

    @property
    def watchers(self) -> int:
        return len(self._queues)

    async def subscribe(self, *, replay_latest: bool = True) -> AsyncIterator[OrderEvent]:
        """Yield the latest event (when asked), then every new one, until the channel closes
        or a final event has been yielded."""
        queue: asyncio.Queue[object] = asyncio.Queue()
        self._queues.add(queue)
        try:
            replayed = self.latest if replay_latest else None
            if replayed is not None:
                yield replayed
                # The replayed event decides: a newer one published while we were suspended is
                # already in the queue and must still be delivered.
                if replayed.phase.final:
                    return
            while True:
                item = await queue.get()
                if item is _CLOSED:
                    return
                assert isinstance(item, OrderEvent)
                yield item
                if item.phase.final:
                    return
        finally:
            self._queues.discard(queue)
