"""The lease keeper on a real PostgreSQL ledger: an order whose lease another gateway took is
stopped here; renewals failing (the database cut off through a relay) stop the orders before their
leases could lapse, and once the database is back they are given up and claimed again. Monotonic
time is a fake clock: the keeper's rounds are called one by one, nothing waits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import cast

import pytest

from service.enrollment.leases import LeaseKeeper
from service.ledger import Ledger, OrderRecord, open_ledger, parse_target
from service.ledger.leases import LeasingLedger, leasing
from tests.e2e.processes import free_port
from tests.support.clocks import FakeClock, SecondsClock
from tests.unit.ledger_backends import POSTGRES_URL, postgres_reason, postgres_schema
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
