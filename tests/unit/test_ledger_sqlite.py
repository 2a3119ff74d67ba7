"""The SQLite ledger on real files in tmp_path: every protocol method, the
transaction and connection rules, migrations, backup, and a SIGKILL crash."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import re
import signal
import sqlite3
import sys
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import aiosqlite
import pytest

import service.ledger
from service.connectors.base import SubjectAltName
from service.errors import AlreadyExists, CagwError, ConfigError, FailedPrecondition, NotFound
from service.ledger import (
    AuditEntry,
    CertificateQuery,
    LedgerError,
    LedgerUnavailable,
    NewOrder,
    OrderRecord,
    OrderState,
    SQLiteLedger,
    open_ledger,
)
from service.ledger.sqlite.inventory import INVENTORY_SELECT, inventory_where
from service.ledger.sqlite.migrations import LATEST_VERSION, MIGRATIONS, UNFINISHED_SQL, migrate
from service.ledger.sqlite import translate_sqlite_error
from tests.support.clocks import FakeClock
from tests.unit.ledger_records import T0, new_certificate, new_order

ROOT = Path(__file__).resolve().parents[2]
@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
async def ledger(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SQLiteLedger]:
    async with SQLiteLedger(tmp_path / "ledger.db", clock=clock) as opened:
        yield opened


async def raw_rows(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Look at the file behind the ledger's back (another connection, as an operator would)."""
    async with aiosqlite.connect(path) as conn:
        return [tuple(row) for row in await conn.execute_fetchall(sql, params)]


async def held_write(ledger: SQLiteLedger, sql: str, inside: asyncio.Event, release: threading.Event) -> None:
    """One write transaction running ``sql`` on the ledger's writer thread, held open (sets
    ``inside``) until ``release`` is set, then committed."""
    loop = asyncio.get_running_loop()

    def body(conn: sqlite3.Connection) -> None:
        conn.execute(sql)
        loop.call_soon_threadsafe(inside.set)
        release.wait(timeout=30)

    await ledger._write(body)


# -- lifecycle


async def test_ok_lifecycle_unopened_open_closed(tmp_path: Path) -> None:
    ledger = SQLiteLedger(tmp_path / "ledger.db")
    with pytest.raises(RuntimeError, match="unopened"):
        await ledger.get_order("x")
    async with ledger:
        assert await ledger.get_order("x") is None
        with pytest.raises(RuntimeError, match="cannot open"):
            await ledger.open()
    with pytest.raises(RuntimeError, match="closed"):
        await ledger.get_order("x")
    with pytest.raises(RuntimeError, match="closed"):
        await ledger.create_order(new_order("fail-closed"))
    with pytest.raises(RuntimeError, match="cannot open"):
        await ledger.open()
    await ledger.close()  # closing twice is fine


async def test_ok_open_ledger_returns_an_open_ledger(tmp_path: Path) -> None:
    ledger = await open_ledger(tmp_path / "ledger.db", clock=FakeClock(T0))
    try:
        record, created = await ledger.create_order(new_order("ok-open"))
        assert created and record.created_at == T0
    finally:
        await ledger.close()


async def test_ok_connection_settings(ledger: SQLiteLedger) -> None:
    writer, reader = ledger._open_connections()

    async def pragma(conn: aiosqlite.Connection, name: str) -> object:
        return list(await conn.execute_fetchall(f"PRAGMA {name}"))[0][0]

    assert await pragma(writer, "journal_mode") == "wal"
    assert await pragma(writer, "synchronous") == 1  # NORMAL
    for conn in (writer, reader):
        assert await pragma(conn, "foreign_keys") == 1
        assert await pragma(conn, "busy_timeout") == 5000
    assert await pragma(reader, "query_only") == 1


def test_ok_exports() -> None:
    for name in service.ledger.__all__:
        assert hasattr(service.ledger, name), name
    assert {"Ledger", "SQLiteLedger", "open_ledger", "NewOrder", "OrderRecord"} <= set(service.ledger.__all__)


def test_ok_unfinished_sql_matches_order_state() -> None:
    finished = sorted(state.value for state in OrderState if state.finished)
    assert UNFINISHED_SQL.startswith("state NOT IN (")
    assert sorted(re.findall(r"'(\w+)'", UNFINISHED_SQL)) == finished


# -- orders


async def test_ok_create_order(ledger: SQLiteLedger, clock: FakeClock) -> None:
    order = new_order("ok-create", request_id="req-1")
    record, created = await ledger.create_order(order)
    assert created
    assert record.state is OrderState.RECEIVED
    assert (record.created_at, record.updated_at) == (T0, T0)
    assert record.created_at.tzinfo is not None
    assert record.subject_alt_names == order.subject_alt_names
    assert dict(record.options) == {"format": "PEM", "includeCa": "true"}
    assert (record.request_id, record.requested_by, record.marker) == ("req-1", "client-a", "cagw:ok-create")
    assert (record.attempts, record.serial_number, record.ca_order_id) == (0, None, None)
    assert await ledger.get_order("ok-create") == record
    assert await ledger.find_order_by_request_id("ca-1", "req-1") == record
    assert await ledger.order_history("ok-create") == [(T0, OrderState.RECEIVED, "")]
    [entry] = await ledger.subject_entries("ca-1", "cn=host.example.com")
    assert (entry.order_id, entry.order_state, entry.certificate) == ("ok-create", OrderState.RECEIVED, None)


@pytest.mark.parametrize(
    ("second", "created"),
    [
        pytest.param(new_order("ok-other-id", request_id="req-1"), False, id="ok-same-request-id-returns-existing"),
        pytest.param(new_order("ok-first", request_id="req-1"), False, id="ok-retried-call-returns-existing"),
        pytest.param(new_order("ok-other-ca", ca_id="ca-2", request_id="req-1"), True,
                     id="ok-request-id-is-per-ca"),
        pytest.param(new_order("ok-no-request-id"), True, id="ok-no-request-id-is-new"),
    ],
)
async def test_create_order_idempotency(ledger: SQLiteLedger, second: NewOrder, created: bool) -> None:
    first, _ = await ledger.create_order(new_order("ok-first", request_id="req-1"))
    record, was_created = await ledger.create_order(second)
    assert was_created is created
    if not created:
        assert record == first
    else:
        assert record.id == second.id


