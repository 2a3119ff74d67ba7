"""The enrollment engine on virtual time: the dry run, the wait budget, enroll, get and watch.

The wall clock is a FakeClock, sleeps are VirtualTime's (nothing really
sleeps) and the monotonic clock the budget reads is a settable number.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, cast

import pytest

from service.config import BackoffSettings
from service.connectors.base import CAProfile, ReplaceRequest
from service.enrollment.engine import (
    CertificateReplacement,
    DEADLINE_MARGIN,
    MAX_WAIT_CAP,
    EnrollmentEngine,
    EnrollmentInput,
    OrderEvent,
    Phase,
    WaitBudget,
)
from service.errors import CallerDenied, CARejected, InvalidRequest, NotFound, QuotaExceeded, Unimplemented
from service.ledger import Ledger, open_ledger
from tests.support.clocks import FakeClock, VirtualTime
from tests.support.csr import make_csr
from tests.unit.fakes import CA_ID, FakeConnector, make_registry

SCHEDULE_TIME = 2 + 4 + 8 + 16 + 32 + 5 * 30.0  # default waits + one 30 s CA call per attempt


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingLedger:
    """The real ledger, counting the order reads."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self.order_reads = 0

    async def get_order(self, order_id: str) -> Any:
        self.order_reads += 1
        return await self._ledger.get_order(order_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)


class SlowProfilesConnector(FakeConnector):
    """Listing its profiles takes ``seconds`` of monotonic time."""

    def __init__(self, monotonic: Monotonic, seconds: float) -> None:
        super().__init__()
        self._monotonic = monotonic
        self._seconds = seconds

    async def profiles(self) -> tuple[CAProfile, ...]:
        self._monotonic.now += self._seconds
        return await super().profiles()


@dataclasses.dataclass
class World:
    engine: EnrollmentEngine
    connector: FakeConnector
    ledger: CountingLedger
    time: VirtualTime
    monotonic: Monotonic

    def issue_all(self) -> None:
        for order in self.connector.orders.values():
            order.certificate_der = self.connector.ca.issue(f"CN={order.common_name}")
            order.chain_der = (self.connector.ca.der,)


