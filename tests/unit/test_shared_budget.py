"""One budget of background collects per CA for every gateway on one PostgreSQL ledger.

Two or three gateways (each its own ledger connection pool, tracker and budget) share one schema,
one fake CA and one fake clock that moves from one wake-up to the next (``SteppedTime``): the CA
sees the timeline a real clock would give, and the background collects of all the gateways
together stay within the one budget."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from service.authorities import CARegistry, ManagedCA
from service.catalog import ProfileCatalog
from service.config import CollectBudgetSettings
from service.enrollment.budget import SharedCollectBudget
from service.enrollment.replicas import Replicas
from service.enrollment.tracker import EnrollmentTracker
from service.ledger import Ledger, open_ledger, parse_target
from service.ledger.leases import leasing
from tests.support.clocks import FakeClock, SteppedTime
from tests.support.settings import CA_ID, CASettingsFactory
from tests.unit.ledger_backends import POSTGRES_URL, postgres_reason, postgres_schema
from tests.unit.ledger_records import T0
from tests.unit.test_collect_budget import TimedConnector, _within_budget
from tests.unit.test_tracker import _request

RATE, BURST = 1.0, 2
TIMER, MAX_TIMER, ATTEMPTS = 2, 4, 2  # foreground at 2 s and 6 s, then a background round every 4 s


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    reason = postgres_reason()
    if reason is not None:
        pytest.skip(reason)
    async with postgres_schema() as name:
        yield name


async def _ledger(stack: AsyncExitStack, schema: str, clock: FakeClock) -> Ledger:
    ledger = await open_ledger(parse_target(POSTGRES_URL, options={"schema": schema, "pool-size": "4"}), clock=clock)
    stack.push_async_callback(ledger.close)
    return ledger


async def _gateway(stack: AsyncExitStack, ledger: Ledger, registry: CARegistry, clock: FakeClock,
                   time: SteppedTime) -> EnrollmentTracker:
    shares = leasing(ledger)
    assert shares is not None
    replicas = Replicas(ledger, shares, sleep=time.sleep)  # leases and followers are not started here
    tracker = EnrollmentTracker(ledger, registry, clock=clock, sleep=time.sleep, shared=replicas)
    replicas.attach(tracker)
    stack.push_async_callback(tracker.close)
    return tracker


@pytest.mark.parametrize("gateways", [2, 3])
async def test_ok_the_background_collects_of_every_gateway_together_keep_one_budget(
        schema: str, tmp_path: Path, ca_settings: CASettingsFactory, gateways: int) -> None:
    clock = FakeClock(T0)
    time = SteppedTime(clock)
    settings = ca_settings(properties={"enroll-back-off-timer": f"{TIMER}s", "enroll-max-back-off-timer": f"{MAX_TIMER}s",
                                       "enroll-max-attempts": str(ATTEMPTS)},
                           gateway={"background-collects": {"rate": f"{RATE:g}/s", "burst": BURST, "listing": False}})
    connector = TimedConnector(clock)  # one CA for all: it never issues here
    registry = CARegistry([ManagedCA(settings=settings, connector=connector, catalog=ProfileCatalog(settings, connector))])
    async with AsyncExitStack() as stack:
        trackers = [await _gateway(stack, await _ledger(stack, schema, clock), registry, clock, time)
                    for _ in range(gateways)]
        per_gateway = 8  # 8 orders each: every 4 s each gateway alone would want 2 collects a second
        for n in range(per_gateway * gateways):
            await trackers[n % gateways].submit(_request(f"host{n}.example.com"))
        background_rounds = 3
        wanted = per_gateway * gateways * (ATTEMPTS + background_rounds)
        await time.run(busy=lambda: sum(t.running_orders for t in trackers),
                       until=lambda: len(connector.collects) >= wanted, limit=600)
        by_order: dict[str, list[float]] = {}
        for order, at in connector.collects:
            by_order.setdefault(order, []).append((at - T0).total_seconds())
        assert all(times[:ATTEMPTS] == [2.0, 6.0] for times in by_order.values())  # the foreground is never paced
        background = [t for times in by_order.values() for t in times[ATTEMPTS:]]
        assert len(background) >= per_gateway * gateways * (background_rounds - 1)
        _within_budget(background, rate=RATE, burst=BURST)  # the deployment's rate, not each gateway's
        budgets = [t._pacer.budget(CA_ID, settings.gateway.background_collects) for t in trackers]  # noqa: SLF001
        assert all(isinstance(b, SharedCollectBudget) and b.round_trips > 0 for b in budgets)


async def test_ok_slots_are_taken_in_batches_and_spaced_for_every_gateway(schema: str) -> None:
    """The bucket alone: two gateways taking slots due at once get them at the one rate, after
    the one burst, and one statement serves every collect waiting on a gateway at that moment."""
    import asyncio

    clock = FakeClock(T0)
    async with AsyncExitStack() as stack:
        ledgers = [await _ledger(stack, schema, clock) for _ in range(2)]
        settings = CollectBudgetSettings(rate=2.0, burst=3)
        budgets = [SharedCollectBudget(settings, CA_ID, ledger) for ledger in ledgers]  # type: ignore[arg-type]
        now = clock.now.timestamp()
        slots = await asyncio.gather(*(budgets[n % 2].take(now, now=now) for n in range(10)))
        at = sorted(s.at - now for s in slots)
        assert at == [0.0, 0.0, 0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
        assert sum(b.round_trips for b in budgets) < 10  # those waiting together shared a statement
        later = await budgets[1].take(now + 100, now=now + 100)
        assert later.at == now + 100  # the bucket filled up again meanwhile