async def test_fail_order_id_reused_for_another_request(ledger: SQLiteLedger) -> None:
    await ledger.create_order(new_order("fail-dup", request_id="req-1"))
    with pytest.raises(AlreadyExists, match="fail-dup"):
        await ledger.create_order(new_order("fail-dup", request_id="req-2"))
    assert await ledger.find_order_by_request_id("ca-1", "req-2") is None


async def test_ok_concurrent_creates_with_one_request_id_make_one_row(ledger: SQLiteLedger) -> None:
    results = await asyncio.gather(*(
        ledger.create_order(new_order(f"ok-race-{n}", request_id="req-race")) for n in range(8)))
    assert [created for _, created in results].count(True) == 1
    assert len({record.id for record, _ in results}) == 1
    assert len(await ledger.unfinished_orders()) == 1
    assert await raw_rows(ledger.path, "SELECT COUNT(*) FROM orders") == [(1,)]


async def test_ok_find_unfinished_by_fingerprint(ledger: SQLiteLedger, clock: FakeClock) -> None:
    assert await ledger.find_unfinished_by_fingerprint("ca-1", "fp") is None
    await ledger.create_order(new_order("ok-old", fingerprint="fp"))
    clock.advance()
    record, created = await ledger.create_order(new_order("ok-new", fingerprint="fp"))
    assert not created and record.id == "ok-old"  # one unfinished order per CSR (migration 3)
    await ledger.update_order("ok-old", state=OrderState.FAILED, detail="rejected")
    clock.advance()
    await ledger.create_order(new_order("ok-new", fingerprint="fp"))
    await ledger.create_order(new_order("ok-elsewhere", ca_id="ca-2", fingerprint="fp"))
    found = await ledger.find_unfinished_by_fingerprint("ca-1", "fp")
    assert found is not None and found.id == "ok-new"
    await ledger.update_order("ok-new", state=OrderState.ABANDONED)
    assert await ledger.find_unfinished_by_fingerprint("ca-1", "fp") is None
    assert await ledger.find_unfinished_by_fingerprint("ca-1", "other") is None


async def test_ok_unfinished_orders_oldest_first(ledger: SQLiteLedger, clock: FakeClock) -> None:
    for name, state in [("ok-a", OrderState.SUBMITTED), ("ok-b", OrderState.ISSUED), ("ok-c", None),
                        ("ok-d", OrderState.COLLECTING), ("ok-e", OrderState.FAILED)]:
        await ledger.create_order(new_order(name))
        if state is not None:
            await ledger.update_order(name, state=state)
        clock.advance()
    assert [order.id for order in await ledger.unfinished_orders()] == ["ok-a", "ok-c", "ok-d"]


async def test_ok_update_order_changes_only_given_fields(ledger: SQLiteLedger, clock: FakeClock) -> None:
    await ledger.create_order(new_order("ok-upd"))
    t1 = clock.advance()
    due = T0 + dt.timedelta(seconds=30)
    record = await ledger.update_order("ok-upd", state=OrderState.SUBMITTED, ca_order_id="4711",
                                       next_attempt_at=due, detail="accepted")
    assert (record.state, record.ca_order_id, record.next_attempt_at, record.detail) == (
        OrderState.SUBMITTED, "4711", due, "accepted")
    assert (record.created_at, record.updated_at) == (T0, t1)
    t2 = clock.advance()
    record = await ledger.update_order("ok-upd", state=OrderState.COLLECTING, attempts=1)
    assert (record.ca_order_id, record.attempts, record.next_attempt_at, record.detail) == ("4711", 1, due, "accepted")
    assert record.updated_at == t2
    t3 = clock.advance()
    record = await ledger.update_order("ok-upd", state=OrderState.FAILED, error_reason="CA_REJECTED",
                                       detail="bad CSR")
    assert (record.error_reason, record.detail, record.attempts) == ("CA_REJECTED", "bad CSR", 1)
    assert await ledger.get_order("ok-upd") == record
    assert await ledger.order_history("ok-upd") == [
        (T0, OrderState.RECEIVED, ""), (t1, OrderState.SUBMITTED, "accepted"),
        (t2, OrderState.COLLECTING, ""), (t3, OrderState.FAILED, "bad CSR")]


async def test_fail_update_unknown_order(ledger: SQLiteLedger) -> None:
    with pytest.raises(NotFound, match="fail-missing"):
        await ledger.update_order("fail-missing", state=OrderState.SUBMITTED)
    assert await ledger.order_history("fail-missing") == []


async def test_fail_naive_time_is_refused(ledger: SQLiteLedger) -> None:
    await ledger.create_order(new_order("fail-naive"))
    with pytest.raises(ValueError, match="timezone-aware"):
        await ledger.update_order("fail-naive", state=OrderState.SUBMITTED,
                                  next_attempt_at=dt.datetime(2030, 1, 1))  # noqa: DTZ001
    record = await ledger.get_order("fail-naive")
    assert record is not None and record.state is OrderState.RECEIVED


# -- certificates


