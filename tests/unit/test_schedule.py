"""The collect schedule of the connector documentation: min(timer ** attempt, max timer)."""

from __future__ import annotations

import pytest

from service.config import BackoffSettings
from service.enrollment.schedule import CollectSchedule


@pytest.mark.parametrize(
    ("timer", "max_timer", "attempts", "waits"),
    [
        pytest.param(2, 32, 5, [2, 4, 8, 16, 32], id="ok-defaults"),
        pytest.param(2, 10, 5, [2, 4, 8, 10, 10], id="ok-capped-by-max"),
        pytest.param(3, 100, 4, [3, 9, 27, 81], id="ok-timer-3"),
        pytest.param(1, 32, 3, [1, 1, 1], id="ok-timer-1-is-flat"),
        pytest.param(0.5, 32, 3, [0.5, 0.25, 0.125], id="ok-timer-below-1-shrinks"),
        pytest.param(0.05, 0.05, 2, [0.05, 0.0025], id="ok-tiny-test-timers"),
        pytest.param(10, 60, 1, [10], id="ok-single-attempt"),
    ],
)
def test_waits_follow_the_documented_formula(timer: float, max_timer: float, attempts: int,
                                             waits: list[float]) -> None:
    schedule = CollectSchedule(timer, max_timer, attempts)
    assert schedule.waits() == pytest.approx(waits)


def test_huge_exponent_is_capped_not_an_overflow() -> None:
    schedule = CollectSchedule(1000.0, 32.0, 1000)
    assert schedule.wait_before(1000) == 32.0


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError, match="count from 1"):
        CollectSchedule(2, 32, 5).wait_before(0)


@pytest.mark.parametrize(("max_timer", "interval"), [(32.0, 32.0), (0.05, 1.0)], ids=["ok-max", "ok-floor-1s"])
def test_background_interval_is_the_max_timer_with_a_floor(max_timer: float, interval: float) -> None:
    assert CollectSchedule(2, max_timer, 5).background_interval == interval


def test_from_settings_uses_the_three_documented_keys() -> None:
    schedule = CollectSchedule.from_settings(BackoffSettings(back_off_timer=2, max_back_off_timer=32, max_attempts=5))
    assert (schedule.timer, schedule.max_timer, schedule.max_attempts) == (2, 32, 5)
