"""``PostgresLedger``: the :class:`~service.ledger.base.Ledger` on a PostgreSQL database several gateways share.

The guarantees the protocol gives hold across gateways because PostgreSQL keeps
them, not a process: creating an order takes transaction-scoped advisory locks
on its request id, fingerprint and id (so concurrent creates of one request wait
for each other and then see the first one's row), the unique indexes back them
up, state changes are conditional UPDATEs, and issue and revoke are idempotent
per serial by their own row (``ON CONFLICT``, ``WHERE status <> 'revoked'``).
Certificate events get their ids in commit order (an advisory lock around the
insert), so a reader that resumes after an id never skips an event committed
later with a smaller one. Unfinished orders are split between the gateways by
leases (:mod:`service.ledger.leases`; the SQL in :mod:`.leases`): an order is
leased to the gateway that creates it in the creating transaction, and the
write that finishes it ends its lease.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import enum
import hashlib
import json
import os
import re
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import asyncpg

from service.clock import Clock, utcnow
from service.errors import NotFound, Unimplemented
from service.ledger.base import (
    AuditEntry,
    CertificateEventRecord,
    CertificateQuery,
    CertificateRecord,
    InventoryEntry,
    NewOrder,
    OrderRecord,
    OrderState,
    OutboxEvent,
    RevocationClaim,
    ServerKey,
    SubjectEntry,
    SubjectPosition,
)
from service.ledger.leases import LeaseTiming
from service.ledger.errors import DuplicateOrder, LedgerUnwritable, lost_update, twin_refusal
from service.ledger.postgres import budgets, leases
from service.ledger.postgres.errors import BROKEN_CONNECTION, map_postgres_errors
from service.ledger.postgres.settings import PostgresSettings
from service.ledger.postgres.migrations import UNFINISHED_SQL, migrate
from service.ledger.registry import redact_url
from service.ledger.sqlite.inventory import (
    EXPIRING_INSERT,
    INVENTORY_SELECT,
    OUTBOX_SELECT,
    count_statement,
    expiring_params,
    failed_reason,
    inventory_entries,
    inventory_entry,
    inventory_where,
)
from service.ledger.sqlite.rows import (
    CERT_COLUMNS,
    CERT_SELECT,
    NEW_ORDER_COLUMNS,
    certificate_from_row,
    audit_entry_from_row,
    event_from_row,
    outbox_event_from_row,
    subject_entry_from_row,
    from_ts,
    new_order_values,
    order_from_row,
    ts,
    ts_or_none,
)
from service.ledger.sqlite.statements import existing_for
from service.x509.pem import der_from_pem_bundle, pem_bundle

__all__ = ["PostgresLedger", "application_name"]

# Namespaces of the transaction-scoped advisory locks (hashed with their key parts into one bigint).
_LOCK_REQUEST, _LOCK_FINGERPRINT, _LOCK_ORDER, _LOCK_EVENTS = 1, 2, 3, 4
_FAILED = (OrderState.FAILED, OrderState.ABANDONED)
_TWIN_WHERE = f"ca_id = $1 AND fingerprint = $2 AND {UNFINISHED_SQL}"
_TWIN_ORDER = "ORDER BY duplicate_of IS NOT NULL, created_at, seq"
_FINISHED = "('ISSUED', 'FAILED', 'ABANDONED')"


def numbered(sql: str) -> str:
    """SQLite's ``?`` placeholders as PostgreSQL's ``$1``, ``$2``, … (the shared inventory SQL holds
    no ``?`` inside a literal)."""
    counter = iter(range(1, 10_000))
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


def application_name(settings: PostgresSettings) -> str:
    """What ``pg_stat_activity`` shows for the gateway's connections: ``cagw``, or ``cagw:SCHEMA``."""
    return "cagw" if settings.schema == "public" else f"cagw:{settings.schema}"


class _State(enum.Enum):
    UNOPENED = "UNOPENED"
    OPEN = "OPEN"
    CLOSED = "CLOSED"