@pytest.fixture
async def world(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[World]:
    monotonic = Monotonic()
    connector = getattr(request, "param", None) or FakeConnector()
    if isinstance(connector, type):
        connector = connector(monotonic, 5.0)
    clock = FakeClock()
    time = VirtualTime(clock)
    ledger = await open_ledger(tmp_path / "ledger.db", clock=clock)
    counting = CountingLedger(ledger)
    registry = make_registry(tmp_path, [connector])
    engine = EnrollmentEngine(cast(Ledger, counting), registry, clock=clock, sleep=time.sleep, monotonic=monotonic)
    try:
        yield World(engine, connector, counting, time, monotonic)
    finally:
        await engine.close()
        await ledger.close()


def _input(name: str = "www.example.com", **fields: object) -> EnrollmentInput:
    values: dict[str, object] = {"ca_id": CA_ID, "profile_id": "101", "csr": make_csr(name)}
    values.update(fields)
    return EnrollmentInput(**values)  # type: ignore[arg-type]


async def _until_final(stream: AsyncIterator[OrderEvent]) -> list[OrderEvent]:
    return [event async for event in stream]


# ------------------------------------------------------------------ check


async def test_ok_check_allows_and_shows_the_order_without_writing_or_ordering_anything(world: World) -> None:
    checked = await world.engine.check(_input(required_format="X509"))
    assert checked.allowed and checked.refusals == () and checked.violations == ()
    order = checked.accepted()
    assert (order.ca_id, order.ca_profile_id, order.term_days, order.common_name) == (
        CA_ID, "101", 365, "www.example.com")
    assert order.options["format"] == "X509"
    assert await world.ledger.unfinished_orders() == []
    assert "enroll" not in world.connector.names() and world.engine.running_orders == 0


def _server_keys_off(world: World) -> None:
    ca = world.engine._cas.get(CA_ID)  # noqa: SLF001 - the CA's settings, as a configuration would give them
    gateway = dataclasses.replace(ca.settings.gateway, server_side_keys=False)
    object.__setattr__(ca, "settings", dataclasses.replace(ca.settings, gateway=gateway))


async def test_fail_check_refuses_with_every_reason(world: World) -> None:
    _server_keys_off(world)
    checked = await world.engine.check(_input(required_format="PKCS12", csr="", request_id="no spaces please",
                                              subject_alt_names=(("dNSName", "bad..name"),)))
    assert not checked.allowed and checked.order is None
    assert [type(r) for r in checked.refusals] == [Unimplemented, InvalidRequest]
    assert [v.field for v in checked.violations] == ["requestId", "csr", "subjectAltNames[0].value"]
    with pytest.raises(Unimplemented):
        checked.accepted()
    assert await world.ledger.unfinished_orders() == []


async def test_fail_check_of_an_unknown_ca_is_not_found(world: World) -> None:
    with pytest.raises(NotFound) as caught:
        await world.engine.check(_input(ca_id="nope"))
    assert caught.value.reason == "CA_NOT_CONFIGURED"


# ------------------------------------------------------------------ wait budget


@pytest.mark.parametrize(("max_wait", "deadline_in", "elapsed", "expected"), [
    pytest.param(None, None, 0, SCHEDULE_TIME, id="ok-the-whole-foreground-schedule"),
    pytest.param(10.0, None, 0, 10.0, id="ok-capped-by-max-wait"),
    pytest.param(None, 3.0, 0, 3.0 - DEADLINE_MARGIN, id="ok-capped-by-the-deadline-less-the-margin"),
    pytest.param(10.0, 3.0, 0, 3.0 - DEADLINE_MARGIN, id="ok-the-nearer-limit-wins"),
    pytest.param(10.0, None, 4.0, 6.0, id="ok-time-already-spent-counts"),
    pytest.param(None, 0.2, 0, 0.0, id="ok-never-negative"),
    pytest.param(-5.0, None, 0, 0.0, id="ok-negative-max-wait-answers-at-once"),
    pytest.param(1e12, None, 0, SCHEDULE_TIME, id="ok-huge-max-wait-is-the-schedule"),
])
async def test_wait_budget(world: World, max_wait: float | None, deadline_in: float | None, elapsed: float,
                           expected: float) -> None:
    ca = world.engine._cas.get(CA_ID)  # noqa: SLF001 - the CA the engine was built with
    deadline = None if deadline_in is None else world.monotonic.now + deadline_in
    budget = world.engine.wait_budget(ca, _input(max_wait=max_wait), deadline=deadline)
    world.monotonic.now += elapsed
    assert budget.remaining(world.monotonic()) == pytest.approx(expected)


def test_ok_wait_budget_is_capped() -> None:
    assert WaitBudget(schedule=1e9).remaining(0.0) == MAX_WAIT_CAP
    assert WaitBudget(schedule=60.0, answer_by=1e9).remaining(0.0) == 60.0


@pytest.mark.parametrize("world", [SlowProfilesConnector], indirect=True)
async def test_ok_enroll_spends_validation_time_from_max_wait_and_answers_pending(world: World) -> None:
    blocked = asyncio.Event()

    async def frozen(seconds: float) -> None:
        await blocked.wait()

    world.engine._tracker._sleep = frozen  # noqa: SLF001 - freeze the schedule at its first wait
    # Listing the profiles takes 5 s of the 5 s maxWait: the answer comes at once, pending.
    event = await asyncio.wait_for(world.engine.enroll(_input(max_wait=5.0)), 5)
    assert not event.phase.settled and event.order.subject_dn == "CN=www.example.com"
    assert world.engine.running_orders == 1
    blocked.set()


# ------------------------------------------------------------------ enroll


async def test_ok_enroll_answers_with_the_certificate_and_the_order_view(world: World) -> None:
    world.time.on_sleep = lambda n: world.issue_all() if n == 2 else None
    event = await asyncio.wait_for(world.engine.enroll(_input(include_ca=False, required_format="X509",
                                                              subject_dn="CN=WWW.example.com")), 5)
    assert event.phase is Phase.ISSUED and event.certificate is not None and event.ca_order_id
    view = event.order
    assert (view.ca_id, view.profile_id, view.requested_dn) == (CA_ID, "101", "cn=www.example.com")
    assert (view.options.required_format, view.options.include_ca, view.options.subject_dn) == (
        "X509", False, "CN=www.example.com")
    assert world.time.waits == [2, 4]


async def test_fail_enroll_pkcs12_is_refused_before_the_ca_is_asked_anything(world: World) -> None:
    _server_keys_off(world)
    with pytest.raises(Unimplemented):
        await world.engine.enroll(_input(required_format="PKCS12"))
    assert world.connector.names() == []


async def test_fail_enroll_refuses_a_bad_request_and_records_nothing(world: World) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await world.engine.enroll(_input(profile_id="nope", csr="garbage"))
    assert [v.field for v in caught.value.violations] == ["profileId", "csr"]
    assert await world.ledger.unfinished_orders() == []


async def test_fail_enroll_raises_the_orders_failure(world: World) -> None:
    world.connector.fail("collect", CARejected("declined", reason="CA_ORDER_FAILED"))
    with pytest.raises(CARejected, match="declined"):
        await asyncio.wait_for(world.engine.enroll(_input()), 5)


# ------------------------------------------------------------------ get and watch


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.001)


