"""``sqlite3`` errors → the gateway's tree: the only place the SQLite ledger catches them (STYLE 5)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from service.errors import CagwError, ConfigError
from service.ledger.errors import LedgerError, LedgerUnavailable, LedgerUnwritable

__all__ = ["map_sqlite_errors", "translate_sqlite_error"]

_RETRYABLE_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
_RETRY_AFTER_SECONDS = 1.0
# The file cannot grow or be written: a full disk (or max_page_count reached), a read-only file.
_UNWRITABLE_CODES = {sqlite3.SQLITE_FULL: "the disk is full", sqlite3.SQLITE_READONLY: "the file is read-only"}
_UNWRITABLE_RETRY_AFTER = 5.0


def translate_sqlite_error(exc: sqlite3.Error, path: Path, *, opening: bool = False,
                           doing: str = "") -> CagwError:
    """The gateway error for one ``sqlite3`` error; the caller chains it ``from exc``.

    Busy or locked is retryable (:class:`LedgerUnavailable`). Anything else at
    open means the file cannot serve as a ledger (:class:`ConfigError` naming
    it); later it is a :class:`LedgerError`. ``doing`` adds what was under way
    to the message (``"backup to /x/copy.db"``).
    """
    where = f"ledger {path}" + (f", {doing}" if doing else "")
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in _RETRYABLE_CODES:  # low byte: the primary result code
        return LedgerUnavailable(f"{where}: locked by another connection or process: {exc}",
                                 retry_after=_RETRY_AFTER_SECONDS, metadata={"path": str(path)})
    if code is not None and code & 0xFF in _UNWRITABLE_CODES and not opening:
        return LedgerUnwritable(f"{where}: cannot be written ({_UNWRITABLE_CODES[code & 0xFF]}): {exc}",
                                retry_after=_UNWRITABLE_RETRY_AFTER, metadata={"path": str(path)})
    if opening:
        return ConfigError(f"cannot open ledger {path}: {exc}", metadata={"path": str(path)})
    return LedgerError(f"{where}: {exc}", metadata={"path": str(path)})


@contextlib.contextmanager
def map_sqlite_errors(path: Path, *, opening: bool = False, doing: str = "") -> Iterator[None]:
    """Re-raise any ``sqlite3.Error`` inside the block as the gateway's own error."""
    try:
        yield
    except sqlite3.Error as exc:
        raise translate_sqlite_error(exc, path, opening=opening, doing=doing) from exc

