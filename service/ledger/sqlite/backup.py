"""A consistent copy of a SQLite ledger file while a gateway uses it (``cagw ledger backup``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import aiosqlite

from service.errors import FailedPrecondition, NotFound
from service.ledger.errors import LedgerError
from service.ledger.sqlite.errors import map_sqlite_errors

__all__ = ["backup_database"]


async def backup_database(source: Path, target: Path, *, busy_timeout: float = 5.0) -> None:
    """Copy a ledger file consistently, without opening it as a ledger (so no migration runs on a
    file another gateway is using).

    Uses ``VACUUM INTO`` on a connection of its own, so neither readers nor
    writers wait for a large copy; the copy is the last committed state.
    An existing ``target`` is never overwritten (``FailedPrecondition``); a missing
    ``source`` is ``NotFound`` (rather than an empty copy of a new file).
    """
    if not source.exists():
        raise NotFound(f"no ledger at {source}", metadata={"path": str(source)})
    try:
        # Claim the name atomically; VACUUM INTO accepts an existing empty file.
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        raise FailedPrecondition(f"backup target {target} already exists; refusing to overwrite it",
                                 metadata={"path": str(target)}) from None
    except OSError as exc:
        raise LedgerError(f"ledger {source}, backup to {target}: {exc.strerror or exc}",
                          metadata={"path": str(source)}) from exc
    try:
        with map_sqlite_errors(source, doing=f"backup to {target}"):
            uri = f"{source.resolve().as_uri()}?mode=ro"
            async with aiosqlite.connect(uri, uri=True, isolation_level=None, timeout=busy_timeout) as conn:
                await conn.execute("VACUUM INTO ?", (str(target),))
        try:
            await asyncio.to_thread(_fsync, target)  # SQLite does not sync a VACUUM INTO file itself
        except OSError as exc:
            raise LedgerError(f"ledger {source}, backup to {target}: {exc.strerror or exc}",
                              metadata={"path": str(source)}) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            target.unlink()  # ours: created above
        raise


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
