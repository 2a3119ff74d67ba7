"""The scenarios: each drives one kind of load against a running stack and returns its figures.

A figure is a number keyed by name (see :data:`benchmarks.report.FIGURES` for units and
meaning). Per-call CPU and memory come from the gateway process's own ``/proc`` accounting,
read just before and just after the load; Sectigo call counts from the simulator's counters
and call log; ledger operations from the gateway's ``/metrics``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .load import Batch, Issued, Load
from .processes import MeterSample, Stack
from .stats import collect_lateness, counter_total, histogram_quantile, percentile, repeated_collects

__all__ = ["Figures", "Settings", "direct_run", "gateway_run", "lookups", "pending_orders", "watchers"]

Figures = dict[str, float | None]
SETTLE = 0.3  # seconds the gateway gets to finish work after the last answer, before the CPU reading
LATENESS_METRIC = "cagw_collect_lateness_seconds"
BUDGET_WAIT_METRIC = "cagw_collect_budget_wait_seconds"
NOTICE_WINDOW = 40.0  # seconds before the end of the pending wait at which a sample of orders is issued
NOTICE_SHARE = 0.01  # the share of the pending orders issued then (the oldest; at least one)


@dataclass(frozen=True)
class Settings:
    """The sizes of every scenario; :meth:`smoke` is the seconds-long version for CI."""

    runs: int = 5
    enrollments: int = 400
    concurrency: int = 64
    warmup: int = 20
    lookups: int = 2000
    watch_orders: int = 50
    watchers: int = 500
    watch_hold: float = 5.0
    pending: int = 2000
    pending_wait: float = 45.0
    backoff_timer: float = 0.1

    @classmethod
    def smoke(cls) -> Settings:
        return cls(runs=1, enrollments=8, concurrency=4, warmup=2, lookups=16, watch_orders=2, watchers=6,
                   watch_hold=0.5, pending=6, pending_wait=2.6)


@dataclass(frozen=True)
class _Readings:
    gateway: MeterSample
    simulator: MeterSample
    sectigo_calls: float
    metrics: str


def _read(stack: Stack) -> _Readings:
    requests = stack.simulator_json("/__simulator/stats")["requests"]
    return _Readings(stack.gateway_meter.sample(), stack.simulator_meter.sample(),
                     float(sum(requests.values())), stack.metrics())


async def _measured(stack: Stack, load: Callable[[], Awaitable[Batch]]) -> tuple[Batch, _Readings, _Readings]:
    before = _read(stack)
    batch = await load()
    await asyncio.sleep(SETTLE)
    after = _read(stack)
    stack.check_alive()
    return batch, before, after


def _per_call(batch: Batch, before: _Readings, after: _Readings, prefix: str) -> Figures:
    done = max(1, len(batch.latencies))
    return {
        f"{prefix}.cpu_ms": after.gateway.cpu_since(before.gateway) / done * 1000,
        f"{prefix}.simulator_cpu_ms": after.simulator.cpu_since(before.simulator) / done * 1000,
        f"{prefix}.throughput": len(batch.latencies) / batch.wall if batch.wall else 0.0,
        f"{prefix}.p50_ms": percentile(batch.latencies, 0.5) * 1000 if batch.latencies else None,
        f"{prefix}.p99_ms": percentile(batch.latencies, 0.99) * 1000 if batch.latencies else None,
        f"{prefix}.ctx_switches": (after.gateway.ctx_switches - before.gateway.ctx_switches) / done,
        f"{prefix}.sectigo_calls": (after.sectigo_calls - before.sectigo_calls) / done,
        f"{prefix}.ledger_ops": (counter_total(after.metrics, "cagw_ledger_operations_total")
                                 - counter_total(before.metrics, "cagw_ledger_operations_total")) / done,
        f"{prefix}.sql_statements": _per(_delta(before, after, "cagw_ledger_sql_statements_total"), done),
        f"{prefix}.commits": _per(_delta(before, after, "cagw_ledger_commits_total"), done),
        f"{prefix}.failures": float(sum(batch.failures.values())),
    }


def _delta(before: _Readings, after: _Readings, counter: str) -> float | None:
    """How much ``counter`` grew; None when the gateway does not serve it (a PostgreSQL ledger)."""
    if f"\n{counter} " not in after.metrics and not after.metrics.startswith(f"{counter} "):
        return None
    return counter_total(after.metrics, counter) - counter_total(before.metrics, counter)


def _per(total: float | None, done: int) -> float | None:
    return None if total is None else total / done


async def gateway_run(stack: Stack, load: Load, mode: str, csrs: Sequence[str]) -> tuple[Figures, list[Issued]]:
    """One batch of instantly issued enrollments through the gateway: ``grpc``, ``rest`` or ``watch``."""
    driver = {"grpc": load.grpc_enroll, "rest": load.rest_enroll, "watch": load.enroll_and_watch}[mode]
    batch, before, after = await _measured(stack, lambda: driver(csrs))
    _report_failures(mode, batch)
    return _per_call(batch, before, after, mode), batch.results


async def direct_run(stack: Stack, load: Load, csrs: Sequence[str]) -> Figures:
    """The same Sectigo calls straight to the simulator: the baseline of this run."""
    client_cpu = 0.0

    async def direct() -> Batch:
        nonlocal client_cpu
        started = time.process_time()  # every thread of this process, finer than /proc's clock ticks
        batch = await load.direct(csrs)
        client_cpu = time.process_time() - started
        return batch

    batch, before, after = await _measured(stack, direct)
    _report_failures("direct", batch)
    figures = _per_call(batch, before, after, "direct")
    # This process's CPU per order: the client side of the three HTTPS calls (a floor part).
    figures["direct.client_cpu_ms"] = client_cpu / max(1, len(batch.latencies)) * 1000
    # Nothing went through the gateway: its CPU and ledger figures would only show its idle cost.
    for key in ("direct.cpu_ms", "direct.ledger_ops", "direct.sql_statements", "direct.commits",
                "direct.ctx_switches"):
        figures.pop(key)
    return figures


async def lookups(stack: Stack, load: Load, issued: Sequence[Issued], count: int) -> Figures:
    """GetCertificate and GetSubject of issued certificates, ``count`` calls each."""
    serials = [issued[i % len(issued)].serial for i in range(count)]
    subjects = [issued[i % len(issued)].subject for i in range(count)]
    figures: Figures = {}
    drivers: list[tuple[str, Callable[[], Awaitable[Batch]]]] = [
        ("get_certificate", lambda: load.get_certificates(serials)),
        ("get_subject", lambda: load.get_subjects(subjects)),
    ]
    for name, driver in drivers:
        batch, before, after = await _measured(stack, driver)
        _report_failures(name, batch)
        per_call = _per_call(batch, before, after, name)
        for key in ("cpu_ms", "p99_ms", "throughput", "failures"):
            figures[f"{name}.{key}"] = per_call[f"{name}.{key}"]
    return figures


async def watchers(stack: Stack, load: Load, csrs: Sequence[str], *, watchers: int, hold: float) -> Figures:
    """``watchers`` WatchEnrollment streams spread over ``len(csrs)`` pending orders."""
    placed = await load.grpc_enroll(csrs, max_wait=0.0, expect_issued=False)
    _report_failures("watch orders", placed)
    ids = [placed.results[i % len(placed.results)].enrollment_id for i in range(watchers)]
    stack.simulator_delete("/__simulator/calls")
    await asyncio.sleep(SETTLE)
    before = stack.gateway_meter.sample()
    streams, opened = await load.open_watches(ids)
    await asyncio.sleep(SETTLE)
    after = stack.gateway_meter.sample()
    _report_failures("watchers", opened)
    await asyncio.sleep(hold)
    calls = stack.simulator_json("/__simulator/calls")["calls"]
    for stream in streams:
        stream.cancel()
    await asyncio.sleep(1.0)
    closed = stack.gateway_meter.sample()
    done = max(1, len(streams))
    collects = sum(1 for c in calls if c["route"] == "collect")
    return {
        "watchers.open_cpu_ms": after.cpu_since(before) / done * 1000,
        "watchers.kb_per_stream": (after.rss - before.rss) / done / 1024,
        "watchers.kb_per_stream_after_close": (closed.rss - before.rss) / done / 1024,
        "watchers.collects_per_order": collects / max(1, len(placed.results)),
        "watchers.repeated_collects": float(repeated_collects(calls, within=1.0)),
        "watchers.failures": float(sum(opened.failures.values()) + sum(placed.failures.values())),
    }


def _overdue(calls: Sequence[dict[str, Any]], submitted: dict[int, float], waits: Sequence[float],
             end: float) -> list[float]:
    """Foreground attempts that were due before ``end`` but had not run: how late they are at ``end``
    (at least)."""
    last: dict[int, tuple[float, int]] = {ssl_id: (at, 0) for ssl_id, at in submitted.items()}
    for call in sorted(calls, key=lambda c: float(c["time"])):
        ssl_id = call["sslId"]
        if call["route"] == "collect" and ssl_id in last:
            last[ssl_id] = (float(call["time"]), last[ssl_id][1] + 1)
    late = []
    for at, done in last.values():
        if done >= len(waits):
            continue  # in background collection: paced by the budget, not by a due time
        due = at + waits[done]
        if due < end:
            late.append(end - due)
    return late


def _notice_delays(calls: Sequence[dict[str, Any]], sample: Sequence[int], issued_at: float) -> list[float]:
    """For each order of ``sample`` issued at the simulator at ``issued_at``: seconds until the gateway's
    first collect of it after that (the collect that finds the certificate)."""
    first: dict[int, float] = {}
    for call in calls:
        if call["route"] == "collect" and call["sslId"] is not None and float(call["time"]) >= issued_at:
            ssl_id = int(call["sslId"])
            first[ssl_id] = min(first.get(ssl_id, math.inf), float(call["time"]))
    return [first[ssl_id] - issued_at for ssl_id in sample if ssl_id in first]


def _background_collects(calls: Sequence[dict[str, Any]], waits: Sequence[float], since: float) -> int:
    """Collects after ``since`` that were beyond an order's foreground attempts (its 6th collect on)."""
    made: dict[int, int] = {}
    count = 0
    for call in sorted(calls, key=lambda c: float(c["time"])):
        if call["route"] != "collect" or call["sslId"] is None:
            continue
        ssl_id = int(call["sslId"])
        made[ssl_id] = made.get(ssl_id, 0) + 1
        if made[ssl_id] > len(waits) and float(call["time"]) >= since:
            count += 1
    return count


