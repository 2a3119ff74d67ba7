"""What the core tells the observability side: a small protocol the engine and policy code call.

The core (enrollment engine, caller policy, quotas) gets a :class:`GatewayEvents`
at construction and calls it where something worth counting happens; the
gateway passes its metrics, the default is :data:`NO_EVENTS`. This module
imports nothing beyond the standard library, so the core may depend on it
without knowing Prometheus, logging formats or OpenTelemetry.

Label values must stay a small set: ``ca_id`` and ``client`` come from the
configuration; ``reason`` and ``outcome`` are fixed words (an ErrorInfo reason,
``issued``, ``pending``, ``unavailable`` …), never a DN, serial or order id.

Calls expected (see docs/operations.md, "Hooks of the core"):

- ``collect_attempted`` — the engine, once per collect attempt, with how late
  the attempt ran against its due time (``next_attempt_at``);
- ``collect_budgeted`` — the engine, once per background collect it schedules,
  with how long the CA's budget of background collects deferred it;
- ``collect_skipped`` — the engine, once per background attempt that needed no
  collect (the CA's listing of the orders it is still processing showed it);
- ``policy_refused`` / ``quota_refused`` — the caller policy, once per refusal.

Order states, their gauges and their log lines need no call: every order record
coming out of the ledger is seen by :mod:`service.observability.orders`.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["COLLECT_OUTCOMES", "NO_EVENTS", "GatewayEvents", "NoEvents"]

# What a collect attempt can end in (the ``outcome`` of collect_attempted).
COLLECT_OUTCOMES = ("issued", "pending", "unavailable", "rejected", "error")


class GatewayEvents(Protocol):
    """Counted events of the core. Every method returns at once and never raises."""

    def collect_attempted(self, *, ca_id: str, lateness: float, outcome: str) -> None:
        """A collect attempt of an order of ``ca_id`` ran ``lateness`` seconds after it was due
        (0 or more) and ended in ``outcome`` (one of :data:`COLLECT_OUTCOMES`)."""

    def collect_budgeted(self, *, ca_id: str, deferred: float, tokens: float, queued: int) -> None:
        """A background collect of an order of ``ca_id`` got its slot from the CA's budget:
        ``deferred`` seconds after its schedule's due time (0: not deferred), leaving ``tokens``
        in the bucket and ``queued`` slots (this one included) still to come."""

    def collect_skipped(self, *, ca_id: str) -> None:
        """A background attempt of an order of ``ca_id`` made no collect: the CA's listing of the orders
        it is still processing showed the order."""

    def policy_refused(self, *, client: str, reason: str) -> None:
        """The caller policy refused a call of ``client`` (its configured name) for ``reason``."""

    def quota_refused(self, *, client: str, reason: str) -> None:
        """A quota refused a call of ``client`` (its configured name) for ``reason``."""


class NoEvents:
    """The events of a core that nobody watches."""

    def collect_attempted(self, *, ca_id: str, lateness: float, outcome: str) -> None:
        return None

    def collect_budgeted(self, *, ca_id: str, deferred: float, tokens: float, queued: int) -> None:
        return None

    def collect_skipped(self, *, ca_id: str) -> None:
        return None

    def policy_refused(self, *, client: str, reason: str) -> None:
        return None

    def quota_refused(self, *, client: str, reason: str) -> None:
        return None


NO_EVENTS: GatewayEvents = NoEvents()
