"""The order follower on a real PostgreSQL ledger, with polling only (no change listener): changes
another gateway records between two reads still arrive one by one, in order, from the order's
history, and following ends with the final state."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from service.enrollment.channel import OrderEvent, Phase
from service.enrollment.follow import OrderFollower
from service.enrollment.orders import OrderView
from service.ledger import Ledger, OrderRecord, OrderState, open_ledger, parse_target
from tests.unit.ledger_backends import POSTGRES_URL, postgres_reason, postgres_schema
from tests.unit.ledger_records import new_certificate, new_order


async def _event_of(order: OrderRecord) -> OrderEvent:
    phase = Phase.ISSUED if order.state is OrderState.ISSUED else Phase.PENDING
    return OrderEvent(order=OrderView.of(order), phase=phase, time=order.updated_at,
                      detail=f"{order.state.value}: {order.detail}")


@pytest.fixture
async def two() -> AsyncIterator[tuple[Ledger, Ledger]]:
    reason = postgres_reason()
    if reason is not None:
        pytest.skip(reason)
    async with postgres_schema() as schema:
        target = parse_target(POSTGRES_URL, options={"schema": schema, "pool-size": "2"})
        writer, reader = await open_ledger(target), await open_ledger(target)
        try:
            yield writer, reader
        finally:
            await writer.close()
            await reader.close()


async def test_ok_changes_between_two_polls_arrive_each_in_order(two: tuple[Ledger, Ledger]) -> None:
    writer, reader = two
    follower = OrderFollower(reader, None, _event_of, poll=0.2)
    order, _ = await writer.create_order(new_order("o-1"))
    try:
        async with follower.follow(order.id) as channel:
            events = channel.subscribe()
            first = await asyncio.wait_for(anext(events), 5)
            assert first.detail.startswith("RECEIVED")
            # Three changes, faster than one poll: the next read finds them all at once.
            await writer.update_order(order.id, state=OrderState.SUBMITTED, ca_order_id="9", detail="accepted")
            await writer.update_order(order.id, state=OrderState.COLLECTING, attempts=1, detail="pending 1")
            await writer.record_issued(order.id, new_certificate("c1", ca_id="ca-1"))
            rest = [await asyncio.wait_for(anext(events), 5) for _ in range(3)]
            assert [e.detail for e in rest[:2]] == ["SUBMITTED: accepted", "COLLECTING: pending 1"]
            assert rest[2].phase is Phase.ISSUED
            with pytest.raises(StopAsyncIteration):  # final: the subscription ends
                await asyncio.wait_for(anext(events), 5)
    finally:
        await follower.close()
    assert follower.following == 0
