"""Many orders in background collection against the simulator over TLS: one listing of the orders
the CA is still processing (``GET /ssl/v1?status=Applied``, paged) stands in for most of their
collects, and every order is still noticed once the CA issues it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cagw.v1 import enrollments_pb2, enrollments_pb2_grpc
from google.protobuf import duration_pb2

from service.ledger import OrderState
from service.simulator import SimulatorSettings
from tests.integration.observed import scrape
from tests.integration.stack import CA_ID, PROFILE_ID, Stack, running_stack
from tests.support.csr import make_csr

ORDERS = 30
ISSUE_AFTER = 4.0  # seconds after enroll: well into background collection (every second here)


async def _place(stack: Stack, count: int) -> list[str]:
    stub = enrollments_pb2_grpc.EnrollmentServiceStub(stack.channel)
    ids = []
    for n in range(count):
        request = enrollments_pb2.EnrollRequest(ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr(f"fleet{n}.example.com"),
                                                max_wait=duration_pb2.Duration(seconds=0))
        ids.append((await stub.Enroll(request)).enrollment.id)
    return ids


async def _all_issued(stack: Stack, ids: list[str], *, within: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        orders = [await stack.gateway.ledger.get_order(order_id) for order_id in ids]  # type: ignore[union-attr]
        if all(order is not None and order.state is OrderState.ISSUED for order in orders):
            return True
        await asyncio.sleep(0.2)  # polling the ledger; the gateway's own timers do the work
    return False


async def test_ok_background_orders_are_found_issued_through_the_listing_with_fewer_collects(tmp_path: Path) -> None:
    simulator = SimulatorSettings(issue_after=ISSUE_AFTER, issue_after_polls=None)
    async with running_stack(tmp_path, simulator=simulator, timer="50ms", max_timer="50ms", attempts=2,
                             extra_gateway={"background-collects": {"rate": "50/s", "burst": 5}}) as stack:
        ids = await _place(stack, ORDERS)
        assert await _all_issued(stack, ids, within=30.0)
        found = await scrape(stack)
        requests = stack.simulator.stats.requests

    skipped = found.value("cagw_collects_skipped_total", ca=CA_ID)
    # Each order's two foreground attempts and its one issued collect reached the CA; of its
    # background attempts in the ~4 s before issuance (one a second), most were answered by a listing.
    assert requests["list"] >= 1
    assert skipped >= ORDERS
    background_collects = requests["collect"] - ORDERS * (2 + 1)
    assert 0 <= background_collects < skipped / 2
    assert found.value("cagw_collect_budget_wait_seconds_count", ca=CA_ID) >= ORDERS  # every collect had a slot
