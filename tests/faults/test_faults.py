"""The fault suite: the flaky CA's simulator fails on purpose (5xx bursts, 429 with Retry-After,
timeouts, connection resets, dropped enroll replies, slow and garbage answers); the steady CA and
its callers go on being served, and afterwards every accepted order is issued or still tracked and
none was ordered twice (the simulators' own orders are counted against the ledger)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest
from cagw.v1 import certificate_authorities_pb2 as ca_pb
from cagw.v1 import certificate_authorities_pb2_grpc as ca_grpc

from service.connectors.breaker import CircuitState
from tests.faults.harness import CALL_TIMEOUT, FLAKY, STEADY, FaultStack, fault_stack, steady_serves
from tests.integration.observed import scrape

GARBAGE = "<html><body>Service temporarily replaced by a cat</body></html>"


async def _pending(stack: FaultStack, count: int) -> list[str]:
    """``count`` orders on the flaky CA that are accepted and collecting (answered PENDING at once)."""
    answers = await asyncio.gather(*(stack.enroll(FLAKY, f"pending-{n}.example.com", max_wait=0.05)
                                     for n in range(count)))
    assert {a.status for a in answers} <= {"PENDING", "ISSUED"}
    return [a.id for a in answers]


async def _all_issued(stack: FaultStack, ids: list[str], *, within: float = 20.0) -> None:
    await asyncio.gather(*(stack.issued(FLAKY, enrollment_id, within=within) for enrollment_id in ids))


async def test_ok_a_5xx_burst_opens_the_circuit_orders_wait_and_are_issued_after_it(tmp_path: Path) -> None:
    async with fault_stack(tmp_path, issue_after_polls=3) as stack:
        stack.fault(route="collect", kind="status", status=503, count=12)  # before the orders: no race
        accepted = await _pending(stack, 4)
        stack.fault(route="enroll", kind="status", status=503, count=1)
        steady = await steady_serves(stack)  # served while the flaky CA fails
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stack.enroll(FLAKY, "during.example.com")
        await _all_issued(stack, accepted)
        found = await scrape(stack)  # type: ignore[arg-type]
        await stack.check_books(accepted + steady)
        refused_orders = [o for o in await stack.orders(FLAKY) if o.common_name == "during.example.com"]
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert all(o.state.value == "FAILED" and o.ca_order_id is None for o in refused_orders)
    assert found.value("cagw_ca_circuit_transitions_total", ca=FLAKY, state="open") >= 1
    assert found.value("cagw_ca_circuit_state", ca=FLAKY) == 0
    assert found.value("cagw_ca_circuit_transitions_total", ca=STEADY, state="open") == 0
    assert found.value("cagw_collect_attempts_total", ca=FLAKY, outcome="unavailable") >= 1


@pytest.mark.parametrize("retry_attempts", ["1", "3"], ids=["ok-the-tracker-waits", "ok-the-client-waits"])
async def test_ok_a_429_retry_after_is_respected_never_sooner(tmp_path: Path, retry_attempts: str) -> None:
    retry_after = 1.2
    async with fault_stack(tmp_path, issue_after_polls=1, **{"retry-attempts": retry_attempts}) as stack:
        stack.fault(route="collect", kind="throttle", retry_after=retry_after, count=1)  # the first collect
        accepted = await _pending(stack, 1)
        await _all_issued(stack, accepted)
        arrivals = [call.at for call in stack.flaky.stats.calls if call.route == "collect"]  # simulator clock
        await stack.check_books(accepted)
    throttled, following = arrivals[0], arrivals[1]  # the first collect got the 429
    assert following - throttled >= retry_after


async def test_ok_a_429_on_enroll_fails_fast_without_a_search_and_the_retry_orders_once(tmp_path: Path) -> None:
    async with fault_stack(tmp_path) as stack:
        stack.fault(route="enroll", kind="throttle", retry_after=0.5, count=1)
        with pytest.raises(grpc.aio.AioRpcError) as throttled:
            await stack.enroll(FLAKY, "throttled.example.com", request_id="rid-429")
        searched = stack.flaky.stats.requests["list"]
        again = await stack.enroll(FLAKY, "throttled.example.com", request_id="rid-429")
        await stack.check_books([again.id])
    assert throttled.value.code() == grpc.StatusCode.UNAVAILABLE
    assert searched == 0  # a 429 never reached the order book: nothing to look for
    assert again.status == "ISSUED" and stack.flaky.stats.requests["enroll"] == 2
    assert len(list(stack.flaky.manager.book)) == 1


async def test_ok_collect_timeouts_count_as_attempts_and_the_order_is_issued(tmp_path: Path) -> None:
    async with fault_stack(tmp_path, issue_after_polls=1) as stack:
        stack.fault(route="collect", kind="latency", latency=CALL_TIMEOUT + 0.5, count=3)
        accepted = await _pending(stack, 2)
        steady = await steady_serves(stack)
        await _all_issued(stack, accepted)
        await stack.check_books(accepted + steady)
        found = await scrape(stack)  # type: ignore[arg-type]
    assert found.value("cagw_ca_http_requests_total", ca=FLAKY, method="GET", status="none") >= 1


async def test_ok_an_enroll_that_times_out_while_the_ca_records_it_is_found_not_ordered_twice(
        tmp_path: Path) -> None:
    async with fault_stack(tmp_path) as stack:
        # The CA answers after the call timeout, but records the order: the reply is lost.
        stack.fault(route="enroll", kind="latency", latency=CALL_TIMEOUT + 0.3, count=1)
        answer = await stack.enroll(FLAKY, "slow-enroll.example.com")
        await stack.issued(FLAKY, answer.id)
        await stack.check_books([answer.id])
    assert stack.flaky.stats.requests["enroll"] == 1 and len(list(stack.flaky.manager.book)) == 1


async def test_ok_connection_resets_on_collect_and_on_enroll(tmp_path: Path) -> None:
    async with fault_stack(tmp_path) as stack:
        stack.fault(route="collect", kind="drop", count=3)
        accepted = await _pending(stack, 2)
        await _all_issued(stack, accepted)
        stack.fault(route="enroll", kind="drop", count=1)
        with pytest.raises(grpc.aio.AioRpcError) as reset:
            await stack.enroll(FLAKY, "reset.example.com", request_id="rid-reset")
        retried = await stack.enroll(FLAKY, "reset.example.com", request_id="rid-reset")
        steady = await steady_serves(stack)
        await stack.check_books([*accepted, retried.id, *steady])
    assert reset.value.code() == grpc.StatusCode.UNAVAILABLE
    assert retried.status == "ISSUED"
    assert len(list(stack.flaky.manager.book)) == 3  # the reset enroll never reached the order book


async def test_ok_a_dropped_enroll_reply_is_found_by_its_marker_and_ordered_once(tmp_path: Path) -> None:
    async with fault_stack(tmp_path) as stack:
        stack.fault(route="enroll", kind="drop_reply", count=2)
        answers = await asyncio.gather(stack.enroll(FLAKY, "dropped-1.example.com"),
                                       stack.enroll(FLAKY, "dropped-2.example.com"))
        steady = await steady_serves(stack)
        await stack.check_books([a.id for a in answers] + steady)
    assert [a.status for a in answers] == ["ISSUED", "ISSUED"]
    assert stack.flaky.stats.requests["enroll"] == 2 and len(list(stack.flaky.manager.book)) == 2


async def test_ok_slow_answers_slow_only_their_own_ca(tmp_path: Path) -> None:
    async with fault_stack(tmp_path) as stack:
        stack.fault(route="any", kind="latency", latency=0.4, count=None)
        slow = asyncio.ensure_future(stack.enroll(FLAKY, "slow.example.com"))
        started = asyncio.get_running_loop().time()
        steady = await steady_serves(stack, within=3.0)
        steady_took = asyncio.get_running_loop().time() - started
        answer = await asyncio.wait_for(slow, 20)
        slow_took = asyncio.get_running_loop().time() - started
        await stack.check_books([answer.id, *steady])
    assert answer.status == "ISSUED"
    assert steady_took < slow_took  # the steady CA did not queue behind the slow one


async def test_ok_garbage_answers_are_transient_on_collect_and_refused_on_enroll(tmp_path: Path) -> None:
    async with fault_stack(tmp_path) as stack:
        stack.fault(route="collect", kind="status", status=200, body=GARBAGE, count=2)
        accepted = await _pending(stack, 2)
        await _all_issued(stack, accepted)
        stack.fault(route="enroll", kind="status", status=200, body=GARBAGE, count=1)
        with pytest.raises(grpc.aio.AioRpcError) as garbage:
            await stack.enroll(FLAKY, "garbage.example.com")
        steady = await steady_serves(stack)
        await stack.check_books([*accepted, *steady])
    assert garbage.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "not JSON" in (garbage.value.details() or "") or "unexpected answer" in (garbage.value.details() or "")
    assert len(list(stack.flaky.manager.book)) == 2


async def _status(stack: FaultStack) -> str:
    stub = ca_grpc.CertificateAuthorityServiceStub(stack.channel)
    answer = await stub.GetCertificateAuthorityStatus(ca_pb.GetCertificateAuthorityStatusRequest(ca_id=FLAKY))
    return str(answer.status)


async def test_ok_every_breaker_transition(tmp_path: Path) -> None:
    async with fault_stack(tmp_path) as stack:
        breaker = stack.gateway.observability.breakers[FLAKY]  # type: ignore[union-attr]
        moves: list[tuple[str, str]] = []
        breaker.watch(lambda name, old, new: moves.append((old.value, new.value)))
        stack.fault(route="any", kind="status", status=500, count=None)
        for _ in range(3):  # closed -> open: three failures in the window
            assert await _status(stack) == "DOWN"
        assert breaker.state is CircuitState.OPEN
        await breaker.wait_closed()  # open -> half-open: open-for has passed
        assert await _status(stack) == "DOWN"  # half-open -> open: the probe failed
        assert breaker.state is CircuitState.OPEN
        stack.clear()
        await breaker.wait_closed()
        assert await _status(stack) == "UP"  # half-open -> closed: the probe got an answer
        found = await scrape(stack)  # type: ignore[arg-type]
    assert moves == [("closed", "open"), ("open", "half_open"), ("half_open", "open"), ("open", "half_open"),
                     ("half_open", "closed")]
    assert [found.value("cagw_ca_circuit_transitions_total", ca=FLAKY, state=s)
            for s in ("open", "half_open", "closed")] == [2, 2, 1]
