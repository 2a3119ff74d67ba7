"""Errors of the ledger, added to the gateway's tree.

::

    CagwError
    ├── LedgerError            the ledger's storage failed (not retryable as such)
    │   └── LedgerUnavailable  retryable: the database is locked or busy; has retry_after
    │       └── LedgerUnwritable  retryable: the disk is full or the file read-only
    ├── FailedPrecondition
    │   └── OrderChanged       a conditional update lost: the order is no longer as the caller read it
    └── AlreadyExists
        └── DuplicateOrder     another unfinished order already has this CSR (fingerprint)

A ledger that cannot be opened (missing folder, corrupt file, schema written by
a newer gateway) is a :class:`~service.errors.ConfigError` naming it; the
storage errors cover failures once the ledger is open. Only ``service.ledger``
creates these, translating its driver's errors at its edge.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.errors import AlreadyExists, CagwError, FailedPrecondition

if TYPE_CHECKING:
    from service.ledger.base import OrderRecord

__all__ = ["DuplicateOrder", "LedgerError", "LedgerUnavailable", "LedgerUnwritable", "OrderChanged"]


class LedgerError(CagwError):
    """The ledger's storage failed; the message names the database file."""

    reason = "LEDGER_ERROR"


class LedgerUnavailable(LedgerError):
    """Retryable: another connection or process holds the database; ``retry_after`` in seconds."""

    reason = "LEDGER_UNAVAILABLE"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class LedgerUnwritable(LedgerUnavailable):
    """The ledger can be read but not written: its disk is full or its file read-only. Nothing was
    written; the gateway reports itself not serving until a write goes through again."""

    reason = "LEDGER_UNWRITABLE"


class OrderChanged(FailedPrecondition):
    """A conditional update found the order in another state or version; ``current`` is it now."""

    reason = "ORDER_CHANGED"

    def __init__(self, message: str, *, current: OrderRecord, **kwargs: object) -> None:
        self.current = current
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class DuplicateOrder(AlreadyExists):
    """The change would leave two unfinished orders for one CSR; ``existing`` is the other one."""

    reason = "DUPLICATE_ORDER"

    def __init__(self, message: str, *, existing: OrderRecord, **kwargs: object) -> None:
        self.existing = existing
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
