"""Pure arithmetic of the figures: percentiles, medians with their spread, a quantile from a
Prometheus histogram, and how late collect attempts ran according to the simulator's call log."""

from __future__ import annotations

import math
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "Spread",
    "collect_lateness",
    "counter_total",
    "histogram_quantile",
    "percentile",
    "repeated_collects",
    "spread",
]

Spread = dict[str, float]


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` 0.5 = median, 0.99 = p99) of a non-empty sample."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def spread(values: Sequence[float]) -> Spread:
    """Median, min and max of one figure over the runs."""
    if not values:
        raise ValueError("spread of no values")
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _samples(exposition: str, name: str) -> Iterable[tuple[dict[str, str], float]]:
    for line in exposition.splitlines():
        match = _SAMPLE.match(line)
        if match is None or match["name"] != name:
            continue
        labels = dict(_LABEL.findall(match["labels"] or ""))
        yield labels, float(match["value"])


def counter_total(exposition: str, name: str, **labels: str) -> float:
    """The sum of every series of ``name`` whose labels include ``labels``."""
    return sum(value for found, value in _samples(exposition, name)
               if all(found.get(key) == wanted for key, wanted in labels.items()))


def _buckets(exposition: str, name: str, labels: dict[str, str]) -> list[tuple[float, float]]:
    buckets: dict[float, float] = defaultdict(float)
    for found, value in _samples(exposition, f"{name}_bucket"):
        if all(found.get(key) == wanted for key, wanted in labels.items()):
            buckets[float(found["le"])] += value
    return sorted(buckets.items())


def histogram_quantile(before: str, after: str, name: str, fraction: float, **labels: str) -> float | None:
    """The upper bound of the bucket holding the ``fraction`` quantile of what was observed between two
    scrapes (``+Inf`` when it lies above the last finite bucket); None when nothing was observed."""
    earlier = dict(_buckets(before, name, labels))
    delta = [(bound, count - earlier.get(bound, 0.0)) for bound, count in _buckets(after, name, labels)]
    if not delta or delta[-1][1] <= 0:
        return None
    wanted = fraction * delta[-1][1]
    return next(bound for bound, cumulative in delta if cumulative >= wanted)


def _collects_by_order(calls: Sequence[dict[str, Any]]) -> dict[int, list[float]]:
    collects: dict[int, list[float]] = defaultdict(list)
    for call in calls:
        if call["route"] == "collect" and call["sslId"] is not None:
            collects[int(call["sslId"])].append(float(call["time"]))
    return collects


def collect_lateness(calls: Sequence[dict[str, Any]], submitted: dict[int, float], waits: Sequence[float],
                     background_interval: float, *, foreground_only: bool = False) -> list[float]:
    """Seconds each collect attempt ran after it was due, as the simulator saw it.

    An attempt is due ``waits[n]`` after the previous one was dispatched (the first: after the
    order was submitted, ``submitted[ssl_id]`` on the simulator's clock); once the waits are used
    up, every ``background_interval``. Only orders still pending are meaningful: an issued order
    has a second download right after its last collect, which this counts as one attempt.
    ``foreground_only``: the attempts of ``waits`` alone (background collects are paced by the
    CA's budget and may be spared by a listing, so they have no fixed due time).
    """
    collects = _collects_by_order(calls)
    lateness: list[float] = []
    for ssl_id, times in collects.items():
        if ssl_id not in submitted:
            continue
        previous = submitted[ssl_id]
        for number, at in enumerate(sorted(times)):
            if foreground_only and number >= len(waits):
                break
            wait = waits[number] if number < len(waits) else background_interval
            lateness.append(at - previous - wait)
            previous = at
    return lateness


def repeated_collects(calls: Sequence[dict[str, Any]], *, within: float) -> int:
    """How many collect calls followed one of the same order sooner than ``within`` seconds: with
    one collect loop per order and waits of a second or more, there are none."""
    collects = _collects_by_order(calls)
    count = 0
    for times in collects.values():
        ordered = sorted(times)
        count += sum(1 for a, b in zip(ordered, ordered[1:], strict=False) if b - a < within)
    return count
