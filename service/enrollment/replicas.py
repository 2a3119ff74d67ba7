"""``Replicas``: this gateway's part in a deployment of several on one shared ledger.

It is what the tracker asks of the others (:class:`~service.enrollment.sharing.SharedOrders`):
leases (:mod:`service.enrollment.leases`) decide which gateway works on an order, and the
follower (:mod:`service.enrollment.follow`) shows the watchers here what another gateway does.
The engine builds it when its ledger is a :class:`~service.ledger.leases.LeasingLedger`.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AbstractAsyncContextManager

from service.connectors.base import SleepFunction
from service.enrollment.channel import OrderChannel
from service.enrollment.follow import DEFAULT_POLL, OrderFollower
from service.enrollment.leases import LeaseKeeper
from service.enrollment.tracker import EnrollmentTracker
from service.errors import CagwError
from service.ledger.base import Ledger, OrderRecord
from service.ledger.leases import LeasingLedger

__all__ = ["Replicas"]

log = logging.getLogger(__name__)


class Replicas:
    """Built before the tracker (which takes it as ``shared``), then :meth:`attach`-ed to it."""

    def __init__(self, ledger: Ledger, leases: LeasingLedger, *, sleep: SleepFunction = asyncio.sleep,
                 poll: float = DEFAULT_POLL, notifications: bool = True) -> None:
        self._ledger = ledger
        self._leases = leases
        self._sleep = sleep
        self._poll = poll
        self._notifications = notifications
        self._tracker: EnrollmentTracker | None = None
        self._keeper: LeaseKeeper | None = None
        self._follower: OrderFollower | None = None
        self._taking_up: set[asyncio.Task[None]] = set()
        self._started = False

    def attach(self, tracker: EnrollmentTracker) -> None:
        self._tracker = tracker
        self._keeper = LeaseKeeper(self._leases, running=tracker.running_ids, take_over=tracker.take_over,
                                   stop=tracker.stop, sleep=self._sleep)
        self._follower = OrderFollower(self._ledger, self._leases if self._notifications else None,
                                       tracker.event_of, poll=self._poll)

    @property
    def owner(self) -> str:
        return self._leases.lease_owner

    async def start(self) -> int:
        """Claim the orders due now, then keep leases and follow changes; again (after the ledger
        was away): claim once more. Returns how many orders were taken up."""
        keeper, follower = self._parts()
        claimed = await (keeper.reclaim() if self._started else keeper.claim())
        self._started = True
        keeper.start()
        follower.start()
        return claimed

    # -- SharedOrders

    async def acquire(self, order: OrderRecord) -> bool:
        return await self._leases.take_lease(order.id)

    def take_up(self, order: OrderRecord) -> None:
        task = asyncio.create_task(self._take_up(order), name=f"take-up-{order.id}")
        self._taking_up.add(task)
        task.add_done_callback(self._taking_up.discard)

    def follow(self, order_id: str) -> AbstractAsyncContextManager[OrderChannel]:
        return self._parts()[1].follow(order_id)

    # -- stopping

    def stop_following(self) -> None:
        """End the streams of followed orders (the gateway is stopping)."""
        if self._follower is not None:
            self._follower.stop()

    async def stop_claiming(self) -> None:
        if self._keeper is not None:
            await self._keeper.close()
        for task in list(self._taking_up):
            task.cancel()
        await asyncio.gather(*self._taking_up, return_exceptions=True)

    async def close(self) -> None:
        """After the tracker stopped its tasks: stop following and give up every lease."""
        await self.stop_claiming()
        if self._follower is not None:
            await self._follower.close()
        if self._keeper is not None:
            await self._keeper.release_all()

    async def _take_up(self, order: OrderRecord) -> None:
        assert self._tracker is not None
        try:
            if await self._leases.take_lease(order.id):
                self._tracker.take_over(order)
            else:
                log.info("order %s: another gateway works on it; it goes on there", order.id)
        except CagwError as exc:
            log.warning("order %s: could not lease it to take it up (%s); it is claimed once due", order.id,
                        exc.message)

    def _parts(self) -> tuple[LeaseKeeper, OrderFollower]:
        if self._keeper is None or self._follower is None:
            raise RuntimeError("Replicas.attach(tracker) first")
        return self._keeper, self._follower
