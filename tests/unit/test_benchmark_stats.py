"""The benchmark harness's arithmetic: percentiles, spreads, histogram quantiles, collect lateness,
and the report's completeness check."""

from __future__ import annotations

import pytest

from benchmarks.report import FIGURES, OPTIONAL, missing_figures, summarise, table
from benchmarks.stats import (
    collect_lateness,
    counter_total,
    histogram_quantile,
    percentile,
    repeated_collects,
    spread,
)


@pytest.mark.parametrize(("fraction", "expected"), [
    pytest.param(0.5, 50.0, id="ok-median"),
    pytest.param(0.99, 99.0, id="ok-p99"),
    pytest.param(1.0, 100.0, id="ok-max"),
    pytest.param(0.0, 1.0, id="ok-min"),
])
def test_percentile_is_nearest_rank(fraction: float, expected: float) -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert percentile(values, fraction) == expected


def test_percentile_and_spread_refuse_no_values() -> None:
    with pytest.raises(ValueError):
        percentile([], 0.5)
    with pytest.raises(ValueError):
        spread([])


def test_spread_is_median_min_max() -> None:
    assert spread([3.0, 1.0, 2.0, 10.0]) == {"median": 2.5, "min": 1.0, "max": 10.0}


_BEFORE = """# HELP cagw_collect_lateness_seconds How late
cagw_collect_lateness_seconds_bucket{ca="sim",le="0.01"} 1.0
cagw_collect_lateness_seconds_bucket{ca="sim",le="0.1"} 1.0
cagw_collect_lateness_seconds_bucket{ca="sim",le="1.0"} 1.0
cagw_collect_lateness_seconds_bucket{ca="sim",le="+Inf"} 1.0
cagw_ledger_operations_total{operation="create_order",outcome="ok"} 2.0
cagw_ledger_operations_total{operation="update_order",outcome="ok"} 5.0
cagw_ledger_operations_total{operation="update_order",outcome="conflict"} 1.0
"""
_AFTER = """cagw_collect_lateness_seconds_bucket{ca="sim",le="0.01"} 91.0
cagw_collect_lateness_seconds_bucket{ca="sim",le="0.1"} 99.0
cagw_collect_lateness_seconds_bucket{ca="sim",le="1.0"} 100.0
cagw_collect_lateness_seconds_bucket{ca="sim",le="+Inf"} 101.0
"""


def test_histogram_quantile_counts_only_what_was_observed_between_scrapes() -> None:
    # 100 new observations: 90 ≤ 10 ms, 8 more ≤ 100 ms, 1 ≤ 1 s, 1 above.
    assert histogram_quantile(_BEFORE, _AFTER, "cagw_collect_lateness_seconds", 0.5, ca="sim") == 0.01
    assert histogram_quantile(_BEFORE, _AFTER, "cagw_collect_lateness_seconds", 0.99, ca="sim") == 1.0
    assert histogram_quantile(_BEFORE, _AFTER, "cagw_collect_lateness_seconds", 1.0, ca="sim") == float("inf")
    assert histogram_quantile(_BEFORE, _BEFORE, "cagw_collect_lateness_seconds", 0.5) is None
    assert histogram_quantile("", "", "cagw_collect_lateness_seconds", 0.5) is None


def test_counter_total_sums_the_matching_series() -> None:
    assert counter_total(_BEFORE, "cagw_ledger_operations_total") == 8.0
    assert counter_total(_BEFORE, "cagw_ledger_operations_total", outcome="ok") == 7.0
    assert counter_total(_BEFORE, "cagw_nothing_total") == 0.0


def _collect(at: float, ssl_id: int | None) -> dict[str, object]:
    return {"time": at, "route": "collect", "sslId": ssl_id}


def test_collect_lateness_follows_the_waits_then_the_background_interval() -> None:
    calls = [{"time": 100.0, "route": "enroll", "sslId": 7},
             _collect(102.5, 7), _collect(106.5, 7), _collect(140.0, 7), _collect(101.0, None), _collect(103.0, 8)]
    lateness = collect_lateness(calls, {7: 100.0}, waits=[2.0, 4.0], background_interval=32.0)
    assert lateness == pytest.approx([0.5, 0.0, 1.5])  # order 8 was not submitted in this window


def test_collect_lateness_of_the_foreground_leaves_the_budget_paced_background_out() -> None:
    calls = [{"time": 100.0, "route": "enroll", "sslId": 7},
             _collect(102.5, 7), _collect(106.5, 7), _collect(400.0, 7)]
    lateness = collect_lateness(calls, {7: 100.0}, waits=[2.0, 4.0], background_interval=32.0, foreground_only=True)
    assert lateness == pytest.approx([0.5, 0.0])


def test_repeated_collects_counts_collects_closer_than_the_bound() -> None:
    calls = [_collect(0.0, 1), _collect(0.4, 1), _collect(5.0, 1), _collect(0.2, 2), _collect(3.0, 2)]
    assert repeated_collects(calls, within=1.0) == 1


def test_missing_figures_names_every_absent_or_empty_figure() -> None:
    complete = {key: 1.0 for key in FIGURES}
    assert missing_figures(summarise([complete])) == []
    gaps = dict(complete)
    del gaps["grpc.cpu_ms"]
    gaps["pending.lateness_p99_ms"] = None
    for optional in OPTIONAL:
        gaps[optional] = None
    assert missing_figures(summarise([gaps])) == ["grpc.cpu_ms", "pending.lateness_p99_ms"]


def test_summary_and_table_show_median_and_spread() -> None:
    runs = [{"grpc.cpu_ms": value} for value in (12.0, 14.0, 13.0)]
    summary = summarise(runs)
    assert summary["grpc.cpu_ms"] == {"unit": "ms", "meaning": FIGURES["grpc.cpu_ms"][1],
                                      "runs": [12.0, 14.0, 13.0], "median": 13.0, "min": 12.0, "max": 14.0}
    text = table(summary, {"cores": 2, "cpu_model": "", "load_average": [0.5, 0.4, 0.3], "python": "3.11.7"},
                 {"runs": 3, "enrollments": 400, "concurrency": 64, "backoff_timer": 0.1, "pending": 1000,
                  "pending_wait": 40.0, "watchers": 500, "watch_orders": 50})
    assert "| Gateway CPU per enrollment, gRPC Enroll | 13.0 ms (12.0–14.0) |" in text