class PostgresLedger:
    """See the module docstring. UNOPENED, then OPEN (``await open()`` or ``async with``), then CLOSED."""

    def __init__(self, settings: PostgresSettings, *, clock: Clock = utcnow) -> None:
        self._settings = settings
        self._clock = clock
        self._pool: asyncpg.Pool | None = None
        self._state = _State.UNOPENED
        # Names this process's leases: unique per start, readable in the orders table.
        self._owner = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.where = redact_url(settings.dsn) + (f" (schema {settings.schema})" if settings.schema != "public" else "")

    def __repr__(self) -> str:
        return f"PostgresLedger({self.where!r}, state={self._state.value})"

    async def __aenter__(self) -> PostgresLedger:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect a pool, create the schema if needed and apply pending migrations (once across
        replicas). An unreachable server is ``LedgerUnavailable``; a database that cannot be a
        ledger a ``ConfigError``."""
        if self._state is not _State.UNOPENED:
            raise RuntimeError(f"cannot open a ledger that is {self._state.value.lower()}: {self.where}")
        settings = self._settings
        server_settings = self._server_settings()
        with map_postgres_errors(self.where, opening=True):
            pool = await asyncpg.create_pool(settings.dsn, min_size=1, max_size=settings.pool_size,
                                             timeout=settings.connect_timeout, server_settings=server_settings)
            try:
                async with pool.acquire() as conn:
                    await migrate(conn, schema=settings.schema, where=self.where, clock=self._clock)
            except BaseException:
                await pool.close()
                raise
        self._pool = pool
        self._state = _State.OPEN

    def _server_settings(self) -> dict[str, str]:
        settings = self._settings
        return {"search_path": settings.schema, "application_name": application_name(settings),
                "statement_timeout": str(int(settings.statement_timeout * 1000))}

    async def close(self) -> None:
        """Close the pool after the calls in flight; closing twice is fine."""
        pool, self._pool = self._pool, None
        self._state = _State.CLOSED
        if pool is not None:
            with contextlib.suppress(Exception):
                await pool.close()

    def _open_pool(self) -> asyncpg.Pool:
        if self._state is not _State.OPEN or self._pool is None:
            hint = " (use `await ledger.open()` or `async with`)" if self._state is _State.UNOPENED else ""
            raise RuntimeError(f"ledger {self.where} is {self._state.value.lower()}{hint}")
        return self._pool

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[asyncpg.Connection]:
        pool = self._open_pool()
        with map_postgres_errors(self.where):
            async with pool.acquire() as conn, conn.transaction():
                yield conn

    async def _read(self, sql: str, *params: object) -> list[Any]:
        """One query. A connection the server closed meanwhile (a failover, an idle reaper) is
        noticed only when used: a read is tried once more on a fresh one, since it changes nothing."""
        pool = self._open_pool()
        with map_postgres_errors(self.where):
            try:
                return list(await pool.fetch(sql, *params))
            except BROKEN_CONNECTION:
                await pool.expire_connections()  # the others may be cut too: replace them all
                return list(await pool.fetch(sql, *params))

    # -- orders

    async def create_order(self, order: NewOrder) -> tuple[OrderRecord, bool]:
        """As the protocol says; concurrent creates of one request (from any gateway) wait for each
        other on advisory locks, so the later ones find the first one's order."""
        now = ts(self._clock())
        async with self._transaction() as conn:
            if order.request_id is not None:
                await _lock(conn, _LOCK_REQUEST, order.ca_id, order.request_id)
            await _lock(conn, _LOCK_FINGERPRINT, order.ca_id, order.fingerprint)
            await _lock(conn, _LOCK_ORDER, order.id)
            rows = await conn.fetch(
                f"SELECT * FROM orders WHERE (ca_id = $1 AND request_id = $2) "
                f"OR (ca_id = $1 AND fingerprint = $3 AND {UNFINISHED_SQL}) OR id = $4 {_TWIN_ORDER}",
                order.ca_id, order.request_id, order.fingerprint, order.id)
            existing = existing_for(order, rows)
            if existing is not None:
                return existing, False
            placeholders = ", ".join(f"${n}" for n in range(1, len(NEW_ORDER_COLUMNS) + 3))
            await conn.execute(f"INSERT INTO orders ({', '.join(NEW_ORDER_COLUMNS)}, lease_owner, lease_until) "
                               f"VALUES ({placeholders})", *new_order_values(order, now), self._owner,
                               self._lease_until())
            await _append_history(conn, order.id, now, OrderState.RECEIVED, "")
            if order.server_key is not None:
                await conn.execute("INSERT INTO server_keys (order_id, encrypted_pkcs8, created_at, expires_at) "
                                   "VALUES ($1, $2, $3, $4)", order.id, order.server_key.encrypted_pkcs8, now,
                                   ts(order.server_key.expires_at))
            if order.requested_dn:
                await _file_order(conn, order.ca_id, order.requested_dn, order.id, now)
            record = await _order(conn, order.id)
        assert record is not None
        return record, True

    async def get_order(self, order_id: str) -> OrderRecord | None:
        rows = await self._read("SELECT * FROM orders WHERE id = $1", order_id)
        return order_from_row(rows[0]) if rows else None

    async def find_order_by_request_id(self, ca_id: str, request_id: str) -> OrderRecord | None:
        rows = await self._read("SELECT * FROM orders WHERE ca_id = $1 AND request_id = $2", ca_id, request_id)
        return order_from_row(rows[0]) if rows else None

    async def find_unfinished_by_fingerprint(self, ca_id: str, fingerprint: str) -> OrderRecord | None:
        rows = await self._read(f"SELECT * FROM orders WHERE {_TWIN_WHERE} {_TWIN_ORDER} LIMIT 1", ca_id, fingerprint)
        return order_from_row(rows[0]) if rows else None

    async def count_orders(self, *, ca_id: str | None = None, client: str | None = None,
                           unfinished: bool = False, since: dt.datetime | None = None) -> tuple[int, dt.datetime | None]:
        where = ["($1::text IS NULL OR ca_id = $1)", "($2::text IS NULL OR client = $2)",
                 "($3::text IS NULL OR created_at >= $3)"]
        if unfinished:
            where.append(UNFINISHED_SQL)
        rows = await self._read(f"SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM orders "
                                f"WHERE {' AND '.join(where)}", ca_id, client, ts_or_none(since))
        oldest = rows[0]["oldest"]
        return int(rows[0]["n"]), (from_ts(oldest) if oldest is not None else None)

    async def unfinished_orders(self) -> list[OrderRecord]:
        rows = await self._read(f"SELECT * FROM orders WHERE {UNFINISHED_SQL} ORDER BY created_at, seq")
        return [order_from_row(row) for row in rows]

    async def update_order(
        self,
        order_id: str,
        *,
        state: OrderState,
        ca_order_id: str | None = None,
        attempts: int | None = None,
        next_attempt_at: dt.datetime | None = None,
        detail: str | None = None,
        error_reason: str | None = None,
        expected_state: OrderState | None = None,
        expected_version: int | None = None,
    ) -> OrderRecord:
        now = ts(self._clock())
        async with self._transaction() as conn:
            before = await conn.fetchval("SELECT state FROM orders WHERE id = $1 FOR UPDATE", order_id) \
                if state in _FAILED else None
            try:
                async with conn.transaction():  # a savepoint: the duplicate check below still runs
                    changed = await conn.fetchval(
                        "WITH moved AS (UPDATE orders SET state = $1, updated_at = $2, version = version + 1, "
                        "ca_order_id = COALESCE($3, ca_order_id), attempts = COALESCE($4, attempts), "
                        "next_attempt_at = COALESCE($5, next_attempt_at), detail = COALESCE($6, detail), "
                        "error_reason = COALESCE($7, error_reason), "
                        f"lease_owner = CASE WHEN $1 IN {_FINISHED} THEN NULL ELSE lease_owner END, "
                        f"lease_until = CASE WHEN $1 IN {_FINISHED} THEN NULL ELSE lease_until END "
                        "WHERE id = $8 AND ($9::text IS NULL OR state = $9) AND ($10::integer IS NULL OR version = $10) "
                        "RETURNING 1) SELECT COUNT(*) FROM moved",
                        state.value, now, ca_order_id, attempts, ts_or_none(next_attempt_at), detail, error_reason,
                        order_id, expected_state.value if expected_state else None, expected_version)
            except asyncpg.UniqueViolationError:
                duplicate = await _duplicate_error(conn, order_id)
                if duplicate is None:
                    raise
                raise duplicate from None
            if not changed:
                raise await _lost_update_error(conn, order_id, expected_state, expected_version)
            await _append_history(conn, order_id, now, state, detail or "")
            record = await _order(conn, order_id)
            assert record is not None
            if before is not None and OrderState(before) not in _FAILED:  # its owner is told, once per failure
                await _insert_event(conn, record.ca_id, "failed", "", record.updated_at, detail=record.detail,
                                    reason=failed_reason(record.state.value, record.error_reason),
                                    order_id=record.id)
        return record

    # -- leases (see service.ledger.leases)

    @property
    def lease_owner(self) -> str:
        return self._owner

    @property
    def lease_timing(self) -> LeaseTiming:
        return LeaseTiming(lease_time=self._settings.lease_time, heartbeat=self._settings.lease_heartbeat)

    def _lease_until(self) -> str:
        return ts(self._clock() + dt.timedelta(seconds=self._settings.lease_time))

    async def take_budget_slots(self, ca_id: str, *, arrival: float, count: int, spacing: float) -> float:
        # Not retried on a broken connection: the slots may have been taken, and taking them again
        # only ever means fewer calls to the CA.
        with map_postgres_errors(self.where):
            return await budgets.take_slots(self._open_pool(), ca_id, arrival=arrival, count=count,
                                            spacing=spacing)

    async def claim_due_orders(self, *, limit: int) -> list[OrderRecord]:
        async with self._transaction() as conn:
            return await leases.claim_due(conn, self._owner, ts(self._clock()), self._lease_until(), max(limit, 0))

    async def take_lease(self, order_id: str) -> bool:
        async with self._transaction() as conn:
            return await leases.take(conn, self._owner, ts(self._clock()), self._lease_until(), order_id)

    async def renew_leases(self, order_ids: Sequence[str]) -> list[str]:
        if not order_ids:
            return []
        async with self._transaction() as conn:
            return await leases.renew(conn, self._owner, self._lease_until(), order_ids)

    async def release_leases(self, order_ids: Sequence[str] | None = None, *, keep: Sequence[str] = ()) -> int:
        async with self._transaction() as conn:
            return await leases.release(conn, self._owner, order_ids, keep)

    def change_listener(self, on_change: Callable[[str], None]) -> leases.OrderChangeListener:
        return leases.OrderChangeListener(self._settings.dsn, self._server_settings(), schema=self._settings.schema,
                                          where=self.where, timeout=self._settings.connect_timeout,
                                          on_change=on_change)

    async def order_history(self, order_id: str) -> list[tuple[dt.datetime, OrderState, str]]:
        rows = await self._read("SELECT time, state, detail FROM order_history WHERE order_id = $1 ORDER BY seq",
                                order_id)
        return [(from_ts(row["time"]), OrderState(row["state"]), str(row["detail"])) for row in rows]

    async def list_orders(self, *, states: Sequence[OrderState] = (), ca_id: str | None = None,
                          before: tuple[dt.datetime, str] | None = None, limit: int = 100) -> list[OrderRecord]:
        """Newest first; see :meth:`Ledger.list_orders`."""
        where = ["($1::text IS NULL OR ca_id = $1)"]
        params: list[object] = [ca_id]
        if states:
            params.append([state.value for state in states])
            where.append(f"state = ANY(${len(params)}::text[])")
        if before is not None:
            params += [ts(before[0]), before[1]]
            where.append(f"(created_at, id) < (${len(params) - 1}, ${len(params)})")
        params.append(max(limit, 0))
        rows = await self._read(f"SELECT * FROM orders WHERE {' AND '.join(where)} "
                                f"ORDER BY created_at DESC, id DESC LIMIT ${len(params)}", *params)
        return [order_from_row(row) for row in rows]

    # -- keys the gateway made

    async def get_server_key(self, order_id: str) -> ServerKey | None:
        rows = await self._read("SELECT encrypted_pkcs8, expires_at FROM server_keys WHERE order_id = $1", order_id)
        if not rows:
            return None
        return ServerKey(encrypted_pkcs8=bytes(rows[0]["encrypted_pkcs8"]), expires_at=from_ts(rows[0]["expires_at"]))

    async def delete_server_key(self, order_id: str) -> bool:
        async with self._transaction() as conn:
            gone = await conn.fetchval("WITH gone AS (DELETE FROM server_keys WHERE order_id = $1 RETURNING 1) "
                                       "SELECT COUNT(*) FROM gone", order_id)
        return bool(gone)

    async def purge_server_keys(self, *, expired_at: dt.datetime) -> int:
        async with self._transaction() as conn:
            return int(await conn.fetchval("WITH gone AS (DELETE FROM server_keys WHERE expires_at <= $1 "
                                           "RETURNING 1) SELECT COUNT(*) FROM gone", ts(expired_at)))

    # -- certificates

    async def record_issued(self, order_id: str | None, certificate: CertificateRecord,
                            *, subject_dns: Sequence[str] = (), attempts: int | None = None,
                            detail: str | None = None) -> OrderRecord | None:
        now_dt = self._clock()
        now = ts(now_dt)
        ca_id, serial = certificate.ca_id, certificate.serial_number
        async with self._transaction() as conn:
            order: OrderRecord | None = None
            if order_id is not None:
                rows = await conn.fetch("SELECT * FROM orders WHERE id = $1 FOR UPDATE", order_id)
                if not rows:
                    raise NotFound(f"order {order_id} not found", metadata={"order_id": order_id})
                order = order_from_row(rows[0])
                if order.ca_id != ca_id:
                    raise ValueError(f"order {order_id} belongs to CA {order.ca_id}, "
                                     f"certificate {serial} to CA {ca_id}")
            inserted = await _insert_certificate(conn, certificate, order_id, now)
            if inserted:
                await _insert_event(conn, ca_id, "issued", serial, certificate.issued_at or now_dt,
                                    detail=certificate.subject_dn)
            else:
                stored = await _certificate(conn, ca_id, serial)
                assert stored is not None
                if order_id is not None and stored.order_id is None:
                    await _link_certificate(conn, ca_id, serial, order_id)
                elif order_id is None and stored.order_id is not None:
                    order_id = stored.order_id  # already ours: file the order, not a loose certificate
            dns = [dn for dn in dict.fromkeys((certificate.subject_dn, *subject_dns)) if dn]
            if order_id is None:
                for dn in dns:
                    await conn.execute("INSERT INTO subjects (ca_id, dn, order_id, serial_number, created_at) "
                                       "VALUES ($1, $2, NULL, $3, $4) ON CONFLICT DO NOTHING", ca_id, dn, serial, now)
                return None
            if order is not None and (order.state is not OrderState.ISSUED or order.serial_number != serial):
                await conn.execute("UPDATE orders SET state = $1, serial_number = $2, updated_at = $3, "
                                   "version = version + 1, attempts = COALESCE($5, attempts), "
                                   "detail = COALESCE($6, detail), lease_owner = NULL, lease_until = NULL "
                                   "WHERE id = $4",
                                   OrderState.ISSUED.value, serial, now, order_id, attempts, detail)
                await _append_history(conn, order_id, now, OrderState.ISSUED, f"serial {serial}")
                await _insert_replaced(conn, order, serial, certificate.issued_at or now_dt)
            for dn in dns:
                await _file_order(conn, ca_id, dn, order_id, now)
            return await _order(conn, order_id) if order is not None else None

    async def get_certificate(self, ca_id: str, serial_number: str) -> CertificateRecord | None:
        rows = await self._read(f"SELECT {CERT_SELECT} FROM certificates c WHERE c.ca_id = $1 AND c.serial_number = $2",
                                ca_id, serial_number)
        return certificate_from_row(rows[0]) if rows else None

    async def mark_revoked(self, ca_id: str, serial_number: str, *, reason: str, comment: str,
                           when: dt.datetime, compromise_date: dt.datetime | None = None
                           ) -> CertificateRecord | None:
        async with self._transaction() as conn:
            await conn.execute("DELETE FROM revocation_claims WHERE ca_id = $1 AND serial_number = $2",
                               ca_id, serial_number)
            changed = await conn.fetchval(
                "WITH moved AS (UPDATE certificates SET status = 'revoked', revoked_at = $1, revocation_reason = $2, "
                "revocation_comment = $3, compromise_date = $4 WHERE ca_id = $5 AND serial_number = $6 "
                "AND status <> 'revoked' RETURNING 1) SELECT COUNT(*) FROM moved",
                ts(when), reason, comment, ts_or_none(compromise_date), ca_id, serial_number)
            if changed:
                await _insert_event(conn, ca_id, "revoked", serial_number, when, detail=comment, reason=reason)
            return await _certificate(conn, ca_id, serial_number)

    async def claim_revocation(self, ca_id: str, serial_number: str, *, claimant: str,
                               seconds: float) -> RevocationClaim:
        now_dt = self._clock()
        now, expires = ts(now_dt), ts(now_dt + dt.timedelta(seconds=seconds))
        async with self._transaction() as conn:
            await conn.execute(
                "INSERT INTO revocation_claims (ca_id, serial_number, claimant, claimed_at, expires_at) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (ca_id, serial_number) DO UPDATE SET "
                "claimant = excluded.claimant, claimed_at = excluded.claimed_at, expires_at = excluded.expires_at "
                "WHERE revocation_claims.expires_at <= excluded.claimed_at "
                "OR revocation_claims.claimant = excluded.claimant",
                ca_id, serial_number, claimant, now, expires)
            row = await conn.fetchrow("SELECT claimant, expires_at FROM revocation_claims "
                                      "WHERE ca_id = $1 AND serial_number = $2", ca_id, serial_number)
        return RevocationClaim(ca_id=ca_id, serial_number=serial_number, claimant=str(row["claimant"]),
                               expires_at=from_ts(row["expires_at"]))

    async def release_revocation(self, ca_id: str, serial_number: str, *, claimant: str) -> bool:
        async with self._transaction() as conn:
            gone = await conn.fetchval(
                "WITH gone AS (DELETE FROM revocation_claims WHERE ca_id = $1 AND serial_number = $2 "
                "AND claimant = $3 RETURNING 1) SELECT COUNT(*) FROM gone", ca_id, serial_number, claimant)
        return bool(gone)

    # -- inventory (the same SQL as the SQLite ledger's, with numbered placeholders)

    async def record_expiring(self, ca_id: str, *, now: dt.datetime, within: dt.timedelta,
                              beyond: dt.timedelta, label: str, limit: int) -> int:
        params = expiring_params(ca_id, now=now, within=within, beyond=beyond, label=label, limit=limit)
        async with self._transaction() as conn:
            await _lock(conn, _LOCK_EVENTS)
            return int(await conn.fetchval(f"WITH added AS ({numbered(EXPIRING_INSERT)} RETURNING 1) "
                                           "SELECT COUNT(*) FROM added", *params))

    async def list_certificates(self, query: CertificateQuery) -> list[InventoryEntry]:
        where, params = inventory_where(query)
        return inventory_entries(await self._read(numbered(INVENTORY_SELECT + where), *params))

    async def count_certificates(self, ca_id: str, *, now: dt.datetime,
                                 horizons: Sequence[dt.timedelta]) -> list[tuple[str, str, int, int]]:
        sql, params = count_statement(ca_id, now, horizons)
        return [(str(row[0]), str(row[1]), int(row[2]), int(row[3])) for row in await self._read(numbered(sql), *params)]

    async def inventory_entry(self, ca_id: str, serial_number: str) -> InventoryEntry | None:
        rows = await self._read(INVENTORY_SELECT + " WHERE c.ca_id = $1 AND c.serial_number = $2", ca_id, serial_number)
        return inventory_entry(rows[0]) if rows else None

    async def subject_entries(self, ca_id: str, normalized_dn: str, *, before: SubjectPosition | None = None,
                              limit: int | None = None) -> list[SubjectEntry]:
        entry_time = "COALESCE(o.created_at, c.issued_at, c.not_before, s.created_at)"
        after = "" if before is None else f"AND ({entry_time} < $3 OR ({entry_time} = $3 AND s.id < $4)) "
        parameters: tuple[object, ...] = (ca_id, normalized_dn)
        if before is not None:
            parameters += (before.time, before.filing_id)
        rows = await self._read(
            f"SELECT s.id AS s_id, s.order_id AS s_order_id, o.state AS o_state, {CERT_SELECT}, "
            f"{entry_time} AS entry_time "
            "FROM subjects s "
            "LEFT JOIN orders o ON o.id = s.order_id "
            "LEFT JOIN certificates c ON c.ca_id = s.ca_id "
            "    AND c.serial_number = COALESCE(o.serial_number, s.serial_number) "
            f"WHERE s.ca_id = $1 AND s.dn = $2 {after}ORDER BY entry_time DESC, s.id DESC"
            + ("" if limit is None else f" LIMIT {int(limit)}"),
            *parameters)
        return [subject_entry_from_row(row) for row in rows]

    # -- feed, outbox and audit

    async def list_events(self, ca_id: str, *, after_id: int, since: dt.datetime | None,
                          limit: int, actions: Sequence[str] = ()) -> list[CertificateEventRecord]:
        rows = await self._read(
            "SELECT * FROM certificate_events WHERE ca_id = $1 AND id > $2 AND ($3::text IS NULL OR time >= $3) "
            "AND (cardinality($5::text[]) = 0 OR action = ANY($5::text[])) ORDER BY id LIMIT $4",
            ca_id, after_id, ts_or_none(since), max(limit, 0), list(actions))
        return [event_from_row(row) for row in rows]

    async def count_events(self, ca_id: str, *, since: dt.datetime | None, actions: Sequence[str] = ()) -> int:
        rows = await self._read("SELECT COUNT(*) FROM certificate_events WHERE ca_id = $1 "
                                "AND ($2::text IS NULL OR time >= $2) "
                                "AND (cardinality($3::text[]) = 0 OR action = ANY($3::text[]))",
                                ca_id, ts_or_none(since), list(actions))
        return int(rows[0][0])

    async def events_after(self, after_id: int, *, limit: int) -> list[OutboxEvent]:
        rows = await self._read(numbered(OUTBOX_SELECT), after_id, max(limit, 0))
        return [outbox_event_from_row(row) for row in rows]

    async def ca_chain(self, ca_id: str) -> tuple[bytes, ...]:
        rows = await self._read("SELECT chain_pem FROM ca_chains WHERE ca_id = $1", ca_id)
        return tuple(der_from_pem_bundle(str(rows[0]["chain_pem"]))) if rows else ()

    async def keep_ca_chain(self, ca_id: str, chain: Sequence[bytes]) -> tuple[bytes, ...]:
        if chain:
            async with self._transaction() as conn:
                await conn.execute("INSERT INTO ca_chains (ca_id, chain_pem, learned_at) VALUES ($1, $2, $3) "
                                   "ON CONFLICT (ca_id) DO NOTHING", ca_id, pem_bundle(chain), ts(self._clock()))
        return await self.ca_chain(ca_id)

    async def latest_event_id(self) -> int:
        rows = await self._read("SELECT COALESCE(MAX(id), 0) FROM certificate_events")
        return int(rows[0][0])

    async def webhook_cursor(self, name: str) -> int | None:
        rows = await self._read("SELECT last_event_id FROM webhook_cursors WHERE name = $1", name)
        return int(rows[0][0]) if rows else None

    async def advance_webhook_cursor(self, name: str, event_id: int) -> None:
        async with self._transaction() as conn:
            await conn.execute(
                "INSERT INTO webhook_cursors (name, last_event_id, updated_at) VALUES ($1, $2, $3) "
                "ON CONFLICT (name) DO UPDATE SET last_event_id = excluded.last_event_id, "
                "updated_at = excluded.updated_at WHERE excluded.last_event_id > webhook_cursors.last_event_id",
                name, event_id, ts(self._clock()))

    async def append_audit(self, entry: AuditEntry) -> None:
        async with self._transaction() as conn:
            await conn.execute("INSERT INTO audit (time, ca_id, actor, action, target, outcome, detail, client) "
                               "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", ts(entry.time), entry.ca_id, entry.actor,
                               entry.action, entry.target, entry.outcome, entry.detail, entry.client)

    async def audit_entries(self, *, ca_id: str | None = None, limit: int = 100,
                            target: str | None = None) -> list[AuditEntry]:
        rows = await self._read("SELECT * FROM audit WHERE ($1::text IS NULL OR ca_id = $1) "
                                "AND ($3::text IS NULL OR target = $3) "
                                "ORDER BY time DESC, id DESC LIMIT $2", ca_id, max(limit, 0), target)
        return [audit_entry_from_row(row) for row in rows]

    async def check_writable(self) -> None:
        """A write transaction that is rolled back; a read-only server (a standby, or
        ``default_transaction_read_only``) fails as ``LedgerUnwritable``."""
        async with self._transaction() as conn:
            if await conn.fetchval("SHOW transaction_read_only") == "on":
                raise LedgerUnwritable("ledger: the database is read-only (transaction_read_only is on)",
                                       retry_after=5.0)
            await conn.execute("CREATE TEMPORARY TABLE write_probe (x int) ON COMMIT DROP")

    async def backup(self, target: Path) -> None:
        raise Unimplemented("a PostgreSQL ledger is backed up with the database's own tools "
                            "(pg_dump, or the server's continuous archiving), not by the gateway",
                            reason="BACKUP_NOT_SUPPORTED")


