"""Failover between replicas: three ``cagw serve`` processes on one PostgreSQL schema and one
simulator; the one that placed 40 pending orders (and holds their leases) is killed with SIGKILL.
The other two take the orders over once the leases lapse: every order is issued, none was ordered
twice, and each went on from the attempts it had made (the attempts recorded match the collects
the simulator saw, which a schedule restarted from attempt 1 could not)."""

from __future__ import annotations

import asyncio
import collections
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
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
    http_json,
    start_gateway,
    start_simulator,
    write_config,
)
from tests.support.csr import make_csr
from tests.unit.ledger_backends import POSTGRES_URL, postgres_reason, postgres_schema

pytestmark = pytest.mark.slow

NO_PROXY = [("grpc.enable_http_proxy", 0)]
ORDERS = 40


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    reason = postgres_reason()
    if reason is not None:
        pytest.skip(reason)
    procs = Processes(tmp_path / "logs")
    try:
        yield procs
    finally:
        procs.cleanup()


@pytest.fixture
async def schema() -> AsyncIterator[str]:
    async with postgres_schema() as name:
        yield name


def _replica(processes: Processes, folder: Path, simulator: SimulatorProcess, schema: str, name: str
             ) -> GatewayProcess:
    """Collect every second (up to 100 attempts); leases of 2 s renewed every 0.5 s."""
    document = gateway_document(simulator.api_url, folder, timer="1s", max_timer="1s", attempts=100)
    document["ledger"] = {"url": POSTGRES_URL, "schema": schema, "lease-time": "2s", "lease-heartbeat": "500ms",
                          "pool-size": "4"}
    return start_gateway(processes, write_config(folder, document), name=name)


async def _rows(schema: str, sql: str) -> list[Any]:
    conn = await asyncpg.connect(POSTGRES_URL, server_settings={"search_path": schema})
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


async def _place(gateway: GatewayProcess) -> list[str]:
    async with grpc.aio.insecure_channel(gateway.grpc_target, options=NO_PROXY) as channel:
        stub = pb_grpc.EnrollmentServiceStub(channel)  # type: ignore[no-untyped-call]

        async def one(n: int) -> str:
            answer = (await stub.Enroll(pb.EnrollRequest(
                ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr(f"f{n}.failover.example.com"),
                max_wait=duration_pb2.Duration(nanos=50_000_000)), timeout=30)).enrollment
            assert answer.status == "PENDING" and answer.id
            return answer.id

        return list(await asyncio.gather(*(one(n) for n in range(ORDERS))))


async def _until(schema: str, sql: str, *, within: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not (await _rows(schema, sql))[0][0]:
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)  # polling the shared ledger, under a deadline


async def test_ok_sigkill_of_a_replica_holding_leases_the_others_finish_its_orders_once(
        processes: Processes, schema: str, tmp_path: Path) -> None:
    simulator = await asyncio.to_thread(start_simulator, processes, tmp_path / "sim", options=("--issue-after", "6s"))
    replicas = [await asyncio.to_thread(_replica, processes, tmp_path / f"gw{n}", simulator, schema, f"replica-{n}")
                for n in range(3)]
    doomed = replicas[0]
    ids = await _place(doomed)
    await _until(schema, "SELECT MIN(attempts) >= 2 FROM orders", within=30, what="two attempts of every order")
    assert doomed.process.kill() == -signal.SIGKILL
    at_kill = {row["id"]: row for row in await _rows(schema, "SELECT id, attempts, lease_owner FROM orders")}
    assert sorted(at_kill) == sorted(ids)
    assert all(f":{doomed.process.pid}:" in (row["lease_owner"] or "") for row in at_kill.values()), at_kill

    await _until(schema, "SELECT COUNT(*) = 40 FROM orders WHERE state = 'ISSUED'", within=40,
                 what="every order issued by the surviving replicas")
    stats = simulator.stats()
    assert stats["orders"]["total"] == ORDERS and stats["requests"]["enroll"] == ORDERS, stats
    finished = {row["id"]: row for row in await _rows(schema, "SELECT id, attempts, ca_order_id, lease_owner "
                                                              "FROM orders")}
    status, calls = http_json("GET", f"{simulator.url}/__simulator/calls")
    assert status == 200
    collects = collections.Counter(str(call["sslId"]) for call in calls["calls"] if call["route"] == "collect")
    for order_id, row in finished.items():
        made = collects[row["ca_order_id"]]
        assert row["lease_owner"] is None  # issuing ended the lease
        # The attempts went on from where the killed replica left them: one per collect (one fewer when
        # the kill came between a collect and its record), never counted again from 1.
        assert made - 1 <= row["attempts"] <= made, (order_id, row["attempts"], made, at_kill[order_id]["attempts"])
        assert row["attempts"] > at_kill[order_id]["attempts"]
    for survivor in replicas[1:]:
        assert survivor.process.stop() == 0, survivor.process.describe()
