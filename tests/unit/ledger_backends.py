"""Where the ledger contract suite finds its backends: SQLite always, PostgreSQL when a server answers.

PostgreSQL is looked for at ``CAGW_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``, the development machine's trust-auth
server). Without one, its cases are skipped with a reason that says so, and a
newcomer's ``make test`` stays green; ``CAGW_TEST_POSTGRES=required`` (set by CI)
turns an unreachable server into a failure. Each test gets a schema of its own,
dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

from service.ledger import Ledger, open_ledger, parse_target
from tests.support.clocks import FakeClock

__all__ = ["POSTGRES_URL", "OpenLedger", "postgres_reason", "postgres_schema", "postgres_store", "sqlite_store"]

POSTGRES_URL = os.environ.get("CAGW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
OpenLedger = Callable[[], Awaitable[Ledger]]


def _probe() -> str | None:
    """None when the server answers, else why not."""
    async def connect() -> None:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=3)
        await conn.close()

    try:
        asyncio.run(connect())
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError) as exc:
        return f"PostgreSQL is not reachable at {POSTGRES_URL.split('@')[-1]} ({type(exc).__name__}: {exc})"
    return None


_UNREACHABLE = _probe()


def postgres_reason() -> str | None:
    """Why the PostgreSQL cases cannot run (None when they can); fails the run when CI requires them."""
    if _UNREACHABLE is not None and os.environ.get("CAGW_TEST_POSTGRES") == "required":
        pytest.fail(f"CAGW_TEST_POSTGRES=required but {_UNREACHABLE}", pytrace=False)
    return _UNREACHABLE


@asynccontextmanager
async def postgres_schema() -> AsyncIterator[str]:
    """A fresh schema name, dropped with everything in it afterwards."""
    schema = f"cagw_test_{uuid.uuid4().hex[:16]}"
    try:
        yield schema
    finally:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


def sqlite_store(tmp_path: Path, clock: FakeClock, stack: AsyncExitStack) -> OpenLedger:
    # Through the registry, as the gateway opens it: a relative sqlite URL resolved against a folder.
    target = parse_target("sqlite:///ledger.db", resolve_path=lambda raw: tmp_path / raw)
    return lambda: open_ledger(target, clock=clock)


async def postgres_store(tmp_path: Path, clock: FakeClock, stack: AsyncExitStack) -> OpenLedger:
    schema = await stack.enter_async_context(postgres_schema())
    target = parse_target(POSTGRES_URL, options={"schema": schema, "pool-size": "4"})
    return lambda: open_ledger(target, clock=clock)
