"""The circuit breaker of a CA: every transition, on a fake clock (no real time passes)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from service.config import CircuitBreakerSettings
from service.connectors.breaker import CircuitBreaker, CircuitState
from service.errors import CAUnavailable, CARejected, CircuitOpen
from tests.support.clocks import SecondsClock

SETTINGS = CircuitBreakerSettings(failure_threshold=3, window=10.0, open_for=5.0)


def make(settings: CircuitBreakerSettings = SETTINGS) -> tuple[CircuitBreaker, SecondsClock, list[tuple[str, str]]]:
    clock = SecondsClock(1000.0)
    breaker = CircuitBreaker(settings, name="ca-1", clock=clock, sleep=clock.sleep)
    moves: list[tuple[str, str]] = []
    breaker.watch(lambda name, old, new: moves.append((old.value, new.value)))
    return breaker, clock, moves


def answer(value: str = "ok") -> Callable[[], Awaitable[str]]:
    async def call() -> str:
        return value

    return call


def failing(error: Exception) -> Callable[[], Awaitable[str]]:
    async def call() -> str:
        raise error

    return call


UNAVAILABLE = CAUnavailable("CA ca-1: HTTP 503", http_status=503)


async def fail_times(breaker: CircuitBreaker, count: int, error: Exception = UNAVAILABLE) -> None:
    for _ in range(count):
        with pytest.raises(type(error)):
            await breaker.call(failing(error))


async def open_circuit(breaker: CircuitBreaker) -> None:
    await fail_times(breaker, SETTINGS.failure_threshold)
    assert breaker.state is CircuitState.OPEN


# ------------------------------------------------------------------ closed → open


async def test_ok_failures_below_the_threshold_keep_it_closed() -> None:
    breaker, _, moves = make()
    await fail_times(breaker, 2)
    assert breaker.state is CircuitState.CLOSED and moves == []
    assert await breaker.call(answer()) == "ok"


async def test_ok_threshold_failures_in_a_row_within_the_window_open_it() -> None:
    breaker, clock, moves = make()
    await fail_times(breaker, 2)
    clock.now += 9.0  # all three inside the 10 s window
    await fail_times(breaker, 1)
    assert breaker.state is CircuitState.OPEN
    assert moves == [("closed", "open")]


async def test_ok_failures_spread_beyond_the_window_do_not_open_it() -> None:
    breaker, clock, _ = make()
    for _ in range(6):
        await fail_times(breaker, 1)
        clock.now += 6.0  # never three within 10 s
    assert breaker.state is CircuitState.CLOSED


async def test_ok_an_answer_between_failures_starts_the_count_again() -> None:
    breaker, _, _ = make()
    await fail_times(breaker, 2)
    await breaker.call(answer())
    await fail_times(breaker, 2)
    assert breaker.state is CircuitState.CLOSED


@pytest.mark.parametrize("error", [
    CARejected("CA ca-1: refused", reason="CA_VALIDATION_FAILED"),  # the CA answered: it is up
    CAUnavailable("CA ca-1: HTTP 429", http_status=429, retry_after=2.0),  # throttling: it answers too
], ids=["ok-a-refusal-is-an-answer", "ok-throttling-is-no-failure"])
async def test_ok_what_does_not_count_as_a_failure(error: Exception) -> None:
    breaker, _, _ = make()
    for _ in range(10):
        await fail_times(breaker, 1, error)
    assert breaker.state is CircuitState.CLOSED


async def test_ok_a_throttled_answer_does_not_reset_the_count_either() -> None:
    breaker, _, _ = make()
    await fail_times(breaker, 2)
    await fail_times(breaker, 1, CAUnavailable("CA ca-1: HTTP 429", http_status=429))
    await fail_times(breaker, 1)
    assert breaker.state is CircuitState.OPEN


async def test_ok_a_switched_off_breaker_never_opens() -> None:
    breaker, _, moves = make(CircuitBreakerSettings(enabled=False, failure_threshold=1))
    await fail_times(breaker, 20)
    assert breaker.state is CircuitState.CLOSED and moves == []


# ------------------------------------------------------------------ open


async def test_fail_open_refuses_at_once_without_calling_and_says_when_to_retry() -> None:
    breaker, clock, _ = make()
    await open_circuit(breaker)
    clock.now += 2.0
    called = []

    async def call() -> str:
        called.append(1)
        return "ok"

    with pytest.raises(CircuitOpen) as caught:
        await breaker.call(call)
    assert called == []
    assert caught.value.retry_after == pytest.approx(3.0)
    assert caught.value.maybe_processed is False and caught.value.reason == "CA_CIRCUIT_OPEN"
    assert isinstance(caught.value, CAUnavailable)  # UNAVAILABLE with RetryInfo on the wire
    assert breaker.retry_after() == pytest.approx(3.0)


async def test_ok_open_becomes_half_open_when_open_for_has_passed() -> None:
    breaker, clock, moves = make()
    await open_circuit(breaker)
    clock.now += 4.9
    assert breaker.state is CircuitState.OPEN
    clock.now += 0.1
    assert breaker.state is CircuitState.HALF_OPEN
    assert moves == [("closed", "open"), ("open", "half_open")]
    assert breaker.retry_after() == 0.0


# ------------------------------------------------------------------ half-open → closed / open


async def test_ok_a_successful_probe_closes_it() -> None:
    breaker, clock, moves = make()
    await open_circuit(breaker)
    clock.now += 5.0
    assert await breaker.call(answer("probe")) == "probe"
    assert breaker.state is CircuitState.CLOSED
    assert moves[-1] == ("half_open", "closed")
    await fail_times(breaker, 2)  # the count starts afresh
    assert breaker.state is CircuitState.CLOSED


async def test_fail_a_failed_probe_opens_it_again_for_open_for() -> None:
    breaker, clock, moves = make()
    await open_circuit(breaker)
    clock.now += 5.0
    await fail_times(breaker, 1)
    assert breaker.state is CircuitState.OPEN
    assert breaker.retry_after() == pytest.approx(5.0)
    assert moves == [("closed", "open"), ("open", "half_open"), ("half_open", "open")]


async def test_fail_only_one_probe_at_a_time() -> None:
    breaker, clock, _ = make()
    await open_circuit(breaker)
    clock.now += 5.0
    release = asyncio.Event()

    async def slow_probe() -> str:
        await release.wait()
        return "probe"

    probe = asyncio.ensure_future(breaker.call(slow_probe))
    await asyncio.sleep(0)
    with pytest.raises(CircuitOpen):
        await breaker.call(answer())
    release.set()
    assert await probe == "probe"
    assert breaker.state is CircuitState.CLOSED


async def test_ok_a_cancelled_probe_frees_the_probe_slot() -> None:
    breaker, clock, _ = make()
    await open_circuit(breaker)
    clock.now += 5.0
    probe = asyncio.ensure_future(breaker.call(lambda: asyncio.Event().wait()))  # type: ignore[arg-type,return-value]
    await asyncio.sleep(0)
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert breaker.state is CircuitState.HALF_OPEN
    assert await breaker.call(answer()) == "ok"
    assert breaker.state is CircuitState.CLOSED


async def test_ok_a_call_from_before_a_transition_does_not_decide_the_state_after_it() -> None:
    breaker, _, _ = make()
    release = asyncio.Event()

    async def slow() -> str:
        await release.wait()
        return "late"

    late = asyncio.ensure_future(breaker.call(slow))  # admitted while closed
    await asyncio.sleep(0)
    await open_circuit(breaker)
    release.set()
    assert await late == "late"
    assert breaker.state is CircuitState.OPEN  # a success from the closed time does not close it


# ------------------------------------------------------------------ wait_closed


async def test_ok_wait_closed_returns_at_once_while_closed() -> None:
    breaker, clock, _ = make()
    await breaker.wait_closed()
    assert clock.slept == []


async def test_ok_wait_closed_waits_out_the_open_time_then_lets_a_probe_go() -> None:
    breaker, clock, _ = make()
    await open_circuit(breaker)
    clock.now += 1.5
    await breaker.wait_closed()
    assert clock.slept == [pytest.approx(3.5)]
    assert breaker.state is CircuitState.HALF_OPEN
    await breaker.call(answer())
    assert breaker.state is CircuitState.CLOSED


async def test_ok_wait_closed_waits_for_the_probe_in_flight() -> None:
    breaker, clock, _ = make()
    await open_circuit(breaker)
    clock.now += 5.0
    release = asyncio.Event()

    async def slow_probe() -> str:
        await release.wait()
        return "probe"

    probe = asyncio.ensure_future(breaker.call(slow_probe))
    await asyncio.sleep(0)
    waiter = asyncio.ensure_future(breaker.wait_closed())
    await asyncio.sleep(0)
    assert not waiter.done()
    release.set()
    await probe
    await asyncio.wait_for(waiter, 1.0)
    assert breaker.state is CircuitState.CLOSED


async def test_ok_listener_errors_do_not_break_the_breaker() -> None:
    breaker, _, _ = make()

    def broken(name: str, old: CircuitState, new: CircuitState) -> None:
        raise RuntimeError("listener bug")

    breaker.watch(broken)
    await open_circuit(breaker)
    assert breaker.state is CircuitState.OPEN


def test_ok_state_numbers_for_the_gauge() -> None:
    assert [state.number for state in (CircuitState.CLOSED, CircuitState.HALF_OPEN, CircuitState.OPEN)] == [0, 1, 2]
