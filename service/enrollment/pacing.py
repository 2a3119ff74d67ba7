"""When a background collect goes out, and whether it needs to: the CA's budget and listing together.

Once an order's foreground attempts are used up, each of its background attempts,
when due, asks :meth:`BackgroundPacer.turn`:

1. the CA's :class:`~service.enrollment.listing.PendingListing` may already know the
   order is still being processed: then no call is made this time, unless the order is due for
   its occasional real collect (``verify-after``). With the listing on, a collect that would not
   get a budget slot within one background interval is not made this round either (the order
   tries again at its next), so the queue of collects never holds more than one round and the
   listing's own calls never wait behind it;
2. otherwise the CA's :class:`~service.enrollment.budget.CollectBudget` gives the
   collect its slot (the due time itself when the bucket has a token), and the
   attempt waits for it. The collect's lateness is then counted from that slot, so
   queueing behind the budget is reported apart (``collect_budgeted``).

The list calls of a listing take budget slots too. Foreground attempts never come
here. With a ledger several gateways share, the budget is the deployment's, kept in the ledger
(:class:`~service.enrollment.budget.SharedCollectBudget`); the listing stays each gateway's own.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable

from service.authorities import ManagedCA
from service.clock import Clock
from service.connectors import base
from service.config import CollectBudgetSettings
from service.enrollment.budget import CollectBudget, CollectBudgets
from service.enrollment.listing import PendingListing, ListPage, Verdict
from service.enrollment.schedule import Attempt, CollectSchedule
from service.ledger.budgets import BudgetLedger
from service.observability.events import GatewayEvents

__all__ = ["BUDGET_FULL", "LISTED_PENDING", "BackgroundPacer"]

LISTED_PENDING = "not issued yet (the CA lists it as still being processed)"
BUDGET_FULL = "not collected this round: the CA's budget of background collects is taken"


class BackgroundPacer:
    """The budgets and listings of every CA of one tracker."""

    def __init__(self, *, clock: Clock, sleep: base.SleepFunction, events: GatewayEvents,
                 shared: BudgetLedger | None = None) -> None:
        self._clock = clock
        self._sleep = sleep
        self._events = events
        self._budgets = CollectBudgets(shared)  # in ``shared`` when several gateways use one ledger
        self._listings: dict[str, PendingListing] = {}

    def budget(self, ca_id: str, settings: CollectBudgetSettings) -> CollectBudget:
        """The CA's budget (made on first use)."""
        return self._budgets.of(ca_id, settings)

    def listing(self, ca_id: str) -> PendingListing | None:
        """The CA's listing, once one of its background orders asked."""
        return self._listings.get(ca_id)

    async def turn(self, ca: ManagedCA, ca_order_id: str, attempt: Attempt, *, schedule: CollectSchedule,
                   pause: Callable[[float], Awaitable[None]], list_page: ListPage) -> Attempt | str:
        """The attempt at its budget slot, once that slot has come (``pause`` waits for it); or, when no
        collect is made this round, the detail to record for the attempt instead."""
        settings = ca.settings.gateway.background_collects
        budget = self._budgets.of(ca.id, settings)
        if settings.listing and ca_order_id:
            listing = self._listings.get(ca.id)
            if listing is None or (listing.freshness, listing.verify_after) != (schedule.background_interval,
                                                                                settings.verify_after):
                listing = self._listings[ca.id] = PendingListing(
                    freshness=schedule.background_interval, verify_after=settings.verify_after,
                    clock=lambda: self._clock().timestamp())
            verdict = await listing.verdict(ca_order_id, now=self._clock().timestamp(),
                                            attempt=attempt.number - schedule.max_attempts,
                                            list_page=self._paced(ca, list_page))
            if verdict is Verdict.PENDING:
                self._events.collect_skipped(ca_id=ca.id)
                return LISTED_PENDING
            now = self._clock().timestamp()
            if budget.next_slot(attempt.due.timestamp(), now=now) > now + listing.freshness:
                # No slot within this round: the order tries again at its next one, so the queue of
                # collects never holds more than one round and the listing's own calls never wait long.
                slot = budget.peek(attempt.due.timestamp(), now=now)
                self._events.collect_budgeted(ca_id=ca.id, deferred=listing.freshness, tokens=slot.tokens,
                                              queued=slot.queued)
                return BUDGET_FULL
        now = self._clock().timestamp()
        slot = await budget.take(attempt.due.timestamp(), now=now)
        self._events.collect_budgeted(ca_id=ca.id, deferred=slot.deferred, tokens=slot.tokens, queued=slot.queued)
        if slot.at > now:
            await pause(slot.at - now)
        if slot.deferred <= 0:
            return attempt
        return dataclasses.replace(attempt, due=attempt.due + dt.timedelta(seconds=slot.deferred))

    def _paced(self, ca: ManagedCA, list_page: ListPage) -> ListPage:
        """``list_page`` with each call in a slot of the CA's budget."""
        async def paced(position: int, size: int) -> base.ListResult:
            now = self._clock().timestamp()
            slot = await self._budgets.of(ca.id, ca.settings.gateway.background_collects).take(now, now=now)
            if slot.at > now:
                await self._sleep(slot.at - now)
            return await list_page(position, size)
        return paced
