"""The shared ledger on PostgreSQL (asyncpg), registered for ``postgresql:`` URLs.

Several gateways (replicas) open one such ledger. Modules: ``location`` (URLs,
settings, the registration), ``migrations`` (the versioned schema, migrated
under an advisory lock so replicas starting together migrate once), ``errors``
(asyncpg errors -> the gateway's tree), ``ledger`` (:class:`PostgresLedger`).
"""

from __future__ import annotations

from service.ledger.postgres.location import POSTGRES_BACKEND, PostgresSettings
from service.ledger.registry import register_backend

__all__ = ["PostgresSettings"]

register_backend(POSTGRES_BACKEND)
