"""Bounds on look-ups that reach the CA: a burst of questions must not become a burst of paid calls.

A serial the ledger does not know is looked for at the CA (a list call, then details and a
download per candidate). Three things keep that cheap and bounded:

* **one question at a time per serial**: concurrent look-ups of the same serial share one CA
  look-up (:class:`SingleFlight`);
* **unknown stays unknown for a while**: a serial the CA does not know either is answered
  ``CERTIFICATE_NOT_FOUND`` from memory for ``unknown-serial-ttl`` (:class:`UnknownSerials`);
* **a budget per caller**: each caller's look-ups at the CA draw from a token bucket
  (``ca-lookups-per-second``, ``ca-lookup-burst``); an empty bucket is ``RESOURCE_EXHAUSTED``
  (REST 429) with the time until the next token (:class:`CallerBudgets`).

Time is a monotonic ``() -> float`` so tests run these on a fake clock.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from service.errors import LimitExceeded

__all__ = ["CallerBudgets", "SingleFlight", "TokenBucket", "UnknownSerials"]

Monotonic = Callable[[], float]
T = TypeVar("T")
MAX_REMEMBERED = 10_000  # entries of each table: a bound on memory whatever callers send


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up."""

    def __init__(self, *, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._at = now

    def take(self, now: float) -> float:
        """0 when a token was taken, else the seconds until one is available."""
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate

    def full(self, now: float) -> bool:
        return self._tokens + (now - self._at) * self.rate >= self.burst


class CallerBudgets:
    """One :class:`TokenBucket` per caller identity; callers whose bucket refilled are forgotten."""

    def __init__(self, *, rate: float, burst: int, clock: Monotonic = time.monotonic) -> None:
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def spend(self, caller: str, *, what: str) -> None:
        """Take one token of ``caller``'s, or raise :class:`LimitExceeded` naming ``what`` was refused."""
        now = self._clock()
        bucket = self._buckets.pop(caller, None) or TokenBucket(rate=self._rate, burst=self._burst, now=now)
        wait = bucket.take(now)
        self._buckets[caller] = bucket  # most recently used last
        self._forget_full(now)
        if wait > 0:
            raise LimitExceeded(f"too many {what} reaching the CA from this caller (at most {self._rate:g}/s, "
                                f"bursts of {self._burst}: lookups.ca-lookups-per-second); retry in {wait:.1f}s",
                                reason="LOOKUP_RATE_EXCEEDED", retry_after=wait)

    def _forget_full(self, now: float) -> None:
        while self._buckets:
            oldest_caller, oldest = next(iter(self._buckets.items()))
            if not oldest.full(now) and len(self._buckets) <= MAX_REMEMBERED:
                return
            del self._buckets[oldest_caller]


class UnknownSerials:
    """Serials the CA said it does not know, remembered for ``ttl`` seconds (at most 10,000)."""

    def __init__(self, *, ttl: float, clock: Monotonic = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._until: OrderedDict[Hashable, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._until)

    def known_unknown(self, key: Hashable) -> bool:
        until = self._until.get(key)
        if until is None:
            return False
        if self._clock() < until:
            return True
        del self._until[key]
        return False

    def remember(self, key: Hashable) -> None:
        if self._ttl <= 0:
            return
        self._until.pop(key, None)
        self._until[key] = self._clock() + self._ttl
        while len(self._until) > MAX_REMEMBERED:
            self._until.popitem(last=False)

    def forget(self, key: Hashable) -> None:
        self._until.pop(key, None)


class SingleFlight(Generic[T]):
    """Concurrent calls for one key share one run of the work (its result or its exception).

    The work runs in its own task, so the caller that started it may leave (its call cancelled)
    without cancelling it for the others.
    """

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Task[T]] = {}

    def __len__(self) -> int:
        return len(self._running)

    def running(self, key: Hashable) -> bool:
        return key in self._running

    async def run(self, key: Hashable, work: Callable[[], Awaitable[T]]) -> T:
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(work())
            self._running[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        return await asyncio.shield(task)

    def _finished(self, key: Hashable, task: asyncio.Task[T]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled():
            task.exception()  # retrieved: a run nobody waits for any more logs nothing
