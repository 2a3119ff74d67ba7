"""One ``sqlite3`` connection on its own thread, so no query blocks the event loop.

:meth:`SQLiteWorker.run` hands a plain function to the thread and awaits it:
the function runs every statement it needs (a whole write transaction, with
its commit) on the connection, and the event loop is woken once, when it is
done. That is one thread hop per ledger operation, where a driver that awaits
each statement costs one or two hops per statement.

The thread runs one function at a time, in the order they were handed over,
so a worker is also the lock of its connection. A function cancelled before
it started does not run; one already running finishes (a transaction is never
cut in half) and its result is dropped.

Example::

    worker = await SQLiteWorker.open(path, busy_timeout=5.0, name="ledger-writer")
    count = await worker.run(lambda conn: conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0])
    await worker.close()
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

__all__ = ["SQLiteWorker", "in_transaction"]

T = TypeVar("T")


def in_transaction(conn: sqlite3.Connection, body: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``body`` inside ``BEGIN IMMEDIATE`` … ``COMMIT``; roll back when it raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = body(conn)
        conn.commit()
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    return result


class SQLiteWorker:
    """A connection (autocommit mode, ``sqlite3.Row`` rows, foreign keys on) and its thread."""

    def __init__(self, executor: concurrent.futures.ThreadPoolExecutor, conn: sqlite3.Connection) -> None:
        self._executor = executor
        self._conn: sqlite3.Connection | None = conn

    @classmethod
    async def open(cls, path: Path, *, busy_timeout: float, name: str) -> SQLiteWorker:
        """Connect on a new thread; ``busy_timeout`` (seconds) is SQLite's wait for another
        process's lock. A failed connect leaves no thread behind."""
        executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        try:
            conn = await asyncio.get_running_loop().run_in_executor(executor, _connect, path, busy_timeout)
        except BaseException:
            executor.shutdown(wait=False)
            raise
        return cls(executor, conn)

    async def run(self, function: Callable[[sqlite3.Connection], T]) -> T:
        """``function(connection)`` on the thread: one hop, whatever it runs."""
        conn = self._conn
        if conn is None:
            raise RuntimeError("the SQLite connection is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, conn)

    async def execute_fetchall(self, sql: str, parameters: Sequence[object] = ()) -> list[sqlite3.Row]:
        """Every row of one statement."""
        return await self.run(lambda conn: conn.execute(sql, parameters).fetchall())

    async def execute(self, sql: str, parameters: Iterable[object] = ()) -> None:
        """One statement, its rows ignored (what migrations need)."""
        await self.run(lambda conn: conn.execute(sql, tuple(parameters)).close())

    async def commit(self) -> None:
        await self.run(lambda conn: conn.commit())

    async def rollback(self) -> None:
        await self.run(lambda conn: conn.rollback())

    async def close(self) -> None:
        """Close the connection after every function already handed over; closing twice is fine."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, conn.close)
        finally:
            self._executor.shutdown(wait=False)


def _connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN ourselves; timeout sets SQLite's busy_timeout.
    # check_same_thread stays on: the connection is only ever used on this thread.
    conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn
