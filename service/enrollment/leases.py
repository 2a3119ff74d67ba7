"""The lease keeper: which unfinished orders of a shared ledger this gateway works on.

Every ``heartbeat`` seconds the keeper

1. renews, in one statement, the leases of every order the tracker runs here; an order whose
   lease another gateway took meanwhile (this one stalled past its lease) is stopped here;
2. claims the orders that are due (next attempt time reached, found by the ledger's index) and
   that nobody holds, at most ``batch`` per round so that gateways starting together share them,
   and hands them to the tracker, which goes on from the attempts and schedule the ledger kept.

When renewals keep failing (the database is away) until the leases could lapse before the next
round, the keeper stops every order task here first: another gateway may take them over, and
one order must never be collected by two. Once the ledger answers it gives up their leases and
they are claimed again (here or elsewhere) in the same round.
At a clean stop the gateway gives up all its leases in one statement, so others take its orders
at once rather than at the lease expiry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection

from service.connectors.base import SleepFunction
from service.errors import CagwError
from service.ledger.base import OrderRecord
from service.ledger.leases import LeasingLedger

__all__ = ["CLAIM_BATCH", "LeaseKeeper"]

log = logging.getLogger(__name__)

CLAIM_BATCH = 100  # due orders claimed per round


class LeaseKeeper:
    """See the module docstring. ``running`` lists the orders the tracker runs now; ``take_over``
    starts one just claimed (False: it cannot run here); ``stop`` stops one."""

    def __init__(self, ledger: LeasingLedger, *, running: Callable[[], Collection[str]],
                 take_over: Callable[[OrderRecord], bool], stop: Callable[[str], object],
                 sleep: SleepFunction = asyncio.sleep, monotonic: Callable[[], float] = time.monotonic,
                 batch: int = CLAIM_BATCH) -> None:
        self._ledger = ledger
        self._running = running
        self._take_over = take_over
        self._stop = stop
        self._sleep = sleep
        self._monotonic = monotonic
        self._batch = batch
        self._timing = ledger.lease_timing
        self._renewed_at = monotonic()
        self._dropped: set[str] = set()  # stopped here while the ledger was away: leases still ours
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="order-leases")

    async def close(self) -> None:
        """Stop renewing and claiming (the tracker's tasks are stopped after this)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def release_all(self) -> None:
        """Give up every lease of this gateway (at a clean stop, once its order tasks ended)."""
        try:
            released = await self._ledger.release_leases()
        except CagwError as exc:
            log.warning("could not give up this gateway's order leases (they lapse in %gs): %s",
                        self._timing.lease_time, exc.message)
        else:
            if released:
                log.info("gave up the leases of %d unfinished order(s) to the other gateways", released)

    async def reclaim(self) -> int:
        """After the ledger was away: give up the leases of the orders whose tasks ended here without
        finishing them (their writes failed), so they are claimed again now (here or elsewhere)
        rather than when the leases lapse; then claim. Returns how many orders were started."""
        released = await self._ledger.release_leases(keep=list(self._running()))
        if released:
            log.info("gave up the leases of %d order(s) stopped while the ledger was away", released)
        self._dropped.clear()
        return await self.claim()

    async def claim(self) -> int:
        """Claim one batch of due orders and start them; return how many were started."""
        started = 0
        for order in await self._ledger.claim_due_orders(limit=self._batch):
            if self._take_over(order):
                started += 1
        if started:
            log.info("took up %d due order(s)", started)
        return started

    async def beat(self) -> None:
        """One round: renew, stop what was lost, claim."""
        running = list(self._running())
        sent = self._monotonic()
        try:
            lost = await self._ledger.renew_leases(running)
        except CagwError as exc:
            self._renewal_failed(exc, running)
            return
        self._renewed_at = sent
        if self._dropped:
            await self._release_dropped()
        for order_id in lost:
            log.warning("order %s: another gateway took its lease; stopping it here", order_id)
            await self._stopped(order_id)
        try:
            await self.claim()
        except CagwError as exc:
            log.warning("could not claim due orders: %s", exc.message)

    def _renewal_failed(self, exc: CagwError, running: list[str]) -> None:
        lapses_in = self._renewed_at + self._timing.lease_time - self._monotonic()
        log.warning("could not renew %d order lease(s) (they lapse in %.0fs): %s", len(running), max(lapses_in, 0),
                    exc.message)
        if lapses_in <= self._timing.heartbeat and running:
            log.warning("stopping %d order(s) here before their leases lapse; they are taken up again once the "
                        "ledger answers", len(running))
            self._dropped.update(running)
            for order_id in running:
                asyncio.ensure_future(self._stopped(order_id))

    async def _release_dropped(self) -> None:
        """Give up the leases of the orders stopped while the ledger was away, so that they are due
        for a claim now (by this gateway or another), not only when the leases lapse."""
        dropped = sorted(self._dropped)
        try:
            await self._ledger.release_leases(dropped)
        except CagwError as exc:
            log.warning("could not give up %d order lease(s): %s", len(dropped), exc.message)
        else:
            self._dropped.difference_update(dropped)

    async def _stopped(self, order_id: str) -> None:
        result = self._stop(order_id)
        if asyncio.iscoroutine(result):
            await result

    async def _run(self) -> None:
        while True:
            await self._sleep(self._timing.heartbeat)
            try:
                await self.beat()
            except Exception:  # a bug must not end the renewals: the leases would lapse under running orders
                log.exception("order leases: unexpected failure in a renewal round")