async def test_ok_watchers_read_the_order_once_each_however_many_events(world: World) -> None:
    world.time.on_sleep = lambda n: world.issue_all() if n == 4 else None
    world.time.gate = asyncio.Event()  # the order waits at its first sleep until the watchers are in
    stream = world.engine.enroll_and_watch(_input())
    first = await anext(stream)
    watchers = [asyncio.ensure_future(_until_final(world.engine.watch(CA_ID, first.order_id))) for _ in range(3)]
    channel = world.engine._tracker._channels[first.order_id]  # noqa: SLF001
    await asyncio.wait_for(_until(lambda: channel.watchers == 4), 5)  # the stream and the three watchers
    world.time.gate.set()
    rest = await asyncio.wait_for(_until_final(stream), 5)
    results = await asyncio.wait_for(asyncio.gather(*watchers), 5)
    assert rest[-1].phase is Phase.ISSUED and all(r[-1].phase is Phase.ISSUED for r in results)
    assert sum(len(r) for r in results) > 3 * 4
    assert world.ledger.order_reads == 3  # one per watch, none per event


async def test_ok_get_answers_for_a_finished_order_from_the_ledger(world: World) -> None:
    world.time.on_sleep = lambda n: world.issue_all()
    issued = await asyncio.wait_for(world.engine.enroll(_input()), 5)
    for _ in range(10):  # the order task ends once the certificate is recorded
        if world.engine.running_orders == 0:
            break
        await asyncio.sleep(0)
    assert world.engine.running_orders == 0  # so the answer comes from the ledger, not a channel
    event = await world.engine.get(CA_ID, issued.order_id)
    assert event.phase is Phase.ISSUED and event.certificate == issued.certificate
    assert event.order == issued.order and event.ca_order_id == issued.ca_order_id


@pytest.mark.parametrize(("ca_id", "enrollment_id", "reason"), [
    pytest.param(CA_ID, "no-such-order", "ENROLLMENT_NOT_FOUND", id="fail-unknown-enrollment"),
    pytest.param("nope", "x", "CA_NOT_CONFIGURED", id="fail-unknown-ca"),
])
async def test_fail_get_and_watch_unknown(world: World, ca_id: str, enrollment_id: str, reason: str) -> None:
    with pytest.raises(NotFound) as caught:
        await world.engine.get(ca_id, enrollment_id)
    assert caught.value.reason == reason
    with pytest.raises(NotFound):
        await anext(world.engine.watch(ca_id, enrollment_id))


async def test_fail_an_enrollment_of_another_ca_is_not_found(tmp_path: Path, world: World) -> None:
    event = await world.engine.enroll(_input(max_wait=0))
    other = make_registry(tmp_path, [world.connector, FakeConnector()])
    engine = EnrollmentEngine(cast(Ledger, world.ledger), other, clock=world.time.clock, sleep=world.time.sleep)
    try:
        with pytest.raises(NotFound) as caught:
            await engine.get(f"{CA_ID}-2", event.order_id)
        assert caught.value.reason == "ENROLLMENT_NOT_FOUND"
    finally:
        await engine.close()


