"""The budget of background collects: the bucket on its own, and many orders of one CA on virtual time.

The tracker tests run every order on one fake clock that moves from one wake-up to the
next (``SteppedTime``), so what the fake CA sees is the timeline a real clock would give.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from service.authorities import CARegistry, ManagedCA
from service.catalog import ProfileCatalog
from service.config import CollectBudgetSettings
from service.config.budget_section import parse_rate
from service.connectors.base import CollectRequest, CollectResult, ListRequest, ListResult, OrderStatus, OrderSummary
from service.enrollment.budget import CollectBudget
from service.enrollment.listing import PendingListing, Verdict
from service.enrollment.tracker import EnrollmentTracker
from service.errors import CAUnavailable
from service.ledger import Ledger, open_ledger
from tests.support.clocks import FakeClock, SteppedTime
from tests.support.settings import CA_ID, CASettingsFactory
from tests.unit.fakes import FakeConnector
from tests.unit.test_tracker import _request
from tests.unit.test_tracker_circuit import RecordedEvents

RATE, BURST = 1.0, 2  # one background collect a second, two at once after a quiet spell
LISTING_RATE = 5.0
VERIFY_AFTER = 32.0  # with the listing, a real collect of each order every eight background rounds
TIMER, MAX_TIMER, ATTEMPTS = 2, 4, 2  # foreground waits 2 s then 4 s; background every 4 s at least


def _most_in_window(times: Sequence[float], window: float) -> int:
    """The most of ``times`` that fall in any ``window`` seconds (both ends included)."""
    ordered = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(ordered):
        while at - ordered[start] > window + 1e-9:
            start += 1
        most = max(most, end - start + 1)
    return most


def _within_budget(times: Sequence[float], *, rate: float, burst: int) -> None:
    for window in (0.0, 0.5, 1.0, 2.5, 4.0, 10.0, 30.0):
        assert _most_in_window(times, window) <= burst + window * rate + 1e-9, window


# ---------------------------------------------------------------------------------- the bucket alone


def test_ok_slots_due_together_are_spread_at_the_rate_after_the_burst() -> None:
    budget = CollectBudget(CollectBudgetSettings(rate=2.0, burst=3))
    slots = [budget.reserve(100.0, now=90.0) for _ in range(7)]
    assert [s.at for s in slots] == [100.0, 100.0, 100.0, 100.5, 101.0, 101.5, 102.0]
    assert [s.deferred for s in slots] == [0.0, 0.0, 0.0, 0.5, 1.0, 1.5, 2.0]
    assert slots[-1].queued == 7
    assert budget.tokens(90.0) == 0.0 and budget.tokens(103.0) == 2.0 and budget.tokens(200.0) == 3.0
    assert budget.queued(101.0) == 2  # the slots at 101.5 and 102 are still to come


def test_ok_a_quiet_bucket_fills_up_to_its_burst_and_no_further() -> None:
    budget = CollectBudget(CollectBudgetSettings(rate=1.0, burst=2))
    first = budget.reserve(0.0, now=0.0)
    assert (first.at, first.tokens) == (0.0, 1.0)
    later = [budget.reserve(1000.0, now=1000.0).at for _ in range(4)]
    assert later == [1000.0, 1000.0, 1001.0, 1002.0]


@pytest.mark.parametrize("seed", range(5))
def test_ok_the_rate_holds_whatever_the_order_of_the_requests(seed: int) -> None:
    """Slots asked for out of due order (a CA's Retry-After, resumed orders) still keep the rate."""
    rng = random.Random(seed)
    budget = CollectBudget(CollectBudgetSettings(rate=3.0, burst=4))
    dues = [rng.uniform(0, 20) for _ in range(200)]
    slots = [budget.reserve(due, now=0.0) for due in dues]
    assert all(s.at >= due for s, due in zip(slots, dues, strict=True))
    _within_budget([s.at for s in slots], rate=3.0, burst=4)


@pytest.mark.parametrize(("text", "per_second"), [("10/s", 10.0), ("300/min", 5.0), ("5000/h", 5000 / 3600),
                                                  ("2", 2.0), ("1.5 / second", 1.5)])
def test_ok_rates_in_calls_per_second_minute_or_hour(text: str, per_second: float) -> None:
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize(("text", "error"), [
    ("ten", "'ten' is not a rate: write calls per second, minute or hour (10/s, 300/min, 5000/h)"),
    ("10/day", "'10/day' is not a rate"),
    ("0/s", "'0/s' must be more than zero calls"),
    ("20000/s", "'20000/s' is more than 10000 calls per second"),
])
def test_fail_a_rate_that_is_no_rate_says_what_to_write(text: str, error: str) -> None:
    with pytest.raises(ValueError, match="^" + error.replace("(", r"\(").replace(")", r"\)").replace("/", "/")):
        parse_rate(text)


async def test_ok_a_listing_is_read_only_once_enough_orders_ask_and_then_answers_for_them() -> None:
    """Three pages of pending orders: one page read to learn that, then nothing until 30 orders
    asked within the interval, then the whole listing once; listed orders need no collect."""
    ids = [str(n) for n in range(600)]
    calls: list[int] = []

    async def page(position: int, size: int) -> ListResult:
        calls.append(position)
        return ListResult(items=tuple(OrderSummary(order_id=i) for i in ids[position:position + size]), total=len(ids))

    listing = PendingListing(freshness=32.0, verify_after=3600.0, clock=lambda: 100.0)
    first = [await listing.verdict(ids[n], now=100.0, attempt=1, list_page=page) for n in range(29)]
    assert set(first) == {Verdict.COLLECT} and calls == [0]  # the 10th ask read one page: 3 pages > 1
    assert await listing.verdict(ids[29], now=100.0, attempt=1, list_page=page) is Verdict.PENDING
    assert calls == [0, 0, 200, 400] and listing.rounds == 1
    assert await listing.verdict("not-listed", now=101.0, attempt=1, list_page=page) is Verdict.COLLECT
    assert await listing.verdict(ids[500], now=131.0, attempt=1, list_page=page) is Verdict.PENDING
    assert calls == [0, 0, 200, 400]  # still fresh: no call


# ---------------------------------------------------------------------------------- many orders, one CA


class TimedConnector(FakeConnector):
    """The fake CA, noting the virtual time of each collect per CA order."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock
        self.collects: list[tuple[str, dt.datetime]] = []
        self.lists: list[dt.datetime] = []
        self.list_error: Exception | None = None
        self.others_pending = 0  # orders of the account the gateway did not place, also being processed

    async def collect(self, request: CollectRequest) -> CollectResult:
        self.collects.append((request.order_id, self.clock.now))
        return await super().collect(request)

    async def list(self, request: ListRequest) -> ListResult:
        """By status, as the CA lists: an order is being processed until it has its certificate."""
        self.lists.append(self.clock.now)
        if self.list_error is not None:
            raise self.list_error
        pending = [OrderSummary(order_id=o.order_id) for o in self.orders.values() if o.certificate_der is None]
        assert request.status is OrderStatus.APPLIED
        return ListResult(items=tuple(pending[request.position:request.position + request.size]),
                          total=len(pending) + self.others_pending)


@dataclass
class Fleet:
    tracker: EnrollmentTracker
    connector: TimedConnector
    time: SteppedTime
    events: RecordedEvents
    start: dt.datetime

    def seconds(self, at: dt.datetime) -> float:
        return (at - self.start).total_seconds()

    def collects_of(self, ca_order_id: str) -> list[float]:
        return [self.seconds(at) for order, at in self.connector.collects if order == ca_order_id]

    async def ca_order_ids(self, order_ids: Sequence[str], ledger: Ledger) -> list[str]:
        ids = []
        for order_id in order_ids:
            order = await ledger.get_order(order_id)
            assert order is not None and order.ca_order_id
            ids.append(order.ca_order_id)
        return ids

    def busy(self) -> int:
        """Tasks at work: the order tasks, less those waiting for a listing, plus the listing itself."""
        listing = self.tracker._pacer.listing(CA_ID)
        if listing is None:
            return self.tracker.running_orders
        return self.tracker.running_orders - listing.waiting + (1 if listing.listing_now else 0)

    async def run_until(self, until: Callable[[], bool], *, limit: float = 600) -> None:
        await self.time.run(busy=self.busy, until=until, limit=limit)

    async def run_until_collects(self, count: int, *, limit: float = 600) -> None:
        await self.run_until(lambda: len(self.connector.collects) >= count, limit=limit)


@pytest.fixture
async def fleet(tmp_path: Path, clock: FakeClock, ca_settings: CASettingsFactory,
                request: pytest.FixtureRequest) -> AsyncIterator[tuple[Fleet, Ledger]]:
    options = getattr(request, "param", {})
    listing, rate = options.get("listing", False), options.get("rate", RATE)
    settings = ca_settings(properties={"enroll-back-off-timer": f"{TIMER}s", "enroll-max-back-off-timer": f"{MAX_TIMER}s",
                                       "enroll-max-attempts": str(ATTEMPTS)},
                           gateway={"background-collects": {"rate": f"{rate:g}/s", "burst": BURST,
                                                            "listing": listing, "verify-after": f"{VERIFY_AFTER:g}s"}})
    connector = TimedConnector(clock)
    time = SteppedTime(clock)
    events = RecordedEvents()
    ledger = await open_ledger(tmp_path / "ledger.db", clock=clock)
    registry = CARegistry([ManagedCA(settings=settings, connector=connector,
                                     catalog=ProfileCatalog(settings, connector))])
    tracker = EnrollmentTracker(ledger, registry, clock=clock, sleep=time.sleep, events=events)
    try:
        yield Fleet(tracker, connector, time, events, clock.now), ledger
    finally:
        await tracker.close()
        await ledger.close()


async def test_ok_orders_placed_together_keep_their_foreground_schedule_then_are_spread_by_the_budget(
        fleet: tuple[Fleet, Ledger]) -> None:
    run, ledger = fleet
    orders = 12
    ids = [(await run.tracker.submit(_request(f"host{n}.example.com"))).order.id
           for n in range(orders)]
    # Every order's two foreground attempts, then three background collects each.
    await run.run_until_collects(orders * (ATTEMPTS + 3))
    ca_ids = await run.ca_order_ids(ids, ledger)
    per_order = [run.collects_of(ca_id) for ca_id in ca_ids]
    # The documented schedule for the attempts a caller waits for: 2 s, then 4 s more.
    assert all(times[:ATTEMPTS] == [2.0, 6.0] for times in per_order), per_order
    background = sorted(t for times in per_order for t in times[ATTEMPTS:])
    first_background = sorted(times[ATTEMPTS] for times in per_order)
    # All twelve were due at 10 s: two go then (the burst), the others one second apart.
    assert first_background == [10.0, 10.0, *[10.0 + n for n in range(1, orders - 1)]]
    _within_budget(background, rate=RATE, burst=BURST)
    # Each order's next round keeps its place: never sooner than the schedule's 4 s.
    assert all(later - earlier >= MAX_TIMER for times in per_order
               for earlier, later in zip(times[ATTEMPTS:], times[ATTEMPTS + 1:]))
    # The budget's deferrals are reported apart, and the collect lateness stays at zero.
    deferred = [seconds for _, seconds in run.events.budgeted if seconds > 0]
    assert len(deferred) >= orders - BURST and max(deferred) >= orders - BURST
    assert {lateness for _, lateness, _ in run.events.attempts} == {0.0}


async def test_ok_a_callers_foreground_attempts_are_not_delayed_by_a_full_budget(fleet: tuple[Fleet, Ledger]) -> None:
    run, ledger = fleet
    backlog = 20
    for n in range(backlog):
        await run.tracker.submit(_request(f"old{n}.example.com"))
    # The backlog's foreground is over and its first background round has begun: the budget
    # has slots handed out for the next ~15 s.
    await run.run_until_collects(backlog * ATTEMPTS + BURST + 3)
    placed_at = run.seconds(run.time.clock.now)
    fresh = await run.tracker.submit(_request("fresh.example.com"))
    await run.run_until(lambda: len(run.connector.orders) > backlog)
    (ca_order,) = await run.ca_order_ids([fresh.order.id], ledger)
    await run.run_until(lambda: len(run.collects_of(ca_order)) > ATTEMPTS)
    times = [t - placed_at for t in run.collects_of(ca_order)]
    assert times[:ATTEMPTS] == [2.0, 6.0]
    # Its first background collect takes its turn behind the backlog's.
    assert times[ATTEMPTS] > 6.0 + MAX_TIMER
    background = [run.seconds(at) for order, at in run.connector.collects
                  if run.collects_of(order).index(run.seconds(at)) >= ATTEMPTS]
    _within_budget(background, rate=RATE, burst=BURST)


@pytest.mark.parametrize("fleet", [{"listing": True, "rate": LISTING_RATE}], indirect=True)
async def test_ok_one_listing_of_pending_orders_stands_in_for_the_collects_of_many_background_orders(
        fleet: tuple[Fleet, Ledger]) -> None:
    run, ledger = fleet
    orders = 40
    ids = [(await run.tracker.submit(_request(f"bulk{n}.example.com"))).order.id for n in range(orders)]
    await run.run_until_collects(orders * ATTEMPTS)
    ca_ids = await run.ca_order_ids(ids, ledger)
    assert all(run.collects_of(ca_id) == [2.0, 6.0] for ca_id in ca_ids)  # the foreground, one collect each
    # Background rounds every 4 s; after a while one order is issued at the CA.
    await run.run_until(lambda: run.seconds(run.time.clock.now) >= 60)
    background_collects = len(run.connector.collects) - orders * ATTEMPTS
    # 40 orders over ~50 s of 4 s rounds: about 500 background attempts, most answered by the listing.
    assert run.events.skipped > 300
    assert background_collects < 150 and len(run.connector.lists) <= 50 / MAX_TIMER + 2
    issued_id = ca_ids[7]
    issued_at = run.seconds(run.time.clock.now)
    order = run.connector.orders[issued_id]
    order.certificate_der = run.connector.ca.issue(f"CN={order.common_name}")
    order.chain_der = (run.connector.ca.der,)
    await run.run_until(lambda: run.tracker.running_orders < orders)
    record = await ledger.get_order(ids[7])
    assert record is not None and record.state.value == "ISSUED"
    # Noticed at the next listing (at most one interval old) and its collect's slot.
    noticed = run.collects_of(issued_id)[-1] - issued_at
    assert noticed <= 2 * MAX_TIMER + 1
    # Every order still gets a real collect every few rounds, whatever the listing says.
    later = [run.collects_of(ca_id) for ca_id in ca_ids if ca_id != issued_id]
    assert all(len(times) > ATTEMPTS for times in later)
    assert VERIFY_AFTER < 50  # (so the run above covers a verification round of every order)
    _within_budget([run.seconds(at) for _, at in run.connector.collects if run.seconds(at) > 6.0]
                   + [run.seconds(at) for at in run.connector.lists], rate=LISTING_RATE, burst=BURST)


@pytest.mark.parametrize("fleet", [{"listing": True, "rate": LISTING_RATE}], indirect=True)
async def test_ok_a_listing_that_fails_leaves_every_background_order_to_its_collects(
        fleet: tuple[Fleet, Ledger]) -> None:
    run, ledger = fleet
    run.connector.list_error = CAUnavailable("the CA is busy")
    orders = 30
    for n in range(orders):
        await run.tracker.submit(_request(f"busy{n}.example.com"))
    await run.run_until(lambda: run.seconds(run.time.clock.now) >= 30)
    assert run.connector.lists and run.events.skipped == 0
    background = len(run.connector.collects) - orders * ATTEMPTS
    # Every background attempt collected, at the budget's pace (a listing tried once per interval).
    assert background >= (30 - 10) * LISTING_RATE - orders
    assert len(run.connector.lists) <= (30 - 10) / MAX_TIMER + 1
    assert run.tracker.running_orders == orders


@pytest.mark.parametrize("fleet", [{"listing": True}], indirect=True)
async def test_ok_with_the_listing_on_the_budget_never_queues_more_than_one_round(fleet: tuple[Fleet, Ledger]) -> None:
    """An account too busy for the listing to pay off: every background order collects, and those
    that find no slot within the round wait for their next one instead of queueing."""
    run, _ = fleet
    run.connector.others_pending = 1_000_000
    orders = 30
    for n in range(orders):
        await run.tracker.submit(_request(f"crowd{n}.example.com"))
    await run.run_until(lambda: run.seconds(run.time.clock.now) >= 60)
    assert run.events.skipped == 0 and len(run.connector.lists) <= 60 / MAX_TIMER
    slots = [deferred for _, deferred in run.events.budgeted]
    assert max(slots) <= MAX_TIMER  # never a slot beyond one round ahead
    assert slots.count(MAX_TIMER) > orders  # ... those orders waited for their next round instead
    background = [run.seconds(at) for _, at in run.connector.collects][orders * ATTEMPTS:]
    assert len(background) >= (60 - 10) * RATE - BURST
    _within_budget(background + [run.seconds(at) for at in run.connector.lists], rate=RATE, burst=BURST)


def test_ok_the_budget_block_of_a_ca_is_read_with_its_units(ca_settings: CASettingsFactory) -> None:
    settings = ca_settings(gateway={"background-collects": {"rate": "300/min", "burst": 4}})
    assert settings.gateway.background_collects == CollectBudgetSettings(rate=5.0, burst=4, listing=True,
                                                                         verify_after=3600.0)
    assert ca_settings().gateway.background_collects == CollectBudgetSettings(rate=10.0, burst=10)
    off = ca_settings(gateway={"background-collects": {"listing": False, "verify-after": "10m"}})
    assert (off.gateway.background_collects.listing, off.gateway.background_collects.verify_after) == (False, 600.0)