async def test_ok_record_issued(ledger: SQLiteLedger, clock: FakeClock) -> None:
    await ledger.create_order(new_order("ok-iss", requested_dn="cn=asked"))
    t1 = clock.advance()
    cert = new_certificate("1a2b", subject_dn="cn=issued,o=example")
    record = await ledger.record_issued("ok-iss", cert, subject_dns=["cn=issued,o=example", "cn=alias"])
    assert record is not None
    assert (record.state, record.serial_number, record.updated_at) == (OrderState.ISSUED, "1a2b", t1)
    stored = await ledger.get_certificate("ca-1", "1a2b")
    assert stored == replace(cert, order_id="ok-iss")
    assert stored.chain_der == (b"\x30\x82intermediate", b"\x30\x82root")
    for dn in ("cn=asked", "cn=issued,o=example", "cn=alias"):
        [entry] = await ledger.subject_entries("ca-1", dn)
        assert (entry.order_id, entry.order_state, entry.certificate) == ("ok-iss", OrderState.ISSUED, stored)
        assert entry.created_at == T0
    [event] = await ledger.list_events("ca-1", after_id=0, since=None, limit=10)
    assert (event.action, event.serial_number, event.time, event.detail) == ("issued", "1a2b", T0,
                                                                              "cn=issued,o=example")
    assert await ledger.order_history("ok-iss") == [(T0, OrderState.RECEIVED, ""),
                                                    (t1, OrderState.ISSUED, "serial 1a2b")]


async def test_ok_record_issued_twice_is_idempotent(ledger: SQLiteLedger, clock: FakeClock) -> None:
    await ledger.create_order(new_order("ok-twice"))
    first = await ledger.record_issued("ok-twice", new_certificate("ff"))
    clock.advance()
    again = await ledger.record_issued("ok-twice", new_certificate("ff"), subject_dns=["cn=host.example.com"])
    assert again == first
    assert await ledger.count_events("ca-1", since=None) == 1
    assert len(await ledger.order_history("ok-twice")) == 2
    assert len(await ledger.subject_entries("ca-1", "cn=host.example.com")) == 1


async def test_ok_issued_time_defaults_to_the_clock(ledger: SQLiteLedger, clock: FakeClock) -> None:
    await ledger.create_order(new_order("ok-now"))
    t1 = clock.advance(5)
    await ledger.record_issued("ok-now", new_certificate("5", issued_at=None))
    [event] = await ledger.list_events("ca-1", after_id=0, since=None, limit=1)
    assert event.time == t1


@pytest.mark.parametrize(
    ("order_id", "ca_id", "error"),
    [
        pytest.param("fail-unknown", "ca-1", NotFound, id="fail-unknown-order"),
        pytest.param("fail-known", "ca-2", ValueError, id="fail-order-of-another-ca"),
    ],
)
async def test_fail_record_issued_rolls_back(ledger: SQLiteLedger, order_id: str, ca_id: str,
                                             error: type[Exception]) -> None:
    await ledger.create_order(new_order("fail-known"))
    with pytest.raises(error):
        await ledger.record_issued(order_id, new_certificate("77", ca_id=ca_id))
    assert await ledger.get_certificate(ca_id, "77") is None
    assert await ledger.count_events(ca_id, since=None) == 0
    record = await ledger.get_order("fail-known")
    assert record is not None and record.state is OrderState.RECEIVED


async def test_ok_unordered_certificate_then_its_order(ledger: SQLiteLedger, clock: FakeClock) -> None:
    cert = new_certificate("abc", subject_dn="cn=found")
    assert await ledger.record_issued(None, cert) is None
    [entry] = await ledger.subject_entries("ca-1", "cn=found")
    assert (entry.order_id, entry.order_state, entry.certificate) == (None, None, cert)
    assert entry.created_at == cert.issued_at
    # A lost reply found again: the order now claims the certificate the CA listed.
    await ledger.create_order(new_order("ok-claim", requested_dn="cn=found"))
    record = await ledger.record_issued("ok-claim", cert)
    assert record is not None and record.serial_number == "abc"
    [entry] = await ledger.subject_entries("ca-1", "cn=found")
    assert (entry.order_id, entry.certificate) == ("ok-claim", replace(cert, order_id="ok-claim"))
    assert await ledger.count_events("ca-1", since=None) == 1
    # Listing it again at the CA later files the order, not a loose certificate.
    assert await ledger.record_issued(None, cert, subject_dns=["cn=other"]) is None
    [entry] = await ledger.subject_entries("ca-1", "cn=other")
    assert entry.order_id == "ok-claim"


async def test_ok_mark_revoked_once(ledger: SQLiteLedger) -> None:
    await ledger.record_issued(None, new_certificate("10"))
    when = T0 + dt.timedelta(days=3)
    revoked = await ledger.mark_revoked("ca-1", "10", reason="keyCompromise", comment="laptop lost", when=when)
    assert revoked is not None
    assert (revoked.status, revoked.revoked_at, revoked.revocation_reason, revoked.revocation_comment) == (
        "revoked", when, "keyCompromise", "laptop lost")
    assert await ledger.get_certificate("ca-1", "10") == revoked
    again = await ledger.mark_revoked("ca-1", "10", reason="superseded", comment="",
                                      when=when + dt.timedelta(days=1))
    assert again == revoked  # the first revocation stands
    events = await ledger.list_events("ca-1", after_id=0, since=None, limit=10)
    assert [(e.action, e.reason, e.detail, e.time) for e in events] == [
        ("issued", "", "cn=host.example.com", T0), ("revoked", "keyCompromise", "laptop lost", when)]


async def test_fail_mark_revoked_unknown_serial(ledger: SQLiteLedger) -> None:
    assert await ledger.mark_revoked("ca-1", "dead", reason="unspecified", comment="", when=T0) is None
    assert await ledger.count_events("ca-1", since=None) == 0


