"""Leases: how gateways that share one ledger split the unfinished orders between them.

Each unfinished order is worked on (submitted, collected) by at most one gateway at a time: the
one holding its lease, an owner and an expiry kept on the order's row. A gateway leases the orders
it creates, claims the orders that are due and whose lease lapsed (or that nobody holds), renews
its leases while it works on them, and gives them up when they finish or it stops. One that dies
loses its leases when they expire, and the others take its orders over from the ledger, with the
attempts and schedule recorded there.

A ledger only one gateway uses (SQLite) is not a :class:`LeasingLedger`: that gateway works on
every unfinished order. The PostgreSQL ledger is one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from service.ledger.base import OrderRecord

__all__ = ["ChangeListener", "LeaseTiming", "LeasingLedger", "leasing"]


@dataclass(frozen=True)
class LeaseTiming:
    """How long a lease lasts unless renewed, and how often the holder renews its leases (and
    looks for due orders): ``heartbeat`` is at most half of ``lease_time``, so one late renewal
    does not lose a lease."""

    lease_time: float = 30.0
    heartbeat: float = 10.0


class ChangeListener(Protocol):
    """Hears of every recorded change of any order of the ledger, from any gateway."""

    async def run(self) -> None:
        """Call the listener's ``on_change(order_id)`` for each change until cancelled; raises
        ``LedgerUnavailable`` when the connection it listens on is lost (run it again then)."""


@runtime_checkable
class LeasingLedger(Protocol):
    """A ledger several gateways share, with order leases. ``lease_owner`` names this gateway
    (unique per process); the orders :meth:`~service.ledger.base.Ledger.create_order` creates
    are leased to it in the same transaction, and a change to a finished state ends the lease."""

    @property
    def lease_owner(self) -> str: ...

    @property
    def lease_timing(self) -> LeaseTiming: ...

    async def claim_due_orders(self, *, limit: int) -> list[OrderRecord]:
        """Lease to this gateway at most ``limit`` unfinished orders that nobody holds (or whose
        lease lapsed) and whose next attempt is due, earliest first, and return them. Concurrent
        claims from several gateways never return one order twice (rows locked, skipped when
        locked); found through the index on the next attempt time."""

    async def take_lease(self, order_id: str) -> bool:
        """Lease one unfinished order to this gateway unless another holds an unexpired lease on it;
        True when this gateway holds it now."""

    async def renew_leases(self, order_ids: Sequence[str]) -> list[str]:
        """Extend this gateway's leases on ``order_ids`` in one statement; return the ids among
        them that are unfinished and no longer leased to this gateway (lost: stop working on them)."""

    async def release_leases(self, order_ids: Sequence[str] | None = None, *, keep: Sequence[str] = ()) -> int:
        """End this gateway's leases on ``order_ids`` (all of its leases when None) but those in
        ``keep``, so the others may take the orders at once; return how many ended."""

    def change_listener(self, on_change: Callable[[str], None]) -> ChangeListener:
        """A listener for every order change (see :class:`ChangeListener`)."""


def leasing(ledger: object) -> LeasingLedger | None:
    """``ledger`` as a :class:`LeasingLedger`, or None for a ledger of one gateway."""
    return ledger if isinstance(ledger, LeasingLedger) else None
