"""The collect schedule of the connector documentation, and one order's run through it.

After an enrollment is submitted the gateway waits
``min(enroll-back-off-timer ** attempt, enroll-max-back-off-timer)`` before
each collect attempt, ``attempt`` counting from 1 up to
``enroll-max-attempts``. With the defaults (2 s, 32 s, 5) the waits are
2, 4, 8, 16 and 32 seconds.

A timer below one second is applied literally: ``0.5 ** attempt`` shrinks
(0.5, 0.25, 0.125 s …), so the waits get shorter with every attempt. A timer
of exactly one second waits one second each time. Start-up logs a warning for
timers below one second (see ``service.config``).

Once the attempts are used up, background collection goes on every
``enroll-max-back-off-timer`` (but at least one second, so a tiny test timer
cannot turn into a busy loop against the CA) until the order is issued,
fails, or reaches its give-up age. Those background attempts are paced by the
CA's budget, and a listing of the orders the CA is still processing may spare their collects
(:mod:`service.enrollment.pacing`); the foreground attempts never are.

This is the schedule of issuance (collect attempts, and the marker search of
an order whose enroll reply was lost); the HTTP retries inside one CA call
are the connector's own ``RetryPolicy``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from service.config import BackoffSettings

__all__ = ["Attempt", "CollectSchedule", "ScheduleRun"]

MIN_BACKGROUND_INTERVAL = 1.0


@dataclass(frozen=True)
class CollectSchedule:
    timer: float
    max_timer: float
    max_attempts: int

    @classmethod
    def from_settings(cls, settings: BackoffSettings) -> CollectSchedule:
        return cls(settings.back_off_timer, settings.max_back_off_timer, settings.max_attempts)

    def wait_before(self, attempt: int) -> float:
        """Seconds to wait before collect attempt ``attempt`` (1-based)."""
        if attempt < 1:
            raise ValueError(f"attempts count from 1, got {attempt}")
        try:
            wait = self.timer ** attempt
        except OverflowError:
            wait = self.max_timer
        return min(wait, self.max_timer)

    def waits(self) -> list[float]:
        """Every foreground wait, in order."""
        return [self.wait_before(attempt) for attempt in range(1, self.max_attempts + 1)]

    def foreground_time(self, *, call_timeout: float) -> float:
        """How long the foreground attempts can take: every wait plus one CA call (of at most
        ``call_timeout`` seconds) per attempt."""
        return sum(self.waits()) + self.max_attempts * call_timeout

    @property
    def background_interval(self) -> float:
        return max(self.max_timer, MIN_BACKGROUND_INTERVAL)


@dataclass(frozen=True)
class Attempt:
    """The next attempt of a run: its number, the wait before it and where the run stands."""

    number: int  # 1-based; above the schedule's max_attempts in the background
    delay: float
    due: dt.datetime  # when the wait ends
    background: bool  # the foreground attempts are used up
    timed_out: bool  # the first background attempt: time to say TIMED_OUT, once per run
    past_give_up: bool  # background and the order reached its give-up age: stop instead


class ScheduleRun:
    """One order's walk through its CA's schedule: numbers the attempts from those already
    made, picks each wait, says once when the foreground attempts ran out and when the order
    reached its give-up age. Both attempt loops of the tracker (collecting, and looking for an
    order whose enroll reply was lost) run on it."""

    def __init__(self, schedule: CollectSchedule, *, made: int, give_up_at: dt.datetime) -> None:
        self.schedule = schedule
        self.attempt = made  # the number of the latest attempt begun
        self._give_up_at = give_up_at
        # An order resumed past its foreground attempts has had its TIMED_OUT already.
        self._announced = made >= schedule.max_attempts

    def next(self, now: dt.datetime, *, at_least: float = 0.0) -> Attempt:
        """Begin the next attempt; its wait is the schedule's, or ``at_least`` when longer
        (a CA's Retry-After)."""
        self.attempt += 1
        background = self.attempt > self.schedule.max_attempts
        timed_out = background and not self._announced
        self._announced = self._announced or background
        delay = self.schedule.background_interval if background else self.schedule.wait_before(self.attempt)
        delay = max(delay, at_least)
        return Attempt(number=self.attempt, delay=delay, due=now + dt.timedelta(seconds=delay),
                       background=background, timed_out=timed_out,
                       past_give_up=background and now >= self._give_up_at)