# -- statements run inside a transaction


async def _lock(conn: asyncpg.Connection, namespace: int, *parts: str) -> None:
    """Wait for, then hold until the commit, the advisory lock of these key parts (a 64-bit hash)."""
    digest = hashlib.sha256("\x1f".join((str(namespace), *parts)).encode()).digest()
    await conn.execute("SELECT pg_advisory_xact_lock($1)", int.from_bytes(digest[:8], "big", signed=True))


async def _order(conn: asyncpg.Connection, order_id: str) -> OrderRecord | None:
    row = await conn.fetchrow("SELECT * FROM orders WHERE id = $1", order_id)
    return order_from_row(row) if row is not None else None


async def _certificate(conn: asyncpg.Connection, ca_id: str, serial: str) -> CertificateRecord | None:
    row = await conn.fetchrow(f"SELECT {CERT_SELECT} FROM certificates c WHERE c.ca_id = $1 AND c.serial_number = $2",
                              ca_id, serial)
    return certificate_from_row(row) if row is not None else None


async def _append_history(conn: asyncpg.Connection, order_id: str, now: str, state: OrderState, detail: str) -> None:
    # The order's row is locked by the UPDATE or INSERT before this in the same transaction.
    await conn.execute("INSERT INTO order_history (order_id, seq, time, state, detail) "
                       "SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4 FROM order_history WHERE order_id = $1",
                       order_id, now, state.value, detail)


