"""A CA's budget of background collects: a token bucket that hands out time slots.

Once an order's foreground attempts are used up, each of its background collects
asks the budget of its CA for a slot at or after the time the schedule says it is
due, when it is due; the bucket holds ``burst`` tokens and gains ``rate`` tokens a
second, and a slot takes one. The budget thus works as one queue of due collects
per CA served at its rate: many orders that fall due together are spread
``1/rate`` seconds apart instead of going out in one burst, and stay spread in the
rounds after (each order's next round counts from its own collect).

This is the generic cell rate algorithm: ``_free_at`` is the bucket's theoretical
arrival time (when it would be full again with no further slot taken). Whatever the order in which slots are asked for, any window of ``w``
seconds holds at most ``burst + w * rate`` of them. A slot given up (the
operator collected the order at once, the order task stopped) is not handed out
again: the budget only ever errs towards fewer calls.

Foreground attempts never ask: a caller's waits follow the documented schedule.
Time is float seconds from the caller's clock, so the budget runs on virtual time
in tests.

With a ledger several gateways share, :class:`SharedCollectBudget` keeps the bucket in the
ledger (:mod:`service.ledger.budgets`), so the rate holds for the whole deployment: a gateway
takes slots from it in batches, one statement for all the collects waiting here at that moment.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import time
from dataclasses import dataclass

from service.config import CollectBudgetSettings
from service.errors import CagwError
from service.ledger.budgets import BudgetLedger

__all__ = ["BATCH", "CollectBudget", "CollectBudgets", "SharedCollectBudget", "Slot"]

log = logging.getLogger(__name__)

BATCH = 20  # most slots one gateway takes from a shared bucket in one statement


@dataclass(frozen=True)
class Slot:
    """When a background collect may go, and what it cost to get there."""

    at: float  # seconds on the caller's clock; never before the collect was due
    deferred: float  # seconds the budget added to the due time, or to now when that was later (0: not deferred)
    tokens: float  # tokens left in the bucket once this slot is taken (the bucket as of now)
    queued: int  # slots handed out that have not yet come (this one included)


class CollectBudget:
    """One CA's bucket; see the module docstring."""

    def __init__(self, settings: CollectBudgetSettings) -> None:
        self.rate = settings.rate
        self.burst = settings.burst
        self._spacing = 1.0 / settings.rate
        self._tolerance = (settings.burst - 1) * self._spacing  # how far ahead of its pace the bucket may run
        self._free_at = -math.inf  # the bucket's theoretical arrival time
        self._coming: list[float] = []  # slots not yet reached, soonest first

    def next_slot(self, due: float, *, now: float) -> float:
        """The slot :meth:`reserve` would give now, without taking it."""
        due = max(due, now)
        paced = max(self._free_at, due)
        return max(due, paced - self._tolerance)

    def peek(self, due: float, *, now: float) -> Slot:
        """The slot :meth:`reserve` would give, not taken (``tokens`` and ``queued`` as they are)."""
        at = self.next_slot(due, now=now)
        return Slot(at=at, deferred=at - max(due, now), tokens=self.tokens(now), queued=self.queued(now))

    def reserve(self, due: float, *, now: float) -> Slot:
        """The slot of a background collect due at ``due``: the first moment at or after it that the
        bucket has a token for, taken now. A slot is never in the past: ``due`` before ``now`` counts
        as ``now`` (the collect cannot go earlier, and calls made late together must not burst)."""
        due = max(due, now)
        paced = max(self._free_at, due)
        at = max(due, paced - self._tolerance)
        self._free_at = max(paced, at) + self._spacing
        heapq.heappush(self._coming, at)
        return Slot(at=at, deferred=at - due, tokens=self.tokens(now), queued=self.queued(now))

    async def take(self, due: float, *, now: float) -> Slot:
        """:meth:`reserve`, from wherever the bucket is kept (here: in memory)."""
        return self.reserve(due, now=now)

    def tokens(self, now: float) -> float:
        """Tokens in the bucket at ``now``, slots already handed out taken off (0 … burst)."""
        if self._free_at <= now:
            return float(self.burst)
        return max(0.0, self.burst - (self._free_at - now) / self._spacing)

    def queued(self, now: float) -> int:
        """Slots handed out that ``now`` has not reached yet."""
        while self._coming and self._coming[0] <= now:
            heapq.heappop(self._coming)
        return len(self._coming)


