"""Webhook delivery from the ledger's outbox: order, retries, signatures, filters and cursors.

A real SQLite ledger on a temporary file and a fake receiver (the ``Sender``) that
answers what each test scripts; waits go through a recorded fake sleep, so back-off
is checked without waiting.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from service.config import Secret, WebhookSettings
from service.ledger import OrderState, SQLiteLedger
from service.lifecycle.webhooks import Delivery, WebhookDispatcher, sign
from tests.support.clocks import FakeClock
from tests.unit.ledger_records import T0, new_certificate, new_order

SECRET = "a-shared-secret-of-32-characters"
HOOK = WebhookSettings(name="team-a", url="https://hooks.example.com/cagw", secret=Secret(SECRET), retry_delay=2.0)


class Receiver:
    """Answers each delivery with the next scripted status (then 200), or raises for 0."""

    def __init__(self, *statuses: int) -> None:
        self.script = list(statuses)
        self.received: list[Delivery] = []

    async def __call__(self, delivery: Delivery) -> int:
        self.received.append(delivery)
        status = self.script.pop(0) if self.script else 200
        if status == 0:
            raise ConnectionRefusedError("receiver down")
        return status


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[SQLiteLedger]:
    async with SQLiteLedger(tmp_path / "ledger.db", clock=FakeClock(T0)) as opened:
        yield opened


def dispatcher(ledger: SQLiteLedger, receiver: Receiver, sleeps: Sleeps, *hooks: WebhookSettings) -> WebhookDispatcher:
    return WebhookDispatcher(ledger, hooks or (HOOK,), receiver, clock=lambda: T0, sleep=sleeps)


async def test_ok_a_new_webhook_starts_after_the_history_then_delivers_in_order(ledger: SQLiteLedger) -> None:
    await ledger.record_issued(None, new_certificate("aa01"))  # before the webhook existed
    receiver, sleeps = Receiver(), Sleeps()
    hooks = dispatcher(ledger, receiver, sleeps)
    assert await hooks.deliver_pending(HOOK) is False and receiver.received == []
    await ledger.record_issued(None, new_certificate("aa02"))
    await ledger.mark_revoked("ca-1", "aa02", reason="keyCompromise", comment="", when=T0)
    assert await hooks.deliver_pending(HOOK) is True
    bodies = [json.loads(d.body) for d in receiver.received]
    assert [(b["type"], b["serialNumber"]) for b in bodies] == [("issued-outside", "aa02"), ("revoked", "aa02")]
    assert bodies[1]["reason"] == "keyCompromise" and bodies[0]["time"] == "2030-01-01T00:00:00Z"
    assert await hooks.deliver_pending(HOOK) is False  # nothing twice


async def test_ok_a_failing_receiver_gets_each_event_once_after_backing_off(ledger: SQLiteLedger) -> None:
    receiver, sleeps = Receiver(503, 0, 500), Sleeps()
    hooks = dispatcher(ledger, receiver, sleeps)
    await hooks.deliver_pending(HOOK)  # the cursor starts here
    await ledger.record_issued(None, new_certificate("bb01"))
    await ledger.record_issued(None, new_certificate("bb02"))
    await hooks.deliver_pending(HOOK)
    serials = [json.loads(d.body)["serialNumber"] for d in receiver.received]
    assert serials == ["bb01", "bb01", "bb01", "bb01", "bb02"]  # three failures, then in order
    assert len(sleeps.waits) == 3  # doubling from retry-delay, with up to 20 % jitter below
    assert all(0.8 * d <= w <= d for w, d in zip(sleeps.waits, (2.0, 4.0, 8.0))), sleeps.waits
    assert hooks.delivered["team-a"] == 2


async def test_ok_every_delivery_is_signed_over_its_timestamp_and_body(ledger: SQLiteLedger) -> None:
    receiver = Receiver()
    hooks = dispatcher(ledger, receiver, Sleeps())
    await hooks.deliver_pending(HOOK)
    await ledger.record_issued(None, new_certificate("cc01"))
    await hooks.deliver_pending(HOOK)
    [delivery] = receiver.received
    fields = dict(part.split("=", 1) for part in delivery.headers["Cagw-Signature"].split(","))
    expected = hmac.new(SECRET.encode(), f"{fields['t']}.".encode() + delivery.body, hashlib.sha256).hexdigest()
    assert fields == {"t": str(int(T0.timestamp())), "v1": expected}
    assert delivery.headers["Cagw-Event-Id"] == json.loads(delivery.body)["id"]
    assert sign(SECRET, 1, b"x") != sign("another-secret-of-enough-length", 1, b"x")


async def test_ok_filters_by_owner_ca_and_type_still_move_the_cursor(ledger: SQLiteLedger) -> None:
    only_revoked_of_a = replace(HOOK, owner="client-a", cas=frozenset({"ca-1"}), events=frozenset({"revoked"}))
    receiver = Receiver()
    hooks = dispatcher(ledger, receiver, Sleeps(), only_revoked_of_a)
    await hooks.deliver_pending(only_revoked_of_a)
    await ledger.create_order(new_order("o-1"))  # requested by client-a
    await ledger.record_issued("o-1", replace(new_certificate("dd01"), order_id="o-1"))
    await ledger.record_issued(None, new_certificate("dd02"))  # nobody's
    await ledger.record_issued(None, new_certificate("dd03", ca_id="ca-2"))
    for serial, ca in (("dd01", "ca-1"), ("dd02", "ca-1"), ("dd03", "ca-2")):
        await ledger.mark_revoked(ca, serial, reason="superseded", comment="", when=T0)
    await hooks.deliver_pending(only_revoked_of_a)
    assert [(json.loads(d.body)["type"], json.loads(d.body)["serialNumber"]) for d in receiver.received] == [
        ("revoked", "dd01")]
    assert await ledger.webhook_cursor("team-a") == max(e.event.id for e in await ledger.events_after(0, limit=50))


async def test_ok_a_renewal_is_told_as_renewed_with_the_serial_it_replaces(ledger: SQLiteLedger) -> None:
    receiver = Receiver()
    hooks = dispatcher(ledger, receiver, Sleeps())
    await hooks.deliver_pending(HOOK)
    await ledger.create_order(replace(new_order("o-2"), renewal_of_serial="ee01"))
    await ledger.record_issued("o-2", replace(new_certificate("ee02"), order_id="o-2"))
    await hooks.deliver_pending(HOOK)
    body = json.loads(receiver.received[0].body)
    assert (body["type"], body["replaces"], body["owner"]) == ("renewed", "ee01", "client-a")


async def test_ok_the_cursor_survives_a_restart_and_never_moves_back(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    async with SQLiteLedger(path, clock=FakeClock(T0)) as ledger:
        await dispatcher(ledger, Receiver(), Sleeps()).deliver_pending(HOOK)
        await ledger.record_issued(None, new_certificate("ff01"))
        await dispatcher(ledger, Receiver(), Sleeps()).deliver_pending(HOOK)
        delivered = await ledger.webhook_cursor("team-a")
        await ledger.record_issued(None, new_certificate("ff02"))  # written, not yet delivered: a crash here
    async with SQLiteLedger(path, clock=FakeClock(T0)) as reopened:
        receiver = Receiver()
        await dispatcher(reopened, receiver, Sleeps()).deliver_pending(HOOK)
        assert [json.loads(d.body)["serialNumber"] for d in receiver.received] == ["ff02"]
        assert delivered is not None
        await reopened.advance_webhook_cursor("team-a", delivered)  # a late writer with an older position
        assert await reopened.webhook_cursor("team-a") == delivered + 1


async def test_ok_failed_expiring_and_replaced_carry_what_their_receiver_needs(ledger: SQLiteLedger) -> None:
    receiver = Receiver()
    hooks = dispatcher(ledger, receiver, Sleeps())
    await hooks.deliver_pending(HOOK)
    await ledger.create_order(new_order("o-1"))
    await ledger.record_issued("o-1", replace(new_certificate("ff01"), order_id="o-1"))
    await ledger.create_order(replace(new_order("o-2"), renewal_of_serial="ff01"))
    await ledger.update_order("o-2", state=OrderState.FAILED, detail="refused", error_reason="CA_REJECTED")
    await ledger.create_order(replace(new_order("o-3"), renewal_of_serial="ff01"))
    await ledger.record_issued("o-3", replace(new_certificate("ff03"), order_id="o-3"))
    await ledger.record_expiring("ca-1", now=T0 + dt.timedelta(days=340), within=dt.timedelta(days=30),
                                 beyond=dt.timedelta(days=7), label="30d", limit=10)
    await hooks.deliver_pending(HOOK)
    bodies = [json.loads(d.body) for d in receiver.received]
    common = {"id", "type", "ca", "serialNumber", "time", "owner"}
    assert [{k: v for k, v in b.items() if k not in common} for b in bodies] == [
        {"detail": "cn=host.example.com"},
        {"enrollmentId": "o-2", "renewalOf": "ff01", "reason": "CA_REJECTED", "detail": "refused"},
        {"replaces": "ff01", "detail": "cn=host.example.com"},
        {"enrollmentId": "o-3", "replacedBy": "ff03", "detail": "ff03"},
        {"expiresWithin": "30d", "replaces": "ff01", "detail": "30d"}]
    assert [(b["type"], b["serialNumber"], b["owner"]) for b in bodies] == [
        ("issued", "ff01", "client-a"), ("failed", "", "client-a"), ("renewed", "ff03", "client-a"),
        ("replaced", "ff01", "client-a"), ("expiring", "ff03", "client-a")]


async def test_ok_a_webhook_can_ask_for_failed_orders_alone(ledger: SQLiteLedger) -> None:
    failures = replace(HOOK, events=frozenset({"failed"}))
    receiver = Receiver()
    hooks = dispatcher(ledger, receiver, Sleeps(), failures)
    await hooks.deliver_pending(failures)
    await ledger.create_order(new_order("o-1"))
    await ledger.record_issued("o-1", replace(new_certificate("fa01"), order_id="o-1"))
    await ledger.create_order(new_order("o-2"))
    await ledger.update_order("o-2", state=OrderState.ABANDONED, detail="gave up")
    await hooks.deliver_pending(failures)
    assert [(json.loads(d.body)["type"], json.loads(d.body)["reason"]) for d in receiver.received] == [
        ("failed", "ABANDONED")]
