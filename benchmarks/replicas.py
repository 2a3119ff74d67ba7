"""``python -m benchmarks.replicas``: replicas on one PostgreSQL ledger, and how fast a watcher on
one replica hears of a change another records.

1. **Throughput**: for 1, 2 and 3 ``cagw serve`` processes on one fresh schema and one simulator
   (instant issuance), ``--enrollments`` unary gRPC enrollments spread round-robin over the
   replicas: enrollments per second, ledger operations per enrollment (the gateways' own
   ``cagw_ledger_operations_total``) and committed database transactions per enrollment
   (``pg_stat_database``; the run should have the database to itself).
2. **Fan-out delay**: in this process, one ledger records state changes of an order that a
   follower on a second ledger (another gateway's view) watches, with LISTEN/NOTIFY and with
   polling only (every ``--poll`` seconds): from the write's commit to the follower's event.

3. **Shared budget cost**: three ledgers on one schema (three gateways' budgets of one CA), the
   background-collect budget kept in PostgreSQL; ``--collects`` slots taken one after another
   (each collect alone: one statement each) and all at once spread over the three (collects due
   together: batched). Round trips per collect and the latency of taking a slot; the bucket is
   sized so that no slot waits, which leaves the cost alone.

The figures go to stdout and, with ``--out``, to a JSON file; ``--only budget`` runs part 3 alone.
See docs/replicas.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any, cast

import asyncpg
import yaml

from service.config import CollectBudgetSettings
from service.enrollment.budget import SharedCollectBudget
from service.enrollment.channel import OrderEvent, Phase
from service.enrollment.follow import OrderFollower
from service.enrollment.orders import OrderView
from service.ledger import NewOrder, OrderRecord, OrderState, open_ledger, parse_target
from service.ledger.budgets import BudgetLedger
from service.ledger.leases import leasing
from service.simulator.embedded import _ensure_tls_files

from .load import Load, make_csrs
from .processes import Backoff, _Child, _get, _wait_for, free_ports, gateway_document
from .stats import counter_total, percentile

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


class Replicas:
    """A simulator and ``count`` gateway processes on one schema; stopped on exit, always."""

    def __init__(self, folder: Path, url: str, schema: str, count: int) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.tls = _ensure_tls_files(folder.parent / "tls")
        self.children: list[_Child] = []
        sim_port, *ports = free_ports(1 + 3 * count)
        self.sim_url = f"https://127.0.0.1:{sim_port}"
        self.grpc_targets = [f"127.0.0.1:{ports[3 * n]}" for n in range(count)]
        self.metrics_urls = [f"http://127.0.0.1:{ports[3 * n + 2]}/metrics" for n in range(count)]
        try:
            argv = [sys.executable, "-m", "service.simulator", "--listen", f"127.0.0.1:{sim_port}",
                    "--tls-cert", str(self.tls.server_cert), "--tls-key", str(self.tls.server_key),
                    "--ca-dir", str(folder / "simulator-ca"), "--issue-after", "0s"]
            simulator = _Child("simulator", argv, folder)
            self.children.append(simulator)
            import ssl

            _wait_for(simulator, f"{self.sim_url}/__simulator/stats", ssl.create_default_context(
                cafile=str(self.tls.trust_store)))
            for n in range(count):
                document = gateway_document(folder=folder, sim_url=self.sim_url, trust_store=self.tls.trust_store,
                                            ports=ports[3 * n:3 * n + 3], backoff=Backoff("0.05s", "32s", 5))
                document["ledger"] = {"url": url, "schema": schema}
                document["admin"] = {"listen": "127.0.0.1:0"}
                config = folder / f"cagw-{n}.yaml"
                config.write_text(yaml.safe_dump(document, sort_keys=False))
                gateway = _Child(f"gateway-{n}", [sys.executable, "-m", "service.cli", "serve", "--config",
                                                  str(config)], folder)
                self.children.append(gateway)
                _wait_for(gateway, f"http://127.0.0.1:{ports[3 * n + 1]}/cagw/health")
        except BaseException:
            self.stop()
            raise

    def ledger_operations(self) -> float:
        return sum(counter_total(_get(url, timeout=10.0)[1].decode(), "cagw_ledger_operations_total")
                   for url in self.metrics_urls)

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()


async def _commits(url: str) -> int:
    await asyncio.sleep(1.5)  # other sessions report their counts to the statistics about once a second
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"))
    finally:
        await conn.close()


async def _drop(url: str, schema: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def throughput(work: Path, url: str, count: int, enrollments: int, concurrency: int) -> dict[str, float]:
    schema = f"cagw_bench_{uuid.uuid4().hex[:12]}"
    replicas = Replicas(work / f"replicas-{count}", url, schema, count)
    loads = [Load(grpc_target=target, rest_base="", sim_url=replicas.sim_url, sim_tls=None,
                  concurrency=max(1, concurrency // count)) for target in replicas.grpc_targets]
    try:
        await asyncio.gather(*(load.grpc_enroll(make_csrs(10, prefix=f"warm{count}-{n}"))
                               for n, load in enumerate(loads)))
        operations, commits = replicas.ledger_operations(), await _commits(url)
        share = enrollments // count
        started = time.perf_counter()
        batches = await asyncio.gather(*(load.grpc_enroll(make_csrs(share, prefix=f"run{count}-{n}"))
                                         for n, load in enumerate(loads)))
        wall = time.perf_counter() - started
        done = sum(len(batch.latencies) for batch in batches)
        failed = sum(sum(batch.failures.values()) for batch in batches)
        latencies = [latency for batch in batches for latency in batch.latencies]
        return {"replicas": count, "enrollments": done, "failed": failed, "per_second": done / wall,
                "p50_ms": percentile(latencies, 0.5) * 1000, "p99_ms": percentile(latencies, 0.99) * 1000,
                "ledger_operations_per_enrollment": (replicas.ledger_operations() - operations) / max(done, 1),
                "transactions_per_enrollment": (await _commits(url) - commits) / max(done, 1)}
    finally:
        for load in loads:
            await load.close()
        replicas.stop()
        await _drop(url, schema)


async def _event_of(order: OrderRecord) -> OrderEvent:
    return OrderEvent(order=OrderView.of(order), phase=Phase.PENDING, time=order.updated_at)


async def fan_out(url: str, changes: int, *, poll: float, notifications: bool) -> dict[str, float]:
    schema = f"cagw_bench_{uuid.uuid4().hex[:12]}"
    target = parse_target(url, options={"schema": schema, "pool-size": "2"})
    writer, reader = await open_ledger(target), await open_ledger(target)
    follower = OrderFollower(reader, leasing(reader) if notifications else None, _event_of, poll=poll)
    follower.start()
    try:
        order_id = str(uuid.uuid4())
        await writer.create_order(NewOrder(
            id=order_id, ca_id="bench", profile_id="p", ca_profile_id="1", term_days=365, csr_pem="-", fingerprint=order_id,
            requested_dn="", common_name="bench.example.com", subject_alt_names=(), marker=f"m:{order_id}"))
        await asyncio.sleep(0.5)  # the listener is in place before the first change
        delays: list[float] = []
        async with follower.follow(order_id) as channel:
            events = channel.subscribe()
            await anext(events)  # the state as following began
            for n in range(changes):
                await asyncio.sleep(0.05 + (n % 7) * poll / 7)  # changes at every phase of the poll interval
                await writer.update_order(order_id, state=OrderState.COLLECTING, attempts=n,
                                          next_attempt_at=dt.datetime.now(dt.UTC))
                written = time.perf_counter()
                await anext(events)
                delays.append(time.perf_counter() - written)
        return {"notifications": notifications, "poll_s": poll, "changes": changes,
                "p50_ms": percentile(delays, 0.5) * 1000, "p99_ms": percentile(delays, 0.99) * 1000,
                "max_ms": max(delays) * 1000}
    finally:
        await follower.close()
        await writer.close()
        await reader.close()
        await _drop(url, schema)


async def budget_cost(url: str, collects: int, *, together: bool) -> dict[str, Any]:
    schema = f"cagw_bench_{uuid.uuid4().hex[:12]}"
    target = parse_target(url, options={"schema": schema, "pool-size": "2"})
    ledgers = [await open_ledger(target) for _ in range(3)]
    settings = CollectBudgetSettings(rate=10000.0, burst=10000)  # never waits: the cost alone
    budgets = [SharedCollectBudget(settings, "bench", cast(BudgetLedger, ledger)) for ledger in ledgers]
    latencies: list[float] = []

    async def take(n: int) -> None:
        started = time.perf_counter()
        now = time.time()
        await budgets[n % 3].take(now, now=now)
        latencies.append(time.perf_counter() - started)

    try:
        began = time.perf_counter()
        if together:
            await asyncio.gather(*(take(n) for n in range(collects)))
        else:
            for n in range(collects):
                await take(n)
        elapsed = time.perf_counter() - began
        trips = sum(b.round_trips for b in budgets)
        return {"pattern": "due together" if together else "one at a time", "collects": collects,
                "round_trips": trips, "round_trips_per_collect": trips / collects,
                "statement_mean_ms": sum(b.round_trip_seconds for b in budgets) / trips * 1000,
                "take_p50_ms": percentile(latencies, 0.5) * 1000, "take_p99_ms": percentile(latencies, 0.99) * 1000,
                "slots_per_s": collects / elapsed}
    finally:
        for ledger in ledgers:
            await ledger.close()
        await _drop(url, schema)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replicas", description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL URL (default: %(default)s)")
    parser.add_argument("--enrollments", type=int, default=300, help="per replica count (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=30, help="calls in flight in all (default: %(default)s)")
    parser.add_argument("--changes", type=int, default=40, help="changes for the fan-out delay (default: %(default)s)")
    parser.add_argument("--poll", type=float, default=1.0, help="the follower's poll interval (default: %(default)s)")
    parser.add_argument("--work", type=Path, default=Path("build/bench/replicas"), help="logs and files")
    parser.add_argument("--collects", type=int, default=600, help="slots for the budget cost (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    parser.add_argument("--only", choices=["budget"], help="run only this part")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {"throughput": [], "fan_out": [], "budget": []}
    for together in (False, True):
        row = await budget_cost(args.url, args.collects, together=together)
        print(json.dumps(row), flush=True)
        figures["budget"].append(row)
    for count in (1, 2, 3) if args.only is None else ():
        row = await throughput(args.work, args.url, count, args.enrollments, args.concurrency)
        print(json.dumps(row), flush=True)
        figures["throughput"].append(row)
    for notifications in (True, False) if args.only is None else ():
        row = await fan_out(args.url, args.changes, poll=args.poll, notifications=notifications)
        print(json.dumps(row), flush=True)
        figures["fan_out"].append(row)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