async def test_ok_subject_entries_newest_first(ledger: SQLiteLedger, clock: FakeClock) -> None:
    dn = "cn=shared.example.com"
    await ledger.create_order(new_order("ok-pending-old", requested_dn=dn))       # T0
    clock.advance()
    await ledger.create_order(new_order("ok-issued", requested_dn="cn=asked"))    # T0+1, filed under dn once issued
    clock.advance()
    await ledger.create_order(new_order("ok-pending-new", requested_dn=dn))       # T0+2
    await ledger.record_issued("ok-issued", new_certificate("1", subject_dn=dn))
    await ledger.record_issued(None, new_certificate("2", subject_dn=dn, issued_at=T0 + dt.timedelta(hours=1)))
    await ledger.record_issued(None, new_certificate("3", subject_dn=dn, issued_at=T0 - dt.timedelta(hours=1)))
    await ledger.create_order(new_order("ok-other-ca", ca_id="ca-2", requested_dn=dn))
    entries = await ledger.subject_entries("ca-1", dn)
    assert [(e.order_id, e.order_state, e.certificate.serial_number if e.certificate else None) for e in entries] == [
        (None, None, "2"),
        ("ok-pending-new", OrderState.RECEIVED, None),
        ("ok-issued", OrderState.ISSUED, "1"),
        ("ok-pending-old", OrderState.RECEIVED, None),
        (None, None, "3"),
    ]
    assert [e.created_at for e in entries] == sorted((e.created_at for e in entries), reverse=True)
    assert await ledger.subject_entries("ca-1", "cn=nobody") == []
    assert [e.order_id for e in await ledger.subject_entries("ca-2", dn)] == ["ok-other-ca"]


# -- feed and audit


async def test_ok_events_paging(ledger: SQLiteLedger) -> None:
    for n in range(1, 6):
        await ledger.record_issued(None, new_certificate(f"{n:x}", issued_at=T0 + dt.timedelta(hours=n)))
        await ledger.record_issued(None, new_certificate(f"{n:x}", ca_id="ca-2"))
    await ledger.mark_revoked("ca-1", "1", reason="superseded", comment="", when=T0 + dt.timedelta(hours=9))
    page1 = await ledger.list_events("ca-1", after_id=0, since=None, limit=4)
    page2 = await ledger.list_events("ca-1", after_id=page1[-1].id, since=None, limit=4)
    page3 = await ledger.list_events("ca-1", after_id=page2[-1].id, since=None, limit=4)
    events = page1 + page2 + page3
    assert [len(page1), len(page2), len(page3)] == [4, 2, 0]
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert [(e.action, e.serial_number) for e in events] == [
        ("issued", "1"), ("issued", "2"), ("issued", "3"), ("issued", "4"), ("issued", "5"), ("revoked", "1")]
    assert {e.ca_id for e in events} == {"ca-1"}
    since = T0 + dt.timedelta(hours=4)
    recent = await ledger.list_events("ca-1", after_id=0, since=since, limit=100)
    assert [(e.action, e.serial_number) for e in recent] == [("issued", "4"), ("issued", "5"), ("revoked", "1")]
    assert await ledger.count_events("ca-1", since=None) == 6
    assert await ledger.count_events("ca-1", since=since) == 3
    assert await ledger.count_events("ca-2", since=None) == 5
    assert await ledger.count_events("ca-3", since=None) == 0
    assert await ledger.list_events("ca-1", after_id=0, since=None, limit=0) == []


async def test_ok_audit_newest_first(ledger: SQLiteLedger) -> None:
    entries = [
        AuditEntry(time=T0 + dt.timedelta(minutes=n), ca_id=ca_id, actor="client-a", action=action, target=target,
                   outcome=outcome, detail=detail)
        for n, (ca_id, action, target, outcome, detail) in enumerate([
            ("ca-1", "enroll", "ord-1", "ok", ""),
            ("ca-2", "revoke", "1a", "ok", "keyCompromise"),
            ("ca-1", "revoke-subject", "cn=x", "refused", "12 certificates, limit 10"),
        ])
    ]
    for entry in entries:
        await ledger.append_audit(entry)
    assert await ledger.audit_entries() == entries[::-1]
    assert await ledger.audit_entries(ca_id="ca-1") == [entries[2], entries[0]]
    assert await ledger.audit_entries(limit=1) == [entries[2]]
    assert await ledger.audit_entries(ca_id="ca-9") == []


# -- concurrency and durability


async def test_ok_reads_do_not_queue_behind_a_write(ledger: SQLiteLedger) -> None:
    await ledger.create_order(new_order("ok-read"))
    inside, release = asyncio.Event(), threading.Event()
    writer = asyncio.create_task(held_write(ledger, "UPDATE orders SET detail = 'uncommitted' WHERE id = 'ok-read'",
                                            inside, release))
    queued: asyncio.Task[tuple[OrderRecord, bool]] | None = None
    try:
        await inside.wait()
        queued = asyncio.create_task(ledger.create_order(new_order("ok-queued")))
        # The write transaction is open and another write waits for the lock; reads still answer.
        record = await asyncio.wait_for(ledger.get_order("ok-read"), timeout=5)
        assert record is not None and record.detail == ""  # committed state only
        assert await asyncio.wait_for(ledger.subject_entries("ca-1", "cn=host.example.com"), timeout=5)
        assert not queued.done()
    finally:
        release.set()  # also on failure, or closing the ledger would wait for the writer forever
        await writer
    assert queued is not None
    _, created = await queued
    assert created
    record = await ledger.get_order("ok-read")
    assert record is not None and record.detail == "uncommitted"


