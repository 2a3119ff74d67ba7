"""The SQL of the CA budgets of background collects that every gateway on one PostgreSQL ledger
shares (see :mod:`service.ledger.budgets`)."""

from __future__ import annotations

import asyncpg

__all__ = ["take_slots"]

# One statement, one round trip: the row is made on first use, else moved on by the slots taken
# from the later of its current value and the arrival. Concurrent takers queue on the row's lock.
_TAKE = ("INSERT INTO ca_budgets AS b (ca_id, free_at) VALUES ($1, $2::float8 + $3::float8) "
         "ON CONFLICT (ca_id) DO UPDATE SET free_at = GREATEST(b.free_at, $2::float8) + $3::float8 "
         "RETURNING b.free_at - $3::float8")


async def take_slots(pool: asyncpg.Pool, ca_id: str, *, arrival: float, count: int, spacing: float) -> float:
    return float(await pool.fetchval(_TAKE, ca_id, arrival, count * spacing))