async def _file_order(conn: asyncpg.Connection, ca_id: str, dn: str, order_id: str, now: str) -> None:
    await conn.execute("INSERT INTO subjects (ca_id, dn, order_id, serial_number, created_at) "
                       "VALUES ($1, $2, $3, NULL, $4) ON CONFLICT DO NOTHING", ca_id, dn, order_id, now)


async def _insert_certificate(conn: asyncpg.Connection, cert: CertificateRecord, order_id: str | None,
                              now: str) -> bool:
    """Insert unless the serial is stored already (then wait for whoever stores it and change nothing)."""
    chain = json.dumps([base64.b64encode(der).decode("ascii") for der in cert.chain_der])
    placeholders = ", ".join(f"${n}" for n in range(1, len(CERT_COLUMNS) + 2))
    inserted = await conn.fetchval(
        f"WITH added AS (INSERT INTO certificates ({', '.join(CERT_COLUMNS)}, recorded_at) VALUES ({placeholders}) "
        "ON CONFLICT (ca_id, serial_number) DO NOTHING RETURNING 1) SELECT COUNT(*) FROM added",
        cert.ca_id, cert.serial_number, order_id, cert.certificate_der, chain, cert.subject_dn, cert.issuer_dn,
        ts(cert.not_before), ts(cert.not_after), cert.status, ts_or_none(cert.revoked_at),
        cert.revocation_reason, cert.revocation_comment, ts_or_none(cert.issued_at),
        ts_or_none(cert.compromise_date), now)
    return bool(inserted)


