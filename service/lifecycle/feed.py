"""A CA's certificate events as a stream: the ledger's outbox read after a cursor, as it grows.

The stream polls the ledger (``poll_interval``, default 1 s), so it sees what any gateway on
the same ledger records, in the ledger's order; a caller that reconnects passes the id of the
last event it saw and misses nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from service.errors import FieldViolation, InvalidRequest
from service.ledger.base import Ledger, OutboxEvent

__all__ = ["CertificateEventStream", "parse_after"]

POLL_INTERVAL = 1.0
_BATCH = 100
_MAX_CURSOR = 2**63 - 1


def parse_after(text: str) -> int | None:
    """``after`` as written: empty is None (from now on), else a non-negative event id."""
    text = text.strip()
    if not text:
        return None
    if not text.isdigit() or int(text) > _MAX_CURSOR:
        raise InvalidRequest.of([FieldViolation("after", "must be the id of an event (a whole number)", text[:40])])
    return int(text)


class CertificateEventStream:
    def __init__(self, ledger: Ledger, *, poll_interval: float = POLL_INTERVAL,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._ledger = ledger
        self._poll_interval = poll_interval
        self._sleep = sleep

    async def watch(self, ca_id: str, after: int | None, *, idle: float = 0.0) -> AsyncIterator[OutboxEvent]:
        """The CA's events with an id above ``after`` (None: above the latest now), until ``idle``
        seconds pass without one (0: forever)."""
        cursor = await self._ledger.latest_event_id() if after is None else after
        quiet = 0.0
        while True:
            batch = await self._ledger.events_after(cursor, limit=_BATCH)
            for outbox in batch:
                if outbox.event.ca_id == ca_id:
                    quiet = 0.0
                    yield outbox
            if batch:
                cursor = batch[-1].event.id
            if len(batch) < _BATCH:
                if idle and quiet >= idle:
                    return
                await self._sleep(self._poll_interval)
                quiet += self._poll_interval