class SharedCollectBudget(CollectBudget):
    """One CA's bucket kept in a ledger every gateway shares. The collects asking :meth:`take` are
    queued; one task takes their slots from the ledger in batches: every collect waiting at that
    moment (at most ``batch``) in one statement, so the cost is one round trip per batch, and no
    slot is taken that no collect here asked for. A batch's slots are worked out for the latest
    arrival among its collects (the generic cell rate algorithm for that many cells at once), so
    none goes before it is due and the deployment's rate holds exactly. The in-memory bucket of
    the base class follows the shared one (as of the latest batch): ``next_slot``, ``peek`` and
    ``tokens`` are estimates from it, and it paces this gateway alone while the ledger cannot be
    reached."""

    def __init__(self, settings: CollectBudgetSettings, ca_id: str, ledger: BudgetLedger, *,
                 batch: int = BATCH) -> None:
        super().__init__(settings)
        self._ca_id = ca_id
        self._ledger = ledger
        self._batch = batch
        self._asking: list[tuple[float, asyncio.Future[float]]] = []  # (arrival, its slot), in order
        self._serving: asyncio.Task[None] | None = None
        self._unreachable = False
        self.round_trips = 0  # statements sent to the ledger (figures for the docs and benchmark)
        self.round_trip_seconds = 0.0

    async def take(self, due: float, *, now: float) -> Slot:
        arrival = max(due, now)
        slot: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._asking.append((arrival, slot))
        if self._serving is None or self._serving.done():
            self._serving = asyncio.create_task(self._serve(), name=f"budget-{self._ca_id}")
        at = await slot
        heapq.heappush(self._coming, at)
        return Slot(at=at, deferred=at - arrival, tokens=self.tokens(now), queued=self.queued(now))

    async def _serve(self) -> None:
        while self._asking:
            batch = [(arrival, slot) for arrival, slot in self._asking[:self._batch] if not slot.done()]
            del self._asking[:self._batch]
            if not batch:
                continue
            latest = max(arrival for arrival, _ in batch)
            try:
                start = await self._take_batch(latest, len(batch))
            except CagwError as exc:
                if not self._unreachable:
                    log.warning("CA %s: the shared budget of background collects cannot be read (%s); this "
                                "gateway paces its own until the ledger answers", self._ca_id, exc.message)
                self._unreachable = True
                slots = [self.reserve(arrival, now=arrival).at for arrival, _ in batch]
            except Exception as exc:  # the ledger closed under it (a stop), or a bug: each asker hears of it
                for _, slot in batch:
                    if not slot.done():
                        slot.set_exception(exc)
                continue
            except asyncio.CancelledError:
                for _, slot in batch:
                    slot.cancel()
                raise
            else:
                if self._unreachable:
                    log.info("CA %s: the shared budget of background collects is read again", self._ca_id)
                self._unreachable = False
                slots = [max(latest, start + n * self._spacing - self._tolerance) for n in range(len(batch))]
                self._free_at = max(self._free_at, start + len(batch) * self._spacing)
            for (_, slot), at in zip(batch, slots, strict=True):
                if not slot.done():  # its collect may have stopped meanwhile: the slot goes unused
                    slot.set_result(at)

    async def _take_batch(self, arrival: float, count: int) -> float:
        started = time.perf_counter()
        try:
            return await self._ledger.take_budget_slots(self._ca_id, arrival=arrival, count=count,
                                                        spacing=self._spacing)
        finally:
            self.round_trips += 1
            self.round_trip_seconds += time.perf_counter() - started


class CollectBudgets:
    """The budget of every CA, made on first use and remade when the CA's settings change; kept in
    ``ledger`` when several gateways share it."""

    def __init__(self, ledger: BudgetLedger | None = None) -> None:
        self._ledger = ledger
        self._budgets: dict[str, tuple[CollectBudgetSettings, CollectBudget]] = {}

    def of(self, ca_id: str, settings: CollectBudgetSettings) -> CollectBudget:
        """The budget of ``ca_id`` (a new one when its settings changed)."""
        known = self._budgets.get(ca_id)
        if known is None or known[0] != settings:
            budget = CollectBudget(settings) if self._ledger is None else \
                SharedCollectBudget(settings, ca_id, self._ledger)
            known = self._budgets[ca_id] = (settings, budget)
        return known[1]
