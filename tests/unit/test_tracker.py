"""The enrollment tracker on virtual time: schedule, events, background collection, resume.

A fake sleep records every wait and moves a fake clock; nothing really sleeps.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.authorities import CARegistry, ManagedCA
from service.catalog import ProfileCatalog
from service.config import BackoffSettings, CASettings
from service.connectors.base import CollectRequest, CollectResult, DetailsRequest, EnrollRequest, EnrollResult
from service.enrollment.channel import OrderEvent, Phase
from service.enrollment.orders import OrderView
from service.enrollment.tracker import EnrollmentTracker
from service.errors import CAUnavailable, CARejected
from service.ledger import Ledger, NewOrder, OrderKind, OrderState, open_ledger
from tests.support.settings import CASettingsFactory
from tests.support.clocks import FakeClock, HaltingSleep, VirtualTime
from tests.unit.fakes import CA_ID, FakeConnector


@dataclasses.dataclass
class Harness:
    tracker: EnrollmentTracker
    connector: FakeConnector
    ledger: Ledger
    time: VirtualTime

    def issue(self, order_id: str | None = None) -> None:
        """Let the fake CA issue the (only, or given) order."""
        order = self.connector.orders[order_id] if order_id else next(iter(self.connector.orders.values()))
        order.certificate_der = self.connector.ca.issue(f"CN={order.common_name}")
        order.chain_der = (self.connector.ca.der,)


def _settings(base: CASettings, *, timer: float = 2, max_timer: float = 32, attempts: int = 5,
              give_up: float = 7 * 86400) -> CASettings:
    return dataclasses.replace(base, backoff=BackoffSettings(timer, max_timer, attempts),
                               gateway=dataclasses.replace(base.gateway, give_up_after=give_up))


@pytest.fixture
async def harness(tmp_path: Path, request: pytest.FixtureRequest, clock: FakeClock,
                  ca_settings: CASettingsFactory) -> AsyncIterator[Harness]:
    options = getattr(request, "param", {})
    settings = _settings(ca_settings(), **options)
    connector = FakeConnector()
    time = VirtualTime(clock)
    ledger = await open_ledger(tmp_path / "ledger.db", clock=clock)
    registry = CARegistry([ManagedCA(settings=settings, connector=connector,
                                     catalog=ProfileCatalog(settings, connector))])
    tracker = EnrollmentTracker(ledger, registry, clock=clock, sleep=time.sleep)
    try:
        yield Harness(tracker, connector, ledger, time)
    finally:
        await tracker.close()
        await ledger.close()


def _request(name: str = "www.example.com", **fields: object) -> NewOrder:
    values: dict[str, object] = dict(
        id="", marker="", subject_alt_names=(), ca_id=CA_ID, profile_id="ov", ca_profile_id="101", term_days=365, csr_pem="-----BEGIN...",
        fingerprint=f"fp-{name}", requested_dn=f"cn={name}", common_name=name)
    values.update(fields)
    return NewOrder(**values)  # type: ignore[arg-type]


async def _events(tracker: EnrollmentTracker, order_id: str, *, until: Phase | None = None,
                  at_until: Callable[[], object] = lambda: None) -> list[OrderEvent]:
    """The order's events up to ``until``; ``at_until`` runs as that event arrives (the order's
    task may go on before the caller looks)."""
    seen = []
    async for event in tracker.watch(order_id):
        seen.append(event)
        if until is not None and event.phase is until:
            at_until()
            break
    return seen


async def test_ok_default_timers_wait_2_4_8_16_32_then_time_out(harness: Harness) -> None:
    submitted = await harness.tracker.submit(_request())
    events = await asyncio.wait_for(_events(harness.tracker, submitted.order.id, until=Phase.TIMED_OUT), 5)
    assert harness.time.waits[:5] == [2, 4, 8, 16, 32]
    waiting = [(e.attempt, e.delay) for e in events if e.phase is Phase.WAITING]
    assert waiting == [(1, 2), (2, 4), (3, 8), (4, 16), (5, 32)]
    assert [e.attempt for e in events if e.phase is Phase.PENDING] == [1, 2, 3, 4, 5]
    assert events[-1].phase is Phase.TIMED_OUT and events[-1].background
    assert harness.connector.names().count("collect") == 5


@pytest.mark.parametrize(("harness", "waits"), [
    pytest.param({"timer": 3, "max_timer": 20, "attempts": 4}, [3, 9, 20, 20], id="ok-timer-3-max-20"),
    pytest.param({"timer": 0.5, "max_timer": 32, "attempts": 3}, [0.5, 0.25, 0.125], id="ok-timer-below-1"),
    pytest.param({"timer": 1, "max_timer": 32, "attempts": 3}, [1, 1, 1], id="ok-timer-1"),
], indirect=["harness"])
async def test_ok_non_default_timers(harness: Harness, waits: list[float]) -> None:
    submitted = await harness.tracker.submit(_request())
    await asyncio.wait_for(_events(harness.tracker, submitted.order.id, until=Phase.TIMED_OUT), 5)
    assert harness.time.waits[:len(waits)] == waits


async def test_ok_issued_on_the_third_attempt_is_recorded_and_filed_under_its_subject(harness: Harness) -> None:
    harness.time.on_sleep = lambda n: harness.issue() if n == 3 else None
    submitted = await harness.tracker.submit(_request())
    events = await asyncio.wait_for(_events(harness.tracker, submitted.order.id), 5)
    assert [e.phase for e in events][-1] is Phase.ISSUED
    assert harness.time.waits == [2, 4, 8]
    issued = events[-1].certificate
    assert issued is not None and issued.subject_dn == "cn=www.example.com"
    order = await harness.ledger.get_order(submitted.order.id)
    assert order is not None and order.state is OrderState.ISSUED and order.serial_number == issued.serial_number
    entries = await harness.ledger.subject_entries(CA_ID, "cn=www.example.com")
    assert entries[0].certificate is not None


@pytest.mark.parametrize("harness", [{"attempts": 2, "give_up": 100}], indirect=True)
async def test_ok_background_collection_at_the_max_timer_until_the_give_up_age(harness: Harness) -> None:
    submitted = await harness.tracker.submit(_request())
    events = await asyncio.wait_for(_events(harness.tracker, submitted.order.id), 5)
    assert harness.time.waits[:2] == [2, 4]
    assert set(harness.time.waits[2:]) == {32}  # background: every enroll-max-back-off-timer
    assert events[-1].phase is Phase.FAILED and events[-1].error is not None
    assert events[-1].error.reason == "COLLECTION_ABANDONED"
    order = await harness.ledger.get_order(submitted.order.id)
    assert order is not None and order.state is OrderState.ABANDONED


async def test_ok_transient_collect_error_counts_as_the_attempt_and_retry_after_lengthens_the_wait(
        harness: Harness) -> None:
    harness.connector.fail("collect", CAUnavailable("throttled", retry_after=50))
    harness.time.on_sleep = lambda n: harness.connector.fail("collect", None) if n == 2 else None
    submitted = await harness.tracker.submit(_request())
    events = await asyncio.wait_for(_events(harness.tracker, submitted.order.id, until=Phase.TIMED_OUT), 5)
    # attempt 1 throttled (Retry-After 50 > the scheduled 4 s), then the schedule goes on.
    assert harness.time.waits[:4] == [2, 50, 8, 16]
    assert events[3].phase is Phase.PENDING and events[3].detail == "throttled"


async def test_fail_ca_refusal_during_collect_fails_the_order(harness: Harness) -> None:
    harness.connector.fail("collect", CARejected("declined", reason="CA_ORDER_FAILED"))
    submitted = await harness.tracker.submit(_request())
    events = await asyncio.wait_for(_events(harness.tracker, submitted.order.id), 5)
    assert events[-1].phase is Phase.FAILED and events[-1].detail == "declined"
    order = await harness.ledger.get_order(submitted.order.id)
    assert order is not None and (order.state, order.error_reason) == (OrderState.FAILED, "CA_ORDER_FAILED")


async def test_fail_lost_enroll_reply_without_marker_lookup_fails_retryably(harness: Harness) -> None:
    harness.connector.fail("enroll", CAUnavailable("reply lost"))
    submitted = await harness.tracker.submit(_request())
    events = await asyncio.wait_for(_events(harness.tracker, submitted.order.id), 5)
    assert events[-1].phase is Phase.FAILED
    order = await harness.ledger.get_order(submitted.order.id)
    assert order is not None and order.error_reason == "CA_UNAVAILABLE" and order.ca_order_id is None


async def test_ok_many_watchers_one_poll_loop(harness: Harness) -> None:
    harness.time.on_sleep = lambda n: harness.issue() if n == 4 else None
    submitted = await harness.tracker.submit(_request())
    results = await asyncio.wait_for(asyncio.gather(
        *(_events(harness.tracker, submitted.order.id) for _ in range(5))), 5)
    assert all(r[-1].phase is Phase.ISSUED for r in results)
    assert harness.connector.names().count("collect") == 4


async def _stopped_waiting_for_attempt_2(harness: Harness) -> str:
    """An order whose gateway stopped 1 s into the 4 s wait before its attempt 2."""
    halted = HaltingSleep(harness.time.clock, halt_at=2)
    first = EnrollmentTracker(harness.ledger, harness.tracker._cas, clock=harness.time.clock,  # noqa: SLF001 - same CAs
                              sleep=halted.sleep)
    try:
        submitted = await first.submit(_request())
        async for event in first.watch(submitted.order.id):
            if event.phase is Phase.WAITING and event.attempt == 2:
                break
    finally:
        await first.close()
    assert halted.waits[0] == 2  # (the halted wait itself never moves the clock)
    harness.time.clock.advance(1)
    return submitted.order.id


async def test_ok_resume_makes_the_next_attempt_at_its_recorded_time(harness: Harness) -> None:
    order_id = await _stopped_waiting_for_attempt_2(harness)
    recorded = await harness.ledger.get_order(order_id)
    assert recorded is not None and recorded.state is OrderState.COLLECTING and recorded.attempts == 1
    harness.time.on_sleep = lambda n: harness.issue() if n == 2 else None
    assert await harness.tracker.resume() == 1
    events = await asyncio.wait_for(_events(harness.tracker, order_id), 5)
    assert events[-1].phase is Phase.ISSUED
    assert harness.time.waits == [3, 8]  # the 3 s left of attempt 2's wait, then attempt 3's 8 s
    waiting = [(e.attempt, e.next_attempt_at) for e in events if e.phase is Phase.WAITING]
    assert waiting[0] == (2, recorded.next_attempt_at)
    assert harness.connector.names().count("enroll") == 1 and harness.connector.names().count("collect") == 3


async def test_ok_resume_after_an_attempt_recorded_without_its_next_wait_waits_from_that_attempt(
        harness: Harness) -> None:
    order_id = await _stopped_waiting_for_attempt_2(harness)
    harness.time.clock.advance(3)
    # The gateway stopped just after recording attempt 2's collect, before the wait for attempt 3.
    await harness.ledger.update_order(order_id, state=OrderState.COLLECTING, attempts=2, detail="not issued yet")
    harness.time.clock.advance(5)
    harness.time.on_sleep = lambda n: harness.issue() if n == 1 else None
    assert await harness.tracker.resume() == 1
    events = await asyncio.wait_for(_events(harness.tracker, order_id), 5)
    assert events[-1].phase is Phase.ISSUED and events[-1].attempt == 3
    assert harness.time.waits == [3]  # attempt 3 is due 8 s after attempt 2 was recorded, 5 s ago


async def test_ok_idempotent_submit_returns_the_existing_order(harness: Harness) -> None:
    first = await harness.tracker.submit(_request(request_id="r1"))
    second = await harness.tracker.submit(_request(request_id="r1"))
    assert (first.created, second.created) == (True, False)
    assert first.order.id == second.order.id


async def test_ok_wait_settled_times_out_with_the_latest_state_and_leaves_the_order_running(
        harness: Harness) -> None:
    blocked = asyncio.Event()

    async def slow_sleep(seconds: float) -> None:
        await blocked.wait()

    harness.tracker._sleep = slow_sleep  # noqa: SLF001 - freeze the schedule at its first wait
    submitted = await harness.tracker.submit(_request())
    event = await harness.tracker.wait_settled(submitted.order.id, 0.05)
    assert event.phase is Phase.WAITING
    assert harness.tracker.running_orders == 1
    blocked.set()


def test_phases_settled_and_final() -> None:
    assert {p for p in Phase if p.settled} == {Phase.ISSUED, Phase.TIMED_OUT, Phase.FAILED}
    assert {p for p in Phase if p.final} == {Phase.ISSUED, Phase.FAILED}


class LookupConnector(FakeConnector):
    """A fake CA that can search for the marker, and whose search can be unreachable for a while."""

    def __init__(self) -> None:
        super().__init__()
        self.search_failures = 0

    async def find_order_by_marker(self, common_name: str, marker: str) -> object:
        self._enter("find_order_by_marker", marker)
        if self.search_failures:
            self.search_failures -= 1
            raise CAUnavailable("still unreachable")
        found = [o for o in self.orders.values() if marker in o.comments]
        return await self.details(DetailsRequest(order_id=found[0].order_id)) if found else None


async def test_ok_lost_reply_with_the_ca_unreachable_keeps_looking_and_never_enrolls_twice(
        harness: Harness) -> None:
    connector = LookupConnector()
    connector.search_failures = 3
    registry = CARegistry([ManagedCA(settings=harness.tracker._cas.get(CA_ID).settings,  # noqa: SLF001
                                     connector=connector, catalog=harness.tracker._cas.get(CA_ID).catalog)])  # noqa: SLF001
    tracker = EnrollmentTracker(harness.ledger, registry, clock=harness.time.clock, sleep=harness.time.sleep)
    original_enroll = connector.enroll

    async def enroll_then_lose_the_reply(request: EnrollRequest) -> EnrollResult:
        await original_enroll(request)
        raise CAUnavailable("reply lost")

    connector.enroll = enroll_then_lose_the_reply  # type: ignore[method-assign]
    try:
        submitted = await tracker.submit(_request())
        waits: list[float] = []  # as they stood when SUBMITTED arrived, before any collect wait
        events = await asyncio.wait_for(_events(tracker, submitted.order.id, until=Phase.SUBMITTED,
                                                at_until=lambda: waits.extend(harness.time.waits)), 5)
        assert [e.phase for e in events].count(Phase.PENDING) == 3
        assert waits == [2, 4, 8]
        assert connector.names().count("enroll") == 1
        assert events[-1].ca_order_id == next(iter(connector.orders))
    finally:
        await tracker.close()


async def test_fail_a_lost_renewal_reply_is_final_so_a_retry_cannot_renew_twice(harness: Harness) -> None:
    harness.connector.fail("renew", CAUnavailable("reply lost"))
    submitted = await harness.tracker.submit(_request(kind=OrderKind.RENEW, csr_pem="",
                                                      options={"renewal_of_ca_order": "1000"}))
    events = await asyncio.wait_for(_events(harness.tracker, submitted.order.id), 5)
    assert events[-1].phase is Phase.FAILED and "check the CA for a renewal of order 1000" in events[-1].detail
    order = await harness.ledger.get_order(submitted.order.id)
    assert order is not None and order.error_reason == "CA_REJECTED"


async def test_ok_resume_leaves_orders_of_a_ca_no_longer_configured(harness: Harness,
                                                                   ca_settings: CASettingsFactory) -> None:
    submitted = await harness.tracker.submit(_request())
    await asyncio.wait_for(_events(harness.tracker, submitted.order.id, until=Phase.PENDING), 5)
    await harness.tracker.close()
    other = dataclasses.replace(_settings(ca_settings()), id="another-ca")
    registry = CARegistry([ManagedCA(settings=other, connector=harness.connector,
                                     catalog=ProfileCatalog(other, harness.connector))])
    resumed = EnrollmentTracker(harness.ledger, registry, clock=harness.time.clock, sleep=harness.time.sleep)
    try:
        assert await resumed.resume() == 0
    finally:
        await resumed.close()


class SlowWrites:
    """The harness's ledger, with every ``update_order`` taking ``seconds`` of the fake clock
    (a write queued behind many others)."""

    def __init__(self, ledger: Ledger, clock: FakeClock, seconds: float) -> None:
        self._ledger, self._clock, self._seconds = ledger, clock, seconds

    def __getattr__(self, name: str) -> object:
        return getattr(self._ledger, name)

    async def update_order(self, *args: object, **kwargs: object) -> object:
        self._clock.advance(seconds=self._seconds)
        return await self._ledger.update_order(*args, **kwargs)  # type: ignore[arg-type]


async def test_ok_a_slow_ledger_write_does_not_make_the_attempts_late(harness: Harness) -> None:
    """Each wait counts from when its attempt was scheduled (after the previous answer was
    recorded): the 0.5 s the WAITING write takes is taken off the wait instead of added to it."""
    tracker = EnrollmentTracker(SlowWrites(harness.ledger, harness.time.clock, 0.5),  # type: ignore[arg-type]
                                harness.tracker._cas, clock=harness.time.clock,  # noqa: SLF001
                                sleep=harness.time.sleep)
    started = harness.time.clock()
    collects: list[float] = []
    original_collect = harness.connector.collect

    async def timed_collect(request: CollectRequest) -> CollectResult:
        collects.append((harness.time.clock() - started).total_seconds())
        return await original_collect(request)

    harness.connector.collect = timed_collect  # type: ignore[method-assign]
    harness.time.on_sleep = lambda n: harness.issue() if n == 3 else None
    try:
        submitted = await tracker.submit(_request())
        events = await asyncio.wait_for(_events(tracker, submitted.order.id), 5)
    finally:
        await tracker.close()
    assert events[-1].phase is Phase.ISSUED
    assert harness.time.waits == [1.5, 3.5, 7.5]
    # Scheduled at 0.5 (after SUBMITTED), 3.0 and 7.5 (after each PENDING): due 2, 4 and 8 s later.
    assert collects == [2.5, 7.0, 15.5]


async def test_ok_a_unary_waiter_gets_the_event_that_settled_the_order(harness: Harness) -> None:
    """TIMED_OUT settles a unary enroll; the first background WAITING may be published before the
    waiter resumes, and must not become its answer."""
    record, _ = await harness.ledger.create_order(dataclasses.replace(_request(), id="settle-1", marker="m"))
    channel = harness.tracker._channel(record.id)  # noqa: SLF001
    waiter = asyncio.create_task(harness.tracker.wait_settled(record.id, 5))
    await asyncio.sleep(0)  # the waiter is waiting
    view, now = OrderView.of(record), harness.time.clock()
    timed_out = OrderEvent(order=view, phase=Phase.TIMED_OUT, time=now, background=True)
    channel.publish(timed_out)
    channel.publish(OrderEvent(order=view, phase=Phase.WAITING, time=now, background=True))  # same tick
    assert await asyncio.wait_for(waiter, 5) is timed_out