async def test_ok_write_waits_for_another_process_then_proceeds(ledger: SQLiteLedger) -> None:
    await ledger.create_order(new_order("ok-before"))
    other = sqlite3.connect(ledger.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        waiting = asyncio.create_task(ledger.create_order(new_order("ok-after")))
        assert await ledger.get_order("ok-before") is not None
        assert not waiting.done()
        other.execute("COMMIT")
        _, created = await asyncio.wait_for(waiting, timeout=5)
        assert created
    finally:
        other.close()


async def test_fail_locked_too_long_is_retryable(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    async with SQLiteLedger(path, busy_timeout=0.05) as ledger:
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(LedgerUnavailable, match="locked") as caught:
                await ledger.create_order(new_order("fail-locked"))
            assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
            assert caught.value.retry_after is not None
            assert await ledger.get_order("fail-locked") is None  # reads still work
            other.execute("ROLLBACK")
        finally:
            other.close()
        _, created = await ledger.create_order(new_order("fail-locked"))  # the writer recovered
        assert created


async def test_ok_reopen_keeps_everything(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "ledger.db"
    async with SQLiteLedger(path, clock=clock) as ledger:
        await ledger.create_order(new_order("ok-durable", request_id="req-d"))
        await ledger.update_order("ok-durable", state=OrderState.SUBMITTED, ca_order_id="9")
        issued = await ledger.record_issued("ok-durable", new_certificate("d1"))
        revoked = await ledger.mark_revoked("ca-1", "d1", reason="superseded", comment="", when=T0)
        await ledger.append_audit(AuditEntry(time=T0, ca_id="ca-1", actor="a", action="enroll",
                                             target="ok-durable", outcome="ok"))
        before = (await ledger.order_history("ok-durable"), await ledger.subject_entries("ca-1", "cn=host.example.com"),
                  await ledger.list_events("ca-1", after_id=0, since=None, limit=10), await ledger.audit_entries())
    async with SQLiteLedger(path, clock=clock) as ledger:
        assert await ledger.get_order("ok-durable") == issued
        assert await ledger.find_order_by_request_id("ca-1", "req-d") == issued
        assert await ledger.get_certificate("ca-1", "d1") == revoked
        after = (await ledger.order_history("ok-durable"), await ledger.subject_entries("ca-1", "cn=host.example.com"),
                 await ledger.list_events("ca-1", after_id=0, since=None, limit=10), await ledger.audit_entries())
        assert after == before
        # Event ids keep growing after a restart (AUTOINCREMENT), so feed cursors stay valid.
        await ledger.record_issued(None, new_certificate("d2"))
        events = await ledger.list_events("ca-1", after_id=before[2][-1].id, since=None, limit=10)
        assert [e.serial_number for e in events] == ["d2"]


CRASH_CHILD = r"""
import asyncio, datetime as dt, sys
from pathlib import Path
from service.ledger import CertificateRecord, NewOrder, OrderState, open_ledger

async def main():
    ledger = await open_ledger(Path(sys.argv[1]))
    now = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    i = 0
    while True:
        oid = f"crash-{i}"
        await ledger.create_order(NewOrder(
            id=oid, ca_id="ca-1", profile_id="web", ca_profile_id="101", term_days=365, csr_pem="csr",
            fingerprint=f"fp-{i}", requested_dn=f"cn=host{i}", common_name=f"host{i}", subject_alt_names=(),
            marker=oid, request_id=f"req-{i}"))
        await ledger.update_order(oid, state=OrderState.SUBMITTED, ca_order_id=str(i))
        await ledger.record_issued(oid, CertificateRecord(
            serial_number=format(i + 1, "x"), ca_id="ca-1", order_id=oid, certificate_der=bytes(3000),
            chain_der=(bytes(1500),), subject_dn=f"cn=host{i}", issuer_dn="cn=ca", not_before=now,
            not_after=now, issued_at=now))
        print(i, flush=True)
        i += 1

asyncio.run(main())
"""


@pytest.mark.slow
async def test_ok_sigkill_mid_stream_leaves_a_consistent_ledger(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", CRASH_CHILD, str(path), env=env,
                                                 stdout=asyncio.subprocess.PIPE)
    assert child.stdout is not None
    acknowledged = -1
    try:
        while acknowledged < 40:  # keep it writing: the kill lands inside the next order's writes
            line = await asyncio.wait_for(child.stdout.readline(), timeout=10)
            assert line, "the writer process died on its own"
            acknowledged = int(line)
        # Random, not for synchronisation: it moves the kill across the child's three write transactions.
        await asyncio.sleep(random.uniform(0, 0.02))
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    assert child.returncode == -signal.SIGKILL
    assert path.with_name("ledger.db-wal").exists()  # the crash left a WAL to recover from

    async with SQLiteLedger(path) as ledger:
        assert await raw_rows(path, "PRAGMA integrity_check") == [("ok",)]
        assert await raw_rows(path, "PRAGMA foreign_key_check") == []
        ids = [str(row[0]) for row in await raw_rows(path, "SELECT id FROM orders")]
        assert len(ids) >= acknowledged + 1  # every acknowledged commit survived
        issued = 0
        for order_id in ids:
            n = int(order_id.removeprefix("crash-"))
            order = await ledger.get_order(order_id)
            assert order is not None
            history = [state for _, state, _ in await ledger.order_history(order_id)]
            certificate = await ledger.get_certificate("ca-1", format(n + 1, "x"))
            # Each write is whole: the history matches the state, a certificate exists iff ISSUED.
            expected = [OrderState.RECEIVED, OrderState.SUBMITTED, OrderState.ISSUED]
            assert history == expected[:len(history)] and history[-1] is order.state
            assert (certificate is not None) == (order.state is OrderState.ISSUED)
            if n <= acknowledged:
                assert order.state is OrderState.ISSUED
            if certificate is not None:
                issued += 1
                assert certificate.order_id == order_id and order.serial_number == certificate.serial_number
                [entry] = await ledger.subject_entries("ca-1", f"cn=host{n}")
                assert entry.certificate == certificate
        assert await ledger.count_events("ca-1", since=None) == issued
        assert len(await ledger.unfinished_orders()) == len(ids) - issued <= 1
        _, created = await ledger.create_order(new_order("ok-after-crash"))  # and it takes writes again
        assert created


# -- backup


async def test_ok_backup_while_a_write_is_open(ledger: SQLiteLedger, tmp_path: Path) -> None:
    await ledger.create_order(new_order("ok-backed-up"))
    await ledger.record_issued("ok-backed-up", new_certificate("b1"))
    copy = tmp_path / "copies" / "ledger-copy.db"
    copy.parent.mkdir()
    inside, release = asyncio.Event(), threading.Event()
    writer = asyncio.create_task(held_write(  # the writer is busy for the whole backup
        ledger, "UPDATE orders SET detail = 'uncommitted' WHERE id = 'ok-backed-up'", inside, release))
    try:
        await inside.wait()
        await asyncio.wait_for(ledger.backup(copy), timeout=5)
    finally:
        release.set()
        await writer
    async with SQLiteLedger(copy) as restored:
        order = await restored.get_order("ok-backed-up")
        assert order is not None and order.state is OrderState.ISSUED and order.detail == ""
        assert await restored.get_certificate("ca-1", "b1") == await ledger.get_certificate("ca-1", "b1")
        assert await restored.count_events("ca-1", since=None) == 1


async def test_fail_backup_never_overwrites(ledger: SQLiteLedger, tmp_path: Path) -> None:
    existing = tmp_path / "existing.db"
    existing.write_bytes(b"")
    with pytest.raises(FailedPrecondition, match="already exists"):
        await ledger.backup(existing)
    assert existing.read_bytes() == b""


async def test_fail_backup_into_missing_folder(ledger: SQLiteLedger, tmp_path: Path) -> None:
    target = tmp_path / "no-such-folder" / "copy.db"
    with pytest.raises(LedgerError, match="no-such-folder"):
        await ledger.backup(target)
    assert not target.exists()


# -- opening and migrations


def write_garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database" * 300)


def write_foreign_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE orders (x)")
    conn.close()


@pytest.mark.parametrize(
    ("folder", "prepare", "match"),
    [
        pytest.param("", write_garbage, "not a database", id="fail-not-a-database"),
        pytest.param("no-such-folder", None, "unable to open", id="fail-missing-folder"),
        pytest.param("", write_foreign_database, "already exists", id="fail-foreign-database"),
    ],
)
async def test_fail_open_names_the_file(tmp_path: Path, folder: str, prepare: Callable[[Path], None] | None,
                                        match: str) -> None:
    path = tmp_path / folder / "ledger.db"
    if prepare is not None:
        prepare(path)
    ledger = SQLiteLedger(path)
    with pytest.raises(ConfigError, match=match) as caught:
        await ledger.open()
    assert str(path) in caught.value.message
    assert isinstance(caught.value.__cause__, sqlite3.Error)
    with pytest.raises(RuntimeError, match="unopened"):  # a failed open can be retried
        await ledger.get_order("x")


async def build_database_at(path: Path, version: int) -> None:
    """A ledger file as a gateway of schema ``version`` left it."""
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        await conn.execute("PRAGMA journal_mode = WAL")
        await conn.execute("PRAGMA foreign_keys = ON")
        assert await migrate(conn, path=path, clock=lambda: T0, target=version) == (0, version)


# Rows as release 1 wrote them, in its own SQL: a new migration must keep them readable.
V1_ROWS = [
    "INSERT INTO orders (id, ca_id, kind, profile_id, ca_profile_id, term_days, csr_pem, fingerprint, requested_dn,"
    " common_name, subject_alt_names, marker, request_id, renewal_of_serial, requested_by, options, state,"
    " created_at, updated_at, ca_order_id, attempts, next_attempt_at, detail, error_reason, serial_number)"
    " VALUES ('v1-order', 'ca-1', 'ENROLL', 'web', '101', 365, 'csr', 'fp', 'cn=v1', 'v1', '[\"dNSName:v1\"]',"
    " 'cagw:v1-order', 'req-v1', NULL, 'client-a', '{\"format\": \"PEM\"}', 'COLLECTING',"
    " '2030-01-01T00:00:00.000000Z', '2030-01-01T00:00:05.000000Z', '4711', 2, '2030-01-01T00:00:09.000000Z',"
    " 'pending', '', NULL)",
    "INSERT INTO order_history (order_id, seq, time, state, detail) VALUES"
    " ('v1-order', 1, '2030-01-01T00:00:00.000000Z', 'RECEIVED', ''),"
    " ('v1-order', 2, '2030-01-01T00:00:05.000000Z', 'COLLECTING', 'pending')",
    "INSERT INTO subjects (ca_id, dn, order_id, serial_number, created_at)"
    " VALUES ('ca-1', 'cn=v1', 'v1-order', NULL, '2030-01-01T00:00:00.000000Z')",
    "INSERT INTO certificates (ca_id, serial_number, order_id, der, chain, subject_dn, issuer_dn, not_before,"
    " not_after, status, revoked_at, revocation_reason, revocation_comment, issued_at, recorded_at)"
    " VALUES ('ca-1', 'c0ffee', NULL, X'3082', '[\"MII=\"]', 'cn=v1', 'cn=ca', '2030-01-01T00:00:00.000000Z',"
    " '2031-01-01T00:00:00.000000Z', 'normal', NULL, '', '', NULL, '2030-01-01T00:00:00.000000Z')",
    "INSERT INTO certificate_events (ca_id, action, serial_number, time, detail, reason)"
    " VALUES ('ca-1', 'issued', 'c0ffee', '2030-01-01T00:00:00.000000Z', 'cn=v1', '')",
    "INSERT INTO audit (time, ca_id, actor, action, target, outcome, detail)"
    " VALUES ('2030-01-01T00:00:00.000000Z', 'ca-1', 'client-a', 'enroll', 'v1-order', 'ok', '')",
]


async def test_ok_v1_database_migrates_to_latest(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    await build_database_at(path, 1)
    async with aiosqlite.connect(path) as conn:
        for statement in V1_ROWS:
            await conn.execute(statement)
        await conn.commit()
    async with SQLiteLedger(path, clock=FakeClock(T0)) as ledger:
        order = await ledger.get_order("v1-order")
        assert order is not None
        assert (order.state, order.attempts, order.ca_order_id, order.subject_alt_names, dict(order.options)) == (
            OrderState.COLLECTING, 2, "4711", (SubjectAltName("dNSName", "dNSName:v1"),), {"format": "PEM"})
        assert order.next_attempt_at == T0 + dt.timedelta(seconds=9)
        assert [o.id for o in await ledger.unfinished_orders()] == ["v1-order"]
        assert await ledger.find_unfinished_by_fingerprint("ca-1", "fp") == order
        assert len(await ledger.order_history("v1-order")) == 2
        assert [e.order_id for e in await ledger.subject_entries("ca-1", "cn=v1")] == ["v1-order"]
        certificate = await ledger.get_certificate("ca-1", "c0ffee")
        assert certificate is not None and certificate.chain_der == (b"0\x82",)
        assert await ledger.count_events("ca-1", since=None) == 1
        assert [a.target for a in await ledger.audit_entries()] == ["v1-order"]
        # and it keeps working on the migrated schema
        await ledger.update_order("v1-order", state=OrderState.SUBMITTED)
        await ledger.record_issued("v1-order", new_certificate("c0ffee", subject_dn="cn=v1"))
    versions = await raw_rows(path, "SELECT version FROM schema_version ORDER BY version")
    assert versions == [(v,) for v in range(1, LATEST_VERSION + 1)]


async def insert_v2_order(conn: aiosqlite.Connection, order_id: str, state: str, minute: int, *,
                          ca_id: str = "ca-1", fingerprint: str = "fp-dup", ca_order_id: str | None = None,
                          history: int = 1) -> None:
    """An order row and its history as release 2 wrote them (in its own SQL)."""
    created = f"2030-01-01T00:{minute:02d}:00.000000Z"
    await conn.execute(
        "INSERT INTO orders (id, ca_id, kind, profile_id, ca_profile_id, term_days, csr_pem, fingerprint,"
        " requested_dn, common_name, subject_alt_names, marker, request_id, renewal_of_serial, requested_by,"
        " options, state, created_at, updated_at, ca_order_id) VALUES (?, ?, 'ENROLL', 'web', '101', 365, 'csr',"
        " ?, 'cn=dup', 'dup', '[]', ?, NULL, NULL, 'client-a', '{}', ?, ?, ?, ?)",
        (order_id, ca_id, fingerprint, f"cagw:{order_id}", state, created, created, ca_order_id))
    for seq in range(1, history + 1):
        await conn.execute("INSERT INTO order_history (order_id, seq, time, state, detail) VALUES (?, ?, ?, ?, '')",
                           (order_id, seq, created, "RECEIVED" if seq == 1 else state))


async def test_ok_migration_3_keeps_every_duplicate_an_old_file_holds(tmp_path: Path, clock: FakeClock) -> None:
    """Several unfinished orders for one CSR (possible before migration 3): none is closed, since
    each may be paid at the CA; the oldest keeps the fingerprint, the others finish as they would."""
    path = tmp_path / "ledger.db"
    await build_database_at(path, 2)
    async with aiosqlite.connect(path) as conn:
        await insert_v2_order(conn, "dup-done", "FAILED", 0, history=2)
        await insert_v2_order(conn, "dup-old", "COLLECTING", 1, ca_order_id="1", history=3)
        await insert_v2_order(conn, "dup-mid", "SUBMITTED", 2, ca_order_id="2", history=2)
        await insert_v2_order(conn, "dup-new", "RECEIVED", 3)
        await insert_v2_order(conn, "dup-other-ca", "COLLECTING", 4, ca_id="ca-2", ca_order_id="3", history=2)
        await conn.commit()
    async with SQLiteLedger(path, clock=clock) as ledger:
        assert [o.id for o in await ledger.unfinished_orders()] == ["dup-old", "dup-mid", "dup-new", "dup-other-ca"]
        assert await raw_rows(path, "SELECT id, duplicate_of, version FROM orders ORDER BY created_at") == [
            ("dup-done", None, 2), ("dup-old", None, 3), ("dup-mid", "dup-old", 2), ("dup-new", "dup-old", 1),
            ("dup-other-ca", None, 2)]
        keeper = await ledger.find_unfinished_by_fingerprint("ca-1", "fp-dup")
        assert keeper is not None and keeper.id == "dup-old"
        record, created = await ledger.create_order(new_order("dup-later", fingerprint="fp-dup"))
        assert not created and record == keeper
        # The others go on as before: they collect and finish, and while one is unfinished a
        # new identical request is still deduplicated to it (never a third paid order).
        await ledger.update_order("dup-old", state=OrderState.FAILED, detail="rejected")
        record, created = await ledger.create_order(new_order("dup-later", fingerprint="fp-dup"))
        assert not created and record.id == "dup-mid"
        issued = await ledger.record_issued("dup-mid", new_certificate("d0", subject_dn="cn=dup"))
        assert issued is not None and issued.state is OrderState.ISSUED
        await ledger.update_order("dup-new", state=OrderState.COLLECTING, ca_order_id="4")
        await ledger.update_order("dup-new", state=OrderState.ABANDONED)
        record, created = await ledger.create_order(new_order("dup-later", fingerprint="fp-dup"))
        assert created and record.id == "dup-later"


async def test_fail_unique_index_refuses_a_second_unfinished_order_for_one_csr(ledger: SQLiteLedger) -> None:
    """The index itself, as another program writing the file would meet it."""
    await ledger.create_order(new_order("fail-first", fingerprint="fp"))
    async with aiosqlite.connect(ledger.path) as conn:
        await insert_v2_order(conn, "fail-finished", "FAILED", 5, fingerprint="fp")  # finished: allowed
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
            await insert_v2_order(conn, "fail-second", "RECEIVED", 6, fingerprint="fp")
        await conn.rollback()


RACE_CHILD = r"""
import asyncio, sys
from pathlib import Path
from service.ledger import NewOrder, open_ledger

async def main():
    ledger = await open_ledger(Path(sys.argv[1]))
    worker = sys.argv[2]
    created = 0
    for n in range(60):
        _, made = await ledger.create_order(NewOrder(
            id=f"{worker}-{n}", ca_id="ca-1", profile_id="web", ca_profile_id="101", term_days=365, csr_pem="csr",
            fingerprint=f"fp-{n % 20}", requested_dn="", common_name="race", subject_alt_names=(),
            marker=f"{worker}-{n}"))
        created += made
    await ledger.close()
    print(created)

asyncio.run(main())
"""


@pytest.mark.slow
async def test_ok_processes_racing_on_one_file_make_one_order_per_csr(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    async with SQLiteLedger(path):  # created and migrated once, so the children only race on orders
        pass
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [await asyncio.create_subprocess_exec(sys.executable, "-c", RACE_CHILD, str(path), f"w{i}", env=env,
                                                     stdout=asyncio.subprocess.PIPE) for i in range(3)]
    outputs = [await asyncio.wait_for(child.communicate(), timeout=60) for child in children]
    assert [child.returncode for child in children] == [0, 0, 0]
    assert sum(int(out) for out, _ in outputs) == 20
    assert await raw_rows(path, "SELECT fingerprint, COUNT(*) FROM orders GROUP BY fingerprint") == [
        (f"fp-{n}", 1) for n in sorted(range(20), key=lambda n: f"fp-{n}")]


@pytest.mark.parametrize("start", range(0, LATEST_VERSION + 1), ids=lambda v: f"ok-from-version-{v}")
async def test_every_version_opens_at_latest(tmp_path: Path, start: int) -> None:
    path = tmp_path / "ledger.db"
    if start:
        await build_database_at(path, start)
    async with SQLiteLedger(path):
        pass
    async with SQLiteLedger(path):  # a second open applies nothing
        pass
    rows = await raw_rows(path, "SELECT version, applied_at FROM schema_version ORDER BY version")
    assert [version for version, _ in rows] == list(range(1, LATEST_VERSION + 1))
    assert len(MIGRATIONS) == LATEST_VERSION


async def test_fail_database_from_a_newer_gateway(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    async with SQLiteLedger(path) as ledger:
        await ledger.create_order(new_order("fail-newer"))
    newer = LATEST_VERSION + 1
    async with aiosqlite.connect(path) as conn:
        await conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, 'later')", (newer,))
        await conn.commit()
    with pytest.raises(ConfigError) as caught:
        await SQLiteLedger(path).open()
    message = caught.value.message
    assert str(path) in message and f"version {newer}" in message and f"version {LATEST_VERSION}" in message
    # nothing was changed
    assert await raw_rows(path, "SELECT MAX(version) FROM schema_version") == [(newer,)]
    assert await raw_rows(path, "SELECT id FROM orders") == [("fail-newer",)]


# -- error translation at the edge


@pytest.mark.parametrize(
    ("error", "code", "opening", "expected"),
    [
        pytest.param(sqlite3.OperationalError("database is locked"), sqlite3.SQLITE_BUSY, False, LedgerUnavailable,
                     id="ok-busy-is-retryable"),
        pytest.param(sqlite3.OperationalError("database table is locked"), sqlite3.SQLITE_LOCKED, True,
                     LedgerUnavailable, id="ok-locked-at-open-is-retryable"),
        pytest.param(sqlite3.OperationalError("locked"), 262, False, LedgerUnavailable,
                     id="ok-extended-locked-code"),
        pytest.param(sqlite3.DatabaseError("file is not a database"), sqlite3.SQLITE_NOTADB, True, ConfigError,
                     id="ok-corrupt-at-open-is-config"),
        pytest.param(sqlite3.OperationalError("disk I/O error"), sqlite3.SQLITE_IOERR, False, LedgerError,
                     id="ok-io-error"),
        *(pytest.param(cls("boom"), None, False, LedgerError, id=f"ok-{cls.__name__}")
          for cls in (sqlite3.Error, sqlite3.InterfaceError, sqlite3.DatabaseError, sqlite3.DataError,
                      sqlite3.OperationalError, sqlite3.IntegrityError, sqlite3.InternalError,
                      sqlite3.ProgrammingError, sqlite3.NotSupportedError)),
    ],
)
def test_every_sqlite_error_is_translated(error: sqlite3.Error, code: int | None, opening: bool,
                                          expected: type[CagwError]) -> None:
    if code is not None:
        error.sqlite_errorcode = code
    translated = translate_sqlite_error(error, Path("/var/lib/cagw/ledger.db"), opening=opening)
    assert type(translated) is expected
    assert "/var/lib/cagw/ledger.db" in translated.message


def test_only_the_sqlite_ledger_touches_sqlite3() -> None:
    offenders = [
        str(path.relative_to(ROOT)) for path in (ROOT / "service").rglob("*.py")
        if ROOT / "service" / "ledger" / "sqlite" not in path.parents
        and ("import sqlite3" in path.read_text() or "aiosqlite" in path.read_text())
    ]
    assert offenders == []


@pytest.mark.parametrize("query", [
    CertificateQuery(ca_id="ca-1", now=T0, limit=50),
    CertificateQuery(ca_id="ca-1", now=T0, limit=50, status="normal", name="*.example.com",
                     expiring_before=T0, after=(T0, "a1")),
], ids=["all", "filtered"])
async def test_ok_inventory_query_walks_the_expiry_index_not_the_table(ledger: SQLiteLedger,
                                                                       query: CertificateQuery) -> None:
    where, params = inventory_where(query)
    plan = await raw_rows(ledger.path, "EXPLAIN QUERY PLAN " + INVENTORY_SELECT + where, tuple(params))
    steps = " | ".join(str(row[-1]) for row in plan)
    assert "SEARCH c USING INDEX certificates_expiry" in steps, steps
    assert "SEARCH n USING INDEX orders_renewal_of" in steps, steps
    assert "SCAN" not in steps, steps
