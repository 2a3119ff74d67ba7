"""``python -m benchmarks``: start the simulator and the gateway, drive every scenario, report.

``make bench`` runs it with the default sizes (a few minutes); ``make bench-smoke`` with tiny
ones (seconds), checking only that every figure made it into the JSON. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import time
from dataclasses import asdict, fields, replace
from pathlib import Path

from .floor import floor_parts, total_floor, unary_floor
from .load import Load, make_csrs
from .processes import Backoff, Stack
from .report import document, machine, missing_figures, summarise, table, write_json
from .scenarios import Figures, Settings, direct_run, gateway_run, lookups, pending_orders, watchers

MODES = ("grpc", "rest", "watch")
SCENARIOS = ("instant", "lookups", "watchers", "pending")
# The documented schedule (2 s … 32 s, 5 attempts) for the scenarios whose orders stay pending.
PENDING_BACKOFF = Backoff("2s", "32s", 5)
PENDING_WAITS = (2.0, 4.0, 8.0, 16.0, 32.0)
PENDING_INTERVAL = 32.0


def _load(stack: Stack, settings: Settings) -> Load:
    return Load(grpc_target=stack.grpc_target, rest_base=stack.rest_base, sim_url=stack.sim_url,
                sim_tls=stack.client_tls, concurrency=settings.concurrency)


async def _floor(stack: Stack, load: Load, settings: Settings, csrs: list[str], figures: Figures) -> None:
    """The floor of the parts in this run, and each mode's CPU as a multiple of it."""
    figures.update(await unary_floor(stack, load, settings.enrollments * 2))
    certificate = stack.simulator_bytes("/__simulator/ca.pem")
    figures.update(floor_parts(csrs, certificate, stack.folder, repeat=max(50, settings.enrollments)))
    floors = {transport: total_floor(figures, transport) for transport in ("grpc", "rest")}
    for transport, floor in floors.items():
        figures[f"floor.{transport}_ms"] = floor
    for mode, transport in (("grpc", "grpc"), ("rest", "rest"), ("watch", "grpc")):
        floor, cpu = floors[transport], figures.get(f"{mode}.cpu_ms")
        if floor and cpu is not None:
            figures[f"{mode}.cpu_vs_floor"] = cpu / floor


async def _instant(work: Path, settings: Settings, modes: tuple[str, ...], with_lookups: bool,
                   runs: list[Figures]) -> None:
    """Instantly issued orders: the direct baseline and each gateway mode, ``runs`` times."""
    backoff = Backoff(f"{settings.backoff_timer}s", "32s", 5)
    csrs = {(run, mode): make_csrs(settings.enrollments, prefix=f"r{run}-{mode}")
            for run in range(settings.runs) for mode in ("direct", *modes)}
    with Stack.start(work / "instant", issue_after="0s", backoff=backoff) as stack:
        print(f"gateway pid {stack.gateway_pid}, simulator pid {stack.simulator.popen.pid}", flush=True)
        load = _load(stack, settings)
        try:
            await load.direct(make_csrs(settings.warmup, prefix="warm-direct"))
            for mode in modes:
                await gateway_run(stack, load, mode, make_csrs(settings.warmup, prefix=f"warm-{mode}"))
            issued = []
            for run in range(settings.runs):
                print(f"run {run + 1}/{settings.runs}: direct, {', '.join(modes)}", flush=True)
                figures = runs[run]
                figures.update(await direct_run(stack, load, csrs[(run, "direct")]))
                for mode in modes:
                    found, results = await gateway_run(stack, load, mode, csrs[(run, mode)])
                    figures.update(found)
                    issued += results
                    if figures.get("direct.throughput"):
                        figures[f"{mode}.throughput_vs_direct"] = (
                            (figures[f"{mode}.throughput"] or 0.0) / (figures["direct.throughput"] or 1.0) * 100)
                for key in ("p50", "p99"):
                    value = figures.get(f"grpc.{key}_ms")
                    if value is not None:
                        figures[f"grpc.{key}_over_backoff_ms"] = value - settings.backoff_timer * 1000
                await _floor(stack, load, settings, csrs[(run, "direct")], figures)
            if with_lookups and issued:
                for run in range(settings.runs):
                    print(f"look-ups {run + 1}/{settings.runs}", flush=True)
                    runs[run].update(await lookups(stack, load, issued, settings.lookups))
        finally:
            await load.close()


