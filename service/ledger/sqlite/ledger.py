"""The embedded ledger: SQLite through aiosqlite, so no query blocks the event loop.

Two connections, each with its own aiosqlite thread:

- the **writer**: every write is one ``BEGIN IMMEDIATE`` transaction, and an
  ``asyncio.Lock`` lets one run at a time (SQLite allows one writer anyway;
  the lock keeps the waiting in the event loop instead of in ``busy_timeout``);
- the **reader**: reads never queue behind a write. In WAL mode it sees the
  last committed state, so a write is visible to readers once its call returns.

WAL with ``synchronous=NORMAL`` keeps every committed transaction across a
SIGKILL of the process (not across a power loss, where the last few may go).

Every ``sqlite3`` error is turned into the gateway's tree by
:func:`~service.ledger.sqlite.errors.map_sqlite_errors` (STYLE 5).

Example::

    async with SQLiteLedger(Path("ledger.db")) as ledger:
        record, created = await ledger.create_order(new_order)
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
import sqlite3
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path

import aiosqlite

from service.clock import Clock, utcnow
from service.errors import ConfigError, NotFound
from service.ledger.base import (
    AuditEntry,
    CertificateEventRecord,
    CertificateQuery,
    CertificateRecord,
    InventoryEntry,
    OutboxEvent,
    NewOrder,
    OrderRecord,
    OrderState,
    RevocationClaim,
    ServerKey,
    SubjectEntry,
)
from service.ledger.errors import DuplicateOrder, OrderChanged
from service.ledger.sqlite.backup import backup_database
from service.ledger.sqlite.errors import map_sqlite_errors
from service.ledger.sqlite.inventory import (
    INVENTORY_SELECT,
    count_statement,
    inventory_entries,
    inventory_entry,
    inventory_where,
)
from service.ledger.sqlite.migrations import UNFINISHED_SQL, migrate
from service.ledger.sqlite.rows import (
    CERT_SELECT,
    NEW_ORDER_COLUMNS,
    certificate_from_row,
    event_from_row,
    from_ts,
    new_order_values,
    order_from_row,
    ts,
    ts_or_none,
)
from service.ledger.sqlite.statements import (
    TWIN_ORDER,
    TWIN_WHERE,
    append_history,
    certificate_where,
    execute,
    existing_for,
    file_order,
    insert_certificate,
    insert_event,
    link_certificate,
    order_where,
    orders_like,
    unfinished_twin,
)
from service.x509.pem import der_from_pem_bundle, pem_bundle

__all__ = ["SQLiteLedger"]

_MAX_PAGES = 4294967294  # SQLite's own ceiling of max_page_count: no limit of ours


class _State(enum.Enum):
    UNOPENED = "UNOPENED"
    OPEN = "OPEN"
    CLOSED = "CLOSED"



class SQLiteLedger:
    """The :class:`~service.ledger.base.Ledger` on one SQLite file.

    ``clock`` stamps ``created_at``/``updated_at``, history and filing times
    (tests pass a fake); ``busy_timeout`` (seconds) is how long a statement
    waits for a lock held by *another process* before :class:`LedgerUnavailable`.
    The ledger is UNOPENED, then OPEN (``await open()`` or ``async with``), then
    CLOSED; any call outside OPEN raises ``RuntimeError``.
    """

    def __init__(self, path: Path, *, clock: Clock = utcnow,
                 busy_timeout: float = 5.0) -> None:
        self.path = Path(path)
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._state = _State.UNOPENED
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"SQLiteLedger({str(self.path)!r}, state={self._state.value})"

    # -- lifecycle

    async def __aenter__(self) -> SQLiteLedger:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect, switch to WAL and apply pending migrations.

        Raises ``ConfigError`` naming the file when it cannot be a ledger
        (missing folder, not a database, written by a newer gateway).
        """
        if self._state is not _State.UNOPENED:
            raise RuntimeError(f"cannot open a ledger that is {self._state.value.lower()}: {self.path}")
        opened: list[aiosqlite.Connection] = []
        try:
            with map_sqlite_errors(self.path, opening=True):
                writer = await self._connect()
                opened.append(writer)
                rows = list(await writer.execute_fetchall("PRAGMA journal_mode = WAL"))
                if str(rows[0][0]).lower() != "wal":
                    raise ConfigError(f"cannot open ledger {self.path}: the file system does not support "
                                      f"SQLite WAL mode (journal mode is {rows[0][0]})",
                                      metadata={"path": str(self.path)})
                await writer.execute("PRAGMA synchronous = NORMAL")
                await migrate(writer, path=self.path, clock=self._clock)
                reader = await self._connect()
                opened.append(reader)
                await reader.execute("PRAGMA query_only = ON")  # a write on it would be a bug
        except BaseException:
            for conn in reversed(opened):
                with contextlib.suppress(Exception):
                    await conn.close()
            raise
        self._writer, self._reader = writer, reader
        self._state = _State.OPEN

    async def _connect(self) -> aiosqlite.Connection:
        # isolation_level=None: we issue BEGIN ourselves; timeout sets SQLite's busy_timeout.
        conn = await aiosqlite.connect(self.path, isolation_level=None, timeout=self._busy_timeout)
        conn.row_factory = sqlite3.Row
        await conn.execute("PRAGMA foreign_keys = ON")
        return conn

    async def close(self) -> None:
        """Wait for the running write, then close both connections. Closing twice is fine."""
        if self._state is not _State.OPEN:
            self._state = _State.CLOSED
            return
        self._state = _State.CLOSED  # new calls fail from here on
        async with self._write_lock:
            reader, writer = self._reader, self._writer
            self._reader = self._writer = None
            with map_sqlite_errors(self.path):
                try:
                    if reader is not None:
                        await reader.close()
                finally:
                    if writer is not None:  # closing the last connection checkpoints the WAL
                        await writer.close()

    def _open_connections(self) -> tuple[aiosqlite.Connection, aiosqlite.Connection]:
        if self._state is not _State.OPEN or self._writer is None or self._reader is None:
            hint = " (use `await ledger.open()` or `async with`)" if self._state is _State.UNOPENED else ""
            raise RuntimeError(f"ledger {self.path} is {self._state.value.lower()}{hint}")
        return self._writer, self._reader

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction on the writer connection; commits unless the block raises."""
        writer, _ = self._open_connections()
        async with self._write_lock:
            with map_sqlite_errors(self.path):
                try:
                    await writer.execute("BEGIN IMMEDIATE")
                    yield writer
                    await writer.commit()
                except BaseException:
                    # Queued behind any statement still running (even when we were
                    # cancelled), and a no-op when no transaction is open.
                    await writer.rollback()
                    raise

    async def _read(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        _, reader = self._open_connections()
        with map_sqlite_errors(self.path):
            return list(await reader.execute_fetchall(sql, params))

    # -- orders

    async def create_order(self, order: NewOrder) -> tuple[OrderRecord, bool]:
        """Record a new order in state RECEIVED and file it under its requested DN.

        Returns ``(existing, False)`` instead for the CA's order with this
        ``request_id``, else for the same order id already recorded for the same
        request (a retried call; an id reused for another request raises
        ``AlreadyExists``), else for the CA's unfinished order with this
        ``fingerprint``.
        The look-up and the insert are one ``BEGIN IMMEDIATE`` transaction, which
        holds the file's write lock, so concurrent calls from any number of
        processes make one row; the unique index on unfinished
        ``(ca_id, fingerprint)`` backs this up.
        """
        now = ts(self._clock())
        async with self._transaction() as w:
            existing = existing_for(order, await orders_like(w, order))
            if existing is not None:
                return existing, False
            await execute(w, f"INSERT INTO orders ({', '.join(NEW_ORDER_COLUMNS)}) "
                              f"VALUES ({', '.join('?' * len(NEW_ORDER_COLUMNS))})",
                           new_order_values(order, now))
            await append_history(w, order.id, now, OrderState.RECEIVED, "")
            if order.server_key is not None:
                await execute(w, "INSERT INTO server_keys (order_id, encrypted_pkcs8, created_at, expires_at) "
                                 "VALUES (?, ?, ?, ?)",
                              (order.id, order.server_key.encrypted_pkcs8, now, ts(order.server_key.expires_at)))
            if order.requested_dn:
                await file_order(w, order.ca_id, order.requested_dn, order.id, now)
            record = await order_where(w, "id = ?", (order.id,))
        assert record is not None
        return record, True

    async def get_order(self, order_id: str) -> OrderRecord | None:
        rows = await self._read("SELECT * FROM orders WHERE id = ?", (order_id,))
        return order_from_row(rows[0]) if rows else None

    async def find_order_by_request_id(self, ca_id: str, request_id: str) -> OrderRecord | None:
        rows = await self._read("SELECT * FROM orders WHERE ca_id = ? AND request_id = ?", (ca_id, request_id))
        return order_from_row(rows[0]) if rows else None

    async def find_unfinished_by_fingerprint(self, ca_id: str, fingerprint: str) -> OrderRecord | None:
        """The CA's unfinished order with this fingerprint. There is one at most, but for a file
        migrated with several (see migration 3): then the one that kept the fingerprint."""
        rows = await self._read(f"SELECT * FROM orders WHERE {TWIN_WHERE} {TWIN_ORDER} LIMIT 1", (ca_id, fingerprint))
        return order_from_row(rows[0]) if rows else None

    async def unfinished_orders(self) -> list[OrderRecord]:
        """Every unfinished order, oldest first: one gateway works on a SQLite file, so it resumes
        them all (a shared ledger would hand out leases instead)."""
        rows = await self._read(f"SELECT * FROM orders WHERE {UNFINISHED_SQL} ORDER BY created_at, rowid")
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
        """Set ``state`` and the fields given (``None`` keeps a field), bump ``updated_at`` and
        ``version``, and append ``(now, state, detail or "")`` to the history.

        ``expected_state`` / ``expected_version`` make it a compare-and-set in the UPDATE's own
        WHERE: when the order moved meanwhile, nothing changes and ``OrderChanged`` carries
        the order as it is. Reviving a finished order while another unfinished one has its
        fingerprint raises ``DuplicateOrder`` (the unique index refused it).
        """
        now = ts(self._clock())
        async with self._transaction() as w:
            try:
                changed = await execute(
                    w,
                    "UPDATE orders SET state = ?, updated_at = ?, version = version + 1, "
                    "ca_order_id = COALESCE(?, ca_order_id), attempts = COALESCE(?, attempts), "
                    "next_attempt_at = COALESCE(?, next_attempt_at), detail = COALESCE(?, detail), "
                    "error_reason = COALESCE(?, error_reason) "
                    "WHERE id = ? AND (? IS NULL OR state = ?) AND (? IS NULL OR version = ?)",
                    (state.value, now, ca_order_id, attempts, ts_or_none(next_attempt_at), detail, error_reason,
                     order_id, _value(expected_state), _value(expected_state), expected_version, expected_version))
            except sqlite3.IntegrityError:
                duplicate = await _duplicate_error(w, order_id)
                if duplicate is None:
                    raise  # another constraint: translated as it is
                raise duplicate from None
            if not changed:
                raise await _lost_update_error(w, order_id, expected_state, expected_version)
            await append_history(w, order_id, now, state, detail or "")
            record = await order_where(w, "id = ?", (order_id,))
        assert record is not None
        return record

    async def order_history(self, order_id: str) -> list[tuple[dt.datetime, OrderState, str]]:
        """The order's state changes, oldest first (empty for an unknown order)."""
        rows = await self._read("SELECT time, state, detail FROM order_history WHERE order_id = ? ORDER BY seq",
                                (order_id,))
        return [(from_ts(row["time"]), OrderState(row["state"]), str(row["detail"])) for row in rows]

    async def list_orders(self, *, states: Sequence[OrderState] = (), ca_id: str | None = None,
                          before: tuple[dt.datetime, str] | None = None, limit: int = 100) -> list[OrderRecord]:
        """Newest first; see :meth:`Ledger.list_orders`."""
        where, params = ["(? IS NULL OR ca_id = ?)"], [ca_id, ca_id]
        if states:
            where.append(f"state IN ({', '.join('?' * len(states))})")
            params += [state.value for state in states]
        if before is not None:
            where.append("(created_at, id) < (?, ?)")
            params += [ts(before[0]), before[1]]
        rows = await self._read(f"SELECT * FROM orders WHERE {' AND '.join(where)} "
                                "ORDER BY created_at DESC, id DESC LIMIT ?", (*params, max(limit, 0)))
        return [order_from_row(row) for row in rows]

    # -- keys the gateway made

    async def get_server_key(self, order_id: str) -> ServerKey | None:
        rows = await self._read("SELECT encrypted_pkcs8, expires_at FROM server_keys WHERE order_id = ?", (order_id,))
        if not rows:
            return None
        return ServerKey(encrypted_pkcs8=bytes(rows[0]["encrypted_pkcs8"]), expires_at=from_ts(rows[0]["expires_at"]))

    async def delete_server_key(self, order_id: str) -> bool:
        async with self._transaction() as w:
            return bool(await execute(w, "DELETE FROM server_keys WHERE order_id = ?", (order_id,)))

    async def purge_server_keys(self, *, expired_at: dt.datetime) -> int:
        async with self._transaction() as w:
            return await execute(w, "DELETE FROM server_keys WHERE expires_at <= ?", (ts(expired_at),))

    # -- certificates

    async def record_issued(self, order_id: str | None, certificate: CertificateRecord,
                            *, subject_dns: Sequence[str] = ()) -> OrderRecord | None:
        """Store the certificate and mark its order ISSUED, in one transaction.

        The order (or, without one, the certificate) is filed under
        ``certificate.subject_dn`` and each of ``subject_dns``. Idempotent per
        ``(ca_id, serial_number)``: a repeated call adds no event and no history.
        ``order_id=None`` stores a certificate found at the CA but not ordered
        here; a later call naming its order links the two. Returns the order.
        """
        now_dt = self._clock()
        now = ts(now_dt)
        ca_id, serial = certificate.ca_id, certificate.serial_number
        async with self._transaction() as w:
            order: OrderRecord | None = None
            if order_id is not None:
                order = await order_where(w, "id = ?", (order_id,))
                if order is None:
                    raise NotFound(f"order {order_id} not found", metadata={"order_id": order_id})
                if order.ca_id != ca_id:
                    raise ValueError(f"order {order_id} belongs to CA {order.ca_id}, "
                                     f"certificate {serial} to CA {ca_id}")
            stored = await certificate_where(w, ca_id, serial)
            if stored is None:
                await insert_certificate(w, certificate, order_id, now)
                await insert_event(w, ca_id, "issued", serial, certificate.issued_at or now_dt,
                                    detail=certificate.subject_dn)
            elif order_id is not None and stored.order_id is None:
                await link_certificate(w, ca_id, serial, order_id)
            elif order_id is None and stored.order_id is not None:
                order_id = stored.order_id  # already ours: file the order, not a loose certificate

            dns = [dn for dn in dict.fromkeys((certificate.subject_dn, *subject_dns)) if dn]
            if order_id is not None:
                if order is not None and (order.state is not OrderState.ISSUED or order.serial_number != serial):
                    await execute(w, "UPDATE orders SET state = ?, serial_number = ?, updated_at = ?, "
                                     "version = version + 1 WHERE id = ?",
                                   (OrderState.ISSUED.value, serial, now, order_id))
                    await append_history(w, order_id, now, OrderState.ISSUED, f"serial {serial}")
                for dn in dns:
                    await file_order(w, ca_id, dn, order_id, now)
                return await order_where(w, "id = ?", (order_id,)) if order is not None else None
            for dn in dns:
                await execute(w, "INSERT OR IGNORE INTO subjects (ca_id, dn, order_id, serial_number, created_at) "
                                  "VALUES (?, ?, NULL, ?, ?)", (ca_id, dn, serial, now))
            return None

    async def get_certificate(self, ca_id: str, serial_number: str) -> CertificateRecord | None:
        rows = await self._read(f"SELECT {CERT_SELECT} FROM certificates c "
                                "WHERE c.ca_id = ? AND c.serial_number = ?", (ca_id, serial_number))
        return certificate_from_row(rows[0]) if rows else None

    async def mark_revoked(self, ca_id: str, serial_number: str, *, reason: str, comment: str,
                           when: dt.datetime, compromise_date: dt.datetime | None = None
                           ) -> CertificateRecord | None:
        """Mark the certificate revoked and append a ``revoked`` event, once.

        A certificate already revoked is returned unchanged (first reason and
        time win); an unknown serial gives ``None``. Either way any revocation
        claim on the serial ends.
        """
        revoked_at = ts(when)
        async with self._transaction() as w:
            await execute(w, "DELETE FROM revocation_claims WHERE ca_id = ? AND serial_number = ?",
                          (ca_id, serial_number))
            stored = await certificate_where(w, ca_id, serial_number)
            if stored is None or stored.status == "revoked":
                return stored
            await execute(w, "UPDATE certificates SET status = 'revoked', revoked_at = ?, revocation_reason = ?, "
                              "revocation_comment = ?, compromise_date = ? WHERE ca_id = ? AND serial_number = ?",
                           (revoked_at, reason, comment, ts_or_none(compromise_date), ca_id, serial_number))
            await insert_event(w, ca_id, "revoked", serial_number, when, detail=comment, reason=reason)
        return replace(stored, status="revoked", revoked_at=from_ts(revoked_at),
                       revocation_reason=reason, revocation_comment=comment,
                       compromise_date=from_ts(ts(compromise_date)) if compromise_date else None)

    async def claim_revocation(self, ca_id: str, serial_number: str, *, claimant: str,
                               seconds: float) -> RevocationClaim:
        """Claim the serial's revoke until now + ``seconds`` (this ledger's clock); one upsert
        takes a free or expired claim or renews our own, then the holder is read back."""
        now_dt = self._clock()
        now, expires = ts(now_dt), ts(now_dt + dt.timedelta(seconds=seconds))
        async with self._transaction() as w:
            await execute(
                w,
                "INSERT INTO revocation_claims (ca_id, serial_number, claimant, claimed_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (ca_id, serial_number) DO UPDATE SET "
                "claimant = excluded.claimant, claimed_at = excluded.claimed_at, expires_at = excluded.expires_at "
                "WHERE revocation_claims.expires_at <= excluded.claimed_at "
                "OR revocation_claims.claimant = excluded.claimant",
                (ca_id, serial_number, claimant, now, expires))
            rows = list(await w.execute_fetchall(
                "SELECT claimant, expires_at FROM revocation_claims WHERE ca_id = ? AND serial_number = ?",
                (ca_id, serial_number)))
        return RevocationClaim(ca_id=ca_id, serial_number=serial_number, claimant=str(rows[0]["claimant"]),
                               expires_at=from_ts(rows[0]["expires_at"]))

    async def release_revocation(self, ca_id: str, serial_number: str, *, claimant: str) -> bool:
        async with self._transaction() as w:
            return bool(await execute(
                w, "DELETE FROM revocation_claims WHERE ca_id = ? AND serial_number = ? AND claimant = ?",
                (ca_id, serial_number, claimant)))

    async def list_certificates(self, query: CertificateQuery) -> list[InventoryEntry]:
        where, params = inventory_where(query)
        return inventory_entries(await self._read(INVENTORY_SELECT + where, params))

    async def count_certificates(self, ca_id: str, *, now: dt.datetime,
                                 horizons: Sequence[dt.timedelta]) -> list[tuple[str, str, int, int]]:
        sql, params = count_statement(ca_id, now, horizons)
        return [(str(row[0]), str(row[1]), int(row[2]), int(row[3])) for row in await self._read(sql, params)]

    async def inventory_entry(self, ca_id: str, serial_number: str) -> InventoryEntry | None:
        rows = await self._read(INVENTORY_SELECT + " WHERE c.ca_id = ? AND c.serial_number = ?",
                                (ca_id, serial_number))
        return inventory_entry(rows[0]) if rows else None

    async def subject_entries(self, ca_id: str, normalized_dn: str) -> list[SubjectEntry]:
        """One entry per order filed under the DN (with its certificate once
        issued) and per certificate filed there without an order, newest first.

        An order's time is its ``created_at``; a loose certificate's is its
        ``issued_at``, else its ``not_before``.
        """
        rows = await self._read(
            f"SELECT s.order_id AS s_order_id, o.state AS o_state, {CERT_SELECT}, "
            "COALESCE(o.created_at, c.issued_at, c.not_before, s.created_at) AS entry_time "
            "FROM subjects s "
            "LEFT JOIN orders o ON o.id = s.order_id "
            "LEFT JOIN certificates c ON c.ca_id = s.ca_id "
            "    AND c.serial_number = COALESCE(o.serial_number, s.serial_number) "
            "WHERE s.ca_id = ? AND s.dn = ? ORDER BY entry_time DESC, s.id DESC",
            (ca_id, normalized_dn))
        return [
            SubjectEntry(
                order_id=row["s_order_id"],
                order_state=OrderState(row["o_state"]) if row["o_state"] is not None else None,
                certificate=certificate_from_row(row) if row["c_serial_number"] is not None else None,
                created_at=from_ts(row["entry_time"]),
            )
            for row in rows
        ]

    # -- feed and audit

    async def list_events(self, ca_id: str, *, after_id: int, since: dt.datetime | None,
                          limit: int) -> list[CertificateEventRecord]:
        """Events of the CA with ``id > after_id`` (and ``time >= since``), by id, at most ``limit``."""
        rows = await self._read(
            "SELECT * FROM certificate_events WHERE ca_id = ? AND id > ? AND (? IS NULL OR time >= ?) "
            "ORDER BY id LIMIT ?", (ca_id, after_id, ts_or_none(since), ts_or_none(since), max(limit, 0)))
        return [event_from_row(row) for row in rows]

    async def ca_chain(self, ca_id: str) -> tuple[bytes, ...]:
        rows = await self._read("SELECT chain_pem FROM ca_chains WHERE ca_id = ?", (ca_id,))
        return tuple(der_from_pem_bundle(str(rows[0]["chain_pem"]))) if rows else ()

    async def keep_ca_chain(self, ca_id: str, chain: Sequence[bytes]) -> tuple[bytes, ...]:
        if chain:
            async with self._transaction() as w:
                await execute(w, "INSERT INTO ca_chains (ca_id, chain_pem, learned_at) VALUES (?, ?, ?) "
                                 "ON CONFLICT (ca_id) DO NOTHING",
                              (ca_id, pem_bundle(chain), ts(self._clock())))
        return await self.ca_chain(ca_id)

    async def count_events(self, ca_id: str, *, since: dt.datetime | None) -> int:
        rows = await self._read("SELECT COUNT(*) FROM certificate_events WHERE ca_id = ? AND (? IS NULL OR time >= ?)",
                                (ca_id, ts_or_none(since), ts_or_none(since)))
        return int(rows[0][0])

    async def events_after(self, after_id: int, *, limit: int) -> list[OutboxEvent]:
        rows = await self._read(
            "SELECT e.*, COALESCE(o.requested_by, '') AS owner, o.renewal_of_serial AS renewal_of, "
            "o.id IS NOT NULL AS ordered "
            "FROM certificate_events e "
            "LEFT JOIN certificates c ON c.ca_id = e.ca_id AND c.serial_number = e.serial_number "
            "LEFT JOIN orders o ON o.id = c.order_id WHERE e.id > ? ORDER BY e.id LIMIT ?",
            (after_id, max(limit, 0)))
        return [OutboxEvent(event=event_from_row(row), owner=str(row["owner"]), renewal_of=row["renewal_of"],
                            ordered=bool(row["ordered"])) for row in rows]

    async def webhook_cursor(self, name: str) -> int | None:
        rows = await self._read("SELECT last_event_id FROM webhook_cursors WHERE name = ?", (name,))
        return int(rows[0][0]) if rows else None

    async def advance_webhook_cursor(self, name: str, event_id: int) -> None:
        async with self._transaction() as w:
            await execute(w, "INSERT INTO webhook_cursors (name, last_event_id, updated_at) VALUES (?, ?, ?) "
                             "ON CONFLICT (name) DO UPDATE SET last_event_id = excluded.last_event_id, "
                             "updated_at = excluded.updated_at WHERE excluded.last_event_id > last_event_id",
                          (name, event_id, ts(self._clock())))

    async def append_audit(self, entry: AuditEntry) -> None:
        async with self._transaction() as w:
            await execute(w, "INSERT INTO audit (time, ca_id, actor, action, target, outcome, detail) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (ts(entry.time), entry.ca_id, entry.actor, entry.action, entry.target,
                            entry.outcome, entry.detail))

    async def audit_entries(self, *, ca_id: str | None = None, limit: int = 100,
                            target: str | None = None) -> list[AuditEntry]:
        """Newest first; all CAs when ``ca_id`` is None; only about ``target`` when given."""
        rows = await self._read(
            "SELECT * FROM audit WHERE (? IS NULL OR ca_id = ?) AND (? IS NULL OR target = ?) "
            "ORDER BY time DESC, id DESC LIMIT ?",
            (ca_id, ca_id, target, target, max(limit, 0)))
        return [
            AuditEntry(time=from_ts(row["time"]), ca_id=str(row["ca_id"]), actor=str(row["actor"]),
                       action=str(row["action"]), target=str(row["target"]), outcome=str(row["outcome"]),
                       detail=str(row["detail"]))
            for row in rows
        ]

    # -- operations

    async def check_writable(self) -> None:
        """Write (then roll back) a few pages' worth into a scratch table: a full disk (or the
        ``max_page_count`` reached) and a read-only file fail as ``LedgerUnwritable``."""
        async with self._write_lock:
            writer, _ = self._open_connections()
            with map_sqlite_errors(self.path, doing="checking that it can be written"):
                try:
                    await writer.execute("BEGIN IMMEDIATE")
                    await writer.execute("CREATE TABLE write_probe (x BLOB)")
                    await writer.execute("INSERT INTO write_probe VALUES (zeroblob(16384))")
                finally:
                    await writer.rollback()

    async def restrict_writes(self, *, full: bool = False, read_only: bool = False) -> None:
        """A fault drill: make this ledger's writes fail as on a full disk (``full``: SQLite's
        ``max_page_count`` set to the pages the file has now, so it cannot grow) or on a read-only
        file (``read_only``: ``query_only`` on its writer connection); without either, lift both.
        Only this connection is affected and nothing is written; the crash suite uses it."""
        async with self._write_lock:
            writer, _ = self._open_connections()
            with map_sqlite_errors(self.path):
                pages = list(await writer.execute_fetchall("PRAGMA page_count"))[0][0] if full else _MAX_PAGES
                await writer.execute(f"PRAGMA max_page_count = {int(pages)}")
                await writer.execute(f"PRAGMA query_only = {'ON' if read_only else 'OFF'}")

    async def backup(self, target: Path) -> None:
        """Write a consistent, compacted copy of the ledger to ``target`` while it is in use
        (see :func:`backup_database`)."""
        self._open_connections()
        await backup_database(self.path, Path(target), busy_timeout=self._busy_timeout)