async def test_ok_enroll_answers_timed_out_when_the_attempts_are_used_up(world: World) -> None:
    assert world.engine._cas.get(CA_ID).settings.backoff == BackoffSettings()  # noqa: SLF001 - 5 attempts
    event = await asyncio.wait_for(world.engine.enroll(_input()), 5)  # the fake CA never issues
    assert event.phase is Phase.TIMED_OUT and event.attempt == 5 and event.background
    # The order's task goes on in the background (every 32 s) and may have begun its next wait
    # before the answer reached this test: the foreground waits, then background ones only.
    assert world.time.waits[:5] == [2, 4, 8, 16, 32] and set(world.time.waits[5:]) <= {32}


# ------------------------------------------------------------------ renew and reissue by serial


class ReplacingConnector(FakeConnector):
    """A CA that can issue an order again for a new CSR (the optional CertificateReplace)."""

    async def replace(self, request: ReplaceRequest) -> None:
        self._enter("replace", request)


async def _issued_through_engine(world: World, name: str) -> str:
    world.time.on_sleep = lambda n: world.issue_all()
    event = await asyncio.wait_for(world.engine.enroll(_input(name)), 5)
    assert event.certificate is not None
    return event.certificate.serial_number


async def test_fail_renew_of_an_unknown_serial(world: World) -> None:
    with pytest.raises(NotFound) as caught:
        await world.engine.replace_certificate(CertificateReplacement(ca_id=CA_ID, serial_number="0BADC0DE"))
    assert caught.value.reason == "CERTIFICATE_NOT_FOUND"
    assert "enroll" not in world.connector.names() and "renew" not in world.connector.names()


async def test_fail_renew_of_a_certificate_not_ordered_here(world: World) -> None:
    serial = await _issued_through_engine(world, "loose.example.com")
    loose = await world.ledger.get_certificate(CA_ID, serial)
    assert loose is not None
    await world.ledger.record_issued(None, dataclasses.replace(loose, serial_number="abcdef", order_id=None))
    with pytest.raises(InvalidRequest) as caught:
        await world.engine.replace_certificate(CertificateReplacement(ca_id=CA_ID, serial_number="ABCDEF"))
    assert [v.field for v in caught.value.violations] == ["serialNumber"]
    assert "not issued through this gateway" in caught.value.violations[0].description


async def test_fail_reissue_needs_a_ca_that_can_replace(world: World) -> None:
    serial = await _issued_through_engine(world, "noreplace.example.com")
    with pytest.raises(Unimplemented, match="ReissueAction is not available"):
        await world.engine.replace_certificate(CertificateReplacement(
            ca_id=CA_ID, serial_number=serial, reissue=True, csr=make_csr("noreplace.example.com")))


@pytest.mark.parametrize("world", [ReplacingConnector()], indirect=True)
async def test_fail_reissue_names_the_action_csr(world: World) -> None:
    serial = await _issued_through_engine(world, "csr.example.com")
    for csr in ("", "garbage"):
        with pytest.raises(InvalidRequest) as caught:
            await world.engine.replace_certificate(CertificateReplacement(
                ca_id=CA_ID, serial_number=serial, reissue=True, csr=csr))
        assert [v.field for v in caught.value.violations] == ["action.csr"]
    assert "replace" not in world.connector.names()


@pytest.mark.parametrize("world", [ReplacingConnector()], indirect=True)
async def test_ok_reissue_asks_the_ca_to_replace_the_same_order(world: World) -> None:
    serial = await _issued_through_engine(world, "again.example.com")
    old = await world.ledger.get_certificate(CA_ID, serial)
    assert old is not None and old.order_id is not None
    old_order = await world.ledger.get_order(old.order_id)
    assert old_order is not None
    world.time.on_sleep = lambda n: world.issue_all()
    event = await asyncio.wait_for(world.engine.replace_certificate(CertificateReplacement(
        ca_id=CA_ID, serial_number=serial, reissue=True, csr=make_csr("again.example.com"), comment="rotated")), 5)
    replaced = [request for name, request in world.connector.calls if name == "replace"]
    assert len(replaced) == 1
    assert (replaced[0].order_id, replaced[0].reason) == (old_order.ca_order_id, "rotated")
    order = await world.ledger.get_order(event.order_id)
    assert order is not None and order.kind.value == "REISSUE" and order.ca_order_id == old_order.ca_order_id
    assert order.renewal_of_serial == serial


