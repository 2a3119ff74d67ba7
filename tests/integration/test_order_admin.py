"""The operator's commands against a live gateway: OrderAdminService on its own loopback listener, and
``cagw orders …`` talking to it (simulator over TLS, real gRPC servers and channels)."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from cagw.v1 import admin_pb2 as pb
from cagw.v1 import admin_pb2_grpc, enrollments_pb2, enrollments_pb2_grpc
from google.protobuf import duration_pb2

from service.cli import main
from service.simulator import SimulatorSettings
from tests.integration.stack import CA_ID, PROFILE_ID, Stack, running_stack
from tests.support.csr import make_csr

SLOW = {"timer": "10s", "max_timer": "10s", "attempts": 3}  # an order waits 10 s before each attempt


@contextlib.asynccontextmanager
async def _admin(stack: Stack) -> AsyncIterator[admin_pb2_grpc.OrderAdminServiceStub]:
    assert stack.gateway.admin is not None and stack.gateway.admin.port
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.gateway.admin.port}") as channel:
        yield admin_pb2_grpc.OrderAdminServiceStub(channel)  # type: ignore[no-untyped-call]


async def _enroll(stack: Stack, name: str, *, max_wait: float | None = None) -> enrollments_pb2.Enrollment:
    request = enrollments_pb2.EnrollRequest(ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr(name))
    if max_wait is not None:
        request.max_wait.CopyFrom(duration_pb2.Duration(nanos=int(max_wait * 1e9)))
    return (await enrollments_pb2_grpc.EnrollmentServiceStub(stack.channel).Enroll(request)).enrollment


async def _next_pending(stack: Stack, enrollment_id: str) -> enrollments_pb2.EnrollmentEvent:
    """The first PENDING event after the current state (a collect attempt's answer)."""
    stream = enrollments_pb2_grpc.EnrollmentServiceStub(stack.channel).WatchEnrollment(
        enrollments_pb2.WatchEnrollmentRequest(ca_id=CA_ID, enrollment_id=enrollment_id))
    first = True
    async for message in stream:
        if not first and message.event.state == enrollments_pb2.ENROLLMENT_STATE_PENDING:
            stream.cancel()
            return message.event
        first = False
    raise AssertionError("the stream ended without a collect attempt")


async def _cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()

    def run() -> int:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            return main(list(args))

    code = await asyncio.to_thread(run)  # the gateway's loop goes on serving meanwhile
    return code, out.getvalue(), err.getvalue()


async def test_ok_list_and_show_an_issued_order_with_its_history_and_ca_calls(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack, _admin(stack) as admin:
        issued = await _enroll(stack, "shown.example.com")
        listed = await admin.ListOrders(pb.ListOrdersRequest(state="ISSUED", ca_id=CA_ID))
        shown = await admin.GetOrder(pb.GetOrderRequest(id=issued.id))
        none_pending = await admin.ListOrders(pb.ListOrdersRequest(state="pending"))
    assert [order.id for order in listed.orders] == [issued.id]
    assert none_pending.orders == []
    order = shown.order
    assert (order.state, order.ca_order_id, order.serial_number) == ("ISSUED", issued.sectigo_order_id,
                                                                     issued.serial_number)
    assert [entry.state for entry in shown.history][0] == "RECEIVED" and shown.history[-1].state == "ISSUED"
    assert [(call.operation, call.outcome) for call in shown.ca_calls][:1] == [("enroll", "ok")]
    assert ("collect", "ok") in [(call.operation, call.outcome) for call in shown.ca_calls]
    assert not shown.running and list(shown.audit) == []


async def test_ok_retry_collects_now_and_abandon_stops_and_is_audited(tmp_path: Path) -> None:
    simulator = SimulatorSettings(issue_after=3600)
    async with running_stack(tmp_path, simulator=simulator, **SLOW) as stack, _admin(stack) as admin:
        pending = await _enroll(stack, "pending.example.com", max_wait=0.2)
        assert pending.status == "PENDING"
        waiting = asyncio.ensure_future(_next_pending(stack, pending.id))
        await asyncio.sleep(0)  # let the watch start before the retry
        retried = await admin.RetryOrder(pb.RetryOrderRequest(id=pending.id))
        event = await asyncio.wait_for(waiting, 5)  # not the scheduled 10 s
        assert retried.action == "collect now" and event.attempt == 1

        with pytest.raises(grpc.aio.AioRpcError) as no_reason:
            await admin.AbandonOrder(pb.AbandonOrderRequest(id=pending.id, reason="  "))
        abandoned = await admin.AbandonOrder(pb.AbandonOrderRequest(id=pending.id, reason="ordered by mistake"))
        shown = await admin.GetOrder(pb.GetOrderRequest(id=pending.id))
        pending_now = await admin.ListOrders(pb.ListOrdersRequest(state="pending"))
        with pytest.raises(grpc.aio.AioRpcError) as twice:
            await admin.AbandonOrder(pb.AbandonOrderRequest(id=pending.id, reason="again"))
        taken_up = await admin.RetryOrder(pb.RetryOrderRequest(id=pending.id))
        running = (await admin.GetOrder(pb.GetOrderRequest(id=pending.id))).running

    assert no_reason.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "reason: is required" in (no_reason.value.details() or "")
    assert abandoned.order.state == "ABANDONED" and abandoned.order.error_reason == "ABANDONED_BY_OPERATOR"
    assert shown.history[-1].state == "ABANDONED" and "ordered by mistake" in shown.history[-1].detail
    assert not shown.running and pending_now.orders == []
    assert [(a.action, a.outcome, a.detail) for a in shown.audit] == [
        ("abandon", "ok", "ordered by mistake"), ("retry", "ok", "collect now")]
    assert shown.audit[0].actor.startswith("anonymous (grpc ")
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (taken_up.action, taken_up.order.state, taken_up.order.attempts) == ("taken up again", "COLLECTING", 0)
    assert running


async def test_fail_unknown_and_finished_orders_and_bad_arguments(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack, _admin(stack) as admin:
        issued = await _enroll(stack, "done.example.com")
        failures = []
        for call in (admin.GetOrder(pb.GetOrderRequest(id="no-such-order")),
                     admin.RetryOrder(pb.RetryOrderRequest(id=issued.id)),
                     admin.AbandonOrder(pb.AbandonOrderRequest(id=issued.id, reason="late")),
                     admin.ListOrders(pb.ListOrdersRequest(state="LOST")),
                     admin.ListOrders(pb.ListOrdersRequest(page_token="not-a-token")),
                     admin.ListOrders(pb.ListOrdersRequest(page_size=5000))):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call
            failures.append((caught.value.code(), caught.value.details()))
    assert [code for code, _ in failures] == [
        grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INVALID_ARGUMENT]
    assert failures[1][1] == f"order {issued.id} is already issued (serial {issued.serial_number})"
    assert failures[3][1].startswith("state: 'LOST' is not one of pending, RECEIVED, SUBMITTED")


async def test_ok_pages_of_orders_newest_first(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack, _admin(stack) as admin:
        ids = [(await _enroll(stack, f"page{n}.example.com")).id for n in range(5)]
        first = await admin.ListOrders(pb.ListOrdersRequest(page_size=2))
        second = await admin.ListOrders(pb.ListOrdersRequest(page_size=2, page_token=first.next_page_token))
        last = await admin.ListOrders(pb.ListOrdersRequest(page_size=2, page_token=second.next_page_token))
    assert [o.id for o in (*first.orders, *second.orders, *last.orders)] == ids[::-1]
    assert last.next_page_token == ""


async def test_ok_the_admin_service_is_not_on_the_api_listener(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        stub = admin_pb2_grpc.OrderAdminServiceStub(stack.channel)  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.ListOrders(pb.ListOrdersRequest())
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_ok_cagw_orders_commands_against_the_running_gateway(tmp_path: Path) -> None:
    simulator = SimulatorSettings(issue_after=3600)
    async with running_stack(tmp_path, simulator=simulator, **SLOW) as stack:
        assert stack.gateway.admin is not None
        server = f"127.0.0.1:{stack.gateway.admin.port}"
        pending = await _enroll(stack, "cli.example.com", max_wait=0.2)
        listed = await _cli("orders", "list", "--state", "pending", "--server", server)
        shown = await _cli("orders", "show", pending.id, "--server", server)
        retried = await _cli("orders", "retry", pending.id, "--server", server)
        abandoned = await _cli("orders", "abandon", pending.id, "--reason", "test over", "--server", server)
        again = await _cli("orders", "abandon", pending.id, "--reason", "test over", "--server", server)
        as_json = await _cli("orders", "show", pending.id, "--json", "--server", server)
    code, out, _ = listed
    assert code == 0 and out.splitlines()[0].split()[:4] == ["ID", "CA", "STATE", "ATTEMPTS"]
    assert out.splitlines()[1].split()[:3] == [pending.id, CA_ID, "COLLECTING"]
    code, out, _ = shown
    assert code == 0 and out.startswith(f"order {pending.id} (ENROLL) on CA {CA_ID}: COLLECTING — worked on now")
    assert "history:" in out and "RECEIVED" in out and "enroll" in out
    assert retried[0] == 0 and retried[1].strip() == f"order {pending.id}: collect now (COLLECTING, attempt 0)"
    assert abandoned[0] == 0 and "ABANDONED: abandoned by anonymous" in abandoned[1]
    assert again[0] == 1 and again[2].startswith("FAILED_PRECONDITION: order ")
    assert as_json[0] == 0 and '"state": "ABANDONED"' in as_json[1]


async def test_fail_cagw_orders_without_a_gateway_exits_3() -> None:
    from tests.e2e.processes import free_port

    code, _, err = await _cli("orders", "list", "--server", f"127.0.0.1:{free_port()}", "--timeout", "2")
    assert code == 3 and "is the gateway running with admin.listen" in err
