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

Write transactions handed over with :meth:`SQLiteWorker.transaction` are
**committed in groups**: when the thread takes one and finds others already
queued behind it, it runs them all, in order, inside one ``BEGIN IMMEDIATE`` …
``COMMIT``, then answers them all with one wake-up of the event loop. Each sees
the writes of those before it, exactly as if they had run one after the other;
none is answered before the group's commit. When one of them raises, the group
is rolled back and each runs again in a transaction of its own, so only the
one that failed fails.

The worker counts the SQL statements it runs (``BEGIN`` and ``COMMIT``
included) and its commits: :meth:`SQLiteWorker.counts`.

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

__all__ = ["MAX_GROUP", "SQLiteWorker", "in_transaction"]

T = TypeVar("T")
MAX_GROUP = 64  # write transactions committed together at most: bounds how long the write lock is held

Body = Callable[[sqlite3.Connection], Any]


class _Job:
    """A function for the thread (``function``), or a write transaction's body (``body``)."""

    __slots__ = ("future", "function", "body")

    def __init__(self, future: asyncio.Future[Any], function: Callable[[], Any] | None, body: Body | None) -> None:
        self.future, self.function, self.body = future, function, body


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


class _CountingConnection(sqlite3.Connection):
    """A connection that counts the statements run through it and its commits (one thread uses it)."""

    statements = 0
    commits = 0

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        self.statements += 1
        return super().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        self.statements += 1
        return super().executemany(sql, parameters)

    def commit(self) -> None:
        if self.in_transaction:  # a COMMIT statement runs only then
            self.statements += 1
            self.commits += 1
        super().commit()

    def rollback(self) -> None:
        if self.in_transaction:
            self.statements += 1
        super().rollback()


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
        self._counted: _CountingConnection | None = None  # kept after close, for the counts

    @classmethod
    async def open(cls, path: Path, *, busy_timeout: float, name: str) -> SQLiteWorker:
        """Connect on a new thread; ``busy_timeout`` (seconds) is SQLite's wait for another
        process's lock. A failed connect leaves no thread behind."""
        worker = cls(name)
        worker._thread.start()
        try:
            worker._conn = worker._counted = await worker._submit(lambda: _connect(path, busy_timeout))
        except BaseException:
            worker._jobs.put(None)
            raise
        return worker

    def counts(self) -> tuple[int, int]:
        """(SQL statements, commits) run on this connection so far, ``BEGIN`` and ``COMMIT`` included."""
        conn = self._counted
        return (conn.statements, conn.commits) if conn is not None else (0, 0)

    async def run(self, function: Callable[[sqlite3.Connection], T]) -> T:
        """``function(connection)`` on the thread: one hop, whatever it runs."""
        conn = self._conn
        if conn is None:
            raise RuntimeError("the SQLite connection is closed")
        return await self._submit(lambda: function(conn))

    async def transaction(self, body: Callable[[sqlite3.Connection], T]) -> T:
        """``body(connection)`` inside ``BEGIN IMMEDIATE`` … ``COMMIT``, committed together with the
        transactions queued next to it (see the module docstring); rolled back when it raises."""
        if self._conn is None:
            raise RuntimeError("the SQLite connection is closed")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.put(_Job(future, None, body))
        return await future

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
        self._jobs.put(_Job(future, function, None))
        return future

    def _serve(self) -> None:
        job = self._jobs.get()
        while job is not None:
            if job.body is None:
                self._run_function(job)
                job = self._jobs.get()
                continue
            group, job = self._group(job)
            self._run_group(group)
            if job is _EMPTY:
                job = self._jobs.get()

    def _group(self, first: _Job) -> tuple[list[_Job], Any]:
        """``first`` and the write transactions queued right behind it; then the next job taken
        off the queue that is not one of them (``_EMPTY`` when the queue ran dry)."""
        group = [first]
        while len(group) < MAX_GROUP:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return group, _EMPTY
            if job is None or job.body is None:
                return group, job
            group.append(job)
        return group, _EMPTY

    def _run_function(self, job: _Job) -> None:
        if job.future.cancelled():  # its caller gave up before it started: it never runs
            return
        assert job.function is not None
        try:
            result = job.function()
        except BaseException as exc:
            _deliver([(job.future, _set_exception, exc)])
        else:
            _deliver([(job.future, _set_result, result)])

    def _run_group(self, group: list[_Job]) -> None:
        # The connection as opened, not ``self._conn``: close() clears that at once but queues the
        # actual close behind the transactions already handed over, which still run.
        conn = self._counted
        live = [job for job in group if not job.future.cancelled()]
        if not live:
            return
        assert conn is not None  # transaction() refuses before the connection is open
        if len(live) == 1:
            _deliver([_answer(conn, live[0])])
            return
        results: list[object] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException as exc:  # the lock could not be had: no body ran, every one fails alike
            _deliver([(job.future, _set_exception, exc) for job in live])
            return
        try:
            for job in live:
                assert job.body is not None
                results.append(job.body(conn))
            conn.commit()
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            # Nothing of the group was kept: each again in a transaction of its own, in the same
            # order (so each sees what it saw before), and only the failing one fails.
            _deliver([_answer(conn, job) for job in live])
            return
        _deliver([(job.future, _set_result, result) for job, result in zip(live, results)])


_EMPTY: Any = object()
_Answer = tuple[asyncio.Future[Any], Callable[[asyncio.Future[Any], Any], None], object]


def _answer(conn: sqlite3.Connection, job: _Job) -> _Answer:
    """Run one write transaction on its own; its answer, to deliver."""
    assert job.body is not None
    try:
        return job.future, _set_result, in_transaction(conn, job.body)
    except BaseException as exc:
        return job.future, _set_exception, exc


def _deliver(answers: list[_Answer]) -> None:
    """Set the futures' outcomes on their loop: one wake-up of the loop for them all."""
    if not answers:
        return
    try:
        answers[0][0].get_loop().call_soon_threadsafe(_set_all, answers)
    except RuntimeError:  # the loop is closed: nobody waits for the answer any more
        pass


def _set_all(answers: list[_Answer]) -> None:
    for future, setter, value in answers:
        setter(future, value)


def _set_result(future: asyncio.Future[Any], result: object) -> None:
    if not future.done():  # cancelled while it ran: the result is dropped
        future.set_result(result)


def _set_exception(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def _connect(path: Path, busy_timeout: float) -> _CountingConnection:
    # isolation_level=None: we issue BEGIN ourselves; timeout sets SQLite's busy_timeout.
    # check_same_thread stays on: the connection is only ever used on this thread.
    conn = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout, factory=_CountingConnection)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn
