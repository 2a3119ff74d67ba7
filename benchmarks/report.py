"""The report: every figure with its unit and meaning, the printed table and the JSON document.

Each figure is summarised over the runs as its median with the min–max spread. A ratio is
computed inside each run (gateway figure ÷ the direct baseline of that same run) and then
summarised the same way, so a machine that was slower during one run does not skew it.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .stats import spread

__all__ = ["FIGURES", "NOT_MEASURED", "OPTIONAL", "document", "machine", "missing_figures", "table"]

_MODES = {"grpc": "gRPC Enroll", "rest": "REST enroll", "watch": "EnrollAndWatch"}

# key → (unit, meaning)
FIGURES: dict[str, tuple[str, str]] = {}
for _mode, _name in _MODES.items():
    FIGURES.update({
        f"{_mode}.cpu_ms": ("ms", f"gateway CPU per enrollment, {_name}"),
        f"{_mode}.simulator_cpu_ms": ("ms", f"simulator CPU per enrollment, {_name}"),
        f"{_mode}.throughput": ("/s", f"enrollments per second, {_name}"),
        f"{_mode}.p50_ms": ("ms", f"latency p50, {_name}"),
        f"{_mode}.p99_ms": ("ms", f"latency p99, {_name}"),
        f"{_mode}.ctx_switches": ("", f"gateway context switches per enrollment, {_name}"),
        f"{_mode}.sectigo_calls": ("", f"Sectigo calls per enrollment, {_name}"),
        f"{_mode}.ledger_ops": ("", f"ledger operations per enrollment, {_name}"),
        f"{_mode}.sql_statements": ("", f"SQL statements (BEGIN and COMMIT included) per enrollment, {_name}"),
        f"{_mode}.commits": ("", f"ledger commits per enrollment, {_name}"),
        f"{_mode}.failures": ("", f"failed calls, {_name}"),
        f"{_mode}.throughput_vs_direct": ("%", f"throughput of {_name} as a share of the direct baseline"),
        f"{_mode}.cpu_vs_floor": ("×", f"gateway CPU per enrollment of {_name} as a multiple of the floor of its parts"),
    })
FIGURES.update({
    "direct.simulator_cpu_ms": ("ms", "simulator CPU per order, direct enroll + 2 downloads"),
    "direct.throughput": ("/s", "orders per second, direct to the simulator"),
    "direct.p50_ms": ("ms", "latency p50, direct"),
    "direct.p99_ms": ("ms", "latency p99, direct"),
    "direct.sectigo_calls": ("", "Sectigo calls per order, direct"),
    "direct.client_cpu_ms": ("ms", "this process's CPU per direct order: the client side of 3 keep-alive HTTPS calls"),
    "floor.grpc_unary_ms": ("ms", "gateway CPU per grpc.health.v1 Check (the gRPC unary floor)"),
    "floor.rest_unary_ms": ("ms", "gateway CPU per GET /cagw/health (the REST floor)"),
    "floor.csr_check_ms": ("ms", "CSR parse and signature check (cryptography, in this process)"),
    "floor.certificate_parse_ms": ("ms", "one certificate parse (cryptography, in this process)"),
    "floor.sqlite_commit_ms": ("ms", "one SQLite insert + commit, WAL, synchronous NORMAL (in this process)"),
    "floor.grpc_ms": ("ms", "floor of a gRPC enrollment: unary + CSR check + 3 HTTPS calls + 2 parses + 2 commits"),
    "floor.rest_ms": ("ms", "floor of a REST enrollment: the same with the REST unary floor"),
    "parts.gateway_parse_csr_ms": ("ms", "the gateway's own service.x509.parse_csr (compare with floor.csr_check_ms)"),
    "direct.failures": ("", "failed orders, direct"),
    "grpc.p50_over_backoff_ms": ("ms", "gRPC Enroll p50 minus the back-off timer"),
    "grpc.p99_over_backoff_ms": ("ms", "gRPC Enroll p99 minus the back-off timer"),
})
for _name in ("get_certificate", "get_subject"):
    FIGURES.update({
        f"{_name}.cpu_ms": ("ms", f"gateway CPU per {_name} call"),
        f"{_name}.p99_ms": ("ms", f"{_name} latency p99"),
        f"{_name}.throughput": ("/s", f"{_name} calls per second"),
        f"{_name}.failures": ("", f"failed {_name} calls"),
    })
FIGURES.update({
    "watchers.open_cpu_ms": ("ms", "gateway CPU to open one WatchEnrollment stream (to its first event)"),
    "watchers.kb_per_stream": ("KB", "gateway RSS growth per open stream"),
    "watchers.kb_per_stream_after_close": ("KB", "RSS growth per stream left 1 s after they all closed"),
    "watchers.collects_per_order": ("", "Sectigo collects per order while the streams were open"),
    "watchers.repeated_collects": ("", "collects of an order less than 1 s after its previous one (0: one loop per order)"),
    "watchers.failures": ("", "failed streams or orders"),
    "pending.orders": ("", "orders left pending"),
    "pending.submit_rate": ("/s", "pending orders submitted per second"),
    "pending.submit_cpu_ms": ("ms", "gateway CPU per submitted order"),
    "pending.enroll_p99_ms": ("ms", "Enroll (maxWait 0) latency p99 while submitting"),
    "pending.lateness_p50_ms": ("ms", "foreground collect attempts: p50 of how late against the documented "
                                      "schedule (simulator's view)"),
    "pending.lateness_p99_ms": ("ms", "foreground collect attempts: p99 lateness (simulator's view)"),
    "pending.lateness_max_ms": ("ms", "foreground collect attempts: worst lateness (simulator's view)"),
    "pending.attempts_seen": ("", "foreground collect attempts due during the wait (run or overdue)"),
    "pending.gateway_lateness_p99_s": ("s", "p99 of the gateway's cagw_collect_lateness_seconds, every attempt, "
                                            "background ones counted from their budget slot (bucket bound)"),
    "pending.waiting_cpu_pct": ("%", "gateway CPU while the orders wait, % of one core"),
    "pending.kb_per_order": ("KB", "gateway RSS growth per pending order"),
    "pending.sectigo_calls_per_min": ("/min", "Sectigo calls per minute while the orders wait"),
    "pending.collects_per_min": ("/min", "of which collects"),
    "pending.lists_per_min": ("/min", "of which listings of issued orders (pages)"),
    "pending.background_collects_per_min": ("/min", "collects beyond an order's foreground attempts (background "
                                                    "collection), per minute of the wait"),
    "pending.collects_skipped": ("", "background attempts a listing spared a collect (while waiting)"),
    "pending.budget_deferred": ("", "background collects the CA's budget deferred (while waiting)"),
    "pending.budget_wait_p99_s": ("s", "p99 of how long the budget deferred a background collect (bucket bound)"),
    "pending.notice_p50_s": ("s", "orders issued at Sectigo near the end of the wait: p50 delay until the "
                                  "gateway's collect"),
    "pending.notice_max_s": ("s", "the same, worst"),
    "pending.notice_missed": ("", "of those, not noticed by the end of the wait"),
    "pending.failures": ("", "failed submissions"),
})

# Figures that may legitimately be absent: the gateway's lateness histogram is only filled when
# the engine reports collect attempts to it.
# The budget's wait histogram only once orders reach background collection, and the notice delay
# only when a sampled order was collected before the wait ended.
OPTIONAL = frozenset({"pending.gateway_lateness_p99_s", "pending.budget_wait_p99_s", "pending.notice_p50_s",
                      "pending.notice_max_s"})
NOT_MEASURED = {
    "thread hops per enrollment": "not visible from outside the process; context switches are reported instead",
}


def machine() -> dict[str, Any]:
    """Cores, load, CPU model, Python and OS of this machine."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cpu_model": model, "load_average": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "implementation": platform.python_implementation(),
            "platform": platform.platform()}


