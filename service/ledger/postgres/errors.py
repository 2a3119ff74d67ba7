"""asyncpg errors -> the gateway's tree: the only place the PostgreSQL ledger catches them.

Lost connections, a server that is starting, shutting down or failing over, too
many clients, a cancelled (timed-out) statement, a serialization failure or a
deadlock are retryable (:class:`LedgerUnavailable`, with a retry hint; lost or refused
connections and a server going away as :class:`LedgerUnreachable`, which takes the
gateway's health down until the database answers); anything
else is a :class:`LedgerError`. At open, an error that is not retryable means the
database cannot serve as a ledger (:class:`ConfigError`). No message quotes the
URL: it may carry the password.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import asyncpg

from service.errors import CagwError, ConfigError
from service.ledger.errors import LedgerError, LedgerUnavailable, LedgerUnreachable, LedgerUnwritable

__all__ = ["BROKEN_CONNECTION", "map_postgres_errors", "translate_postgres_error"]

# What asyncpg raises on a connection the server (or the network) cut: seen only when it is used.
BROKEN_CONNECTION = (asyncpg.exceptions.ConnectionDoesNotExistError, asyncpg.exceptions.InterfaceError,
                     asyncpg.exceptions.InternalClientError)

_RETRY_AFTER_SECONDS = 1.0
# SQLSTATE classes and codes a later try may get past.
_RETRYABLE_CLASSES = ("08", "53", "57", "40")  # connection, resources, operator intervention, rollback
_RETRYABLE_CODES = frozenset({"55P03"})  # lock_not_available
# Nothing can be written until someone frees space or makes the database writable again.
_UNWRITABLE_CODES = {"53100": "the disk is full", "25006": "the database is read-only"}
_UNWRITABLE_RETRY_AFTER = 5.0


# The server is away, not busy: refused or cut connections, shutting down, starting, failing over.
_UNREACHABLE_CODES = frozenset({"57P01", "57P02", "57P03"})


def _unreachable(exc: BaseException) -> bool:
    if isinstance(exc, (OSError, asyncio.TimeoutError, *BROKEN_CONNECTION)):
        return True
    code = getattr(exc, "sqlstate", None) or ""
    return code[:2] == "08" or code in _UNREACHABLE_CODES


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, (OSError, asyncio.TimeoutError, *BROKEN_CONNECTION)):
        return True
    code = getattr(exc, "sqlstate", None) or ""
    return code[:2] in _RETRYABLE_CLASSES or code in _RETRYABLE_CODES


def translate_postgres_error(exc: BaseException, where: str, *, opening: bool = False) -> CagwError:
    """The gateway error for one driver error; the caller chains it ``from exc``."""
    kind = type(exc).__name__
    text = str(exc).splitlines()[0][:300] if str(exc) else kind
    unwritable = _UNWRITABLE_CODES.get(getattr(exc, "sqlstate", None) or "")
    if unwritable is not None and not opening:
        return LedgerUnwritable(f"ledger {where}: cannot be written ({unwritable}): {kind}: {text}",
                                retry_after=_UNWRITABLE_RETRY_AFTER)
    if _unreachable(exc) and not opening:
        return LedgerUnreachable(f"ledger {where}: the database is unreachable ({kind}: {text})",
                                 retry_after=_RETRY_AFTER_SECONDS)
    if _retryable(exc):
        return LedgerUnavailable(f"ledger {where}: the database is unreachable or busy ({kind}: {text})",
                                 retry_after=_RETRY_AFTER_SECONDS)
    if opening:
        return ConfigError(f"cannot open ledger {where}: {kind}: {text}")
    return LedgerError(f"ledger {where}: {kind}: {text}")


@contextlib.contextmanager
def map_postgres_errors(where: str, *, opening: bool = False) -> Iterator[None]:
    """Re-raise a driver or network error inside the block as the gateway's own error."""
    try:
        yield
    except (asyncpg.PostgresError, *BROKEN_CONNECTION, OSError, asyncio.TimeoutError) as exc:
        raise translate_postgres_error(exc, where, opening=opening) from exc
