"""The embedded ledger on one SQLite file (WAL), registered for ``sqlite:`` URLs.

Modules: ``ledger`` (:class:`SQLiteLedger`), ``migrations`` (the versioned
schema), ``rows`` and ``statements`` (rows <-> records, the SQL run inside a
write), ``errors`` (``sqlite3`` errors -> the gateway's tree), ``backup``
(a consistent copy while a gateway runs), ``location`` (``sqlite:`` URLs and
the registration).
"""

from __future__ import annotations

from service.ledger.registry import register_backend
from service.ledger.sqlite.backup import backup_database
from service.ledger.sqlite.errors import map_sqlite_errors, translate_sqlite_error
from service.ledger.sqlite.ledger import SQLiteLedger
from service.ledger.sqlite.location import SQLITE_BACKEND, SQLiteSettings

__all__ = ["SQLiteLedger", "SQLiteSettings", "backup_database", "map_sqlite_errors", "translate_sqlite_error"]

register_backend(SQLITE_BACKEND)
