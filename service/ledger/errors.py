"""Errors of the ledger's storage itself, added to the gateway's tree.

::

    CagwError
    └── LedgerError            the ledger's storage failed (not retryable as such)
        └── LedgerUnavailable  retryable: the database is locked or busy; has retry_after

A ledger that cannot be opened (missing folder, corrupt file, schema written by
a newer gateway) is a :class:`~service.errors.ConfigError` naming the file;
these two cover failures once the ledger is open. Only ``service.ledger``
creates them, translating ``sqlite3`` errors at its edge.
"""

from __future__ import annotations

from service.errors import CagwError

__all__ = ["LedgerError", "LedgerUnavailable"]


class LedgerError(CagwError):
    """The ledger's storage failed; the message names the database file."""

    reason = "LEDGER_ERROR"


class LedgerUnavailable(LedgerError):
    """Retryable: another connection or process holds the database; ``retry_after`` in seconds."""

    reason = "LEDGER_UNAVAILABLE"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
