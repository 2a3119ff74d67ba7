"""The embedded ledger: SQLite on two connections, each on a thread of its own, so no query
blocks the event loop.

- the **writer** runs every write as one ``BEGIN IMMEDIATE`` transaction, the
  whole transaction (every statement and the commit) in one call on its thread
  (:mod:`service.ledger.sqlite.worker`): one thread hop per write, and the
  thread runs one transaction at a time, which is all the locking SQLite's one
  writer needs. Writes that queue up while one runs are committed together, in
  one ``BEGIN IMMEDIATE`` … ``COMMIT`` (each sees those before it; one that fails
  fails alone), so a busy gateway commits less often than it writes;
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
import functools
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from service.clock import Clock, utcnow
from service.errors import ConfigError
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
    SubjectPosition,
)
from service.ledger.sqlite import writes
from service.ledger.sqlite.backup import backup_database
from service.ledger.sqlite.files import private_files
from service.ledger.sqlite.errors import map_sqlite_errors
from service.ledger.sqlite.inventory import (
    EXPIRING_INSERT,
    INVENTORY_SELECT,
    OUTBOX_SELECT,
    count_statement,
    expiring_params,
    inventory_entries,
    inventory_entry,
    inventory_where,
)
from service.ledger.sqlite.migrations import UNFINISHED_SQL, migrate
from service.ledger.sqlite.rows import (
    CERT_SELECT,
    certificate_from_row,
    audit_entry_from_row,
    event_from_row,
    outbox_event_from_row,
    subject_entry_from_row,
    from_ts,
    order_from_row,
    ts,
    ts_or_none,
)
from service.ledger.sqlite.statements import TWIN_ORDER, TWIN_WHERE, certificate_where, execute, insert_event
from service.ledger.sqlite.worker import SQLiteWorker
from service.x509.pem import der_from_pem_bundle, pem_bundle

__all__ = ["SQLiteLedger"]

T = TypeVar("T")
_MAX_PAGES = 4294967294  # SQLite's own ceiling of max_page_count: no limit of ours


def _actions_clause(actions: Sequence[str]) -> str:
    return f"AND action IN ({', '.join('?' * len(actions))}) " if actions else ""


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
        self._writer: SQLiteWorker | None = None
        self._reader: SQLiteWorker | None = None
        self._writer_seen: SQLiteWorker | None = None
        self._reader_seen: SQLiteWorker | None = None

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
        opened: list[SQLiteWorker] = []
        await asyncio.to_thread(private_files, self.path)
        try:
            with map_sqlite_errors(self.path, opening=True):
                writer = await SQLiteWorker.open(self.path, busy_timeout=self._busy_timeout, name="ledger-writer")
                opened.append(writer)
                rows = await writer.execute_fetchall("PRAGMA journal_mode = WAL")
                if str(rows[0][0]).lower() != "wal":
                    raise ConfigError(f"cannot open ledger {self.path}: the file system does not support "
                                      f"SQLite WAL mode (journal mode is {rows[0][0]})",
                                      metadata={"path": str(self.path)})
                await writer.execute("PRAGMA synchronous = NORMAL")
                await migrate(writer, path=self.path, clock=self._clock)
                reader = await SQLiteWorker.open(self.path, busy_timeout=self._busy_timeout, name="ledger-reader")
                opened.append(reader)
                await reader.execute("PRAGMA query_only = ON")  # a write on it would be a bug
        except BaseException:
            for worker in reversed(opened):
                with contextlib.suppress(Exception):
                    await worker.close()
            raise
        self._writer, self._reader = writer, reader
        self._writer_seen, self._reader_seen = writer, reader  # their counts outlive them
        self._state = _State.OPEN

    async def close(self) -> None:
        """Close both connections once the writes already under way are done. Closing twice is fine."""
        if self._state is not _State.OPEN:
            self._state = _State.CLOSED
            return
        self._state = _State.CLOSED  # new calls fail from here on
        reader, writer = self._reader, self._writer
        self._reader = self._writer = None
        with map_sqlite_errors(self.path):
            try:
                if reader is not None:
                    await reader.close()
            finally:
                if writer is not None:  # after the queued writes; closing the last connection checkpoints the WAL
                    await writer.close()

    def _open_connections(self) -> tuple[SQLiteWorker, SQLiteWorker]:
        if self._state is not _State.OPEN or self._writer is None or self._reader is None:
            hint = " (use `await ledger.open()` or `async with`)" if self._state is _State.UNOPENED else ""
            raise RuntimeError(f"ledger {self.path} is {self._state.value.lower()}{hint}")
        return self._writer, self._reader

    def sql_counts(self) -> tuple[int, int]:
        """(SQL statements, commits) this ledger has run on its writer and reader connections."""
        statements = commits = 0
        for worker in (self._writer_seen, self._reader_seen):
            if worker is not None:
                run, committed = worker.counts()
                statements, commits = statements + run, commits + committed
        return statements, commits

    async def _write(self, body: Callable[[sqlite3.Connection], T]) -> T:
        """``body`` as one write transaction, run whole on the writer's thread: commits unless it raises
        (together with the writes queued next to it: see :mod:`service.ledger.sqlite.worker`)."""
        writer, _ = self._open_connections()
        with map_sqlite_errors(self.path):
            return await writer.transaction(body)

    async def _read(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        _, reader = self._open_connections()
        with map_sqlite_errors(self.path):
            return await reader.execute_fetchall(sql, params)

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
        return await self._write(functools.partial(writes.create_order, order=order, now=ts(self._clock())))

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

    async def count_orders(self, *, ca_id: str | None = None, client: str | None = None,
                           unfinished: bool = False, since: dt.datetime | None = None) -> tuple[int, dt.datetime | None]:
        where = ["(? IS NULL OR ca_id = ?)", "(? IS NULL OR client = ?)", "(? IS NULL OR created_at >= ?)"]
        if unfinished:
            where.append(UNFINISHED_SQL)
        rows = await self._read(f"SELECT COUNT(*), MIN(created_at) FROM orders WHERE {' AND '.join(where)}",
                                (ca_id, ca_id, client, client, ts_or_none(since), ts_or_none(since)))
        count, oldest = int(rows[0][0]), rows[0][1]
        return count, (from_ts(oldest) if oldest is not None else None)

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
        update = writes.OrderUpdate(
            order_id, state=state, ca_order_id=ca_order_id, attempts=attempts,
            next_attempt_at=ts_or_none(next_attempt_at), detail=detail, error_reason=error_reason,
            expected_state=expected_state, expected_version=expected_version)
        return await self._write(functools.partial(writes.update_order, update=update, now=ts(self._clock())))

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
        return bool(await self._write(lambda w: execute(w, "DELETE FROM server_keys WHERE order_id = ?", (order_id,))))

    async def purge_server_keys(self, *, expired_at: dt.datetime) -> int:
        before = ts(expired_at)
        return await self._write(lambda w: execute(w, "DELETE FROM server_keys WHERE expires_at <= ?", (before,)))

    # -- certificates

    async def record_issued(self, order_id: str | None, certificate: CertificateRecord,
                            *, subject_dns: Sequence[str] = (), attempts: int | None = None,
                            detail: str | None = None) -> OrderRecord | None:
        """Store the certificate and mark its order ISSUED, in one transaction.

        The order (or, without one, the certificate) is filed under
        ``certificate.subject_dn`` and each of ``subject_dns``. Idempotent per
        ``(ca_id, serial_number)``: a repeated call adds no event and no history.
        ``order_id=None`` stores a certificate found at the CA but not ordered
        here; a later call naming its order links the two. ``attempts`` and
        ``detail`` (``None`` keeps them) are recorded with the order's change to
        ISSUED. Returns the order.
        """
        return await self._write(functools.partial(
            writes.record_issued, order_id=order_id, certificate=certificate, subject_dns=subject_dns,
            now_dt=self._clock(), attempts=attempts, detail=detail))

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

        def revoke(w: sqlite3.Connection) -> tuple[CertificateRecord | None, bool]:
            execute(w, "DELETE FROM revocation_claims WHERE ca_id = ? AND serial_number = ?", (ca_id, serial_number))
            stored = certificate_where(w, ca_id, serial_number)
            if stored is None or stored.status == "revoked":
                return stored, False
            execute(w, "UPDATE certificates SET status = 'revoked', revoked_at = ?, revocation_reason = ?, "
                       "revocation_comment = ?, compromise_date = ? WHERE ca_id = ? AND serial_number = ?",
                    (revoked_at, reason, comment, ts_or_none(compromise_date), ca_id, serial_number))
            insert_event(w, ca_id, "revoked", serial_number, when, detail=comment, reason=reason)
            return stored, True

        stored, changed = await self._write(revoke)
        if stored is None or not changed:
            return stored
        return replace(stored, status="revoked", revoked_at=from_ts(revoked_at),
                       revocation_reason=reason, revocation_comment=comment,
                       compromise_date=from_ts(ts(compromise_date)) if compromise_date else None)

    async def claim_revocation(self, ca_id: str, serial_number: str, *, claimant: str,
                               seconds: float) -> RevocationClaim:
        """Claim the serial's revoke until now + ``seconds`` (this ledger's clock); one upsert
        takes a free or expired claim or renews our own, then the holder is read back."""
        now_dt = self._clock()
        now, expires = ts(now_dt), ts(now_dt + dt.timedelta(seconds=seconds))

        def claim(w: sqlite3.Connection) -> sqlite3.Row:
            execute(
                w,
                "INSERT INTO revocation_claims (ca_id, serial_number, claimant, claimed_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (ca_id, serial_number) DO UPDATE SET "
                "claimant = excluded.claimant, claimed_at = excluded.claimed_at, expires_at = excluded.expires_at "
                "WHERE revocation_claims.expires_at <= excluded.claimed_at "
                "OR revocation_claims.claimant = excluded.claimant",
                (ca_id, serial_number, claimant, now, expires))
            row: sqlite3.Row = w.execute("SELECT claimant, expires_at FROM revocation_claims "
                                         "WHERE ca_id = ? AND serial_number = ?", (ca_id, serial_number)).fetchone()
            return row

        row = await self._write(claim)
        return RevocationClaim(ca_id=ca_id, serial_number=serial_number, claimant=str(row["claimant"]),
                               expires_at=from_ts(row["expires_at"]))

    async def release_revocation(self, ca_id: str, serial_number: str, *, claimant: str) -> bool:
        return bool(await self._write(lambda w: execute(
            w, "DELETE FROM revocation_claims WHERE ca_id = ? AND serial_number = ? AND claimant = ?",
            (ca_id, serial_number, claimant))))

    async def record_expiring(self, ca_id: str, *, now: dt.datetime, within: dt.timedelta,
                              beyond: dt.timedelta, label: str, limit: int) -> int:
        params = expiring_params(ca_id, now=now, within=within, beyond=beyond, label=label, limit=limit)
        return await self._write(lambda w: execute(w, EXPIRING_INSERT, params))

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

    async def subject_entries(self, ca_id: str, normalized_dn: str, *, before: SubjectPosition | None = None,
                              limit: int | None = None) -> list[SubjectEntry]:
        """One entry per order filed under the DN (with its certificate once
        issued) and per certificate filed there without an order, newest first.

        An order's time is its ``created_at``; a loose certificate's is its
        ``issued_at``, else its ``not_before``. ``before`` and ``limit`` page
        through them (keyset: the time, then the filing id).
        """
        entry_time = "COALESCE(o.created_at, c.issued_at, c.not_before, s.created_at)"
        after = "" if before is None else f"AND ({entry_time} < ? OR ({entry_time} = ? AND s.id < ?)) "
        parameters: tuple[object, ...] = (ca_id, normalized_dn)
        if before is not None:
            parameters += (before.time, before.time, before.filing_id)
        rows = await self._read(
            f"SELECT s.id AS s_id, s.order_id AS s_order_id, o.state AS o_state, {CERT_SELECT}, "
            f"{entry_time} AS entry_time "
            "FROM subjects s "
            "LEFT JOIN orders o ON o.id = s.order_id "
            "LEFT JOIN certificates c ON c.ca_id = s.ca_id "
            "    AND c.serial_number = COALESCE(o.serial_number, s.serial_number) "
            f"WHERE s.ca_id = ? AND s.dn = ? {after}ORDER BY entry_time DESC, s.id DESC LIMIT ?",
            (*parameters, -1 if limit is None else limit))
        return [subject_entry_from_row(row) for row in rows]

    # -- feed and audit

    async def list_events(self, ca_id: str, *, after_id: int, since: dt.datetime | None,
                          limit: int, actions: Sequence[str] = ()) -> list[CertificateEventRecord]:
        """Events of the CA with ``id > after_id`` (and ``time >= since``, and an action among
        ``actions`` when given), by id, at most ``limit``."""
        rows = await self._read(
            "SELECT * FROM certificate_events WHERE ca_id = ? AND id > ? AND (? IS NULL OR time >= ?) "
            f"{_actions_clause(actions)}ORDER BY id LIMIT ?",
            (ca_id, after_id, ts_or_none(since), ts_or_none(since), *actions, max(limit, 0)))
        return [event_from_row(row) for row in rows]

    async def ca_chain(self, ca_id: str) -> tuple[bytes, ...]:
        rows = await self._read("SELECT chain_pem FROM ca_chains WHERE ca_id = ?", (ca_id,))
        return tuple(der_from_pem_bundle(str(rows[0]["chain_pem"]))) if rows else ()

    async def keep_ca_chain(self, ca_id: str, chain: Sequence[bytes]) -> tuple[bytes, ...]:
        if chain:
            values = (ca_id, pem_bundle(chain), ts(self._clock()))
            await self._write(lambda w: execute(
                w, "INSERT INTO ca_chains (ca_id, chain_pem, learned_at) VALUES (?, ?, ?) ON CONFLICT (ca_id) DO NOTHING",
                values))
        return await self.ca_chain(ca_id)

    async def count_events(self, ca_id: str, *, since: dt.datetime | None, actions: Sequence[str] = ()) -> int:
        rows = await self._read("SELECT COUNT(*) FROM certificate_events WHERE ca_id = ? AND (? IS NULL OR time >= ?) "
                                + _actions_clause(actions), (ca_id, ts_or_none(since), ts_or_none(since), *actions))
        return int(rows[0][0])

    async def events_after(self, after_id: int, *, limit: int) -> list[OutboxEvent]:
        rows = await self._read(OUTBOX_SELECT, (after_id, max(limit, 0)))
        return [outbox_event_from_row(row) for row in rows]

    async def latest_event_id(self) -> int:
        rows = await self._read("SELECT COALESCE(MAX(id), 0) FROM certificate_events")
        return int(rows[0][0])

    async def webhook_cursor(self, name: str) -> int | None:
        rows = await self._read("SELECT last_event_id FROM webhook_cursors WHERE name = ?", (name,))
        return int(rows[0][0]) if rows else None

    async def advance_webhook_cursor(self, name: str, event_id: int) -> None:
        values = (name, event_id, ts(self._clock()))
        await self._write(lambda w: execute(
            w, "INSERT INTO webhook_cursors (name, last_event_id, updated_at) VALUES (?, ?, ?) "
               "ON CONFLICT (name) DO UPDATE SET last_event_id = excluded.last_event_id, "
               "updated_at = excluded.updated_at WHERE excluded.last_event_id > last_event_id", values))

    async def append_audit(self, entry: AuditEntry) -> None:
        values = (ts(entry.time), entry.ca_id, entry.actor, entry.action, entry.target, entry.outcome, entry.detail,
                  entry.client)
        await self._write(lambda w: execute(
            w, "INSERT INTO audit (time, ca_id, actor, action, target, outcome, detail, client) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values))

    async def audit_entries(self, *, ca_id: str | None = None, limit: int = 100,
                            target: str | None = None) -> list[AuditEntry]:
        """Newest first; all CAs when ``ca_id`` is None; only about ``target`` when given."""
        rows = await self._read(
            "SELECT * FROM audit WHERE (? IS NULL OR ca_id = ?) AND (? IS NULL OR target = ?) "
            "ORDER BY time DESC, id DESC LIMIT ?",
            (ca_id, ca_id, target, target, max(limit, 0)))
        return [audit_entry_from_row(row) for row in rows]

    # -- operations

    async def check_writable(self) -> None:
        """Write (then roll back) a few pages' worth into a scratch table: a full disk (or the
        ``max_page_count`` reached) and a read-only file fail as ``LedgerUnwritable``."""
        def probe(w: sqlite3.Connection) -> None:
            try:
                w.execute("BEGIN IMMEDIATE")
                w.execute("CREATE TABLE write_probe (x BLOB)")
                w.execute("INSERT INTO write_probe VALUES (zeroblob(16384))")
            finally:
                if w.in_transaction:
                    w.rollback()

        writer, _ = self._open_connections()
        with map_sqlite_errors(self.path, doing="checking that it can be written"):
            await writer.run(probe)

    async def restrict_writes(self, *, full: bool = False, read_only: bool = False) -> None:
        """A fault drill: make this ledger's writes fail as on a full disk (``full``: SQLite's
        ``max_page_count`` set to the pages the file has now, so it cannot grow) or on a read-only
        file (``read_only``: ``query_only`` on its writer connection); without either, lift both.
        Only this connection is affected and nothing is written; the crash suite uses it."""
        def restrict(w: sqlite3.Connection) -> None:
            pages = w.execute("PRAGMA page_count").fetchone()[0] if full else _MAX_PAGES
            w.execute(f"PRAGMA max_page_count = {int(pages)}")
            w.execute(f"PRAGMA query_only = {'ON' if read_only else 'OFF'}")

        writer, _ = self._open_connections()
        with map_sqlite_errors(self.path):
            await writer.run(restrict)

    async def backup(self, target: Path) -> None:
        """Write a consistent, compacted copy of the ledger to ``target`` while it is in use
        (see :func:`backup_database`)."""
        self._open_connections()
        await backup_database(self.path, Path(target), busy_timeout=self._busy_timeout)
