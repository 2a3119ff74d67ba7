"""The PostgreSQL ledger's settings, as :mod:`service.ledger.postgres.location` parses them."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PostgresSettings"]


@dataclass(frozen=True)
class PostgresSettings:
    dsn: str = field(repr=False)  # as written: it may carry the password
    schema: str = "public"
    pool_size: int = 10
    statement_timeout: float = 5.0
    connect_timeout: float = 5.0
    lease_time: float = 30.0  # an order's lease lapses this long after its last renewal
    lease_heartbeat: float = 10.0  # how often a gateway renews its leases and claims due orders
