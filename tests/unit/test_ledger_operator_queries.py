"""The ledger queries of the operator's commands, on every backend: orders listed newest first by
state and CA in pages, audit entries about one order, and the writability probe."""

from __future__ import annotations

from service.ledger import AuditEntry, Ledger, OrderState
from tests.support.clocks import FakeClock
from tests.unit.ledger_records import new_order
from tests.unit.test_ledger_contract import clock, ledger, store

__all__ = ["clock", "ledger", "store"]  # the contract suite's fixtures, on both backends


async def _orders(ledger: Ledger, clock: FakeClock) -> None:
    for n, ca_id in enumerate(("ca-1", "ca-2", "ca-1", "ca-1")):
        await ledger.create_order(new_order(f"order-{n}", ca_id=ca_id, fingerprint=f"fp-{n}"))
        clock.advance()
    await ledger.update_order("order-2", state=OrderState.FAILED, detail="refused", error_reason="CA_REJECTED")


async def test_ok_list_orders_newest_first_by_state_and_ca(ledger: Ledger, clock: FakeClock) -> None:
    await _orders(ledger, clock)
    assert [o.id for o in await ledger.list_orders()] == ["order-3", "order-2", "order-1", "order-0"]
    assert [o.id for o in await ledger.list_orders(ca_id="ca-1")] == ["order-3", "order-2", "order-0"]
    unfinished = [state for state in OrderState if not state.finished]
    assert [o.id for o in await ledger.list_orders(states=unfinished, ca_id="ca-1")] == ["order-3", "order-0"]
    assert [o.id for o in await ledger.list_orders(states=[OrderState.FAILED])] == ["order-2"]
    assert await ledger.list_orders(ca_id="ca-9") == []


async def test_ok_list_orders_in_pages(ledger: Ledger, clock: FakeClock) -> None:
    await _orders(ledger, clock)
    first = await ledger.list_orders(limit=2)
    rest = await ledger.list_orders(limit=2, before=(first[-1].created_at, first[-1].id))
    assert [o.id for o in first + rest] == ["order-3", "order-2", "order-1", "order-0"]
    assert await ledger.list_orders(before=(rest[-1].created_at, rest[-1].id)) == []


async def test_ok_audit_entries_about_one_target(ledger: Ledger, clock: FakeClock) -> None:
    for target, action in (("order-1", "retry"), ("order-2", "abandon"), ("order-1", "abandon")):
        await ledger.append_audit(AuditEntry(time=clock.advance(), ca_id="ca-1", actor="op", action=action,
                                             target=target, outcome="ok", detail="why"))
    assert [e.action for e in await ledger.audit_entries(target="order-1")] == ["abandon", "retry"]
    assert len(await ledger.audit_entries()) == 3


async def test_ok_a_writable_ledger_passes_the_probe_and_keeps_nothing(ledger: Ledger) -> None:
    await ledger.check_writable()
    await ledger.check_writable()  # twice: the probe left nothing behind
    assert await ledger.list_orders() == []
