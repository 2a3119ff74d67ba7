"""What the tracker asks of the other gateways' share of the work, when several share one ledger.

The tracker runs the orders this gateway holds the lease of. For the others it needs two things:
the lease of an order before it starts working on one (a retried request, an operator's retry),
and a channel fed from the ledger for the watchers and waiting callers of an order that another
gateway works on. :class:`~service.enrollment.replicas.Replicas` provides both; with a ledger of
one gateway there is nothing to share and the tracker has none.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from service.enrollment.channel import OrderChannel
from service.ledger.base import OrderRecord

__all__ = ["SharedOrders"]


class SharedOrders(Protocol):
    async def acquire(self, order: OrderRecord) -> bool:
        """Lease the order to this gateway; False when another gateway works on it."""

    def take_up(self, order: OrderRecord) -> None:
        """Work on the order here once its lease is ours (in the background; nothing when another
        gateway holds it)."""

    def follow(self, order_id: str) -> AbstractAsyncContextManager[OrderChannel]:
        """A channel with the order's current state, then each change any gateway records, until
        the order is final; it is fed while the context is open."""
