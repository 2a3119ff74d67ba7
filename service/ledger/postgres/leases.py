"""The SQL of order leases on PostgreSQL (see :mod:`service.ledger.leases`), and the listener of
order changes.

Times are the ledger's fixed-width ISO text, so comparing text compares times. A claim locks the
rows it takes (``FOR UPDATE SKIP LOCKED``): gateways claiming at once each get other orders, and
none waits for another's claim. Renewals and claims touch only the lease columns, so they change
no order's version and announce nothing to watchers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from service.ledger.base import OrderRecord
from service.ledger.postgres.errors import map_postgres_errors
from service.ledger.postgres.migrations import UNFINISHED_SQL
from service.ledger.sqlite.rows import order_from_row

__all__ = ["CHANGES_CHANNEL", "OrderChangeListener", "claim_due", "release", "renew", "take"]

CHANGES_CHANNEL = "cagw_orders"  # the migration's trigger notifies it with SCHEMA:ORDER_ID

_FREE = "(lease_until IS NULL OR lease_until < $2 OR lease_owner = $1)"


async def claim_due(conn: asyncpg.Connection, owner: str, now: str, until: str, limit: int) -> list[OrderRecord]:
    rows = await conn.fetch(
        "WITH due AS (SELECT id FROM orders "
        f"WHERE {UNFINISHED_SQL} AND COALESCE(next_attempt_at, '') <= $2 "
        "AND (lease_until IS NULL OR lease_until < $2) "
        "ORDER BY COALESCE(next_attempt_at, '') LIMIT $4 FOR UPDATE SKIP LOCKED) "
        "UPDATE orders o SET lease_owner = $1, lease_until = $3 FROM due WHERE o.id = due.id RETURNING o.*",
        owner, now, until, limit)
    return sorted((order_from_row(row) for row in rows), key=lambda order: order.next_attempt_at or order.created_at)


async def take(conn: asyncpg.Connection, owner: str, now: str, until: str, order_id: str) -> bool:
    taken = await conn.fetchval(
        f"WITH taken AS (UPDATE orders SET lease_owner = $1, lease_until = $3 WHERE id = $4 AND {UNFINISHED_SQL} "
        f"AND {_FREE} RETURNING 1) SELECT COUNT(*) FROM taken", owner, now, until, order_id)
    return bool(taken)


async def renew(conn: asyncpg.Connection, owner: str, until: str, order_ids: Sequence[str]) -> list[str]:
    # Every listed row is updated (its lease extended only when ours) so that RETURNING shows each as
    # it is after any write that finished meanwhile: a snapshot taken at the start would call an order
    # issued a moment ago "lost" and stop its task before it told its callers.
    rows = await conn.fetch(
        "UPDATE orders SET lease_until = CASE WHEN lease_owner = $1 THEN $2 ELSE lease_until END "
        "WHERE id = ANY($3::text[]) RETURNING id, state, lease_owner", owner, until, list(order_ids))
    return [str(row["id"]) for row in rows
            if row["lease_owner"] != owner and row["state"] not in ("ISSUED", "FAILED", "ABANDONED")]


async def release(conn: asyncpg.Connection, owner: str, order_ids: Sequence[str] | None,
                  keep: Sequence[str] = ()) -> int:
    released = await conn.fetchval(
        "WITH gone AS (UPDATE orders SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1 "
        "AND ($2::text[] IS NULL OR id = ANY($2::text[])) AND NOT (id = ANY($3::text[])) RETURNING 1) "
        "SELECT COUNT(*) FROM gone", owner, None if order_ids is None else list(order_ids), list(keep))
    return int(released)


class OrderChangeListener:
    """LISTEN on its own connection (not the pool's: a listening connection stays checked out)."""

    def __init__(self, dsn: str, server_settings: dict[str, str], *, schema: str, where: str, timeout: float,
                 on_change: Callable[[str], None]) -> None:
        self._dsn = dsn
        self._server_settings = server_settings
        self._prefix = f"{schema}:"
        self._where = where
        self._timeout = timeout
        self._on_change = on_change

    def __repr__(self) -> str:
        return f"OrderChangeListener({self._where!r})"

    def _heard(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        if payload.startswith(self._prefix):
            self._on_change(payload[len(self._prefix):])

    async def run(self) -> None:
        lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_lost(_conn: Any) -> None:
            if not lost.done():
                lost.set_result(None)

        with map_postgres_errors(self._where):
            conn = await asyncpg.connect(self._dsn, timeout=self._timeout, server_settings=self._server_settings)
        try:
            conn.add_termination_listener(on_lost)
            with map_postgres_errors(self._where):
                await conn.add_listener(CHANGES_CHANNEL, self._heard)
            await lost
            with map_postgres_errors(self._where):
                raise ConnectionResetError("the listening connection was closed")
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), self._timeout)