@pytest.mark.parametrize("world", [ReplacingConnector()], indirect=True)
async def test_ok_reissue_waits_while_the_ca_still_hands_out_the_replaced_certificate(world: World) -> None:
    serial = await _issued_through_engine(world, "stale.example.com")
    sleeps: list[int] = []

    def on_sleep(n: int) -> None:
        sleeps.append(n)
        if len(sleeps) == 2:  # the first collect still gets the old certificate; then the CA reissues
            world.issue_all()

    world.time.on_sleep = on_sleep
    event = await asyncio.wait_for(world.engine.replace_certificate(CertificateReplacement(
        ca_id=CA_ID, serial_number=serial, reissue=True, csr=make_csr("stale.example.com"))), 5)
    assert event.phase is Phase.ISSUED and event.certificate is not None
    assert event.certificate.serial_number != serial
    history = await world.ledger.order_history(event.order_id)
    assert any("still shows the certificate being reissued" in detail for _, _, detail in history)


# ------------------------------------------------------------------ the caller policy in the check step


def _caller(tmp_path: Path, name: str = "team", *, limits: dict[str, str] | None = None) -> Any:
    from service.config import parse_config
    from service.policy import CallerPolicy, PeerIdentity

    document = {
        "managed-cas": [{"id": CA_ID, "connector": "sectigo", "properties": {
            "url": "http://127.0.0.1:1/api", "customer-uri": "c", "org-id": "1", "login": "l",
            "login-password": "p"}}],
        "clients": [{"name": name, "match": {"subject": f"CN={name}"}, "limits": limits or {},
                     "grants": [{"cas": [CA_ID], "operations": ["enroll"], "names": ["*.example.com"]}]}],
    }
    policy = CallerPolicy(parse_config(document, base_dir=tmp_path, environ={}).clients)
    return policy.resolve(PeerIdentity(subject=f"CN={name}", normalized_subject=f"cn={name}"))


async def test_fail_refused_names_write_nothing_but_the_audit_entry(world: World, tmp_path: Path) -> None:
    caller = _caller(tmp_path)
    with pytest.raises(CallerDenied) as caught:
        await world.engine.enroll(_input("www.example.org"), caller=caller)
    assert caught.value.reason == "NAMES_NOT_GRANTED" and "www.example.org" in caught.value.message
    assert await world.ledger.unfinished_orders() == [] and "enroll" not in world.connector.names()
    audit = await world.ledger.audit_entries()
    assert [(a.client, a.action, a.outcome) for a in audit] == [("team", "enroll", "refused")]


async def test_ok_orders_are_the_clients_and_keys_are_scoped(world: World, tmp_path: Path) -> None:
    caller = _caller(tmp_path)
    checked = await world.engine.check(_input(request_id="k-1"), caller=caller)
    assert checked.allowed and checked.grant == "team.grants[0]"
    order = checked.accepted()
    assert (order.client, order.request_id) == ("team", "team/k-1")


async def test_fail_quota_before_the_order_is_written(world: World, tmp_path: Path) -> None:
    caller = _caller(tmp_path, limits={"max-pending": "1"})
    first = _input("a.example.com", request_id="a")
    await world.engine.enroll(first, caller=caller, deadline=world.monotonic() + 0.6)
    with pytest.raises(QuotaExceeded) as caught:
        await world.engine.enroll(_input("b.example.com"), caller=caller)
    assert caught.value.retry_after > 0 and len(world.connector.orders) == 1
    retried = await world.engine.check(first, caller=caller)  # a retry of the first counts against nothing
    assert retried.allowed
