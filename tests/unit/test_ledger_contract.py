"""The ``Ledger`` protocol's guarantees, for every backend: one suite, parametrised by backend.

Each test gets a ``store``: one backing store (a SQLite file here) that any number of
gateways open, each with connections of its own, exactly as separate processes would. The
guarantees are checked both within one ledger and between two of them, so a ledger shared by
several gateways keeps them too. Only protocol methods are used: no SQL, no private state.

A new backend adds one entry to ``BACKENDS``: a function that opens one more ledger on a store
of its own per test (in its own database or schema, cleaned up afterwards). Its ledgers must
take their time from ``clock``, so expiries can be tested without waiting.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from service.errors import AlreadyExists, NotFound
from service.ledger import (
    CertificateQuery,
    CertificateRecord,
    DuplicateOrder,
    Ledger,
    NewOrder,
    OrderChanged,
    OrderKind,
    OrderState,
    ServerKey,
    open_ledger,
    parse_target,
)
from tests.unit.ledger_backends import OpenLedger, postgres_reason, postgres_store, sqlite_store
from tests.support.clocks import FakeClock
from tests.unit.ledger_records import T0, new_certificate, new_order



async def _sqlite(tmp_path: Path, clock: FakeClock, stack: AsyncExitStack) -> OpenLedger:
    return sqlite_store(tmp_path, clock, stack)


async def _postgres(tmp_path: Path, clock: FakeClock, stack: AsyncExitStack) -> OpenLedger:
    reason = postgres_reason()
    if reason is not None:
        pytest.skip(reason)
    return await postgres_store(tmp_path, clock, stack)


BACKENDS: dict[str, Callable[[Path, FakeClock, AsyncExitStack], Awaitable[OpenLedger]]] = {
    "sqlite": _sqlite, "postgresql": _postgres}


class Store:
    """Opens ledgers on one backing store; :meth:`gateway` is one more gateway on it."""

    def __init__(self, opener: OpenLedger, stack: AsyncExitStack) -> None:
        self._opener = opener
        self._stack = stack

    async def gateway(self) -> Ledger:
        ledger = await self._opener()
        self._stack.push_async_callback(ledger.close)
        return ledger


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture(params=sorted(BACKENDS))
async def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Store]:
    async with AsyncExitStack() as stack:
        yield Store(await BACKENDS[request.param](tmp_path, clock, stack), stack)


@pytest.fixture
async def ledger(store: Store) -> Ledger:
    return await store.gateway()


@pytest.fixture
async def other(store: Store) -> Ledger:
    """A second gateway on the same store."""
    return await store.gateway()


# -- one unfinished order per CSR


async def test_ok_identical_pending_csr_returns_the_unfinished_order(ledger: Ledger, clock: FakeClock) -> None:
    first, created = await ledger.create_order(new_order("ok-first", fingerprint="fp"))
    assert created and first.version == 1
    clock.advance()
    again, created = await ledger.create_order(new_order("ok-second", fingerprint="fp", request_id="req-2"))
    assert not created and again == first
    assert await ledger.get_order("ok-second") is None
    assert await ledger.find_unfinished_by_fingerprint("ca-1", "fp") == first
    assert [order.id for order in await ledger.unfinished_orders()] == ["ok-first"]


@pytest.mark.parametrize("final", [OrderState.ISSUED, OrderState.FAILED, OrderState.ABANDONED], ids=lambda s: s.value)
async def test_ok_a_finished_order_does_not_hold_its_fingerprint(ledger: Ledger, final: OrderState) -> None:
    await ledger.create_order(new_order("ok-done", fingerprint="fp"))
    await ledger.update_order("ok-done", state=final)
    record, created = await ledger.create_order(new_order("ok-next", fingerprint="fp"))
    assert created and record.id == "ok-next"


async def test_ok_fingerprints_are_per_ca(ledger: Ledger) -> None:
    await ledger.create_order(new_order("ok-ca1", fingerprint="fp"))
    record, created = await ledger.create_order(new_order("ok-ca2", ca_id="ca-2", fingerprint="fp"))
    assert created and record.ca_id == "ca-2"


async def test_ok_request_id_wins_over_fingerprint(ledger: Ledger) -> None:
    by_request, _ = await ledger.create_order(new_order("ok-by-request", request_id="req", fingerprint="fp-a"))
    await ledger.create_order(new_order("ok-by-fp", fingerprint="fp-b"))
    # Same request id, another CSR: the request id's order comes back (the caller sees the mismatch).
    record, created = await ledger.create_order(new_order("ok-x", request_id="req", fingerprint="fp-b"))
    assert not created and record == by_request


async def test_fail_order_id_reused_for_another_request(ledger: Ledger) -> None:
    await ledger.create_order(new_order("fail-dup", request_id="req-1", fingerprint="fp"))
    with pytest.raises(AlreadyExists, match="fail-dup"):
        await ledger.create_order(new_order("fail-dup", request_id="req-2", fingerprint="fp"))


async def test_ok_many_concurrent_creates_with_one_fingerprint_make_one_order(ledger: Ledger) -> None:
    results = await asyncio.gather(*(
        ledger.create_order(new_order(f"ok-race-{n}", fingerprint="fp-race")) for n in range(25)))
    assert [created for _, created in results].count(True) == 1
    assert len({record.id for record, _ in results}) == 1
    assert len(await ledger.unfinished_orders()) == 1


async def test_ok_two_gateways_racing_on_many_csrs_make_one_order_each(ledger: Ledger, other: Ledger) -> None:
    def creates(gateway: Ledger, name: str) -> list[Awaitable[tuple[object, bool]]]:
        return [gateway.create_order(new_order(f"ok-{name}-{n}", fingerprint=f"fp-{n % 10}")) for n in range(30)]

    results = await asyncio.gather(*creates(ledger, "a"), *creates(other, "b"))
    assert [created for _, created in results].count(True) == 10
    unfinished = await ledger.unfinished_orders()
    assert sorted(order.fingerprint for order in unfinished) == sorted(f"fp-{n}" for n in range(10))
    assert await other.unfinished_orders() == unfinished


async def test_ok_two_gateways_racing_on_one_request_id_make_one_order(ledger: Ledger, other: Ledger) -> None:
    results = await asyncio.gather(*(
        gateway.create_order(new_order(f"ok-req-{n}", request_id="req-race"))
        for n in range(10) for gateway in (ledger, other)))
    assert [created for _, created in results].count(True) == 1
    assert len({record.id for record, _ in results}) == 1


async def test_fail_reviving_an_order_next_to_its_unfinished_twin(ledger: Ledger) -> None:
    await ledger.create_order(new_order("fail-old", request_id="req", fingerprint="fp"))
    failed = await ledger.update_order("fail-old", state=OrderState.FAILED, error_reason="CA_UNAVAILABLE")
    twin, _ = await ledger.create_order(new_order("fail-twin", fingerprint="fp"))
    with pytest.raises(DuplicateOrder, match="fail-twin") as caught:
        await ledger.update_order("fail-old", state=OrderState.RECEIVED, detail="retried")
    assert caught.value.existing == twin
    assert await ledger.get_order("fail-old") == failed
    assert len(await ledger.order_history("fail-old")) == 2


async def test_ok_reviving_an_order_without_a_twin(ledger: Ledger) -> None:
    await ledger.create_order(new_order("ok-revive", fingerprint="fp"))
    await ledger.update_order("ok-revive", state=OrderState.FAILED)
    revived = await ledger.update_order("ok-revive", state=OrderState.RECEIVED)
    assert revived.state is OrderState.RECEIVED
    record, created = await ledger.create_order(new_order("ok-after", fingerprint="fp"))
    assert not created and record.id == "ok-revive"


# -- versions and conditional updates


async def test_ok_version_counts_the_state_changes(ledger: Ledger) -> None:
    await ledger.create_order(new_order("ok-v"))
    submitted = await ledger.update_order("ok-v", state=OrderState.SUBMITTED, ca_order_id="1")
    collecting = await ledger.update_order("ok-v", state=OrderState.COLLECTING, attempts=1)
    assert (submitted.version, collecting.version) == (2, 3)
    issued = await ledger.record_issued("ok-v", new_certificate("a1"))
    assert issued is not None and issued.version == 4
    again = await ledger.record_issued("ok-v", new_certificate("a1"))
    assert again == issued  # idempotent: no new version
    assert len(await ledger.order_history("ok-v")) == issued.version


async def test_ok_conditional_update_applies_when_nothing_moved(ledger: Ledger) -> None:
    record, _ = await ledger.create_order(new_order("ok-cas"))
    updated = await ledger.update_order("ok-cas", state=OrderState.SUBMITTED, ca_order_id="7",
                                        expected_state=OrderState.RECEIVED, expected_version=record.version)
    assert (updated.state, updated.ca_order_id, updated.version) == (OrderState.SUBMITTED, "7", 2)


@pytest.mark.parametrize(
    ("expected_state", "stale_version"),
    [
        pytest.param(OrderState.RECEIVED, False, id="fail-state-moved"),
        pytest.param(None, True, id="fail-version-moved"),
        pytest.param(OrderState.SUBMITTED, True, id="fail-same-state-newer-version"),
    ],
)
async def test_fail_conditional_update_loses_to_a_change_made_meanwhile(
        ledger: Ledger, expected_state: OrderState | None, stale_version: bool) -> None:
    read, _ = await ledger.create_order(new_order("fail-cas"))
    await ledger.update_order("fail-cas", state=OrderState.SUBMITTED, ca_order_id="1")
    current = await ledger.update_order("fail-cas", state=OrderState.SUBMITTED, detail="again")
    with pytest.raises(OrderChanged) as caught:
        await ledger.update_order("fail-cas", state=OrderState.FAILED, detail="late",
                                  expected_state=expected_state,
                                  expected_version=read.version if stale_version else None)
    assert caught.value.current == current
    assert caught.value.metadata["version"] == "3"
    assert await ledger.get_order("fail-cas") == current
    assert len(await ledger.order_history("fail-cas")) == 3


async def test_fail_conditional_update_of_an_unknown_order(ledger: Ledger) -> None:
    with pytest.raises(NotFound, match="fail-missing"):
        await ledger.update_order("fail-missing", state=OrderState.SUBMITTED, expected_version=1)


async def test_ok_two_gateways_moving_one_order_only_one_wins(ledger: Ledger, other: Ledger) -> None:
    read, _ = await ledger.create_order(new_order("ok-contested"))
    await ledger.update_order("ok-contested", state=OrderState.COLLECTING, ca_order_id="9")
    read = await other.get_order("ok-contested")  # type: ignore[assignment]
    assert read is not None

    async def attempt(gateway: Ledger, n: int) -> str:
        try:
            await gateway.update_order("ok-contested", state=OrderState.COLLECTING, attempts=n,
                                       expected_version=read.version)
        except OrderChanged:
            return "lost"
        return "won"

    outcomes = await asyncio.gather(*(attempt(gateway, n) for n in range(1, 9) for gateway in (ledger, other)))
    assert sorted(outcomes).count("won") == 1
    final = await other.get_order("ok-contested")
    assert final is not None and final.version == read.version + 1
    assert len(await ledger.order_history("ok-contested")) == final.version


# -- idempotent issue and revoke across gateways


async def test_ok_two_gateways_recording_one_certificate_store_it_once(ledger: Ledger, other: Ledger) -> None:
    await ledger.create_order(new_order("ok-issue"))
    results = await asyncio.gather(*(
        gateway.record_issued("ok-issue", new_certificate("b2")) for _ in range(5) for gateway in (ledger, other)))
    assert all(result == results[0] for result in results)
    assert await ledger.count_events("ca-1", since=None) == 1
    assert [state for _, state, _ in await other.order_history("ok-issue")] == [OrderState.RECEIVED,
                                                                                 OrderState.ISSUED]


async def test_ok_two_gateways_marking_one_revocation_record_it_once(ledger: Ledger, other: Ledger) -> None:
    await ledger.record_issued(None, new_certificate("c3"))
    results = await asyncio.gather(*(
        gateway.mark_revoked("ca-1", "c3", reason="superseded", comment=f"n{n}", when=T0 + dt.timedelta(hours=n))
        for n in range(5) for gateway in (ledger, other)))
    assert all(result == results[0] for result in results)
    assert [event.action for event in await other.list_events("ca-1", after_id=0, since=None, limit=10)] == [
        "issued", "revoked"]


# -- revocation claims


async def test_ok_claim_is_held_until_it_expires(ledger: Ledger, clock: FakeClock) -> None:
    mine = await ledger.claim_revocation("ca-1", "d4", claimant="gw-a", seconds=30)
    assert mine.held_by("gw-a") and mine.expires_at == T0 + dt.timedelta(seconds=30)
    theirs = await ledger.claim_revocation("ca-1", "d4", claimant="gw-b", seconds=30)
    assert theirs == mine and not theirs.held_by("gw-b")
    assert (await ledger.claim_revocation("ca-1", "d5", claimant="gw-b", seconds=30)).held_by("gw-b")  # per serial
    assert (await ledger.claim_revocation("ca-2", "d4", claimant="gw-b", seconds=30)).held_by("gw-b")  # per CA
    clock.advance(10)
    renewed = await ledger.claim_revocation("ca-1", "d4", claimant="gw-a", seconds=30)
    assert renewed.held_by("gw-a") and renewed.expires_at == T0 + dt.timedelta(seconds=40)
    clock.advance(30)
    taken = await ledger.claim_revocation("ca-1", "d4", claimant="gw-b", seconds=30)  # gw-a's has lapsed
    assert taken.held_by("gw-b") and taken.expires_at == T0 + dt.timedelta(seconds=70)


async def test_ok_release_ends_only_the_claimants_own_claim(ledger: Ledger) -> None:
    await ledger.claim_revocation("ca-1", "e5", claimant="gw-a", seconds=30)
    assert not await ledger.release_revocation("ca-1", "e5", claimant="gw-b")
    assert not (await ledger.claim_revocation("ca-1", "e5", claimant="gw-b", seconds=30)).held_by("gw-b")
    assert await ledger.release_revocation("ca-1", "e5", claimant="gw-a")
    assert not await ledger.release_revocation("ca-1", "e5", claimant="gw-a")
    assert (await ledger.claim_revocation("ca-1", "e5", claimant="gw-b", seconds=30)).held_by("gw-b")


@pytest.mark.parametrize("known", [True, False], ids=["ok-known-serial", "ok-serial-unknown-to-the-ledger"])
async def test_ok_mark_revoked_ends_the_claim(ledger: Ledger, known: bool) -> None:
    if known:
        await ledger.record_issued(None, new_certificate("f6"))
    await ledger.claim_revocation("ca-1", "f6", claimant="gw-a", seconds=300)
    await ledger.mark_revoked("ca-1", "f6", reason="superseded", comment="", when=T0)
    assert (await ledger.claim_revocation("ca-1", "f6", claimant="gw-b", seconds=30)).held_by("gw-b")


async def test_ok_two_gateways_claiming_one_serial_one_holds_it(ledger: Ledger, other: Ledger) -> None:
    claimants = [(f"{name}-{n}", gateway) for n in range(10) for name, gateway in (("a", ledger), ("b", other))]
    claims = await asyncio.gather(*(gateway.claim_revocation("ca-1", "a7", claimant=claimant, seconds=60)
                                    for claimant, gateway in claimants))
    assert len({claim.claimant for claim in claims}) == 1
    granted = [claimant for (claimant, _), claim in zip(claimants, claims, strict=True) if claim.held_by(claimant)]
    assert granted == [claims[0].claimant]
    assert (await other.claim_revocation("ca-1", "a7", claimant="late", seconds=60)).claimant == granted[0]


# -- resume


async def test_ok_every_gateway_sees_the_unfinished_orders_oldest_first(ledger: Ledger, other: Ledger,
                                                                         clock: FakeClock) -> None:
    for name, state in [("ok-a", OrderState.SUBMITTED), ("ok-b", OrderState.ISSUED), ("ok-c", None),
                        ("ok-d", OrderState.COLLECTING), ("ok-e", OrderState.ABANDONED)]:
        await ledger.create_order(new_order(name))
        if state is not None:
            await ledger.update_order(name, state=state)
        clock.advance()
    assert [order.id for order in await other.unfinished_orders()] == ["ok-a", "ok-c", "ok-d"]


# -- the CA's own chain


async def test_ok_ca_chain_is_kept_once_the_first_wins(ledger: Ledger, other: Ledger) -> None:
    assert await ledger.ca_chain("ca-1") == ()
    first = (b"\x30\x82issuing", b"\x30\x82root")
    assert await ledger.keep_ca_chain("ca-1", first) == first
    assert await other.keep_ca_chain("ca-1", (b"\x30\x82another",)) == first  # from another gateway too
    assert await other.ca_chain("ca-1") == first
    assert await ledger.ca_chain("ca-2") == ()  # per CA


async def test_ok_empty_ca_chain_changes_nothing(ledger: Ledger) -> None:
    assert await ledger.keep_ca_chain("ca-1", ()) == ()
    assert await ledger.keep_ca_chain("ca-1", (b"\x30\x82issuing",)) == (b"\x30\x82issuing",)


async def test_ok_many_concurrent_keeps_agree(ledger: Ledger, other: Ledger) -> None:
    results = await asyncio.gather(*(
        (ledger if n % 2 else other).keep_ca_chain("ca-1", (f"\x30\x82chain-{n}".encode(),)) for n in range(12)))
    assert len(set(results)) == 1 and results[0] == await ledger.ca_chain("ca-1")


# -- inventory


def _expiring(serial: str, days: int, **kwargs: object) -> CertificateRecord:
    return replace(new_certificate(serial, **kwargs), not_after=T0 + dt.timedelta(days=days))  # type: ignore[arg-type]


async def _listed(ledger: Ledger, **kwargs: object) -> list[str]:
    query = CertificateQuery(**{"ca_id": "ca-1", "now": T0, "limit": 100, **kwargs})  # type: ignore[arg-type]
    return [entry.certificate.serial_number for entry in await ledger.list_certificates(query)]


async def test_ok_inventory_lists_soonest_expiry_first_and_pages_after_the_last_entry(ledger: Ledger) -> None:
    for serial, days in (("a1", 30), ("a2", 10), ("a3", 20), ("a4", 20)):
        await ledger.record_issued(None, _expiring(serial, days))
    await ledger.record_issued(None, _expiring("b1", 5, ca_id="ca-2"))
    assert await _listed(ledger) == ["a2", "a3", "a4", "a1"]
    assert await _listed(ledger, limit=2) == ["a2", "a3"]
    assert await _listed(ledger, after=(T0 + dt.timedelta(days=20), "a3")) == ["a4", "a1"]
    assert await _listed(ledger, expiring_before=T0 + dt.timedelta(days=20)) == ["a2"]


async def test_ok_inventory_filters_by_status_owner_name_and_issue_time(ledger: Ledger) -> None:
    await ledger.create_order(new_order("o-1"))  # client-a, host.example.com + www.example.com
    await ledger.record_issued("o-1", replace(_expiring("c1", 30), order_id="o-1"))
    await ledger.record_issued(None, _expiring("c2", 40, subject_dn="cn=other.example.org,o=acme"))
    await ledger.record_issued(None, replace(_expiring("c3", 50), issued_at=T0 + dt.timedelta(days=2)))
    await ledger.mark_revoked("ca-1", "c3", reason="superseded", comment="", when=T0)
    await ledger.record_issued(None, _expiring("c4", -1))
    assert await _listed(ledger, status="revoked") == ["c3"]
    assert await _listed(ledger, status="expired") == ["c4"]
    assert await _listed(ledger, status="normal") == ["c1", "c2"]
    assert await _listed(ledger, owner="client-a") == ["c1"]
    assert await _listed(ledger, name="www.example.com") == ["c1"]
    assert await _listed(ledger, name="*.example.com") == ["c4", "c1", "c3"]  # loose ones by their DN's CN
    assert await _listed(ledger, name="other.example.org") == ["c2"]
    assert await _listed(ledger, name="*.host.example.com") == []  # *.x needs one more label
    assert await _listed(ledger, issued_after=T0 + dt.timedelta(days=1)) == ["c3"]


async def test_ok_inventory_entry_knows_its_order_and_its_replacement(ledger: Ledger) -> None:
    await ledger.create_order(new_order("o-1"))
    await ledger.record_issued("o-1", replace(_expiring("d1", 30), order_id="o-1"))
    renewal = replace(new_order("o-2"), kind=OrderKind.RENEW, renewal_of_serial="d1")
    await ledger.create_order(renewal)
    pending = await ledger.inventory_entry("ca-1", "d1")
    assert pending is not None
    assert (pending.profile_id, pending.owner, pending.common_name) == ("web", "client-a", "host.example.com")
    assert (pending.replacement_order_id, pending.replaced_by) == ("o-2", None)
    await ledger.record_issued("o-2", replace(_expiring("d2", 395), order_id="o-2"))
    done = await ledger.inventory_entry("ca-1", "d1")
    assert done is not None and (done.replacement_order_id, done.replaced_by) == ("o-2", "d2")
    assert await ledger.inventory_entry("ca-1", "unknown") is None


async def test_ok_certificates_counted_by_owner_status_and_expiry_horizon(ledger: Ledger) -> None:
    await ledger.create_order(new_order("o-1"))  # requested by client-a
    await ledger.record_issued("o-1", replace(_expiring("e1", 5), order_id="o-1"))
    for serial, days in (("e2", 5), ("e3", 20), ("e4", 400), ("e5", -3)):
        await ledger.record_issued(None, _expiring(serial, days))
    await ledger.mark_revoked("ca-1", "e3", reason="superseded", comment="", when=T0)
    await ledger.record_issued(None, _expiring("x1", 5, ca_id="ca-2"))
    counts = await ledger.count_certificates("ca-1", now=T0, horizons=[dt.timedelta(days=7), dt.timedelta(days=30)])
    assert sorted(counts) == [("", "normal", -1, 1), ("", "normal", 0, 1), ("", "normal", 2, 1),
                              ("", "revoked", 1, 1), ("client-a", "normal", 0, 1)]


# -- keys the gateway made (stored only encrypted, deleted at their expiry)


def _with_key(order_id: str, blob: bytes, expires_at: dt.datetime, **kwargs: Any) -> NewOrder:
    return dataclasses.replace(new_order(order_id, **kwargs), server_key=ServerKey(blob, expires_at))


async def test_ok_a_key_is_stored_with_its_order_and_read_by_every_gateway(ledger: Ledger, other: Ledger) -> None:
    expiry = T0 + dt.timedelta(days=7)
    await ledger.create_order(_with_key("ok-key", b"\x30\x82encrypted", expiry))
    stored = await other.get_server_key("ok-key")
    assert stored == ServerKey(b"\x30\x82encrypted", expiry)
    assert "encrypted" not in repr(stored)
    await ledger.create_order(new_order("ok-no-key"))
    assert await ledger.get_server_key("ok-no-key") is None
    assert await ledger.get_server_key("ok-unknown") is None


async def test_ok_a_retried_create_keeps_the_first_key(ledger: Ledger) -> None:
    expiry = T0 + dt.timedelta(days=7)
    await ledger.create_order(_with_key("ok-first-key", b"first", expiry, request_id="r-1", fingerprint="fp-k"))
    again, created = await ledger.create_order(_with_key("ok-second-key", b"second", expiry, request_id="r-1",
                                                         fingerprint="fp-k"))
    assert not created and again.id == "ok-first-key"
    assert (await ledger.get_server_key("ok-first-key")) == ServerKey(b"first", expiry)
    assert await ledger.get_server_key("ok-second-key") is None


async def test_ok_delete_removes_the_key_once(ledger: Ledger, other: Ledger) -> None:
    await ledger.create_order(_with_key("ok-del", b"blob", T0 + dt.timedelta(days=1)))
    assert await other.delete_server_key("ok-del") is True
    assert await ledger.get_server_key("ok-del") is None
    assert await ledger.delete_server_key("ok-del") is False
    assert (await ledger.get_order("ok-del")) is not None  # the order stays


async def test_ok_purge_deletes_only_the_expired_keys(ledger: Ledger) -> None:
    for name, days in [("ok-old", 1), ("ok-due", 2), ("ok-young", 3)]:
        await ledger.create_order(_with_key(name, name.encode(), T0 + dt.timedelta(days=days)))
    assert await ledger.purge_server_keys(expired_at=T0 + dt.timedelta(days=2)) == 2
    assert await ledger.get_server_key("ok-old") is None and await ledger.get_server_key("ok-due") is None
    assert await ledger.get_server_key("ok-young") == ServerKey(b"ok-young", T0 + dt.timedelta(days=3))
    assert await ledger.purge_server_keys(expired_at=T0 + dt.timedelta(days=2)) == 0


async def test_ok_the_outbox_holds_every_event_in_order_with_its_owner_and_origin(ledger: Ledger) -> None:
    assert await ledger.latest_event_id() == 0
    await ledger.create_order(new_order("o-1"))
    await ledger.record_issued("o-1", replace(_expiring("f1", 30), order_id="o-1"))
    await ledger.record_issued(None, _expiring("f2", 30, ca_id="ca-2"))
    await ledger.mark_revoked("ca-1", "f1", reason="superseded", comment="", when=T0)
    events = await ledger.events_after(0, limit=10)
    assert [(e.event.action, e.event.serial_number, e.owner, e.ordered) for e in events] == [
        ("issued", "f1", "client-a", True), ("issued", "f2", "", False), ("revoked", "f1", "client-a", True)]
    assert await ledger.events_after(events[1].event.id, limit=10) == events[2:]
    assert await ledger.latest_event_id() == events[2].event.id
    assert await ledger.webhook_cursor("hook") is None
    await ledger.advance_webhook_cursor("hook", events[2].event.id)
    await ledger.advance_webhook_cursor("hook", events[0].event.id)  # never back
    assert await ledger.webhook_cursor("hook") == events[2].event.id


# -- subject pages


async def test_ok_subject_entries_page_newest_first_with_a_keyset_position(ledger: Ledger, clock: ManualClock) -> None:
    for index in range(5):  # two of them created in the same instant: the filing id breaks the tie
        await ledger.create_order(new_order(f"page-{index}", requested_dn="cn=paged"))
        if index != 2:
            clock.advance()
    everything = await ledger.subject_entries("ca-1", "cn=paged")
    assert [e.order_id for e in everything] == ["page-4", "page-3", "page-2", "page-1", "page-0"]
    first = await ledger.subject_entries("ca-1", "cn=paged", limit=2)
    assert [e.order_id for e in first] == ["page-4", "page-3"] and first[-1].position is not None
    rest = await ledger.subject_entries("ca-1", "cn=paged", before=first[-1].position, limit=10)
    assert [e.order_id for e in rest] == ["page-2", "page-1", "page-0"]
    await ledger.create_order(new_order("page-new", requested_dn="cn=paged"))  # arrives at the front
    assert [e.order_id for e in await ledger.subject_entries("ca-1", "cn=paged", before=first[-1].position,
                                                             limit=2)] == ["page-2", "page-1"]


async def test_ok_the_owner_is_the_ordering_client_else_the_caller_identity(ledger: Ledger) -> None:
    await ledger.create_order(replace(new_order("o-c"), client="team-a", fingerprint="fp-c"))  # requested_by client-a
    await ledger.record_issued("o-c", replace(_expiring("g1", 30), order_id="o-c"))
    await ledger.create_order(new_order("o-i"))  # no client: the identity stands
    await ledger.record_issued("o-i", replace(_expiring("g2", 40), order_id="o-i"))
    entries = await ledger.list_certificates(CertificateQuery(ca_id="ca-1", now=T0, limit=10))
    assert [(e.certificate.serial_number, e.owner) for e in entries] == [("g1", "team-a"), ("g2", "client-a")]
    assert await _listed(ledger, owner="team-a") == ["g1"]
    assert [e.owner for e in await ledger.events_after(0, limit=10)] == ["team-a", "client-a"]


# -- failed, expiring and replaced events (the outbox, written with the change)


async def _actions(ledger: Ledger) -> list[tuple[str, str, str, str | None]]:
    return [(e.event.action, e.event.serial_number, e.event.detail, e.event.order_id)
            for e in await ledger.events_after(0, limit=100)]


async def test_ok_an_order_that_fails_tells_its_owner_once_with_its_reason(ledger: Ledger) -> None:
    await ledger.create_order(replace(new_order("o-f"), client="team-a"))
    await ledger.update_order("o-f", state=OrderState.SUBMITTED, ca_order_id="9")
    await ledger.update_order("o-f", state=OrderState.FAILED, detail="the CA refused it", error_reason="CA_REJECTED")
    await ledger.update_order("o-f", state=OrderState.FAILED, detail="still refused")  # no second event
    await ledger.create_order(new_order("o-a"))
    await ledger.update_order("o-a", state=OrderState.ABANDONED, detail="gave up")
    events = await ledger.events_after(0, limit=10)
    assert [(e.event.action, e.event.serial_number, e.event.order_id, e.event.reason, e.event.detail, e.owner)
            for e in events] == [("failed", "", "o-f", "CA_REJECTED", "the CA refused it", "team-a"),
                                 ("failed", "", "o-a", "ABANDONED", "gave up", "client-a")]
    assert [e.action for e in await ledger.list_events("ca-1", after_id=0, since=None, limit=10)] == ["failed"] * 2
    await ledger.record_issued(None, _expiring("fx", 30))
    assert [e.action for e in await ledger.list_events("ca-1", after_id=0, since=None, limit=10,
                                                       actions=("issued", "revoked"))] == ["issued"]
    assert await ledger.count_events("ca-1", since=None, actions=("issued", "revoked")) == 1
    assert await ledger.count_events("ca-1", since=None) == 3


async def test_ok_a_revived_order_that_fails_again_is_told_again(ledger: Ledger) -> None:
    await ledger.create_order(new_order("o-r"))
    await ledger.update_order("o-r", state=OrderState.FAILED, error_reason="CA_REJECTED")
    await ledger.update_order("o-r", state=OrderState.RECEIVED)  # an operator's retry
    await ledger.update_order("o-r", state=OrderState.ABANDONED)
    assert [(a, r) for a, _, _, r in await _actions(ledger)] == [("failed", "o-r"), ("failed", "o-r")]


async def test_ok_an_issued_renewal_tells_the_old_certificate_replaced_once(ledger: Ledger, other: Ledger) -> None:
    await ledger.create_order(new_order("o-1"))
    await ledger.record_issued("o-1", replace(_expiring("r1", 30), order_id="o-1"))
    await ledger.create_order(replace(new_order("o-2"), kind=OrderKind.RENEW, renewal_of_serial="r1"))
    renewed = replace(_expiring("r2", 395), order_id="o-2")
    await asyncio.gather(ledger.record_issued("o-2", renewed), other.record_issued("o-2", renewed))
    assert await _actions(ledger) == [("issued", "r1", "cn=host.example.com", None),
                                      ("issued", "r2", "cn=host.example.com", None), ("replaced", "r1", "r2", "o-2")]
    replaced = (await ledger.events_after(0, limit=10))[-1]
    assert (replaced.owner, replaced.ordered) == ("client-a", True)  # the replaced certificate's owner


async def test_ok_expiring_is_told_once_per_certificate_and_threshold(ledger: Ledger, other: Ledger,
                                                                      clock: FakeClock) -> None:
    for serial, days in (("x1", 5), ("x2", 20), ("x3", 40), ("x4", 25)):
        await ledger.record_issued(None, _expiring(serial, days))
    await ledger.mark_revoked("ca-1", "x4", reason="superseded", comment="", when=T0)
    await ledger.record_issued(None, _expiring("y1", 6, ca_id="ca-2"))
    month, week = dt.timedelta(days=30), dt.timedelta(days=7)
    counts = await asyncio.gather(
        ledger.record_expiring("ca-1", now=T0, within=month, beyond=week, label="30d", limit=100),
        other.record_expiring("ca-1", now=T0, within=month, beyond=week, label="30d", limit=100))
    assert sorted(counts) == [0, 1]  # x2 only: x1 is within the next threshold, x3 beyond, x4 revoked
    assert await ledger.record_expiring("ca-1", now=T0, within=week, beyond=dt.timedelta(0), label="7d",
                                        limit=100) == 1
    assert await ledger.record_expiring("ca-1", now=T0, within=week, beyond=dt.timedelta(0), label="7d",
                                        limit=100) == 0
    expiring = [(a, s, d) for a, s, d, _ in await _actions(ledger) if a == "expiring"]
    assert expiring == [("expiring", "x2", "30d"), ("expiring", "x1", "7d")]
    clock.advance(days=14)  # x2 enters the 7 days, x3 the 30: each once
    later = clock.now
    assert await ledger.record_expiring("ca-1", now=later, within=week, beyond=dt.timedelta(0), label="7d",
                                        limit=100) == 1
    assert await ledger.record_expiring("ca-1", now=later, within=month, beyond=week, label="30d", limit=1) == 1
    assert await ledger.record_expiring("ca-1", now=later, within=month, beyond=week, label="30d", limit=1) == 0
    assert [s for a, s, _, _ in await _actions(ledger) if a == "expiring"] == ["x2", "x1", "x2", "x3"]


async def test_ok_a_replaced_certificate_is_not_told_expiring(ledger: Ledger) -> None:
    await ledger.create_order(new_order("o-1"))
    await ledger.record_issued("o-1", replace(_expiring("z1", 20), order_id="o-1"))
    await ledger.create_order(replace(new_order("o-2"), kind=OrderKind.RENEW, renewal_of_serial="z1"))
    month = dt.timedelta(days=30)
    await ledger.record_issued("o-2", replace(_expiring("z2", 25), order_id="o-2"))
    assert await ledger.record_expiring("ca-1", now=T0, within=month, beyond=dt.timedelta(0), label="30d",
                                        limit=10) == 1
    events = [e for e in await ledger.events_after(0, limit=10) if e.event.action == "expiring"]
    assert [(e.event.serial_number, e.owner, e.renewal_of) for e in events] == [("z2", "client-a", "z1")]


async def test_ok_the_inventory_knows_an_orders_own_automatic_renewal_choice(ledger: Ledger) -> None:
    for order_id, choice in (("o-in", "true"), ("o-out", "false"), ("o-none", None)):
        options = {"format": "PEM"} | ({} if choice is None else {"auto_renew": choice})
        await ledger.create_order(replace(new_order(order_id), options=options))
        await ledger.record_issued(order_id, replace(_expiring(f"s-{order_id}", 30), order_id=order_id))
    await ledger.record_issued(None, _expiring("s-loose", 30))
    entries = await ledger.list_certificates(CertificateQuery(ca_id="ca-1", now=T0, limit=10))
    assert {e.certificate.serial_number: e.auto_renew for e in entries} == {
        "s-o-in": True, "s-o-out": False, "s-o-none": None, "s-loose": None}


async def test_ok_two_gateways_failing_one_order_at_once_tell_it_once(ledger: Ledger, other: Ledger) -> None:
    await ledger.create_order(new_order("o-race"))
    await asyncio.gather(ledger.update_order("o-race", state=OrderState.FAILED, error_reason="CA_REJECTED"),
                         other.update_order("o-race", state=OrderState.ABANDONED))
    assert [(a, r) for a, _, _, r in await _actions(ledger)] == [("failed", "o-race")]
