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

from service.errors import AlreadyExists, CagwError, FailedPrecondition, NotFound

if TYPE_CHECKING:
    from service.ledger.base import OrderRecord, OrderState

__all__ = ["DuplicateOrder", "LedgerError", "LedgerUnavailable", "LedgerUnwritable", "OrderChanged", "lost_update",
           "twin_refusal"]


class LedgerError(CagwError):
    """The ledger's storage failed; the message names the database file."""

    reason = "LEDGER_ERROR"


class LedgerUnavailable(LedgerError):
    """Retryable: another connection or process holds the database; ``retry_after`` in seconds."""

    reason = "LEDGER_UNAVAILABLE"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class LedgerUnreachable(LedgerUnavailable):
    """The database server cannot be reached (refused or lost connections, a server shutting down or
    failing over): not a busy moment but an outage. The gateway reports itself not serving until a
    write goes through again."""


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


def lost_update(order_id: str, current: OrderRecord | None, expected_state: OrderState | None,
                expected_version: int | None) -> CagwError:
    """Why a conditional update changed nothing: the order is unknown, or it moved meanwhile
    (``current`` is what it is now). The same words from every backend."""
    if current is None:
        return NotFound(f"order {order_id} not found", metadata={"order_id": order_id})
    wanted = " and ".join(part for part in (
        f"state {expected_state.value}" if expected_state is not None else "",
        f"version {expected_version}" if expected_version is not None else "") if part)
    return OrderChanged(f"order {order_id} changed meanwhile: expected {wanted}, found state "
                        f"{current.state.value} at version {current.version}", current=current,
                        metadata={"order_id": order_id, "state": current.state.value,
                                  "version": str(current.version)})


def twin_refusal(order_id: str, twin: OrderRecord) -> DuplicateOrder:
    """Reviving ``order_id`` was refused: ``twin`` is already unfinished for the same CSR."""
    return DuplicateOrder(f"order {order_id} cannot be resumed: order {twin.id} is already unfinished for the same "
                          "CSR, CA and profile", existing=twin, metadata={"order_id": order_id, "existing": twin.id})
