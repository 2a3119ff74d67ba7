"""Expiry notices on virtual time: a real SQLite ledger, a fake clock, a sleep that moves it."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from service.config import RenewalSettings
from service.ledger import SQLiteLedger
from service.lifecycle.expiry import ExpiryNotices, threshold_label
from tests.support.clocks import FakeClock, VirtualTime
from tests.unit.ledger_records import T0, new_certificate

DAY = 86400.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def ledger(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SQLiteLedger]:
    async with SQLiteLedger(tmp_path / "ledger.db", clock=clock) as opened:
        yield opened


@pytest.mark.parametrize(("seconds", "label"), [(30 * DAY, "30d"), (36 * 3600.0, "36h"), (90 * 60.0, "90m"),
                                                (45.0, "45s"), (DAY + 1, "86401s")])
def test_ok_thresholds_are_labelled_in_their_largest_whole_unit(seconds: float, label: str) -> None:
    assert threshold_label(seconds) == label


async def _told(ledger: SQLiteLedger) -> list[tuple[str, str, dt.datetime]]:
    return [(e.event.serial_number, e.event.detail, e.event.time) for e in await ledger.events_after(0, limit=100)
            if e.event.action == "expiring"]


async def test_ok_a_certificate_is_told_once_at_each_threshold_as_days_pass(ledger: SQLiteLedger,
                                                                            clock: FakeClock) -> None:
    await ledger.record_issued(None, replace(new_certificate("aa01"), not_after=T0 + dt.timedelta(days=40)))
    time = VirtualTime(clock)
    renewal = RenewalSettings(check_interval=DAY)  # 30d, 7d, 1d
    passes = 0

    def stop_after_fifty(count: int) -> None:
        nonlocal passes
        passes = count
        if count == 50:
            job.cancel()

    time.on_sleep = stop_after_fifty
    job = asyncio.ensure_future(ExpiryNotices(ledger, clock=clock, sleep=time.sleep).run_for("ca-1", renewal))
    with pytest.raises(asyncio.CancelledError):
        await job
    assert passes == 50 and set(time.waits) == {DAY}
    day = dt.timedelta(days=1)
    assert await _told(ledger) == [("aa01", "30d", T0 + 10 * day), ("aa01", "7d", T0 + 33 * day),
                                   ("aa01", "1d", T0 + 39 * day)]


async def test_ok_a_certificate_found_late_is_told_the_threshold_it_is_in_alone(ledger: SQLiteLedger) -> None:
    await ledger.record_issued(None, replace(new_certificate("bb01"), not_after=T0 + dt.timedelta(days=3)))
    notices = ExpiryNotices(ledger)
    assert await notices.notify_at("ca-1", (DAY, 30 * DAY, 7 * DAY), T0) == 1
    assert await notices.notify_at("ca-1", (30 * DAY, 7 * DAY, DAY), T0 + dt.timedelta(hours=1)) == 0
    assert [(serial, label) for serial, label, _ in await _told(ledger)] == [("bb01", "7d")]


async def test_ok_no_thresholds_no_job(ledger: SQLiteLedger) -> None:
    await ledger.record_issued(None, replace(new_certificate("cc01"), not_after=T0 + dt.timedelta(days=3)))
    await asyncio.wait_for(ExpiryNotices(ledger).run_for("ca-1", RenewalSettings(notify_before=())), 1)
    assert await _told(ledger) == []
