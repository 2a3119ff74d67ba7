"""The lease keeper on a real PostgreSQL ledger: an order whose lease another gateway took is
stopped here; renewals failing (the database cut off through a relay) stop the orders before their
leases could lapse, and once the database is back they are given up and claimed again. Monotonic
time is a fake clock: the keeper's rounds are called one by one, nothing waits. An order another
gateway takes over makes its next attempt at the time recorded for it, with its attempt numbers."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import cast

import pytest

from service.enrollment.channel import OrderEvent, Phase
from service.enrollment.leases import LeaseKeeper
from service.enrollment.tracker import EnrollmentTracker
from service.ledger import Ledger, OrderRecord, open_ledger, parse_target
from service.ledger.leases import LeasingLedger, leasing
from tests.e2e.processes import free_port
from tests.support.clocks import FakeClock, HaltingSleep, SecondsClock
from tests.unit.ledger_backends import POSTGRES_URL, postgres_reason, postgres_schema
from tests.unit.fakes import CA_ID, FakeConnector, make_registry
from tests.unit.ledger_records import T0, new_order
from tests.unit.test_ledger_postgres import SERVER, Relay


class Orders:
    """What the keeper drives: the orders running here, as a tracker would keep them."""

    def __init__(self) -> None:
        self.running: list[str] = []
        self.stopped: list[str] = []
        self.taken: list[str] = []

    def stop(self, order_id: str) -> None:
        self.stopped.append(order_id)
        self.running.remove(order_id)

    def take_over(self, order: OrderRecord) -> bool:
        self.taken.append(order.id)
        self.running.append(order.id)
        return True

    def keeper(self, ledger: LeasingLedger, monotonic: SecondsClock) -> LeaseKeeper:
        return LeaseKeeper(ledger, running=lambda: list(self.running), take_over=self.take_over, stop=self.stop,
                           monotonic=monotonic)


@pytest.fixture
async def opened() -> AsyncIterator[tuple[AsyncExitStack, str]]:
    reason = postgres_reason()
    if reason is not None:
        pytest.skip(reason)
    async with AsyncExitStack() as stack:
        yield stack, await stack.enter_async_context(postgres_schema())


async def _gateway(stack: AsyncExitStack, schema: str, clock: FakeClock, url: str = POSTGRES_URL) -> LeasingLedger:
    ledger = await open_ledger(parse_target(url, options={"schema": schema, "lease-time": "30s",
                                                          "lease-heartbeat": "10s", "connect-timeout": "1s"}),
                               clock=clock)
    stack.push_async_callback(ledger.close)
    shared = leasing(ledger)
    assert shared is not None
    return shared


async def test_ok_an_order_another_gateway_took_is_stopped_here(opened: tuple[AsyncExitStack, str]) -> None:
    stack, schema = opened
    clock = FakeClock(T0)
    a, b = await _gateway(stack, schema, clock), await _gateway(stack, schema, clock)
    order, _ = await ledger_of(a).create_order(new_order("o-1"))
    here = Orders()
    here.running.append(order.id)
    keeper = here.keeper(a, SecondsClock())
    await keeper.beat()
    assert here.stopped == []
    clock.advance(31)  # a stalled past its lease: b claims the order
    assert [o.id for o in await b.claim_due_orders(limit=5)] == [order.id]
    await keeper.beat()
    assert here.stopped == [order.id] and here.taken == []


async def test_fail_renewals_failing_stop_orders_before_their_leases_lapse_then_they_come_back(
        opened: tuple[AsyncExitStack, str]) -> None:
    stack, schema = opened
    clock, monotonic = FakeClock(T0), SecondsClock()
    relay = Relay(free_port())
    await relay.up()
    url = POSTGRES_URL.replace(SERVER.netloc.rpartition("@")[2], f"127.0.0.1:{relay.port}", 1)
    a = await _gateway(stack, schema, clock, url)
    order, _ = await ledger_of(a).create_order(new_order("o-1"))
    here = Orders()
    here.running.append(order.id)
    keeper = here.keeper(a, monotonic)
    await keeper.beat()
    await relay.down()
    monotonic.advance(10)
    await keeper.beat()  # one renewal missed: the lease (30 s) still outlasts the next round
    assert here.stopped == []
    monotonic.advance(10)
    await keeper.beat()  # the next round would come after the lease lapsed: stop first
    await _settled()
    assert here.stopped == [order.id] and here.running == []
    await relay.up()
    monotonic.advance(10)
    await keeper.beat()  # the ledger is back: the lease is given up and the order claimed again
    assert here.taken == [order.id] and here.running == [order.id]
    await relay.down()


async def _settled() -> None:
    """Let the stops the keeper set off run."""
    for _ in range(3):
        await asyncio.sleep(0)


def ledger_of(shared: LeasingLedger) -> Ledger:
    return cast(Ledger, shared)  # the PostgreSQL ledger is both


# -- taking an order over: its next attempt keeps the time recorded for it ------------------------------------


async def _tracker(stack: AsyncExitStack, ledger: LeasingLedger, connector: FakeConnector, clock: FakeClock,
                   sleep: HaltingSleep, tmp: Path) -> EnrollmentTracker:
    registry = make_registry(tmp, [connector])
    tracker = EnrollmentTracker(ledger_of(ledger), registry, clock=clock, sleep=sleep.sleep)
    stack.push_async_callback(tracker.close)
    return tracker


async def _until(tracker: EnrollmentTracker, order_id: str, phase: Phase, attempt: int) -> OrderEvent:
    async for event in tracker.watch(order_id):
        if event.phase is phase and event.attempt == attempt:
            return event
    raise AssertionError(f"the order ended before {phase.value} of attempt {attempt}")


@pytest.mark.parametrize("handover", ["killed", "stopped-cleanly"])
async def test_ok_a_taken_over_order_makes_its_next_attempt_at_its_recorded_time(
        opened: tuple[AsyncExitStack, str], tmp_path: Path, handover: str) -> None:
    stack, schema = opened
    clock = FakeClock(T0)
    a, b = await _gateway(stack, schema, clock), await _gateway(stack, schema, clock)
    connector = FakeConnector()  # one CA for both gateways: it never issues here
    a_time, b_time = HaltingSleep(clock, halt_at=3), HaltingSleep(clock, halt_at=3)
    on_a = await _tracker(stack, a, connector, clock, a_time, tmp_path / "a")
    on_b = await _tracker(stack, b, connector, clock, b_time, tmp_path / "b")
    submitted = await on_a.submit(dataclasses.replace(new_order("o-1"), ca_id=CA_ID, profile_id="ov",
                                                      ca_profile_id="101"))
    waiting = await asyncio.wait_for(_until(on_a, submitted.order.id, Phase.WAITING, 3), 10)
    assert a_time.waits[:2] == [2, 4] and waiting.next_attempt_at == clock() + dt.timedelta(seconds=8)
    due = waiting.next_attempt_at
    await on_a.close()  # a is gone while its order waits for attempt 3
    if handover == "killed":
        clock.advance(31)  # its lease lapsed: b claims the order at its next round, 23 s after it was due
        keeper = LeaseKeeper(b, running=on_b.running_ids, take_over=on_b.take_over, stop=on_b.stop)
        assert await keeper.claim() == 1
        expected_wait = 0.0
    else:
        assert await a.release_leases() == 1
        clock.advance(3)  # a request for the order reaches b 3 s later: b leases it and works on it
        assert await b.take_lease(submitted.order.id)
        taken = await ledger_of(b).get_order(submitted.order.id)
        assert taken is not None and on_b.take_over(taken)
        expected_wait = 5.0  # what was left of attempt 3's wait, not its whole 8 s again
    resumed = await asyncio.wait_for(_until(on_b, submitted.order.id, Phase.WAITING, 3), 10)
    assert (resumed.attempt, resumed.next_attempt_at) == (3, due)
    await asyncio.wait_for(_until(on_b, submitted.order.id, Phase.PENDING, 4), 10)
    assert b_time.waits[:2] == [expected_wait, 16]  # then the schedule goes on: attempt 4 waits 16 s
    assert connector.names().count("collect") == 4 and connector.names().count("enroll") == 1
    recorded = await ledger_of(b).get_order(submitted.order.id)
    assert recorded is not None and recorded.attempts == 4


async def test_ok_after_an_outage_orders_stopped_here_are_given_up_and_claimed_again(
        opened: tuple[AsyncExitStack, str]) -> None:
    stack, schema = opened
    clock = FakeClock(T0)
    a = await _gateway(stack, schema, clock)
    running, stopped = (await ledger_of(a).create_order(new_order("o-run")))[0], \
        (await ledger_of(a).create_order(new_order("o-gone")))[0]
    here = Orders()
    here.running.append(running.id)  # o-gone's task ended on a failed write while the database was away
    keeper = here.keeper(a, SecondsClock())
    assert await keeper.claim() == 0  # still leased to a: no claim takes it before the lease lapses
    assert await keeper.reclaim() == 1
    assert here.taken == [stopped.id] and sorted(here.running) == sorted([running.id, stopped.id])
