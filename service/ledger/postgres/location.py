"""``postgresql:`` URLs: the PostgreSQL backend's settings and how it registers and builds its ledger.

The URL is libpq's (``postgresql://user:password@host:5432/database?sslmode=require``);
``postgres://`` is accepted too. The ``ledger:`` section may add ``schema`` (the
gateway's tables live there; default ``public``), ``pool-size`` (connections per
gateway, default 10), ``statement-timeout`` (default 5s), ``connect-timeout``
(default 5s), ``lease-time`` (how long an order stays with a gateway that stopped renewing
its lease, default 30s) and ``lease-heartbeat`` (how often leases are renewed and due orders
claimed, default 10s, at most half the lease time). The password stays inside the settings
and no message shows it.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from service.ledger.base import Ledger
from service.ledger.postgres.settings import PostgresSettings
from service.ledger.registry import Clock, LedgerBackend, LedgerSettingsError, LedgerSource

__all__ = ["POSTGRES_BACKEND", "PostgresSettings", "parse_postgres_url"]

_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*")
_OPTION_KEYS = frozenset({"schema", "pool-size", "statement-timeout", "connect-timeout", "lease-time",
                          "lease-heartbeat"})
_DEFAULTS = {"statement-timeout": "5s", "connect-timeout": "5s", "lease-time": "30s", "lease-heartbeat": "10s"}


def _seconds(key: str, text: str) -> float:
    match = _DURATION.fullmatch(text)
    if not match or float(match.group(1)) <= 0:
        raise LedgerSettingsError((key, f"{text!r} is not a duration above zero (examples: 5s, 500ms)"))
    return float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)


def parse_postgres_url(source: LedgerSource) -> PostgresSettings:
    try:
        parts = urlsplit(source.url.strip())
    except ValueError:
        raise LedgerSettingsError(("url", "is not a valid PostgreSQL URL: write "
                                          "postgresql://USER:PASSWORD@HOST:5432/DATABASE")) from None
    if not parts.hostname and "host=" not in parts.query:
        raise LedgerSettingsError(("url", "names no database server: write postgresql://USER@HOST:5432/DATABASE"))
    options = source.options
    problems: list[tuple[str, str]] = []
    schema = options.get("schema", "public").strip()
    if not _SCHEMA.fullmatch(schema):
        problems.append(("schema", f"{schema!r} is not a schema name (lower-case letters, digits and _)"))
    pool_size = options.get("pool-size", "10").strip()
    if not pool_size.isdigit() or not 1 <= int(pool_size) <= 100:
        problems.append(("pool-size", f"{pool_size!r} is not a whole number from 1 to 100"))
    timeouts: dict[str, float] = {}
    for key, default in _DEFAULTS.items():
        try:
            timeouts[key] = _seconds(key, options.get(key, default))
        except LedgerSettingsError as exc:
            problems.extend(exc.problems)
    lease, heartbeat = timeouts.get("lease-time"), timeouts.get("lease-heartbeat")
    if lease is not None and heartbeat is not None and heartbeat > lease / 2:
        problems.append(("lease-heartbeat", f"{options.get('lease-heartbeat', '10s')!r} is more than half of "
                                            f"lease-time ({lease:g}s): a lease would lapse after one late renewal"))
    if problems:
        raise LedgerSettingsError(*problems)
    return PostgresSettings(dsn=source.url.strip(), schema=schema, pool_size=int(pool_size),
                            statement_timeout=timeouts["statement-timeout"],
                            connect_timeout=timeouts["connect-timeout"], lease_time=timeouts["lease-time"],
                            lease_heartbeat=timeouts["lease-heartbeat"])


def _describe(settings: PostgresSettings) -> str:
    suffix = f" (schema {settings.schema})" if settings.schema != "public" else ""
    return settings.dsn + suffix  # the registry redacts the password


def _create(settings: PostgresSettings, clock: Clock | None) -> Ledger:
    from service.ledger.postgres.ledger import PostgresLedger

    return PostgresLedger(settings) if clock is None else PostgresLedger(settings, clock=clock)


POSTGRES_BACKEND: LedgerBackend[PostgresSettings] = LedgerBackend(
    name="PostgreSQL", schemes=("postgresql", "postgres"), parse=parse_postgres_url, create=_create,
    describe=_describe, option_keys=_OPTION_KEYS)
