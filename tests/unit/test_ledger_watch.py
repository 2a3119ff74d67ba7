"""LedgerWatch on virtual time: down at the first unwritable write, probing until a write goes through,
then up again and the orders taken up once; other ledger errors change nothing."""

from __future__ import annotations

import asyncio

from service.health import HealthState
from service.ledger import LedgerError, LedgerUnavailable, LedgerUnreachable, LedgerUnwritable
from service.ledger_watch import LedgerWatch


class Probe:
    """A ledger whose writability probe fails ``failures`` times."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.probes = 0

    async def check_writable(self) -> None:
        self.probes += 1
        if self.probes <= self.failures:
            raise LedgerUnwritable("ledger x: cannot be written (the disk is full)")


async def test_ok_down_while_unwritable_then_up_by_itself_and_orders_taken_up() -> None:
    health = HealthState()
    health.up("starting")
    slept: list[float] = []
    recovered: list[bool] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await asyncio.sleep(0)

    async def take_up() -> None:
        recovered.append(health.serving())

    watch = LedgerWatch(health, on_recovered=take_up, interval=1.0, sleep=sleep)
    probe = Probe(failures=2)
    watch.ledger = probe  # type: ignore[assignment]
    watch.failed(LedgerUnavailable("locked"))  # busy is not unwritable: nothing happens
    watch.failed(LedgerError("other"))
    assert health.serving()
    watch.failed(LedgerUnwritable("ledger x: cannot be written (the disk is full)"))
    watch.failed(LedgerUnwritable("again"))  # one probe at a time
    assert not health.serving() and health.reasons["ledger"].startswith("the ledger cannot be written: ")
    for _ in range(20):  # let the probe task run its turns (virtual sleeps)
        if recovered:
            break
        await asyncio.sleep(0)
    assert recovered == [True] and health.serving()
    assert probe.probes == 3 and slept == [1.0, 1.0, 1.0]
    await watch.close()


async def test_fail_an_unreachable_database_takes_the_health_down_until_a_write_goes_through() -> None:
    health = HealthState()
    health.up("starting")

    class Away:
        """A database that refuses the first two probes, then answers."""

        probes = 0

        async def check_writable(self) -> None:
            self.probes += 1
            if self.probes <= 2:
                raise LedgerUnreachable("ledger x: the database is unreachable (ConnectionRefusedError)")

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(0)

    recovered: list[bool] = []

    async def take_up() -> None:
        recovered.append(health.serving())

    watch = LedgerWatch(health, on_recovered=take_up, interval=1.0, sleep=sleep)
    watch.ledger = Away()  # type: ignore[assignment]
    watch.failed(LedgerUnreachable("ledger x: the database is unreachable (ConnectionRefusedError)"))
    assert not health.serving() and health.reasons["ledger"].startswith("the ledger cannot be reached: ")
    for _ in range(20):
        if recovered:
            break
        await asyncio.sleep(0)
    assert recovered == [True] and health.serving()
    await watch.close()
