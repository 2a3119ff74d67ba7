"""Order leases of the PostgreSQL ledger (several gateways on one schema), its order-change
notifications, and migration 8 on both backends. The gateways here are ledgers on one schema
with one fake clock: lease expiry is a clock move, not a wait."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, cast

import asyncpg
import pytest

from service.config import parse_config
from service.errors import ConfigError
from service.ledger import Ledger, OrderState, open_ledger, parse_target
from service.ledger.leases import LeasingLedger, leasing
from tests.support.clocks import FakeClock
from tests.support.settings import ca_entry, config_document
from tests.unit.ledger_backends import POSTGRES_URL, postgres_reason, postgres_schema
from tests.unit.ledger_records import T0, new_certificate, new_order

LEASE = 30.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


class Schema:
    """Gateways (ledgers) on one fresh schema."""

    def __init__(self, name: str, clock: FakeClock, stack: AsyncExitStack) -> None:
        self.name = name
        self._clock = clock
        self._stack = stack

    async def gateway(self) -> LeasingLedger:
        target = parse_target(POSTGRES_URL, options={"schema": self.name, "pool-size": "3", "lease-time": "30s",
                                                      "lease-heartbeat": "10s"})
        ledger = await open_ledger(target, clock=self._clock)
        self._stack.push_async_callback(ledger.close)
        shared = leasing(ledger)
        assert shared is not None
        return shared

    async def sql(self, statement: str, *args: object) -> list[Any]:
        conn = await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": self.name})
        try:
            return list(await conn.fetch(statement, *args))
        finally:
            await conn.close()


@pytest.fixture
async def schema(clock: FakeClock) -> AsyncIterator[Schema]:
    reason = postgres_reason()
    if reason is not None:
        pytest.skip(reason)
    async with AsyncExitStack() as stack:
        name = await stack.enter_async_context(postgres_schema())
        yield Schema(name, clock, stack)


def _ledger(shared: LeasingLedger) -> Ledger:
    return cast(Ledger, shared)  # the PostgreSQL ledger is both


async def test_ok_a_new_order_is_leased_to_its_creator_and_taken_over_with_its_attempts(
        schema: Schema, clock: FakeClock) -> None:
    a, b = await schema.gateway(), await schema.gateway()
    assert a.lease_owner != b.lease_owner
    order, _ = await _ledger(a).create_order(new_order("o-1"))
    await _ledger(a).update_order(order.id, state=OrderState.COLLECTING, ca_order_id="77", attempts=3,
                                  next_attempt_at=T0 + dt.timedelta(seconds=5))
    clock.advance(10)
    assert await b.claim_due_orders(limit=10) == []  # due, but a holds its lease
    assert not await b.take_lease(order.id)
    clock.advance(LEASE)  # a stopped renewing: its lease lapsed
    [taken] = await b.claim_due_orders(limit=10)
    assert (taken.id, taken.attempts, taken.next_attempt_at, taken.ca_order_id) == (
        order.id, 3, T0 + dt.timedelta(seconds=5), "77")
    assert await a.renew_leases([order.id]) == [order.id]  # a learns it lost it
    assert await b.renew_leases([order.id]) == []


async def test_ok_an_order_not_due_yet_is_not_claimed(schema: Schema, clock: FakeClock) -> None:
    a, b = await schema.gateway(), await schema.gateway()
    order, _ = await _ledger(a).create_order(new_order("o-1"))
    await _ledger(a).update_order(order.id, state=OrderState.COLLECTING, ca_order_id="1",
                                  next_attempt_at=T0 + dt.timedelta(seconds=100))
    clock.advance(LEASE + 1)
    assert await b.claim_due_orders(limit=10) == []
    clock.advance(70)
    assert [o.id for o in await b.claim_due_orders(limit=10)] == [order.id]


async def test_ok_renewal_keeps_the_lease(schema: Schema, clock: FakeClock) -> None:
    a, b = await schema.gateway(), await schema.gateway()
    order, _ = await _ledger(a).create_order(new_order("o-1"))
    for _ in range(4):
        clock.advance(LEASE - 5)
        assert await a.renew_leases([order.id]) == []
        assert await b.claim_due_orders(limit=10) == []


async def test_ok_concurrent_claims_never_share_an_order(schema: Schema, clock: FakeClock) -> None:
    creator = await schema.gateway()
    for n in range(60):
        await _ledger(creator).create_order(new_order(f"o-{n:02d}"))
    clock.advance(LEASE + 1)
    claimants = [await schema.gateway() for _ in range(3)]
    batches = await asyncio.gather(*(c.claim_due_orders(limit=25) for c in claimants for _ in range(2)))
    ids = [order.id for batch in batches for order in batch]
    assert sorted(ids) == [f"o-{n:02d}" for n in range(60)]  # each once, none left
    owners = await schema.sql("SELECT lease_owner, COUNT(*) FROM orders GROUP BY lease_owner")
    assert {row[0] for row in owners} <= {c.lease_owner for c in claimants}


async def test_ok_finishing_ends_the_lease_and_release_hands_orders_over(schema: Schema, clock: FakeClock) -> None:
    a, b = await schema.gateway(), await schema.gateway()
    failed, _ = await _ledger(a).create_order(new_order("o-failed"))
    issued, _ = await _ledger(a).create_order(new_order("o-issued"))
    kept, _ = await _ledger(a).create_order(new_order("o-kept"))
    await _ledger(a).update_order(failed.id, state=OrderState.FAILED, error_reason="CA_UNAVAILABLE")
    await _ledger(a).record_issued(issued.id, new_certificate("a1", ca_id="ca-1"))
    rows = await schema.sql("SELECT id, lease_owner FROM orders ORDER BY id")
    assert [(r[0], r[1]) for r in rows] == [("o-failed", None), ("o-issued", None), ("o-kept", a.lease_owner)]
    await _ledger(a).update_order(failed.id, state=OrderState.RECEIVED, detail="retried")  # revived: nobody's
    assert await b.take_lease(failed.id)
    assert [o.id for o in await b.claim_due_orders(limit=10)] == []
    assert await a.release_leases() == 1  # a clean stop: o-kept is free at once
    assert [o.id for o in await b.claim_due_orders(limit=10)] == [kept.id]


async def test_ok_due_orders_are_found_by_the_next_attempt_index(schema: Schema) -> None:
    await schema.gateway()
    conn = await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": schema.name, "enable_seqscan": "off"})
    try:
        plan = "\n".join(row[0] for row in await conn.fetch(
            "EXPLAIN SELECT id FROM orders WHERE state NOT IN ('ISSUED', 'FAILED', 'ABANDONED') "
            "AND COALESCE(next_attempt_at, '') <= '2030' AND (lease_until IS NULL OR lease_until < '2030') "
            "ORDER BY COALESCE(next_attempt_at, '') LIMIT 10 FOR UPDATE SKIP LOCKED"))
    finally:
        await conn.close()
    assert "orders_due" in plan, plan


async def test_ok_every_recorded_change_is_announced_and_a_renewal_is_not(schema: Schema, clock: FakeClock) -> None:
    a, b = await schema.gateway(), await schema.gateway()
    heard: asyncio.Queue[str] = asyncio.Queue()
    listening = asyncio.create_task(b.change_listener(heard.put_nowait).run())
    try:
        order, _ = await _ledger(a).create_order(new_order("o-1"))
        await asyncio.sleep(0.2)  # LISTEN is in place before the changes (no assertion depends on timing)
        await a.renew_leases([order.id])
        await _ledger(a).update_order(order.id, state=OrderState.SUBMITTED, ca_order_id="5")
        assert await asyncio.wait_for(heard.get(), 5) == order.id
        await _ledger(a).record_issued(order.id, new_certificate("b2", ca_id="ca-1"))
        assert await asyncio.wait_for(heard.get(), 5) == order.id
        assert heard.empty()
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)


def test_ok_lease_settings(tmp_path: Path) -> None:
    config = parse_config(config_document(None, ca_entry(ca_id="ca-1"), ledger={
        "url": "postgresql://db/pki", "lease-time": "12s", "lease-heartbeat": "3s"}), base_dir=tmp_path, environ={})
    settings = config.ledger.target.settings
    assert (settings.lease_time, settings.lease_heartbeat) == (12.0, 3.0)


@pytest.mark.parametrize(("options", "expected"), [
    ({"lease-time": "10s", "lease-heartbeat": "6s"},
     ["ledger.lease-heartbeat: '6s' is more than half of lease-time (10s): a lease would lapse after one late "
      "renewal"]),
    ({"lease-time": "never"}, ["ledger.lease-time: 'never' is not a duration above zero (examples: 5s, 500ms)"]),
    ({"lease-heartbeat": "0s"}, ["ledger.lease-heartbeat: '0s' is not a duration above zero (examples: 5s, 500ms)"]),
])
def test_fail_lease_settings(options: dict[str, str], expected: list[str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(config_document(None, ca_entry(ca_id="ca-1"), ledger={"url": "postgresql://db/pki", **options}),
                     base_dir=tmp_path, environ={})
    assert caught.value.problems == expected


async def test_ok_sqlite_migration_8_and_no_leases(tmp_path: Path) -> None:
    target = parse_target("sqlite:///ledger.db", resolve_path=lambda raw: tmp_path / raw)
    ledger = await open_ledger(target)
    await ledger.close()
    assert leasing(ledger) is None  # one gateway: it works on every unfinished order
    import sqlite3

    with sqlite3.connect(tmp_path / "ledger.db") as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(orders)")}
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(orders)")}
        version = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
    assert {"lease_owner", "lease_until"} <= columns and "orders_due" in indexes and version >= 8


async def test_ok_an_order_finished_during_a_renewal_is_not_reported_lost(schema: Schema, clock: FakeClock) -> None:
    a = await schema.gateway()
    order, _ = await _ledger(a).create_order(new_order("o-1"))
    # Another session finishes the order (as issuing does: the lease ends with it) and holds the row
    # until it commits, while the renewal waits for that row.
    conn = await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": schema.name})
    try:
        finishing = conn.transaction()
        await finishing.start()
        await conn.execute("UPDATE orders SET state = 'ISSUED', version = version + 1, lease_owner = NULL, "
                           "lease_until = NULL WHERE id = $1", order.id)
        renewal = asyncio.create_task(a.renew_leases([order.id]))
        for _ in range(100):  # until the renewal waits for the row lock (a deadline, not a pause)
            if await schema.sql("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                "AND query LIKE '%UPDATE orders SET lease_until%'"):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the renewal never waited for the row")
        await finishing.commit()
        assert await asyncio.wait_for(renewal, 5) == []
    finally:
        await conn.close()
