"""The ledger: the durable record of orders, certificates, events and the audit trail.

The core depends on the :class:`Ledger` protocol and its records (``base``).
Implementations are backends chosen by the scheme of ``ledger.url``
(``registry``): :class:`SQLiteLedger` (``sqlite/``, the embedded default) is
one; a database server shared by several gateways is another package next to
it. :func:`open_ledger` is what the application calls. Storage failures are
:class:`LedgerError` (retryable: :class:`LedgerUnavailable`); a ledger that
cannot be opened is a ``ConfigError`` naming it.

Example::

    ledger = await open_ledger(config.ledger)        # or open_ledger(Path("ledger.db"))
    try:
        record, created = await ledger.create_order(new_order)
    finally:
        await ledger.close()
"""

from __future__ import annotations

import os
from pathlib import Path

from service.errors import Unimplemented
from service.ledger.base import (
    AuditEntry,
    CertificateEventRecord,
    CertificateQuery,
    CertificateRecord,
    InventoryEntry,
    Ledger,
    NewOrder,
    OrderKind,
    OrderRecord,
    OrderState,
    RevocationClaim,
    ServerKey,
    SubjectEntry,
    SubjectPosition,
)
from service.ledger.errors import (
    DuplicateOrder,
    LedgerError,
    LedgerUnavailable,
    LedgerUnreachable,
    LedgerUnwritable,
    OrderChanged,
)
from service.ledger.registry import (
    Clock,
    LedgerBackend,
    LedgerSection,
    LedgerSettingsError,
    LedgerTarget,
    create_ledger,
    parse_target,
    register_backend,
    target_of,
)
from service.ledger.sqlite import SQLiteLedger
from service.ledger.sqlite.migrations import LATEST_VERSION

__all__ = [
    "LATEST_VERSION",
    "AuditEntry",
    "CertificateEventRecord",
    "CertificateQuery",
    "CertificateRecord",
    "InventoryEntry",
    "DuplicateOrder",
    "Ledger",
    "LedgerBackend",
    "LedgerError",
    "LedgerSettingsError",
    "LedgerTarget",
    "LedgerUnavailable",
    "LedgerUnreachable",
    "LedgerUnwritable",
    "NewOrder",
    "OrderChanged",
    "OrderKind",
    "OrderRecord",
    "OrderState",
    "RevocationClaim",
    "SQLiteLedger",
    "ServerKey",
    "SubjectEntry",
    "SubjectPosition",
    "backup_ledger",
    "open_ledger",
    "parse_target",
    "register_backend",
]


async def open_ledger(where: LedgerSection | LedgerTarget | os.PathLike[str], *,
                      clock: Clock | None = None) -> Ledger:
    """Open (creating or migrating as needed) the ledger ``where`` names and return it OPEN.

    ``where`` is a configuration's ``ledger`` settings, a parsed target, or a
    path (a SQLite file). The caller closes the ledger; callers never name an
    implementation.
    """
    ledger = create_ledger(target_of(where), clock=clock)
    await ledger.open()
    return ledger


async def backup_ledger(where: LedgerSection | LedgerTarget | os.PathLike[str], copy: Path) -> None:
    """Write a consistent copy of the ledger ``where`` names to ``copy``, safe while gateways use it.

    A backend without a copy of its own raises ``Unimplemented`` saying so.
    """
    target = target_of(where)
    backup = target.backend.backup
    if backup is None:
        raise Unimplemented(f"the {target.backend.name} ledger {target.shown} cannot be copied by "
                            "`cagw ledger backup`; back it up with its database's own tools",
                            reason="LEDGER_BACKUP_UNSUPPORTED", metadata={"ledger": target.shown})
    await backup(target.settings, Path(copy))
