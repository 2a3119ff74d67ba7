"""The tracker under an unreliable CA, on virtual time: what each collect attempt reports, waiting for
the CA's circuit without spending attempts, and no marker search for an enroll that never left."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from service.authorities import CARegistry, ManagedCA
from service.catalog import ProfileCatalog
from service.config import CircuitBreakerSettings
from service.connectors.breaker import CircuitBreaker, CircuitState
from service.connectors.guarded import guard_connector
from service.enrollment.channel import Phase
from service.enrollment.tracker import EnrollmentTracker
from service.errors import CAUnavailable, CARejected
from service.ledger import Ledger, OrderState, open_ledger
from tests.support.clocks import FakeClock, VirtualTime
from tests.support.settings import build_ca_settings
from tests.unit.fakes import CA_ID, FakeConnector
from tests.unit.test_tracker import LookupConnector, _events, _request, _settings


class RecordedEvents:
    """A GatewayEvents that keeps every collect attempt."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, float, str]] = []
        self.budgeted: list[tuple[str, float]] = []  # (CA, seconds deferred) of each background slot
        self.skipped = 0  # background attempts a listing spared

    def collect_attempted(self, *, ca_id: str, lateness: float, outcome: str) -> None:
        self.attempts.append((ca_id, round(lateness, 6), outcome))

    def collect_budgeted(self, *, ca_id: str, deferred: float, tokens: float, queued: int) -> None:
        self.budgeted.append((ca_id, round(deferred, 6)))

    def collect_skipped(self, *, ca_id: str) -> None:
        self.skipped += 1

    def policy_refused(self, *, client: str, reason: str) -> None:
        return None

    def quota_refused(self, *, client: str, reason: str) -> None:
        return None


class LateTime(VirtualTime):
    """Every wait overruns by ``late`` seconds, as on a busy loop."""

    def __init__(self, clock: FakeClock, late: float) -> None:
        super().__init__(clock)
        self.late = late

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        self.clock.advance(seconds=self.late)


@dataclasses.dataclass
class World:
    tracker: EnrollmentTracker
    connector: FakeConnector
    ledger: Ledger
    time: VirtualTime
    events: RecordedEvents
    breaker: CircuitBreaker


async def _world(tmp_path: Path, connector: FakeConnector, time: VirtualTime, *, attempts: int = 5) -> World:
    settings = _settings(build_ca_settings(tmp_path), attempts=attempts)
    monotonic = lambda: time.clock().timestamp()  # noqa: E731  the breaker runs on the same virtual time
    breaker = CircuitBreaker(CircuitBreakerSettings(failure_threshold=1, window=60, open_for=10), name=CA_ID,
                             clock=monotonic, sleep=time.sleep)
    guarded = guard_connector(connector, ca_id=CA_ID, breaker=breaker)
    ledger = await open_ledger(tmp_path / "ledger.db", clock=time.clock)
    registry = CARegistry([ManagedCA(settings=settings, connector=guarded,
                                     catalog=ProfileCatalog(settings, guarded))])
    events = RecordedEvents()
    tracker = EnrollmentTracker(ledger, registry, clock=time.clock, sleep=time.sleep, events=events)
    return World(tracker, connector, ledger, time, events, breaker)


async def _close(world: World) -> None:
    await world.tracker.close()
    await world.ledger.close()


def _issue(connector: FakeConnector) -> None:
    order = next(iter(connector.orders.values()))
    order.certificate_der = connector.ca.issue(f"CN={order.common_name}")


async def test_ok_each_collect_attempt_reports_its_outcome_and_how_late_it_ran(tmp_path: Path) -> None:
    connector = FakeConnector()
    time = LateTime(FakeClock(), late=0.25)
    world = await _world(tmp_path, connector, time)
    world.breaker.settings = CircuitBreakerSettings(enabled=False)  # the 502 alone would open it
    connector.fail("collect", CAUnavailable("502 from the CA"), after=1)
    time.on_sleep = lambda n: (connector.fail("collect", None), _issue(connector)) if n == 3 else None
    try:
        submitted = await world.tracker.submit(_request())
        events = await asyncio.wait_for(_events(world.tracker, submitted.order.id), 5)
        assert events[-1].phase is Phase.ISSUED
        assert world.events.attempts == [(CA_ID, 0.25, "pending"), (CA_ID, 0.25, "unavailable"),
                                         (CA_ID, 0.25, "issued")]
    finally:
        await _close(world)


async def test_ok_a_refusal_during_collect_is_reported_as_rejected(tmp_path: Path) -> None:
    connector = FakeConnector()
    world = await _world(tmp_path, connector, VirtualTime(FakeClock()))
    connector.fail("collect", CARejected("declined", reason="CA_ORDER_FAILED"))
    try:
        submitted = await world.tracker.submit(_request())
        events = await asyncio.wait_for(_events(world.tracker, submitted.order.id), 5)
        assert events[-1].phase is Phase.FAILED
        assert world.events.attempts == [(CA_ID, 0.0, "rejected")]
    finally:
        await _close(world)


