"""Fault injection: make chosen SCM routes fail, slow down or drop connections on purpose.

A :class:`FaultRule` names a route (``enroll``, ``collect``, … or ``any``), a
kind and when it fires: the next ``count`` matching requests (``None`` = no
limit), each with probability ``rate`` (``None`` = always) drawn from a seeded
RNG so benchmark runs are repeatable.

Kinds:

``status``      answer ``status`` with ``body`` (JSON, text, or SCM's error shape by default)
``throttle``    answer 429 with ``Retry-After: retry_after``
``latency``     wait ``latency`` seconds, then serve normally (stacks with other rules)
``drop``        close the connection without answering
``drop_reply``  serve the request (an enroll creates its order), then close without answering

Every rule may also carry ``latency``, applied before its action. The admin
endpoint ``/__simulator/faults`` takes the same fields in camelCase JSON.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

__all__ = [
    "FAULT_KINDS",
    "ROUTE_NAMES",
    "FaultDecision",
    "FaultInjector",
    "FaultKind",
    "FaultRule",
]

FaultKind = Literal["status", "throttle", "latency", "drop", "drop_reply"]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
ROUTE_NAMES: tuple[str, ...] = (
    "any",
    "enroll",
    "collect",
    "details",
    "list",
    "revoke",
    "renew",
    "replace",
    "approve",
    "decline",
    "types",
    "customFields",
    "organizations",
    "token",
)
JsonBody = dict[str, Any] | list[Any] | str | None


@dataclass(frozen=True)
class FaultRule:
    """One fault; see the module docstring for the kinds and the count/rate semantics."""

    route: str = "any"
    kind: FaultKind = "status"
    status: int = 500
    body: JsonBody = None
    retry_after: float = 1.0
    latency: float = 0.0
    count: int | None = 1
    rate: float | None = None

    def __post_init__(self) -> None:
        if self.route not in ROUTE_NAMES:
            raise ValueError(f"fault route must be one of {', '.join(ROUTE_NAMES)}, not {self.route!r}")
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}, not {self.kind!r}")
        if not 100 <= self.status <= 599:
            raise ValueError(f"fault status must be an HTTP status, not {self.status}")
        if self.count is not None and self.count < 1:
            raise ValueError("fault count must be at least 1 (or null for no limit)")
        if self.rate is not None and not 0.0 <= self.rate <= 1.0:
            raise ValueError("fault rate must be between 0 and 1")
        if self.latency < 0 or self.retry_after < 0:
            raise ValueError("fault latency and retryAfter must not be negative")

    @classmethod
    def from_json(cls, data: object) -> FaultRule:
        """Build a rule from the admin endpoint's camelCase JSON; raises ``ValueError``."""
        if not isinstance(data, dict):
            raise ValueError("a fault rule must be a JSON object")
        names = {
            "route": "route",
            "kind": "kind",
            "status": "status",
            "body": "body",
            "retryAfter": "retry_after",
            "latency": "latency",
            "count": "count",
            "rate": "rate",
        }
        unknown = set(data) - set(names) - {"id", "remaining"}
        if unknown:
            raise ValueError(f"unknown fault rule fields: {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {names[k]: v for k, v in data.items() if k in names}
        for key, kind in (("status", int), ("count", int)):
            if values.get(key) is not None and (isinstance(values[key], bool) or not isinstance(values[key], kind)):
                raise ValueError(f"fault {key} must be an integer")
        for key in ("retry_after", "latency", "rate"):
            value = values.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ValueError(f"fault {key} must be a number")
            if value is not None:
                values[key] = float(value)
        for key in ("route", "kind"):
            if key in values and not isinstance(values[key], str):
                raise ValueError(f"fault {key} must be a string")
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "kind": self.kind,
            "status": self.status,
            "body": self.body,
            "retryAfter": self.retry_after,
            "latency": self.latency,
            "count": self.count,
            "rate": self.rate,
        }


@dataclass(frozen=True)
class FaultDecision:
    """What to do with one request: wait ``latency`` seconds, then apply ``rule`` (if any)."""

    latency: float = 0.0
    rule: FaultRule | None = None


@dataclass
class _ActiveRule:
    id: int
    rule: FaultRule
    remaining: int | None = field(default=None)


class FaultInjector:
    """The active fault rules of one simulator; consulted once per SCM request."""

    def __init__(self, *, seed: int | None = None) -> None:
        self._rules: list[_ActiveRule] = []
        self._next_id = 1
        self._rng = random.Random(seed)
        self.applied: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"FaultInjector(rules={len(self._rules)})"

    def add(self, rule: FaultRule) -> int:
        """Activate ``rule``; returns its id (for :meth:`remove`)."""
        active = _ActiveRule(self._next_id, rule, rule.count)
        self._next_id += 1
        self._rules.append(active)
        return active.id

    def remove(self, rule_id: int) -> bool:
        before = len(self._rules)
        self._rules = [r for r in self._rules if r.id != rule_id]
        return len(self._rules) != before

    def clear(self, route: str | None = None) -> None:
        """Drop every rule, or only those of ``route``."""
        self._rules = [r for r in self._rules if route is not None and r.rule.route != route]

    def seed(self, seed: int | None) -> None:
        self._rng.seed(seed)

    def snapshot(self) -> list[dict[str, Any]]:
        """The active rules as admin-endpoint JSON, with ``id`` and ``remaining``."""
        return [{"id": r.id, **r.rule.to_json(), "remaining": r.remaining} for r in self._rules]

    def decide(self, route: str) -> FaultDecision:
        """Consume the rules that fire for this request on ``route``.

        Every firing ``latency`` rule adds its delay; the first firing rule of
        another kind is the action (later ones are not consumed).
        """
        latency = 0.0
        action: FaultRule | None = None
        for active in list(self._rules):
            rule = active.rule
            if rule.route not in ("any", route):
                continue
            if rule.kind != "latency" and action is not None:
                continue
            if rule.rate is not None and self._rng.random() >= rule.rate:
                continue
            latency += rule.latency
            if rule.kind != "latency":
                action = rule
            self.applied[route] += 1
            if active.remaining is not None:
                active.remaining -= 1
                if active.remaining <= 0:
                    self._rules.remove(active)
        return FaultDecision(latency=latency, rule=action)

