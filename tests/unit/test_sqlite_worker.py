"""The SQLite worker's group commit: write transactions queued together share one commit, each sees
the writes before it, and one that fails fails alone. A real SQLite file on a real worker thread; the
thread is held busy with a function that waits for a ``threading.Event``, so the transactions queue
behind it deterministically (no sleeping)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from service.ledger.sqlite.worker import SQLiteWorker


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[SQLiteWorker]:
    opened = await SQLiteWorker.open(tmp_path / "w.db", busy_timeout=1.0, name="test-writer")
    await opened.execute("CREATE TABLE t (name TEXT UNIQUE)")
    try:
        yield opened
    finally:
        await opened.close()


def _insert(name: str) -> Callable[[sqlite3.Connection], int]:
    def body(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t (name) VALUES (?)", (name,))
        return int(conn.execute("SELECT COUNT(*) FROM t").fetchone()[0])
    return body


async def _queued_behind_a_busy_thread(worker: SQLiteWorker,
                                       bodies: list[Callable[[sqlite3.Connection], int]]) -> list[object]:
    """Hold the thread, queue every body, let it go: the bodies are all queued when it looks."""
    release, holding = threading.Event(), threading.Event()

    def hold(_conn: sqlite3.Connection) -> None:
        holding.set()
        release.wait()

    held = asyncio.ensure_future(worker.run(hold))
    await asyncio.to_thread(holding.wait)
    tasks = [asyncio.ensure_future(worker.transaction(body)) for body in bodies]
    await asyncio.sleep(0)  # every task has put its transaction in the queue
    release.set()
    await held
    return list(await asyncio.gather(*tasks, return_exceptions=True))


async def _names(worker: SQLiteWorker) -> list[str]:
    return [row[0] for row in await worker.execute_fetchall("SELECT name FROM t ORDER BY rowid")]


async def test_ok_transactions_queued_together_share_one_commit_and_see_each_other(worker: SQLiteWorker) -> None:
    statements, commits = worker.counts()
    results = await _queued_behind_a_busy_thread(worker, [_insert(f"n{i}") for i in range(5)])
    assert results == [1, 2, 3, 4, 5]  # each saw the rows of those before it
    after_statements, after_commits = worker.counts()
    assert after_commits - commits == 1
    # BEGIN, 5 × (INSERT + SELECT), COMMIT
    assert after_statements - statements == 12
    assert await _names(worker) == ["n0", "n1", "n2", "n3", "n4"]


async def test_fail_one_transaction_of_a_group_fails_alone(worker: SQLiteWorker) -> None:
    def broken(conn: sqlite3.Connection) -> int:
        _insert("half-done")(conn)
        raise ValueError("the body gave up")

    results = await _queued_behind_a_busy_thread(worker, [_insert("a"), broken, _insert("a"), _insert("c")])
    assert results[0] == 1 and isinstance(results[1], ValueError)
    assert isinstance(results[2], sqlite3.IntegrityError)  # "a" again: refused, as it would be on its own
    assert results[3] == 2
    assert await _names(worker) == ["a", "c"]  # nothing of the failed ones was kept


async def test_ok_a_transaction_cancelled_before_it_started_never_runs(worker: SQLiteWorker) -> None:
    release, holding = threading.Event(), threading.Event()

    def hold(_conn: sqlite3.Connection) -> None:
        holding.set()
        release.wait()

    held = asyncio.ensure_future(worker.run(hold))
    await asyncio.to_thread(holding.wait)
    kept = asyncio.ensure_future(worker.transaction(_insert("kept")))
    dropped = asyncio.ensure_future(worker.transaction(_insert("dropped")))
    await asyncio.sleep(0)
    dropped.cancel()
    release.set()
    await held
    assert await kept == 1
    with pytest.raises(asyncio.CancelledError):
        await dropped
    assert await _names(worker) == ["kept"]


async def test_ok_counts_include_reads_and_a_lone_write(worker: SQLiteWorker) -> None:
    statements, commits = worker.counts()
    assert await worker.transaction(_insert("x")) == 1
    await worker.execute_fetchall("SELECT * FROM t")
    assert worker.counts() == (statements + 5, commits + 1)  # BEGIN, INSERT, SELECT, COMMIT; the read


async def test_ok_transactions_handed_over_before_close_still_run(tmp_path: Path) -> None:
    worker = await SQLiteWorker.open(tmp_path / "c.db", busy_timeout=1.0, name="test-writer")
    await worker.execute("CREATE TABLE t (name TEXT UNIQUE)")
    written = [asyncio.ensure_future(worker.transaction(_insert(f"n{i}"))) for i in range(3)]
    await asyncio.sleep(0)  # handed over
    await worker.close()
    assert await asyncio.gather(*written) == [1, 2, 3]
    with pytest.raises(RuntimeError, match="closed"):
        await worker.transaction(_insert("late"))
