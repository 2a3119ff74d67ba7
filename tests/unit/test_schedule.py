"""The collect schedule of the connector documentation (min(timer ** attempt, max timer)) and one order's run."""

from __future__ import annotations

import datetime as dt

import pytest

from service.config import BackoffSettings
from service.enrollment.schedule import CollectSchedule, ScheduleRun


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


def test_foreground_time_is_every_wait_plus_one_call_per_attempt() -> None:
    assert CollectSchedule(2, 32, 5).foreground_time(call_timeout=30) == 2 + 4 + 8 + 16 + 32 + 5 * 30


START = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)


def _run(made: int = 0, *, give_up_after: float = 1000) -> ScheduleRun:
    return ScheduleRun(CollectSchedule(2, 32, 3), made=made, give_up_at=START + dt.timedelta(seconds=give_up_after))


def test_ok_run_numbers_attempts_and_says_timed_out_once() -> None:
    run = _run()
    steps = [run.next(START) for _ in range(5)]
    assert [(s.number, s.delay, s.background, s.timed_out) for s in steps] == [
        (1, 2, False, False), (2, 4, False, False), (3, 8, False, False), (4, 32, True, True), (5, 32, True, False)]
    assert steps[0].due == START + dt.timedelta(seconds=2)
    assert not any(s.past_give_up for s in steps)


def test_ok_a_run_resumed_past_the_foreground_attempts_does_not_say_timed_out_again() -> None:
    run = _run(made=3)
    step = run.next(START)
    assert (step.number, step.background, step.timed_out) == (4, True, False)


def test_ok_a_resumed_run_goes_on_from_the_recorded_attempt() -> None:
    step = _run(made=1).next(START)
    assert (step.number, step.delay) == (2, 4)


def test_ok_at_least_lengthens_the_wait_never_shortens_it() -> None:
    run = _run()
    assert run.next(START, at_least=50).delay == 50
    assert run.next(START, at_least=1).delay == 4


def test_ok_give_up_age_counts_only_in_the_background() -> None:
    run = _run(give_up_after=0)
    assert [run.next(START).past_give_up for _ in range(4)] == [False, False, False, True]
