"""The PostgreSQL backend's own behaviour: its URL and keys, no password in any message, outages,
migrating once when replicas start together. The protocol's guarantees are in the contract suite."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from service.config import parse_config
from service.errors import ConfigError
from service.ledger import LedgerUnavailable, open_ledger, parse_target
from service.ledger.postgres import PostgresSettings
from service.ledger.postgres.migrations import LATEST_VERSION
from tests.e2e.processes import free_port
from tests.support.settings import ca_entry, config_document
from tests.unit.ledger_backends import POSTGRES_URL, postgres_reason, postgres_schema

PASSWORD = "pg-pass-W0rd"
SERVER = urlsplit(POSTGRES_URL)


def document(ledger: dict[str, Any]) -> dict[str, Any]:
    return config_document(None, ca_entry(ca_id="ca-1"), ledger=ledger)


def test_ok_url_and_keys(tmp_path: Path) -> None:
    config = parse_config(document({"url": f"postgresql://cagw:{PASSWORD}@db.internal:5432/pki", "schema": "cagw",
                                    "pool-size": "20", "statement-timeout": "2s", "connect-timeout": "500ms"}),
                          base_dir=tmp_path, environ={})
    settings = config.ledger.target.settings
    assert isinstance(settings, PostgresSettings)
    assert (settings.schema, settings.pool_size, settings.statement_timeout, settings.connect_timeout) == (
        "cagw", 20, 2.0, 0.5)
    assert config.ledger.url == "postgresql://cagw:***@db.internal:5432/pki (schema cagw)"
    assert PASSWORD not in repr(config.ledger) + repr(settings) + config.ledger.url
    assert config.ledger.path is None


@pytest.mark.parametrize(("ledger", "expected"), [
    ({"url": "postgresql:///pki"}, ["ledger.url: names no database server: write postgresql://USER@HOST:5432/DATABASE"]),
    ({"url": f"postgres://u:{PASSWORD}@db/pki", "schema": "Bad-Name", "pool-size": "0", "statement-timeout": "soon"},
     ["ledger.schema: 'Bad-Name' is not a schema name (lower-case letters, digits and _)",
      "ledger.pool-size: '0' is not a whole number from 1 to 100",
      "ledger.statement-timeout: 'soon' is not a duration above zero (examples: 5s, 500ms)"]),
    ({"url": "postgresql://db/pki", "path": "x.db"},
     ["ledger.url: give url or path, not both (path is short for a sqlite:/// url)"]),
])
def test_fail_settings_named_by_key(ledger: dict[str, Any], expected: list[str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(document(ledger), base_dir=tmp_path, environ={})
    assert caught.value.problems == expected
    assert PASSWORD not in str(caught.value.problems)


async def test_fail_an_unreachable_server_is_unavailable_without_the_password() -> None:
    target = parse_target(f"postgresql://cagw:{PASSWORD}@127.0.0.1:{free_port()}/pki",
                          options={"connect-timeout": "2s"})
    with pytest.raises(LedgerUnavailable) as caught:
        await open_ledger(target)
    assert "unreachable" in caught.value.message and PASSWORD not in caught.value.message
    assert caught.value.retry_after == 1.0


@pytest.fixture
def server() -> None:
    reason = postgres_reason()
    if reason is not None:
        pytest.skip(reason)


async def test_ok_replicas_starting_together_migrate_once(server: None) -> None:
    async with postgres_schema() as schema:
        target = parse_target(POSTGRES_URL, options={"schema": schema})
        ledgers = await asyncio.gather(*(open_ledger(target) for _ in range(4)))
        try:
            conn = await asyncpg.connect(POSTGRES_URL)
            try:
                versions = [row[0] for row in await conn.fetch(f'SELECT version FROM "{schema}".schema_version '
                                                                "ORDER BY version")]
            finally:
                await conn.close()
            assert versions == list(range(1, LATEST_VERSION + 1))
        finally:
            for ledger in ledgers:
                await ledger.close()


async def test_ok_connections_cut_by_the_server_are_replaced_without_an_error(server: None) -> None:
    """As after a failover or an idle-connection reaper: a read on a cut connection is tried again on
    a fresh one, so readers see no error."""
    async with postgres_schema() as schema:
        ledger = await open_ledger(parse_target(POSTGRES_URL, options={"schema": schema, "pool-size": "2"}))
        try:
            assert await ledger.unfinished_orders() == []
            admin = await asyncpg.connect(POSTGRES_URL)
            try:
                cut = await admin.fetchval("SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                           "WHERE application_name = $1", f"cagw:{schema}")
            finally:
                await admin.close()
            assert cut >= 1
            assert [await ledger.unfinished_orders() for _ in range(3)] == [[], [], []]
        finally:
            await ledger.close()


class Relay:
    """A TCP relay to the PostgreSQL server that a test can take down and bring back on the same port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.StreamWriter] = set()

    async def up(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def down(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._pipes):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(SERVER.hostname, SERVER.port or 5432)
        self._pipes |= {writer, upstream_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except OSError:
                pass
            finally:
                sink.transport.abort()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


async def test_fail_a_database_gone_mid_run_is_unavailable_then_recovers_by_itself(server: None) -> None:
    relay = Relay(free_port())
    await relay.up()
    url = POSTGRES_URL.replace(SERVER.netloc.rpartition("@")[2], f"127.0.0.1:{relay.port}", 1)
    async with postgres_schema() as schema:
        ledger = await open_ledger(parse_target(url, options={"schema": schema, "connect-timeout": "1s"}))
        try:
            assert await ledger.unfinished_orders() == []
            await relay.down()
            for _ in range(2):
                with pytest.raises(LedgerUnavailable) as caught:
                    await ledger.unfinished_orders()
                assert caught.value.retry_after == 1.0
            await relay.up()
            assert await ledger.unfinished_orders() == []  # no restart of the gateway needed
        finally:
            await ledger.close()
            await relay.down()
