"""A CA's ``gateway.background-collects`` block: how many background collects the CA may get."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from service.config.reader import Reader, parse_bool, parse_int, positive_duration
from service.config.settings import CollectBudgetSettings

__all__ = ["MAX_RATE", "parse_collect_budget", "parse_rate"]

MAX_RATE = 10_000.0  # calls per second; more is no budget at all
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|second|m|min|minute|h|hour))?\s*$", re.I)
_PER = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0}


def parse_rate(text: str) -> float:
    """``10/s``, ``300/min``, ``5000/h`` (or a bare ``10``, per second): calls per second."""
    match = _RATE.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a rate: write calls per second, minute or hour (10/s, 300/min, 5000/h)")
    per_second = float(match.group(1)) / _PER[(match.group(2) or "s").lower()]
    if not math.isfinite(per_second) or per_second <= 0:
        raise ValueError(f"{text!r} must be more than zero calls")
    if per_second > MAX_RATE:
        raise ValueError(f"{text!r} is more than {MAX_RATE:g} calls per second")
    return per_second


def parse_collect_budget(r: Reader, section: Mapping[str, Any]) -> CollectBudgetSettings:
    """``rate`` (calls per second, minute or hour), ``burst`` (calls at once after a quiet spell) and
    ``listing`` (whether a listing of the CA's pending orders may stand in for collects) and
    ``verify-after`` (how often each listed order still gets a real collect)."""
    r.reject_unknown(section, {"rate", "burst", "listing", "verify-after"})
    defaults = CollectBudgetSettings()
    return CollectBudgetSettings(
        rate=r.convert(section, "rate", parse_rate, defaults.rate),
        burst=r.convert(section, "burst", lambda t: parse_int(t, low=1, high=10_000), defaults.burst),
        listing=r.convert(section, "listing", parse_bool, defaults.listing),
        verify_after=r.convert(section, "verify-after", positive_duration, defaults.verify_after),
    )
