"""The crash suite: a real ``cagw serve`` process killed with SIGKILL, twice in a row, with 200 orders
pending and with 20 enrolls in flight at the CA; after the last restart every order completes, each
was ordered exactly once (the simulator counts them), and ``cagw ledger check`` finds the ledger sound."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest
from cagw.v1 import admin_pb2, admin_pb2_grpc
from cagw.v1 import enrollments_pb2 as pb
from cagw.v1 import enrollments_pb2_grpc as pb_grpc
from google.protobuf import duration_pb2

from tests.e2e.processes import (
    CA_ID,
    PROFILE_ID,
    GatewayProcess,
    Processes,
    SimulatorProcess,
    gateway_document,
    run_cagw,
    start_gateway,
    start_simulator,
    wait_until,
    write_config,
)
from tests.support.csr import make_csr

pytestmark = pytest.mark.slow

NO_PROXY = [("grpc.enable_http_proxy", 0)]
CALL_TIMEOUT = 3.0


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path / "logs")
    try:
        yield procs
    finally:
        procs.cleanup()


def _gateway(processes: Processes, folder: Path, simulator: SimulatorProcess) -> GatewayProcess:
    """Collect every second (up to 100 attempts), a call timeout of 3 s."""
    document = gateway_document(simulator.api_url, folder, timer="1s", max_timer="1s", attempts=100)
    document["managed-cas"][0]["gateway"]["request-timeout"] = f"{CALL_TIMEOUT}s"
    return start_gateway(processes, write_config(folder, document))


@contextlib.asynccontextmanager
async def _stubs(gateway: GatewayProcess) -> AsyncIterator[tuple[pb_grpc.EnrollmentServiceStub,
                                                                 admin_pb2_grpc.OrderAdminServiceStub]]:
    async with grpc.aio.insecure_channel(gateway.grpc_target, options=NO_PROXY) as api, \
            grpc.aio.insecure_channel(gateway.admin_target, options=NO_PROXY) as admin:
        yield pb_grpc.EnrollmentServiceStub(api), admin_pb2_grpc.OrderAdminServiceStub(admin)  # type: ignore[no-untyped-call]


async def _place(stub: pb_grpc.EnrollmentServiceStub, names: list[str]) -> list[str]:
    """Enroll each name, answering PENDING at once (maxWait 50 ms); the enrollment ids."""
    semaphore = asyncio.Semaphore(25)  # the caller's own bound: 25 calls at a time

    async def one(name: str) -> str:
        async with semaphore:
            request = pb.EnrollRequest(ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr(name),
                                       max_wait=duration_pb2.Duration(nanos=50_000_000))
            answer = (await stub.Enroll(request, timeout=30)).enrollment
            assert answer.status in ("PENDING", "ISSUED") and answer.id
            return answer.id

    return list(await asyncio.gather(*(one(name) for name in names)))


async def _pending(gateway: GatewayProcess) -> int:
    async with _stubs(gateway) as (_, admin):
        answer = await admin.ListOrders(admin_pb2.ListOrdersRequest(state="pending", page_size=1000), timeout=10)
    return len(answer.orders)


async def _until_done(gateway: GatewayProcess, *, within: float) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while (left := await _pending(gateway)) > 0:
        assert asyncio.get_running_loop().time() < deadline, f"{left} order(s) still pending\n" \
                                                              f"{gateway.process.describe()}"
        await asyncio.sleep(0.25)  # polling the gateway's own answer, under a deadline


def _kill(gateway: GatewayProcess) -> None:
    assert gateway.process.kill() == -signal.SIGKILL


def _restart(processes: Processes, gateway: GatewayProcess, name: str) -> GatewayProcess:
    assert gateway.config_path is not None
    return start_gateway(processes, gateway.config_path, name=name)


def _finish(processes: Processes, gateway: GatewayProcess, simulator: SimulatorProcess, orders: int) -> None:
    """Every order issued, each ordered once at the CA, and the ledger sound."""
    stats = simulator.stats()
    assert stats["orders"]["total"] == orders, stats
    assert stats["orders"]["byStatus"]["Issued"] == orders, stats
    assert stats["requests"]["enroll"] == orders, stats
    assert gateway.process.stop() == 0, gateway.process.describe()
    assert gateway.config_path is not None
    check = run_cagw("ledger", "check", "--config", str(gateway.config_path))
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.strip().endswith(f"{orders} order(s) ({orders} ISSUED), {orders} certificate(s): OK")


async def test_ok_sigkill_twice_with_200_orders_pending_then_every_order_completes_once(
        processes: Processes, tmp_path: Path) -> None:
    simulator = await asyncio.to_thread(start_simulator, processes, tmp_path / "sim", options=("--issue-after", "6s"))
    gateway = await asyncio.to_thread(_gateway, processes, tmp_path / "gw", simulator)
    async with _stubs(gateway) as (stub, _):
        ids = await _place(stub, [f"pending-{n}.example.com" for n in range(200)])
    assert len(set(ids)) == 200 and await _pending(gateway) == 200
    _kill(gateway)  # 200 orders pending, collected every second

    again = await asyncio.to_thread(_restart, processes, gateway, "gateway-2")
    assert "resumed 200 unfinished order(s)" in again.process.stderr()
    collects = simulator.stats()["requests"].get("collect", 0)
    await asyncio.to_thread(wait_until, lambda: simulator.stats()["requests"].get("collect", 0) >= collects + 50,
                            what="the resumed orders to be collected", timeout=30, watch=[again.process])
    _kill(again)  # again, mid-collection

    last = await asyncio.to_thread(_restart, processes, again, "gateway-3")
    await _until_done(last, within=60)
    await asyncio.to_thread(_finish, processes, last, simulator, 200)


async def test_ok_sigkill_twice_with_20_enrolls_in_flight_then_each_is_found_not_ordered_twice(
        processes: Processes, tmp_path: Path) -> None:
    simulator = await asyncio.to_thread(start_simulator, processes, tmp_path / "sim", options=("--issue-after", "1s"))
    gateway = await asyncio.to_thread(_gateway, processes, tmp_path / "gw", simulator)
    # The CA takes 2.5 s (less than the call timeout) to answer each of the next 20 enrolls, and records
    # each order all the same; the gateway sends 8 at a time (max-concurrent-requests).
    simulator.add_fault(route="enroll", kind="latency", latency=2.5, count=20)
    async with _stubs(gateway) as (stub, admin):
        placing = asyncio.ensure_future(_place(stub, [f"in-flight-{n}.example.com" for n in range(20)]))

        async def recorded() -> int:
            answer = await admin.ListOrders(admin_pb2.ListOrdersRequest(state="RECEIVED"), timeout=10)
            return len(answer.orders)

        while await recorded() < 20:  # every order recorded, none answered by the CA yet
            assert not placing.done() and simulator.stats()["orders"]["total"] == 0
            await asyncio.sleep(0.02)
        _kill(gateway)  # 20 enrolls in flight: some at the CA, the others waiting for a slot
        with contextlib.suppress(grpc.aio.AioRpcError):
            await placing
    sent = simulator.enrolls()
    assert 0 < sent < 20

    again = await asyncio.to_thread(_restart, processes, gateway, "gateway-2")
    assert "resumed 20 unfinished order(s)" in again.process.stderr()
    _kill(again)  # again, while the resumed orders are looked for at the CA

    last = await asyncio.to_thread(_restart, processes, again, "gateway-3")
    await _until_done(last, within=60)
    await asyncio.to_thread(_finish, processes, last, simulator, 20)
