"""Following orders another gateway works on: their changes, read from the shared ledger.

A watcher (or a waiting unary call) on this gateway of an order that another gateway collects
gets a channel fed here. The ledger is the source of truth: each time the order may have changed,
the follower reads it and publishes one event per recorded change (the history rows between the
last version seen and the current one, then the current record), so every change arrives, in
order. "May have changed" is a notification from the ledger's change listener (PostgreSQL
LISTEN/NOTIFY: a few milliseconds), or, as a safety net for a lost notification or a broken
listening connection, a poll every ``poll`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from service.enrollment.channel import OrderChannel, OrderEvent
from service.errors import CagwError
from service.ledger.base import Ledger, OrderRecord
from service.ledger.leases import LeasingLedger

__all__ = ["DEFAULT_POLL", "OrderFollower"]

log = logging.getLogger(__name__)

DEFAULT_POLL = 1.0  # seconds between reads of a followed order when no notification comes
RELISTEN_DELAY = 1.0  # seconds before listening again after the listening connection was lost


@dataclass
class _Followed:
    channel: OrderChannel
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    users: int = 0
    task: asyncio.Task[None] | None = None


class OrderFollower:
    """Feeds one channel per followed order while anyone follows it (see the module docstring)."""

    def __init__(self, ledger: Ledger, changes: LeasingLedger | None,
                 event_of: Callable[[OrderRecord], Awaitable[OrderEvent]], *, poll: float = DEFAULT_POLL) -> None:
        self._ledger = ledger
        self._changes = changes  # None: polling only
        self._event_of = event_of
        self._poll = poll
        self._followed: dict[str, _Followed] = {}
        self._listening: asyncio.Task[None] | None = None

    @property
    def following(self) -> int:
        return len(self._followed)

    def start(self) -> None:
        if self._changes is not None and self._listening is None:
            self._listening = asyncio.create_task(self._listen(self._changes), name="order-changes")

    def stop(self) -> None:
        """End every follow: their subscribers' streams end (the gateway is stopping)."""
        for followed in list(self._followed.values()):
            if followed.task is not None:
                followed.task.cancel()
            followed.channel.close()

    async def close(self) -> None:
        self.stop()
        tasks = [f.task for f in self._followed.values() if f.task is not None]
        if self._listening is not None:
            tasks.append(self._listening)
            self._listening.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @contextlib.asynccontextmanager
    async def follow(self, order_id: str) -> AsyncIterator[OrderChannel]:
        followed = self._followed.get(order_id)
        if followed is None:
            followed = self._followed[order_id] = _Followed(OrderChannel(order_id))
            followed.task = asyncio.create_task(self._feed(order_id, followed), name=f"follow-{order_id}")
        followed.users += 1
        try:
            yield followed.channel
        finally:
            followed.users -= 1
            if followed.users == 0 and self._followed.get(order_id) is followed:
                del self._followed[order_id]
                if followed.task is not None:
                    followed.task.cancel()

    def changed(self, order_id: str) -> None:
        """The ledger says the order changed: read it now if it is followed."""
        followed = self._followed.get(order_id)
        if followed is not None:
            followed.wake.set()

    async def _feed(self, order_id: str, followed: _Followed) -> None:
        version: int | None = None
        while True:
            followed.wake.clear()
            try:
                record = await self._ledger.get_order(order_id)
                if record is None:
                    followed.channel.close()
                    return
                if record.version != version:
                    await self._publish(followed.channel, record, since=version)
                    version = record.version
            except CagwError as exc:  # the ledger is away: the next round reads again
                log.debug("following order %s: %s", order_id, exc.message)
            except Exception:  # a bug must not leave its watchers waiting for nothing
                log.exception("following order %s: unexpected failure", order_id)
                followed.channel.close()
                return
            else:
                if record.state.finished:
                    return  # the final event is published: subscribers end with it
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(followed.wake.wait(), self._poll)

    async def _publish(self, channel: OrderChannel, record: OrderRecord, *, since: int | None) -> None:
        """The changes after version ``since`` (the order's version counts its history rows), then
        the record itself; the first read publishes only the current state."""
        if since is not None and record.version > since + 1:
            history = await self._ledger.order_history(record.id)
            for time, state, detail in history[since:record.version - 1]:
                channel.publish(await self._event_of(dataclasses.replace(
                    record, state=state, detail=detail, updated_at=time, serial_number=None)))
        channel.publish(await self._event_of(record))

    async def _listen(self, changes: LeasingLedger) -> None:
        listener = changes.change_listener(self.changed)
        while True:
            try:
                await listener.run()
            except CagwError as exc:
                log.warning("not hearing of order changes (%s); followed orders are read every %gs meanwhile",
                            exc.message, self._poll)
            for followed in self._followed.values():  # changes may have been missed meanwhile
                followed.wake.set()
            await asyncio.sleep(RELISTEN_DELAY)
