"""Order limits, counted from the ledger (so a restart resets nothing) before an order is written.

Per client: ``limits.max-pending`` (orders not yet issued or failed) and
``limits.orders-per-hour`` (orders placed in the last hour, whatever became of
them). Per CA: ``gateway.max-pending-orders`` across all clients. A retry of an
existing order (same idempotency key, or the same pending CSR) places nothing
and is not counted against them: the engine asks only for new orders.
"""

from __future__ import annotations

import datetime as dt

from service.errors import QuotaExceeded
from service.ledger.base import Ledger
from service.policy.caller import Caller

__all__ = ["PENDING_RETRY_SECONDS", "check_quotas"]

HOUR = dt.timedelta(hours=1)
# When pending orders are the limit, nothing says when one will finish: a retry hint of this long.
PENDING_RETRY_SECONDS = 30.0


async def check_quotas(ledger: Ledger, caller: Caller, *, ca_id: str, ca_max_pending: int,
                       now: dt.datetime) -> QuotaExceeded | None:
    """The first limit a new order of ``caller`` on ``ca_id`` would exceed, or None."""
    pending, _ = await ledger.count_orders(ca_id=ca_id, unfinished=True)
    if pending >= ca_max_pending:
        return QuotaExceeded(f"CA {ca_id} has {pending} orders pending, its limit (gateway.max-pending-orders "
                             f"{ca_max_pending}); no order was placed, retry later", retry_after=PENDING_RETRY_SECONDS,
                             metadata={"ca_id": ca_id, "limit": "max-pending-orders", "value": str(ca_max_pending)})
    client = caller.client
    if client is None:
        return None
    limits = client.limits
    if limits.max_pending is not None:
        mine, _ = await ledger.count_orders(client=client.name, unfinished=True)
        if mine >= limits.max_pending:
            return QuotaExceeded(f"client {client.name} has {mine} orders pending, its limit (limits.max-pending "
                                 f"{limits.max_pending}); no order was placed, retry when one is issued",
                                 retry_after=PENDING_RETRY_SECONDS,
                                 metadata={"client": client.name, "limit": "max-pending",
                                           "value": str(limits.max_pending)})
    if limits.orders_per_hour is not None:
        placed, oldest = await ledger.count_orders(client=client.name, since=now - HOUR)
        if placed >= limits.orders_per_hour:
            wait = max(1.0, ((oldest + HOUR) - now).total_seconds()) if oldest is not None else 60.0
            return QuotaExceeded(f"client {client.name} placed {placed} orders in the last hour, its limit "
                                 f"(limits.orders-per-hour {limits.orders_per_hour}); no order was placed",
                                 retry_after=wait, metadata={"client": client.name, "limit": "orders-per-hour",
                                                             "value": str(limits.orders_per_hour)})
    return None