async def _watchers(work: Path, settings: Settings, figures: Figures) -> None:
    print(f"watchers: {settings.watchers} streams on {settings.watch_orders} pending orders", flush=True)
    with Stack.start(work / "watchers", issue_after="3600s", backoff=PENDING_BACKOFF) as stack:
        load = _load(stack, settings)
        try:
            figures.update(await watchers(stack, load, make_csrs(settings.watch_orders, prefix="watched"),
                                          watchers=settings.watchers, hold=settings.watch_hold))
        finally:
            await load.close()


async def _pending(work: Path, settings: Settings, figures: Figures) -> None:
    print(f"pending: {settings.pending} orders, then {settings.pending_wait:g}s of waiting", flush=True)
    csrs = make_csrs(settings.pending, prefix="pending")
    with Stack.start(work / "pending", issue_after="3600s", backoff=PENDING_BACKOFF) as stack:
        load = _load(stack, settings)
        try:
            figures.update(await pending_orders(stack, load, csrs, wait=settings.pending_wait,
                                                waits=PENDING_WAITS, interval=PENDING_INTERVAL))
        finally:
            await load.close()


async def run(settings: Settings, *, work: Path, modes: tuple[str, ...], scenarios: tuple[str, ...]
              ) -> list[Figures]:
    runs: list[Figures] = [{} for _ in range(settings.runs)]
    if "instant" in scenarios:
        await _instant(work, settings, modes, "lookups" in scenarios, runs)
    if "watchers" in scenarios:
        await _watchers(work, settings, runs[0])
    if "pending" in scenarios:
        await _pending(work, settings, runs[0])
    return runs


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds); fail if a figure is missing")
    defaults = Settings()
    for field in fields(Settings):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(getattr(defaults, field.name)),
                            default=None, help=f"default {getattr(defaults, field.name)}")
    parser.add_argument("--modes", default=",".join(MODES), help="gateway modes of the instant scenario")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="scenarios to run")
    parser.add_argument("--out", type=Path, default=Path("build/bench/results.json"), help="the JSON report")
    parser.add_argument("--work", type=Path, default=Path("build/bench/work"),
                        help="folder for the processes' logs, ledgers and TLS files (emptied first)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings.smoke() if args.smoke else Settings()
    overrides = {f.name: getattr(args, f.name) for f in fields(Settings) if getattr(args, f.name) is not None}
    settings = replace(settings, **overrides)
    modes = tuple(m for m in args.modes.split(",") if m)
    scenarios = tuple(s for s in args.scenarios.split(",") if s)
    unknown = [m for m in modes if m not in MODES] + [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        print(f"unknown mode or scenario: {', '.join(unknown)}", file=sys.stderr)
        return 2
    shutil.rmtree(args.work, ignore_errors=True)
    before, started = machine(), time.monotonic()
    runs = asyncio.run(run(settings, work=args.work.resolve(), modes=modes, scenarios=scenarios))
    summary = summarise(runs)
    payload = document(machine_before=before, machine_after=machine(), settings=asdict(settings),
                       summary=summary, seconds=time.monotonic() - started)
    write_json(args.out, payload)
    print()
    print(table(summary, before, asdict(settings)))
    print(f"\n{payload['seconds']:g}s; load after {payload['load_average_after']}; JSON: {args.out}")
    full = modes == MODES and scenarios == SCENARIOS
    missing = missing_figures(summary) if full else []
    if args.smoke and missing:
        print(f"missing figures: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
