"""Clocks that move only when a test says so, and a sleep that moves them instead of waiting.

Two kinds of time are faked: the wall clock the core reads (``service.clock.Clock``,
an aware UTC ``datetime``) and float seconds (``time.time``/``time.monotonic``
stand-ins taken by the simulator, the circuit breaker, the profile catalog...).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import itertools
from collections.abc import Callable

__all__ = ["FakeClock", "HaltingSleep", "SecondsClock", "SteppedTime", "VirtualTime"]

UTC = dt.timezone.utc


class FakeClock:
    """A settable ``now`` for the core's ``clock=`` parameter (aware UTC, whole seconds by default)."""

    def __init__(self, now: dt.datetime | None = None) -> None:
        self.now = now or dt.datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float | None = None, **delta: float) -> dt.datetime:
        """Move by ``seconds`` and/or ``timedelta`` keywords; with no argument by one second,
        a tick that keeps stored times apart."""
        if seconds is None and not delta:
            seconds = 1.0
        self.now += dt.timedelta(seconds=seconds or 0.0, **delta)
        return self.now


class SecondsClock:
    """Float seconds that move only when told; ``sleep`` records the wait and moves them."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


class VirtualTime:
    """A sleep for the core's ``sleep=`` parameter: records the wait, advances a :class:`FakeClock`
    and lets the loop run; ``on_sleep`` can act between attempts (issue the certificate, make the
    CA fail...)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.waits: list[float] = []
        self.on_sleep: Callable[[int], None] = lambda n: None
        self.gate: asyncio.Event | None = None  # when set up, every sleep also waits for it

    async def sleep(self, seconds: float) -> None:
        self.waits.append(round(seconds, 6))
        self.clock.advance(seconds=seconds)
        self.on_sleep(len(self.waits))
        await asyncio.sleep(0)
        if self.gate is not None:
            await self.gate.wait()


class SteppedTime:
    """A sleep for many tasks sharing one :class:`FakeClock`: each sleeper wakes when the clock
    reaches its own wake-up time. :meth:`run` moves the clock from one wake-up to the next, but
    only once every task that should be working is asleep, so concurrent orders see the same
    timeline they would on a real clock, without waiting for it."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self._sleepers: list[tuple[dt.datetime, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def asleep(self) -> int:
        return sum(1 for _, _, future in self._sleepers if not future.done())

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.clock.now + dt.timedelta(seconds=seconds), next(self._order), future))
        await future

    async def run(self, *, busy: Callable[[], int], until: Callable[[], bool], limit: float,
                  settle: float = 5.0) -> None:
        """Advance until ``until()`` holds or the clock moved ``limit`` seconds. ``busy()`` is how many
        tasks are working now (each is either asleep here or doing real work, such as a ledger
        write on its thread); the clock moves only when all of them are asleep."""
        end = self.clock.now + dt.timedelta(seconds=limit)
        loop = asyncio.get_running_loop()
        while not until():
            deadline = loop.time() + settle
            while self.asleep < busy():
                if loop.time() > deadline:
                    raise AssertionError(f"{busy() - self.asleep} task(s) neither finished nor slept")
                await asyncio.sleep(0.001)  # real work (a ledger thread) to finish; the clock stays put
            if until():
                return
            while self._sleepers and self._sleepers[0][2].done():
                heapq.heappop(self._sleepers)  # cancelled: the task stopped waiting
            if not self._sleepers or self._sleepers[0][0] > end:
                raise AssertionError(f"nothing happened within {limit:g} virtual seconds")
            wake, _, future = heapq.heappop(self._sleepers)
            self.clock.now = max(self.clock.now, wake)
            future.set_result(None)
            await asyncio.sleep(0)


class HaltingSleep:
    """A sleep that records each wait and moves the clock, but never ends its ``halt_at``-th wait:
    the gateway stops there, its order waiting for that attempt (as when it is killed)."""

    def __init__(self, clock: FakeClock, *, halt_at: int) -> None:
        self.clock = clock
        self.waits: list[float] = []
        self._halt_at = halt_at

    async def sleep(self, seconds: float) -> None:
        self.waits.append(round(seconds, 6))
        if len(self.waits) == self._halt_at:
            await asyncio.Event().wait()
        self.clock.advance(seconds=seconds)
        await asyncio.sleep(0)
