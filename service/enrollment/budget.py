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
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

from service.config import CollectBudgetSettings

__all__ = ["CollectBudget", "CollectBudgets", "Slot"]


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


class CollectBudgets:
    """The budget of every CA, made on first use and remade when the CA's settings change."""

    def __init__(self) -> None:
        self._budgets: dict[str, tuple[CollectBudgetSettings, CollectBudget]] = {}

    def of(self, ca_id: str, settings: CollectBudgetSettings) -> CollectBudget:
        """The budget of ``ca_id`` (a new one when its settings changed)."""
        known = self._budgets.get(ca_id)
        if known is None or known[0] != settings:
            known = self._budgets[ca_id] = (settings, CollectBudget(settings))
        return known[1]