async def test_ok_a_collect_waits_for_the_open_circuit_and_spends_no_attempt_on_it(tmp_path: Path) -> None:
    connector = FakeConnector()
    time = VirtualTime(FakeClock())
    world = await _world(tmp_path, connector, time)
    # Attempt 1 fails as unavailable: with a threshold of 1 the circuit opens for 10 s.
    connector.fail("collect", CAUnavailable("503 from the CA"))
    time.on_sleep = lambda n: connector.fail("collect", None) if n == 2 else None
    try:
        submitted = await world.tracker.submit(_request())
        events = await asyncio.wait_for(_events(world.tracker, submitted.order.id, until=Phase.TIMED_OUT), 5)
        # 2 s, then attempt 1 (opens the circuit); 4 s to attempt 2, which waits the 6 s left of the
        # open circuit instead of failing unsent, then goes out as the half-open probe.
        assert time.waits[:4] == [2, 4, 6, 8]
        assert [e.attempt for e in events if e.phase is Phase.PENDING] == [1, 2, 3, 4, 5]
        assert connector.names().count("collect") == 5  # every attempt reached the CA
        assert not any("circuit" in e.detail for e in events)
        assert world.breaker.state is CircuitState.CLOSED
        outcomes = [outcome for _, _, outcome in world.events.attempts]
        assert outcomes == ["unavailable", "pending", "pending", "pending", "pending"]
        assert world.events.attempts[1][1] == 6.0  # late by the circuit's wait
    finally:
        await _close(world)


async def test_ok_the_marker_search_waits_for_the_open_circuit(tmp_path: Path) -> None:
    connector = LookupConnector()
    time = VirtualTime(FakeClock())
    world = await _world(tmp_path, connector, time)
    original_enroll = connector.enroll

    async def enroll_then_lose_the_reply(request: object) -> object:
        await original_enroll(request)  # type: ignore[arg-type]
        raise CAUnavailable("reply lost")  # counts as a failure: the circuit opens

    connector.enroll = enroll_then_lose_the_reply  # type: ignore[assignment,method-assign]
    try:
        submitted = await world.tracker.submit(_request())
        events = await asyncio.wait_for(_events(world.tracker, submitted.order.id, until=Phase.SUBMITTED), 5)
        assert time.waits[0] == 10  # the search waited for the circuit instead of failing unsent
        assert connector.names().count("enroll") == 1
        assert connector.names().count("find_order_by_marker") == 1
        assert events[-1].ca_order_id == next(iter(connector.orders))
    finally:
        await _close(world)


@pytest.mark.parametrize("maybe_processed", [False, True], ids=["not-sent", "reply-lost"])
async def test_ok_no_marker_search_for_an_enroll_that_never_reached_the_ca(tmp_path: Path,
                                                                          maybe_processed: bool) -> None:
    connector = LookupConnector()
    time = VirtualTime(FakeClock())
    world = await _world(tmp_path, connector, time)
    world.breaker.settings = CircuitBreakerSettings(enabled=False)
    connector.fail("enroll", CAUnavailable("connection refused", maybe_processed=maybe_processed))
    try:
        submitted = await world.tracker.submit(_request())
        events = await asyncio.wait_for(_events(world.tracker, submitted.order.id), 5)
        assert events[-1].phase is Phase.FAILED
        searched = connector.names().count("find_order_by_marker")
        # A lost reply: looked for at once, and again one call timeout (30 s) after the loss.
        assert (searched, time.waits) == ((2, [30.0]) if maybe_processed else (0, []))
        order = await world.ledger.get_order(submitted.order.id)
        assert order is not None and order.state is OrderState.FAILED and order.error_reason == "CA_UNAVAILABLE"
    finally:
        await _close(world)


async def test_ok_an_order_the_ca_records_after_the_lost_reply_is_found_on_the_second_look(
        tmp_path: Path) -> None:
    connector = LookupConnector()
    time = VirtualTime(FakeClock())
    world = await _world(tmp_path, connector, time)
    world.breaker.settings = CircuitBreakerSettings(enabled=False)
    original_enroll = connector.enroll
    late: list[object] = []

    async def slow_enroll(request: object) -> object:
        late.append(request)  # the CA is still working on it when the gateway gives up waiting
        raise CAUnavailable("read timeout")

    def record_late(_: int) -> None:
        if late:
            asyncio.ensure_future(original_enroll(late.pop()))  # type: ignore[arg-type]

    connector.enroll = slow_enroll  # type: ignore[assignment,method-assign]
    time.on_sleep = record_late
    try:
        submitted = await world.tracker.submit(_request())
        events = await asyncio.wait_for(_events(world.tracker, submitted.order.id, until=Phase.SUBMITTED), 5)
        assert events[-1].phase is Phase.SUBMITTED and events[-1].ca_order_id == next(iter(connector.orders))
        assert connector.names().count("find_order_by_marker") == 2 and len(connector.orders) == 1
        assert time.waits[0] == 30.0
    finally:
        await _close(world)
