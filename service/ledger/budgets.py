"""Shared budgets: one budget of background collects per CA for every gateway on one ledger.

The budget is a token bucket kept as one number per CA, its theoretical arrival time ``free_at``
(see :mod:`service.enrollment.budget`). A gateway takes ``count`` slots at once; the ledger moves
``free_at`` on to ``max(free_at, arrival) + count * spacing`` in one statement and returns where the
batch starts, ``max(free_at, arrival)``, from which the gateway works out the slots' times itself.

A ledger only one gateway uses (SQLite) is not a :class:`BudgetLedger`: that gateway keeps its
budgets in memory. The PostgreSQL ledger is one.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["BudgetLedger", "budget_ledger"]


@runtime_checkable
class BudgetLedger(Protocol):
    async def take_budget_slots(self, ca_id: str, *, arrival: float, count: int, spacing: float) -> float:
        """Take ``count`` slots ``spacing`` seconds apart from the CA's shared bucket, none before
        ``arrival`` (epoch seconds); return the start of the batch (see the module docstring).
        Raises ``LedgerUnavailable`` when the ledger cannot be reached."""


def budget_ledger(ledger: object) -> BudgetLedger | None:
    """``ledger`` as a :class:`BudgetLedger`, or None for a ledger of one gateway."""
    return ledger if isinstance(ledger, BudgetLedger) else None