def _enrolled(stack: Stack) -> list[int]:
    """The orders at the simulator, oldest first."""
    calls = stack.simulator_json("/__simulator/calls")["calls"]
    enrolls = sorted((float(c["time"]), int(c["sslId"])) for c in calls if c["route"] == "enroll" and c["sslId"])
    return [ssl_id for _, ssl_id in enrolls]


async def pending_orders(stack: Stack, load: Load, csrs: Sequence[str], *, wait: float,
                         waits: Sequence[float], interval: float) -> Figures:
    """Many orders left pending at the simulator: how fast they are taken, what waiting costs, and how
    closely their collect attempts keep the documented schedule."""
    stack.simulator_delete("/__simulator/calls")
    start = _read(stack)
    batch = await load.grpc_enroll(csrs, max_wait=0.0, expect_issued=False)
    _report_failures("pending", batch)
    submitted_state = _read(stack)
    waiting_from = time.time()
    # Near the end of the wait, the oldest orders (in background collection by then, when the wait
    # is long enough) are issued at the simulator: how long until the gateway notices?
    before_sample = max(0.0, wait - NOTICE_WINDOW)
    await asyncio.sleep(before_sample)
    enrolled = _enrolled(stack)
    sample = enrolled[:max(1, round(len(enrolled) * NOTICE_SHARE))]
    issued_at = time.time()
    stack.simulator_post("/__simulator/issue", {"sslIds": sample})
    await asyncio.sleep(wait - before_sample)
    end = _read(stack)
    end_time = time.time()
    stack.check_alive()
    calls = stack.simulator_json("/__simulator/calls")["calls"]
    # The gateway answers Enroll (maxWait 0) before Sectigo has the order: the simulator's log
    # tells when each order reached it, which starts its schedule.
    submitted = {int(c["sslId"]): float(c["time"]) for c in calls if c["route"] == "enroll" and c["sslId"]}
    late = (collect_lateness(calls, submitted, waits, interval, foreground_only=True)
            + _overdue(calls, submitted, waits, end_time))
    waiting = [c for c in calls if float(c["time"]) >= waiting_from]
    minutes = (end_time - waiting_from) / 60
    noticed = _notice_delays(calls, sample, issued_at)
    done = max(1, len(batch.latencies))

    def grown(name: str) -> float:
        return counter_total(end.metrics, name) - counter_total(submitted_state.metrics, name)

    return {
        "pending.orders": float(len(batch.latencies)),
        "pending.submit_rate": len(batch.latencies) / batch.wall if batch.wall else 0.0,
        "pending.submit_cpu_ms": submitted_state.gateway.cpu_since(start.gateway) / done * 1000,
        "pending.enroll_p99_ms": percentile(batch.latencies, 0.99) * 1000 if batch.latencies else None,
        "pending.lateness_p50_ms": percentile(late, 0.5) * 1000 if late else None,
        "pending.lateness_p99_ms": percentile(late, 0.99) * 1000 if late else None,
        "pending.lateness_max_ms": max(late) * 1000 if late else None,
        "pending.attempts_seen": float(len(late)),
        "pending.gateway_lateness_p99_s": histogram_quantile(start.metrics, end.metrics, LATENESS_METRIC, 0.99),
        "pending.waiting_cpu_pct": end.gateway.cpu_since(submitted_state.gateway)
                                   / (end.gateway.wall - submitted_state.gateway.wall) * 100,
        "pending.kb_per_order": (end.gateway.rss - start.gateway.rss) / done / 1024,
        "pending.sectigo_calls_per_min": len(waiting) / minutes,
        "pending.collects_per_min": sum(1 for c in waiting if c["route"] == "collect") / minutes,
        "pending.lists_per_min": sum(1 for c in waiting if c["route"] == "list") / minutes,
        "pending.background_collects_per_min": _background_collects(calls, waits, waiting_from) / minutes,
        "pending.collects_skipped": grown("cagw_collects_skipped_total"),
        "pending.budget_deferred": grown("cagw_collect_budget_deferred_total"),
        "pending.budget_wait_p99_s": histogram_quantile(submitted_state.metrics, end.metrics, BUDGET_WAIT_METRIC,
                                                        0.99),
        "pending.notice_p50_s": percentile(noticed, 0.5) if noticed else None,
        "pending.notice_max_s": max(noticed) if noticed else None,
        "pending.notice_missed": float(len(sample) - len(noticed)),
        "pending.failures": float(sum(batch.failures.values())),
    }


def _report_failures(what: str, batch: Batch) -> None:
    if batch.failures:
        print(f"  {what}: {sum(batch.failures.values())} of {batch.calls} calls failed: "
              + ", ".join(f"{kind} ×{n}" for kind, n in batch.failures.most_common(3)), flush=True)
