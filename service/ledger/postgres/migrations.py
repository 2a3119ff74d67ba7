"""The PostgreSQL ledger's versioned schema: the same versions and columns as the SQLite ledger's.

Columns keep the SQLite ledger's forms (fixed-width ISO-8601 UTC text for times,
JSON text for lists and options), so one set of row converters serves both
backends and a ledger can move between them row for row. Replicas that start
together migrate once: the migration runs under a session advisory lock, and
each version is applied in its own transaction with its row in ``schema_version``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import asyncpg

from service.errors import ConfigError

__all__ = ["LATEST_VERSION", "MIGRATIONS", "UNFINISHED_SQL", "migrate"]

UNFINISHED_SQL = "state NOT IN ('ISSUED', 'FAILED', 'ABANDONED')"
MIGRATION_LOCK = 0x63616777  # "cagw": the advisory lock held while one gateway migrates

_V1: Sequence[str] = (
    """
    CREATE TABLE certificates (
        ca_id              TEXT NOT NULL,
        serial_number      TEXT NOT NULL,
        order_id           TEXT,
        der                BYTEA NOT NULL,
        chain              TEXT NOT NULL,
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
        subject_alt_names TEXT NOT NULL,
        marker            TEXT NOT NULL,
        request_id        TEXT,
        renewal_of_serial TEXT,
        requested_by      TEXT NOT NULL,
        options           TEXT NOT NULL,
        state             TEXT NOT NULL,
        created_at        TEXT NOT NULL,
        updated_at        TEXT NOT NULL,
        ca_order_id       TEXT,
        attempts          INTEGER NOT NULL DEFAULT 0,
        next_attempt_at   TEXT,
        detail            TEXT NOT NULL DEFAULT '',
        error_reason      TEXT NOT NULL DEFAULT '',
        serial_number     TEXT,
        seq               BIGSERIAL,
        FOREIGN KEY (ca_id, serial_number) REFERENCES certificates (ca_id, serial_number)
    )
    """,
    "ALTER TABLE certificates ADD FOREIGN KEY (order_id) REFERENCES orders (id)",
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
    "CREATE INDEX certificates_order ON certificates (order_id) WHERE order_id IS NOT NULL",
    """
    CREATE TABLE subjects (
        id            BIGSERIAL PRIMARY KEY,
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
        id            BIGSERIAL PRIMARY KEY,
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
        id      BIGSERIAL PRIMARY KEY,
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

_V2: Sequence[str] = ("ALTER TABLE certificates ADD COLUMN compromise_date TEXT",)

_V3: Sequence[str] = (
    "ALTER TABLE orders ADD COLUMN version INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE orders ADD COLUMN duplicate_of TEXT REFERENCES orders (id)",
    f"CREATE UNIQUE INDEX orders_pending_fingerprint ON orders (ca_id, fingerprint) "
    f"WHERE {UNFINISHED_SQL} AND duplicate_of IS NULL",
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

_V4: Sequence[str] = (
    """
    CREATE TABLE webhook_cursors (
        name          TEXT PRIMARY KEY,
        last_event_id BIGINT NOT NULL,
        updated_at    TEXT NOT NULL
    )
    """,
    "CREATE INDEX certificates_expiry ON certificates (ca_id, not_after, serial_number)",
    "CREATE INDEX orders_renewal_of ON orders (ca_id, renewal_of_serial, created_at) "
    "WHERE renewal_of_serial IS NOT NULL",
)

_V5: Sequence[str] = (
    """
    CREATE TABLE server_keys (
        order_id        TEXT PRIMARY KEY REFERENCES orders (id),
        encrypted_pkcs8 BYTEA NOT NULL,
        created_at      TEXT NOT NULL,
        expires_at      TEXT NOT NULL
    )
    """,
    "CREATE INDEX server_keys_expiry ON server_keys (expires_at)",
)

_V6: Sequence[str] = (
    """
    CREATE TABLE ca_chains (
        ca_id      TEXT PRIMARY KEY,
        chain_pem  TEXT NOT NULL,
        learned_at TEXT NOT NULL
    )
    """,
)

_V7: Sequence[str] = (
    "ALTER TABLE orders ADD COLUMN client TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE audit ADD COLUMN client TEXT NOT NULL DEFAULT ''",
    "CREATE INDEX orders_client_created ON orders (client, created_at)",
    f"CREATE INDEX orders_unfinished_ca ON orders (ca_id, created_at) WHERE {UNFINISHED_SQL}",
)

# 8: leases. ``lease_owner`` is the gateway working on an unfinished order, ``lease_until`` when its
# lease lapses unless renewed; ``orders_due`` finds the orders whose next attempt is due (an order
# never attempted sorts first, as ''). Every recorded change of an order (its version grows) is
# announced on the channel ``cagw_orders`` as ``SCHEMA:ORDER_ID``, at commit, for the watchers of
# the other gateways; a lease renewal changes no version and announces nothing.
_V8: Sequence[str] = (
    "ALTER TABLE orders ADD COLUMN lease_owner TEXT",
    "ALTER TABLE orders ADD COLUMN lease_until TEXT",
    f"CREATE INDEX orders_due ON orders ((COALESCE(next_attempt_at, ''))) WHERE {UNFINISHED_SQL}",
    """
    CREATE FUNCTION cagw_order_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM pg_notify('cagw_orders', TG_TABLE_SCHEMA || ':' || NEW.id);
        RETURN NULL;
    END
    $$
    """,
    "CREATE TRIGGER orders_changed AFTER UPDATE ON orders FOR EACH ROW "
    "WHEN (OLD.version IS DISTINCT FROM NEW.version) EXECUTE FUNCTION cagw_order_changed()",
)

# 9: events about orders and once-only events, as in the SQLite ledger.
_V9: Sequence[str] = (
    "ALTER TABLE certificate_events ADD COLUMN order_id TEXT",
    "ALTER TABLE certificate_events ADD COLUMN event_key TEXT",
    "CREATE UNIQUE INDEX certificate_events_key ON certificate_events (ca_id, event_key) WHERE event_key IS NOT NULL",
)

# 10: one budget of background collects per CA for every gateway on the ledger. ``free_at`` is the
# bucket's theoretical arrival time in epoch seconds (the generic cell rate algorithm's one number:
# the bucket is full again at ``free_at``, and each slot taken moves it on by 1/rate); a gateway
# takes a batch of slots in one ``UPDATE … RETURNING`` (:mod:`service.ledger.postgres.budgets`).
_V10: Sequence[str] = (
    "CREATE TABLE ca_budgets (ca_id TEXT PRIMARY KEY, free_at DOUBLE PRECISION NOT NULL)",
)

MIGRATIONS: Sequence[Sequence[str]] = (_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9, _V10)
"""Migration *n* is ``MIGRATIONS[n - 1]``, as in the SQLite ledger."""

LATEST_VERSION = len(MIGRATIONS)


async def _version(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_version"))


async def migrate(conn: asyncpg.Connection, *, schema: str, where: str, clock: Callable[[], dt.datetime],
                  target: int = LATEST_VERSION) -> tuple[int, int]:
    """Create ``schema`` if needed (``conn``'s search_path names it) and bring it to ``target``;
    ``(before, after)``. A schema newer than this gateway raises ``ConfigError`` and changes nothing.
    """
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version "
                           "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        current = await _version(conn)
        if current > LATEST_VERSION:
            raise ConfigError(f"ledger {where} has schema version {current}, newer than this gateway supports "
                              f"(version {LATEST_VERSION}); run a newer gateway",
                              metadata={"found_version": str(current), "supported_version": str(LATEST_VERSION)})
        applied_at = clock().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for version in range(current + 1, target + 1):
            async with conn.transaction():
                for statement in MIGRATIONS[version - 1]:
                    await conn.execute(statement)
                await conn.execute("INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)",
                                   version, applied_at)
        return current, max(current, target)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