async def _link_certificate(conn: asyncpg.Connection, ca_id: str, serial: str, order_id: str) -> None:
    """Attach a certificate stored without an order to its order, moving its subject filings."""
    await conn.execute("UPDATE certificates SET order_id = $1 WHERE ca_id = $2 AND serial_number = $3",
                       order_id, ca_id, serial)
    await conn.execute("INSERT INTO subjects (ca_id, dn, order_id, serial_number, created_at) "
                       "SELECT ca_id, dn, $1, NULL, created_at FROM subjects "
                       "WHERE ca_id = $2 AND serial_number = $3 AND order_id IS NULL ON CONFLICT DO NOTHING",
                       order_id, ca_id, serial)
    await conn.execute("DELETE FROM subjects WHERE ca_id = $1 AND serial_number = $2 AND order_id IS NULL",
                       ca_id, serial)


async def _insert_event(conn: asyncpg.Connection, ca_id: str, action: str, serial: str, when: dt.datetime,
                        *, detail: str = "", reason: str = "", order_id: str | None = None,
                        event_key: str | None = None) -> None:
    # Held to the commit: the next event's id is drawn after this one is visible (ids in commit order).
    await _lock(conn, _LOCK_EVENTS)
    await conn.execute("INSERT INTO certificate_events (ca_id, action, serial_number, time, detail, reason, "
                       "order_id, event_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                       ca_id, action, serial, ts(when), detail, reason, order_id, event_key)


async def _insert_replaced(conn: asyncpg.Connection, order: OrderRecord, new_serial: str, when: dt.datetime) -> None:
    """As the SQLite ledger's ``insert_replaced``: once per replaced serial the ledger holds."""
    old = order.renewal_of_serial
    if old and old != new_serial and await _certificate(conn, order.ca_id, old) is not None:
        await _insert_event(conn, order.ca_id, "replaced", old, when, detail=new_serial, order_id=order.id,
                            event_key=f"replaced:{old}")


async def _lost_update_error(conn: asyncpg.Connection, order_id: str, expected_state: OrderState | None,
                             expected_version: int | None) -> Exception:
    return lost_update(order_id, await _order(conn, order_id), expected_state, expected_version)


async def _duplicate_error(conn: asyncpg.Connection, order_id: str) -> DuplicateOrder | None:
    order = await _order(conn, order_id)
    if order is None:
        return None
    row = await conn.fetchrow(f"SELECT * FROM orders WHERE {_TWIN_WHERE} AND id <> $3 {_TWIN_ORDER} LIMIT 1",
                              order.ca_id, order.fingerprint, order_id)
    if row is None:
        return None
    return twin_refusal(order_id, order_from_row(row))
