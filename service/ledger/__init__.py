"""The ledger: the durable record of orders, certificates, events and the audit trail.

The core depends on the :class:`Ledger` protocol and its records (``base``);
:class:`SQLiteLedger` is the embedded implementation, and :func:`open_ledger`
is what the application calls. Storage failures are :class:`LedgerError`
(retryable: :class:`LedgerUnavailable`); a file that cannot be a ledger is a
``ConfigError`` naming it.

Example::

    ledger = await open_ledger(Path("/var/lib/cagw/ledger.db"))
    try:
        record, created = await ledger.create_order(new_order)
    finally:
        await ledger.close()
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from service.ledger.base import (
    AuditEntry,
    CertificateEventRecord,
    CertificateRecord,
    Ledger,
    NewOrder,
    OrderKind,
    OrderRecord,
    OrderState,
    SubjectEntry,
)
from service.ledger.errors import LedgerError, LedgerUnavailable
from service.ledger.sqlite.migrations import LATEST_VERSION
from service.ledger.sqlite import SQLiteLedger, backup_database

__all__ = [
    "LATEST_VERSION",
    "AuditEntry",
    "CertificateEventRecord",
    "CertificateRecord",
    "Ledger",
    "LedgerError",
    "LedgerUnavailable",
    "NewOrder",
    "OrderKind",
    "OrderRecord",
    "OrderState",
    "SQLiteLedger",
    "SubjectEntry",
    "backup_ledger",
    "open_ledger",
]


async def open_ledger(path: Path, *, clock: Callable[[], dt.datetime] | None = None) -> Ledger:
    """Open (creating or migrating as needed) the ledger at ``path`` and return it OPEN.

    The caller closes it. Today every path is a SQLite file; a PostgreSQL
    ledger would be chosen here, so callers never name an implementation.
    """
    ledger = SQLiteLedger(path) if clock is None else SQLiteLedger(path, clock=clock)
    await ledger.open()
    return ledger


async def backup_ledger(path: Path, target: Path) -> None:
    """Write a consistent copy of the ledger at ``path``, safe while a gateway uses it."""
    await backup_database(path, target)
