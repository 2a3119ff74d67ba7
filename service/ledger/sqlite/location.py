"""``sqlite:`` URLs: the SQLite backend's settings, how it registers, builds and copies its ledger.

The URL form is the one SQLAlchemy made familiar: ``sqlite:///FILE`` is FILE
relative to the configuration file's folder, ``sqlite:////ABSOLUTE/FILE``
(four slashes) an absolute path; ``~`` is the home folder, ``%xx`` escapes
decode. There is no host, user, query or in-memory database: the ledger is a
local file that outlives the process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from service.ledger.base import Ledger
from service.ledger.registry import Clock, LedgerBackend, LedgerSettingsError, LedgerSource
from service.ledger.sqlite.backup import backup_database
from service.ledger.sqlite.ledger import SQLiteLedger

__all__ = ["SQLITE_BACKEND", "SQLiteSettings", "parse_sqlite_url", "sqlite_url"]

_FORM = ("write sqlite:///FILE (relative to the configuration file's folder) or sqlite:////ABSOLUTE/FILE")


@dataclass(frozen=True)
class SQLiteSettings:
    path: Path


def parse_sqlite_url(source: LedgerSource) -> SQLiteSettings:
    """The file a ``sqlite:`` URL names, resolved with ``source.resolve_path``."""
    try:
        parts = urlsplit(source.url.strip())
    except ValueError:
        raise LedgerSettingsError(("url", f"is not a valid SQLite URL: {_FORM}")) from None
    if parts.netloc:
        raise LedgerSettingsError(("url", f"a SQLite ledger is a local file with no host or user: {_FORM}"))
    if parts.path and not parts.path.startswith("/"):
        raise LedgerSettingsError(("url", f"is not a SQLite file URL: {_FORM}"))
    if parts.query or parts.fragment:
        raise LedgerSettingsError(("url", f"a SQLite URL takes no query or fragment (?…, #…): {_FORM}"))
    raw = unquote(parts.path)[1:]  # the slash that ends "sqlite://" is not part of the path
    if not raw.strip():
        raise LedgerSettingsError(("url", f"names no file: {_FORM}"))
    if raw == ":memory:":
        raise LedgerSettingsError(("url", "the ledger must be a file: an in-memory database would lose every "
                                          "order when the gateway stops"))
    if "\x00" in raw:
        raise LedgerSettingsError(("url", "the file name contains a NUL character"))
    return SQLiteSettings(path=source.resolve_path(raw))


def sqlite_url(settings: SQLiteSettings) -> str:
    """``sqlite:///`` + the path (so an absolute path shows four slashes)."""
    return f"sqlite:///{quote(str(settings.path), safe='/~')}"


def _create(settings: SQLiteSettings, clock: Clock | None) -> Ledger:
    return SQLiteLedger(settings.path) if clock is None else SQLiteLedger(settings.path, clock=clock)


async def _backup(settings: SQLiteSettings, target: Path) -> None:
    await backup_database(settings.path, target)


def _file_of(settings: SQLiteSettings) -> Path:
    return settings.path


SQLITE_BACKEND: LedgerBackend[SQLiteSettings] = LedgerBackend(
    name="SQLite", schemes=("sqlite",), parse=parse_sqlite_url, create=_create, describe=sqlite_url,
    backup=_backup, file_of=_file_of)