def summarise(runs: Sequence[Mapping[str, float | None]]) -> dict[str, dict[str, Any]]:
    """Per figure: median, min, max over the runs where it was measured, and every run's value."""
    keys = sorted({key for run in runs for key in run})
    summary: dict[str, dict[str, Any]] = {}
    for key in keys:
        values = [run[key] for run in runs if run.get(key) is not None]
        unit, meaning = FIGURES.get(key, ("", ""))
        entry: dict[str, Any] = {"unit": unit, "meaning": meaning,
                                 "runs": [run.get(key) for run in runs if key in run]}
        entry.update(spread([float(v) for v in values if v is not None]) if values
                     else {"median": None, "min": None, "max": None})
        summary[key] = entry
    return summary


def missing_figures(summary: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Figures the report should have but lacks (or has without a value)."""
    return [key for key in FIGURES
            if key not in OPTIONAL and (key not in summary or summary[key]["median"] is None)]


def document(*, machine_before: dict[str, Any], machine_after: dict[str, Any], settings: dict[str, Any],
             summary: dict[str, dict[str, Any]], seconds: float) -> dict[str, Any]:
    return {"machine": machine_before, "load_average_after": machine_after["load_average"], "settings": settings,
            "seconds": round(seconds, 1), "figures": summary, "not_measured": NOT_MEASURED}


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    if abs(value) >= 0.1 or value == 0:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _cell(summary: Mapping[str, Mapping[str, Any]], key: str) -> str:
    entry = summary.get(key)
    if entry is None or entry["median"] is None:
        return "—"
    unit = entry["unit"]
    text = f"{_fmt(entry['median'])} {unit}".rstrip()
    if entry["min"] != entry["max"]:
        text += f" ({_fmt(entry['min'])}–{_fmt(entry['max'])})"
    return text


def _rows(summary: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    def c(key: str) -> str:
        return _cell(summary, key)

    floors = {"grpc": "floor.grpc_ms", "rest": "floor.rest_ms", "watch": "floor.grpc_ms"}
    rows = [(f"Gateway CPU per enrollment, {name}", c(f"{mode}.cpu_ms"),
             f"floor {c(floors[mode])}; ratio {c(f'{mode}.cpu_vs_floor')}")
            for mode, name in _MODES.items()]
    rows += [
        ("  floor parts: gRPC / REST unary, CSR check, 3 HTTPS calls",
         f"{c('floor.grpc_unary_ms')} / {c('floor.rest_unary_ms')}, {c('floor.csr_check_ms')}, "
         f"{c('direct.client_cpu_ms')}", f"gateway parse_csr {c('parts.gateway_parse_csr_ms')}"),
        ("  floor parts: certificate parse, SQLite commit (each; 2 per enrollment)",
         f"{c('floor.certificate_parse_ms')}, {c('floor.sqlite_commit_ms')}", ""),
        ("Simulator CPU per order: gRPC Enroll / direct", c("grpc.simulator_cpu_ms"),
         f"direct {c('direct.simulator_cpu_ms')}"),
    ]
    rows += [(f"Throughput, {name}", c(f"{mode}.throughput"),
              f"direct {c('direct.throughput')}; ratio {c(f'{mode}.throughput_vs_direct')}")
             for mode, name in _MODES.items()]
    rows += [
        ("Latency p50 / p99, gRPC Enroll", f"{c('grpc.p50_ms')} / {c('grpc.p99_ms')}",
         f"direct {c('direct.p50_ms')} / {c('direct.p99_ms')}"),
        ("  the same, minus the back-off timer", f"{c('grpc.p50_over_backoff_ms')} / {c('grpc.p99_over_backoff_ms')}", ""),
        ("Latency p50 / p99, REST enroll", f"{c('rest.p50_ms')} / {c('rest.p99_ms')}", ""),
        ("Latency p50 / p99, EnrollAndWatch (to ISSUED)", f"{c('watch.p50_ms')} / {c('watch.p99_ms')}", ""),
        ("Sectigo calls per enrollment (gRPC)", c("grpc.sectigo_calls"), f"direct {c('direct.sectigo_calls')}"),
        ("Ledger operations · SQL statements · commits per enrollment (gRPC)",
         f"{c('grpc.ledger_ops')} · {c('grpc.sql_statements')} · {c('grpc.commits')}",
         f"REST {c('rest.sql_statements')} · {c('rest.commits')}; EnrollAndWatch "
         f"{c('watch.sql_statements')} · {c('watch.commits')}"),
        ("Gateway context switches per enrollment (gRPC)", c("grpc.ctx_switches"), ""),
        ("GetCertificate: CPU, p99, rate", f"{c('get_certificate.cpu_ms')}, {c('get_certificate.p99_ms')}",
         c("get_certificate.throughput")),
        ("GetSubject: CPU, p99, rate", f"{c('get_subject.cpu_ms')}, {c('get_subject.p99_ms')}",
         c("get_subject.throughput")),
        ("Watchers: CPU to open one, memory per stream", f"{c('watchers.open_cpu_ms')}, {c('watchers.kb_per_stream')}",
         f"1 s after closing {c('watchers.kb_per_stream_after_close')}; collects per order "
         f"{c('watchers.collects_per_order')}, repeated {c('watchers.repeated_collects')}"),
        ("Pending orders: submission rate, CPU per submit", f"{c('pending.submit_rate')}, {c('pending.submit_cpu_ms')}",
         f"Enroll p99 {c('pending.enroll_p99_ms')}"),
        ("Pending orders: collect lateness p50 / p99 / max",
         f"{c('pending.lateness_p50_ms')} / {c('pending.lateness_p99_ms')} / {c('pending.lateness_max_ms')}",
         f"{c('pending.attempts_seen')} attempts; gateway histogram p99 ≤ {c('pending.gateway_lateness_p99_s')}"),
        ("Pending orders: CPU while waiting, memory per order",
         f"{c('pending.waiting_cpu_pct')}, {c('pending.kb_per_order')}",
         f"Sectigo {c('pending.sectigo_calls_per_min')}"),
        ("Pending orders: Sectigo calls while waiting: collects, list pages",
         f"{c('pending.collects_per_min')}, {c('pending.lists_per_min')}",
         f"background collects {c('pending.background_collects_per_min')}; spared by a listing "
         f"{c('pending.collects_skipped')}"),
        ("Pending orders: budget: collects deferred, wait p99",
         f"{c('pending.budget_deferred')}, {c('pending.budget_wait_p99_s')}", ""),
        ("Pending orders: issued at Sectigo → noticed, p50 / max",
         f"{c('pending.notice_p50_s')} / {c('pending.notice_max_s')}",
         f"not noticed by the end {c('pending.notice_missed')}"),
    ]
    return rows


def table(summary: Mapping[str, Mapping[str, Any]], machine_info: Mapping[str, Any],
          settings: Mapping[str, Any]) -> str:
    """The Markdown table printed at the end (and pasted into docs/performance.md)."""
    rows = _rows(summary)
    lines = [
        f"Machine: {machine_info['cores']} cores ({machine_info['cpu_model'] or 'unknown CPU'}), load "
        f"{' '.join(str(x) for x in machine_info['load_average'])}, Python {machine_info['python']}",
        f"Runs: {settings['runs']} × {settings['enrollments']} enrollments at concurrency {settings['concurrency']}, "
        f"back-off {settings['backoff_timer']}s; pending: {settings['pending']} orders waited "
        f"{settings['pending_wait']}s; watchers: {settings['watchers']} on {settings['watch_orders']} orders",
        "",
        "| What | Measured, median (min–max) | Baseline / detail |",
        "|---|---|---|",
    ]
    lines += [f"| {what} | {measured} | {detail} |" for what, measured, detail in rows]
    failures = {k: v["median"] for k, v in summary.items() if k.endswith(".failures") and v["median"]}
    if failures:
        lines.append("")
        lines.append("Failures: " + ", ".join(f"{k} {v:g}" for k, v in failures.items()))
    return "\n".join(lines)


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
