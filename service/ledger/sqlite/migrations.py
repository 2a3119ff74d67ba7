"""The SQLite ledger's schema, as an ordered list of migrations.

Migration *n* (1-based) turns a version *n-1* database into version *n*. The
steps of a released migration never change: a schema change is a new entry at
the end of :data:`MIGRATIONS`. ``schema_version`` holds one row per applied
migration, so the current version is its largest ``version``.

:func:`migrate` applies the missing migrations in one ``BEGIN IMMEDIATE``
transaction at open, so two processes opening the same file cannot both
apply one, and a crash leaves the database at the old version. Foreign keys
are ON during migrations: a future step that rebuilds a table starts with
``PRAGMA defer_foreign_keys = ON``.

Times are ISO-8601 UTC text with microseconds (``2030-01-01T00:00:00.000000Z``),
fixed width so that text order is time order.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from service.errors import ConfigError

__all__ = ["LATEST_VERSION", "MIGRATIONS", "MigrationConnection", "migrate", "schema_version"]

# Unfinished = not ISSUED / FAILED / ABANDONED. The partial indexes below and
# the queries in sqlite.py use this exact text so SQLite picks the indexes.
UNFINISHED_SQL = "state NOT IN ('ISSUED', 'FAILED', 'ABANDONED')"

_V1: Sequence[str] = (
    """
    CREATE TABLE orders (
        id                TEXT PRIMARY KEY,
        ca_id             TEXT NOT NULL,
        kind              TEXT NOT NULL,
        profile_id        TEXT NOT NULL,
        ca_profile_id     TEXT NOT NULL,
        term_days         INTEGER NOT NULL,
        csr_pem           TEXT NOT NULL,
        fingerprint       TEXT NOT NULL,
        requested_dn      TEXT NOT NULL,
        common_name       TEXT NOT NULL,
        subject_alt_names TEXT NOT NULL,          -- JSON list of strings
        marker            TEXT NOT NULL,
        request_id        TEXT,
        renewal_of_serial TEXT,
        requested_by      TEXT NOT NULL,
        options           TEXT NOT NULL,          -- JSON object of strings
        state             TEXT NOT NULL,
        created_at        TEXT NOT NULL,
        updated_at        TEXT NOT NULL,
        ca_order_id       TEXT,
        attempts          INTEGER NOT NULL DEFAULT 0,
        next_attempt_at   TEXT,
        detail            TEXT NOT NULL DEFAULT '',
        error_reason      TEXT NOT NULL DEFAULT '',
        serial_number     TEXT,
        FOREIGN KEY (ca_id, serial_number) REFERENCES certificates (ca_id, serial_number)
    )
    """,
    "CREATE UNIQUE INDEX orders_request_id ON orders (ca_id, request_id) WHERE request_id IS NOT NULL",
    f"CREATE INDEX orders_unfinished_fingerprint ON orders (ca_id, fingerprint, created_at) WHERE {UNFINISHED_SQL}",
    f"CREATE INDEX orders_unfinished ON orders (created_at) WHERE {UNFINISHED_SQL}",
    "CREATE INDEX orders_state ON orders (state)",
    """
    CREATE TABLE order_history (
        order_id TEXT NOT NULL REFERENCES orders (id),
        seq      INTEGER NOT NULL,
        time     TEXT NOT NULL,
        state    TEXT NOT NULL,
        detail   TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (order_id, seq)
    )
    """,
    """
    CREATE TABLE certificates (
        ca_id              TEXT NOT NULL,
        serial_number      TEXT NOT NULL,
        order_id           TEXT REFERENCES orders (id),
        der                BLOB NOT NULL,
        chain              TEXT NOT NULL,          -- JSON list of base64 DER, issuer first
        subject_dn         TEXT NOT NULL,
        issuer_dn          TEXT NOT NULL,
        not_before         TEXT NOT NULL,
        not_after          TEXT NOT NULL,
        status             TEXT NOT NULL,
        revoked_at         TEXT,
        revocation_reason  TEXT NOT NULL DEFAULT '',
        revocation_comment TEXT NOT NULL DEFAULT '',
        issued_at          TEXT,
        recorded_at        TEXT NOT NULL,
        PRIMARY KEY (ca_id, serial_number)
    )
    """,
    "CREATE INDEX certificates_order ON certificates (order_id) WHERE order_id IS NOT NULL",
    # One row per (DN, order) or, for certificates nobody here ordered, per (DN, certificate).
    """
    CREATE TABLE subjects (
        id            INTEGER PRIMARY KEY,
        ca_id         TEXT NOT NULL,
        dn            TEXT NOT NULL,
        order_id      TEXT REFERENCES orders (id),
        serial_number TEXT,
        created_at    TEXT NOT NULL,
        CHECK ((order_id IS NULL) <> (serial_number IS NULL)),
        FOREIGN KEY (ca_id, serial_number) REFERENCES certificates (ca_id, serial_number)
    )
    """,
    "CREATE INDEX subjects_dn ON subjects (ca_id, dn)",
    "CREATE UNIQUE INDEX subjects_order ON subjects (ca_id, dn, order_id) WHERE order_id IS NOT NULL",
    "CREATE UNIQUE INDEX subjects_certificate ON subjects (ca_id, dn, serial_number) WHERE serial_number IS NOT NULL",
    """
    CREATE TABLE certificate_events (
        id            INTEGER PRIMARY KEY AUTOINCREMENT,
        ca_id         TEXT NOT NULL,
        action        TEXT NOT NULL,
        serial_number TEXT NOT NULL,
        time          TEXT NOT NULL,
        detail        TEXT NOT NULL DEFAULT '',
        reason        TEXT NOT NULL DEFAULT ''
    )
    """,
    "CREATE INDEX certificate_events_ca ON certificate_events (ca_id, id)",
    """
    CREATE TABLE audit (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        time    TEXT NOT NULL,
        ca_id   TEXT NOT NULL,
        actor   TEXT NOT NULL,
        action  TEXT NOT NULL,
        target  TEXT NOT NULL,
        outcome TEXT NOT NULL,
        detail  TEXT NOT NULL DEFAULT ''
    )
    """,
    "CREATE INDEX audit_time ON audit (time)",
    "CREATE INDEX audit_ca_time ON audit (ca_id, time)",
)

# 2: the key compromise date a revoke may carry (CAGW revocationInfo.compromiseDate).
_V2: Sequence[str] = (
    "ALTER TABLE certificates ADD COLUMN compromise_date TEXT",
)

# 3: the guarantees a shared ledger keeps across processes (see ledger/base.py).
# - ``version``: what a conditional update compares; for old rows, the length of their history.
# - One unfinished order per (ca_id, fingerprint), by a unique index. An older file may already
#   hold several for one CSR (a request id retrying a failed order revived it next to a newer
#   one; two processes on one file). Each of them may already be paid at the CA, so none is
#   closed: the oldest keeps the fingerprint, and the others get ``duplicate_of`` (the oldest's
#   id), which keeps them out of the unique index while they finish as they would have.
# - ``revocation_claims``: who sends a serial's revoke to the CA, until when.
_V3: Sequence[str] = (
    "ALTER TABLE orders ADD COLUMN version INTEGER NOT NULL DEFAULT 0",
    "UPDATE orders SET version = (SELECT COUNT(*) FROM order_history h WHERE h.order_id = orders.id)",
    "ALTER TABLE orders ADD COLUMN duplicate_of TEXT REFERENCES orders (id)",
    """
    UPDATE orders SET duplicate_of = (
        SELECT k.id FROM orders k
        WHERE k.ca_id = orders.ca_id AND k.fingerprint = orders.fingerprint
          AND k.state NOT IN ('ISSUED', 'FAILED', 'ABANDONED')
        ORDER BY k.created_at, k.rowid LIMIT 1)
    WHERE state NOT IN ('ISSUED', 'FAILED', 'ABANDONED') AND EXISTS (
        SELECT 1 FROM orders k
        WHERE k.ca_id = orders.ca_id AND k.fingerprint = orders.fingerprint
          AND k.state NOT IN ('ISSUED', 'FAILED', 'ABANDONED')
          AND (k.created_at, k.rowid) < (orders.created_at, orders.rowid))
    """,
    "CREATE UNIQUE INDEX orders_pending_fingerprint ON orders (ca_id, fingerprint) "
    "WHERE state NOT IN ('ISSUED', 'FAILED', 'ABANDONED') AND duplicate_of IS NULL",
    """
    CREATE TABLE revocation_claims (
        ca_id         TEXT NOT NULL,
        serial_number TEXT NOT NULL,
        claimant      TEXT NOT NULL,
        claimed_at    TEXT NOT NULL,
        expires_at    TEXT NOT NULL,
        PRIMARY KEY (ca_id, serial_number)
    )
    """,
)

# 4: the inventory (certificates of a CA in expiry order, the renewal orders of a serial) and how
# far each webhook has delivered the certificate events (the events table is their outbox).
_V4: Sequence[str] = (
    """
    CREATE TABLE webhook_cursors (
        name          TEXT PRIMARY KEY,
        last_event_id INTEGER NOT NULL,
        updated_at    TEXT NOT NULL
    )
    """,
    "CREATE INDEX certificates_expiry ON certificates (ca_id, not_after, serial_number)",
    "CREATE INDEX orders_renewal_of ON orders (ca_id, renewal_of_serial, created_at) "
    "WHERE renewal_of_serial IS NOT NULL",
)

# 5: keys the gateway made for PKCS#12 answers, only ever encrypted under the caller's password
# (DER PKCS#8 EncryptedPrivateKeyInfo), each deleted at its expiry.
_V5: Sequence[str] = (
    """
    CREATE TABLE server_keys (
        order_id        TEXT PRIMARY KEY REFERENCES orders (id),
        encrypted_pkcs8 BLOB NOT NULL,
        created_at      TEXT NOT NULL,
        expires_at      TEXT NOT NULL
    )
    """,
    "CREATE INDEX server_keys_expiry ON server_keys (expires_at)",
)

# 6: ``ca_chains``, the issuing CA chain of a CA (PEM, issuing CA first), learned from the first
#   certificate collected with a chain; served as the CA's certificate when none is configured.
_V6: Sequence[str] = (
    """
    CREATE TABLE ca_chains (
        ca_id      TEXT PRIMARY KEY,
        chain_pem  TEXT NOT NULL,
        learned_at TEXT NOT NULL
    )
    """,
)

# 7: who ordered what, by client (the ``clients`` section): ownership and quotas. Old rows get ""
# (ordered before clients existed: only an admin client acts on them).
_V7: Sequence[str] = (
    "ALTER TABLE orders ADD COLUMN client TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE audit ADD COLUMN client TEXT NOT NULL DEFAULT ''",
    "CREATE INDEX orders_client_created ON orders (client, created_at)",
    f"CREATE INDEX orders_unfinished_ca ON orders (ca_id, created_at) WHERE {UNFINISHED_SQL}",
)

# 8: leases, for ledgers several gateways share: which gateway works on an unfinished order and
# until when, and an index on the next attempt time that finds the orders due. A SQLite ledger
# belongs to one gateway and leaves them empty; the migration keeps both backends at one version.
_V8: Sequence[str] = (
    "ALTER TABLE orders ADD COLUMN lease_owner TEXT",
    "ALTER TABLE orders ADD COLUMN lease_until TEXT",
    f"CREATE INDEX orders_due ON orders (COALESCE(next_attempt_at, '')) WHERE {UNFINISHED_SQL}",
)

# 9: certificate events that are not about an issued serial alone: ``order_id`` names the order
# an event is about (a ``failed`` order has no certificate; a ``replaced`` one names its
# replacement's order), and ``event_key``, unique per CA when set, makes an event once-only
# however often (and by however many gateways) it is written: ``expiring:<days>:<serial>``,
# ``replaced:<serial>``.
_V9: Sequence[str] = (
    "ALTER TABLE certificate_events ADD COLUMN order_id TEXT",
    "ALTER TABLE certificate_events ADD COLUMN event_key TEXT",
    "CREATE UNIQUE INDEX certificate_events_key ON certificate_events (ca_id, event_key) WHERE event_key IS NOT NULL",
)

# 10: the shared budget of background collects of ledgers several gateways use. A SQLite ledger
# belongs to one gateway, which keeps its budget in memory: the table stays empty, and the migration
# keeps both backends at one version.
_V10: Sequence[str] = (
    "CREATE TABLE ca_budgets (ca_id TEXT PRIMARY KEY, free_at REAL NOT NULL)",
)

MIGRATIONS: Sequence[Sequence[str]] = (_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9, _V10)
"""Migration *n* is ``MIGRATIONS[n - 1]``: the statements that turn version *n-1* into *n*."""

LATEST_VERSION = len(MIGRATIONS)



class MigrationConnection(Protocol):
    """What a migration needs of a connection in autocommit mode: the ledger's own worker
    (:class:`~service.ledger.sqlite.worker.SQLiteWorker`), or an ``aiosqlite`` connection."""

    def execute(self, sql: str, parameters: Iterable[Any] = ..., /) -> Awaitable[object]: ...

    def execute_fetchall(self, sql: str, parameters: Sequence[Any] = ..., /) -> Awaitable[Iterable[sqlite3.Row]]: ...

    def commit(self) -> Awaitable[None]: ...

    def rollback(self) -> Awaitable[None]: ...


_CREATE_VERSION_TABLE = """
    CREATE TABLE IF NOT EXISTS schema_version (
        version    INTEGER PRIMARY KEY,
        applied_at TEXT NOT NULL
    )
