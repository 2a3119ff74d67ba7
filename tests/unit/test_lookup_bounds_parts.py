"""The look-up bounds on a fake clock: token buckets, unknown serials, shared searches."""

from __future__ import annotations

import asyncio

import pytest

from service.certificates.bounds import MAX_REMEMBERED, CallerBudgets, SingleFlight, UnknownSerials
from service.errors import LimitExceeded


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_ok_a_caller_spends_its_burst_then_waits_for_tokens_and_callers_are_apart() -> None:
    clock = Clock()
    budgets = CallerBudgets(rate=2.0, burst=3, clock=clock)
    for _ in range(3):
        budgets.spend("CN=a", what="look-ups")
    with pytest.raises(LimitExceeded) as caught:
        budgets.spend("CN=a", what="look-ups")
    assert caught.value.reason == "LOOKUP_RATE_EXCEEDED" and caught.value.retry_after == pytest.approx(0.5)
    budgets.spend("CN=b", what="look-ups")  # another caller has its own bucket
    clock.now += 0.5
    budgets.spend("CN=a", what="look-ups")
    clock.now += 60  # both buckets refilled: nothing is kept for them
    budgets.spend("CN=c", what="look-ups")
    assert len(budgets) == 1


def test_ok_unknown_serials_expire_and_the_table_is_bounded() -> None:
    clock = Clock()
    unknown = UnknownSerials(ttl=30.0, clock=clock)
    unknown.remember(("ca", "01"))
    assert unknown.known_unknown(("ca", "01")) and not unknown.known_unknown(("ca", "02"))
    clock.now += 30
    assert not unknown.known_unknown(("ca", "01")) and len(unknown) == 0
    for index in range(MAX_REMEMBERED + 5):
        unknown.remember(("ca", f"{index:x}"))
    assert len(unknown) == MAX_REMEMBERED and not unknown.known_unknown(("ca", "0"))
    off = UnknownSerials(ttl=0.0, clock=clock)
    off.remember(("ca", "01"))
    assert not off.known_unknown(("ca", "01"))


async def test_ok_concurrent_runs_share_one_and_a_leaving_caller_does_not_cancel_it() -> None:
    flights: SingleFlight[int] = SingleFlight()
    started, release = asyncio.Event(), asyncio.Event()
    runs = 0

    async def work() -> int:
        nonlocal runs
        runs += 1
        started.set()
        await release.wait()
        return 42

    first = asyncio.ensure_future(flights.run("k", work))
    await started.wait()
    others = [asyncio.ensure_future(flights.run("k", work)) for _ in range(10)]
    await asyncio.sleep(0)
    first.cancel()  # the caller that started it leaves
    release.set()
    assert await asyncio.gather(*others) == [42] * 10
    assert runs == 1 and len(flights) == 0
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_fail_a_shared_failure_reaches_every_waiter() -> None:
    flights: SingleFlight[int] = SingleFlight()

    async def work() -> int:
        await asyncio.sleep(0)
        raise LookupError("not there")

    results = await asyncio.gather(*(flights.run("k", work) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, LookupError) for r in results) and len(flights) == 0