def _value(state: OrderState | None) -> str | None:
    return state.value if state is not None else None


async def _lost_update_error(conn: aiosqlite.Connection, order_id: str, expected_state: OrderState | None,
                             expected_version: int | None) -> Exception:
    """Why a conditional UPDATE changed no row: the order is unknown, or it moved meanwhile."""
    current = await order_where(conn, "id = ?", (order_id,))
    if current is None:
        return NotFound(f"order {order_id} not found", metadata={"order_id": order_id})
    wanted = " and ".join(part for part in (
        f"state {expected_state.value}" if expected_state is not None else "",
        f"version {expected_version}" if expected_version is not None else "") if part)
    return OrderChanged(f"order {order_id} changed meanwhile: expected {wanted}, found state "
                        f"{current.state.value} at version {current.version}", current=current,
                        metadata={"order_id": order_id, "state": current.state.value,
                                  "version": str(current.version)})


async def _duplicate_error(conn: aiosqlite.Connection, order_id: str) -> DuplicateOrder | None:
    """The unique index on unfinished fingerprints refused reviving ``order_id``: name the twin."""
    order = await order_where(conn, "id = ?", (order_id,))
    twin = None if order is None else await unfinished_twin(conn, order.ca_id, order.fingerprint, other_than=order_id)
    if twin is None:
        return None
    return DuplicateOrder(f"order {order_id} cannot be resumed: order {twin.id} is already unfinished for the same "
                          "CSR, CA and profile", existing=twin, metadata={"order_id": order_id, "existing": twin.id})