"""


async def schema_version(conn: MigrationConnection) -> int:
    """The version of the database behind ``conn`` (0 for a new, empty file)."""
    rows = list(await conn.execute_fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"))
    if not rows:
        return 0
    rows = list(await conn.execute_fetchall("SELECT COALESCE(MAX(version), 0) FROM schema_version"))
    return int(rows[0][0])


async def migrate(
    conn: MigrationConnection,
    *,
    path: Path,
    clock: Callable[[], dt.datetime],
    target: int = LATEST_VERSION,
) -> tuple[int, int]:
    """Bring the database to ``target`` and return ``(version before, version after)``.

    ``conn`` must be in autocommit mode (``isolation_level=None``) with no open
    transaction. A database newer than this gateway raises ``ConfigError``
    naming the file and both versions; nothing is changed then. ``target``
    below the latest exists for tests that build an old database.

    sqlite3 errors pass through: the caller translates them at its edge.
    """
    if not 0 <= target <= LATEST_VERSION:
        raise ValueError(f"schema version {target} does not exist (latest is {LATEST_VERSION})")
    await conn.execute("BEGIN IMMEDIATE")
    try:
        await conn.execute(_CREATE_VERSION_TABLE)
        current = await schema_version(conn)
        if current > LATEST_VERSION:
            raise ConfigError(
                f"ledger {path} has schema version {current}, newer than this gateway supports "
                f"(version {LATEST_VERSION}); run a newer gateway or restore a backup",
                metadata={"path": str(path), "found_version": str(current),
                          "supported_version": str(LATEST_VERSION)},
            )
        applied_at = clock().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for version in range(current + 1, target + 1):
            for statement in MIGRATIONS[version - 1]:
                await conn.execute(statement)
            await conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                               (version, applied_at))
        await conn.commit()
    except BaseException:
        await conn.rollback()  # queued after any statement still running; no-op without a transaction
        raise
    return current, max(current, target)
