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
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["SQLiteWorker", "in_transaction"]

T = TypeVar("T")

_Job = tuple[asyncio.Future[Any], Callable[[], Any]]


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
    """A connection (autocommit mode, ``sqlite3.Row`` rows, foreign keys on) and its thread.

    A job is an asyncio future and a function in a queue; the thread sets the future's
    result through ``call_soon_threadsafe``: one queue put and one wake-up of the loop,
    less than ``run_in_executor`` costs (a second, concurrent future and its lock).
    """

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._conn: sqlite3.Connection | None = None

    @classmethod
    async def open(cls, path: Path, *, busy_timeout: float, name: str) -> SQLiteWorker:
        """Connect on a new thread; ``busy_timeout`` (seconds) is SQLite's wait for another
        process's lock. A failed connect leaves no thread behind."""
        worker = cls(name)
        worker._thread.start()
        try:
            worker._conn = await worker._submit(lambda: _connect(path, busy_timeout))
        except BaseException:
            worker._jobs.put(None)
            raise
        return worker

    async def run(self, function: Callable[[sqlite3.Connection], T]) -> T:
        """``function(connection)`` on the thread: one hop, whatever it runs."""
        conn = self._conn
        if conn is None:
            raise RuntimeError("the SQLite connection is closed")
        return await self._submit(lambda: function(conn))

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
            await self._submit(conn.close)
        finally:
            self._jobs.put(None)  # the thread ends after the close

    def _submit(self, function: Callable[[], T]) -> asyncio.Future[T]:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.put((future, function))
        return future

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            future, function = job
            if future.cancelled():  # its caller gave up before it started: it never runs
                continue
            try:
                result = function()
            except BaseException as exc:
                _deliver(future, _set_exception, exc)
            else:
                _deliver(future, _set_result, result)


def _deliver(future: asyncio.Future[Any], setter: Callable[[asyncio.Future[Any], Any], None], value: object) -> None:
    try:
        future.get_loop().call_soon_threadsafe(setter, future, value)
    except RuntimeError:  # the loop is closed: nobody waits for the answer any more
        pass


def _set_result(future: asyncio.Future[Any], result: object) -> None:
    if not future.done():  # cancelled while it ran: the result is dropped
        future.set_result(result)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


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
