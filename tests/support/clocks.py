"""Clocks that move only when a test says so, and a sleep that moves them instead of waiting.

Two kinds of time are faked: the wall clock the core reads (``service.clock.Clock``,
an aware UTC ``datetime``) and float seconds (``time.time``/``time.monotonic``
stand-ins taken by the simulator, the circuit breaker, the profile catalog...).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

__all__ = ["FakeClock", "SecondsClock", "VirtualTime"]

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
