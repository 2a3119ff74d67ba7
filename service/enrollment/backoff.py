"""The collect schedule of the connector documentation.

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
fails, or reaches its give-up age.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.config import BackoffSettings

__all__ = ["BackoffSchedule"]

MIN_BACKGROUND_INTERVAL = 1.0


@dataclass(frozen=True)
class BackoffSchedule:
    timer: float
    max_timer: float
    max_attempts: int

    @classmethod
    def from_settings(cls, settings: BackoffSettings) -> BackoffSchedule:
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

    @property
    def background_interval(self) -> float:
        return max(self.max_timer, MIN_BACKGROUND_INTERVAL)
