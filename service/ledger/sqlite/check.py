"""``check_database``: is a SQLite ledger file whole, and do its rows agree with each other?

Two kinds of finding, each a :class:`Finding` naming the check, the row and what is wrong:

* **integrity** — SQLite's own ``PRAGMA integrity_check`` (pages, indexes, the
  unique indexes too) and ``PRAGMA foreign_key_check`` (a history, certificate
  or subject row that names a missing order or certificate);
* **consistency** — what the gateway itself always writes together: an order's
  state is its history's last entry and its history starts ``RECEIVED``; an
  ``ISSUED`` order names its certificate, which names it back; a certificate
  filed under an order belongs to an issued order; an order the CA accepted has
  the CA's order id; one CA order id belongs to one order (else it was ordered
  twice); one unfinished order per CSR and CA; a failed order says why.

The file is opened read-only (``mode=ro``), so a check is safe beside a
running gateway and never changes what it finds; what it reads is one
consistent snapshot (one read transaction).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from service.ledger.sqlite.migrations import LATEST_VERSION, UNFINISHED_SQL

__all__ = ["CheckReport", "Finding", "check_database"]

_STATES = ("RECEIVED", "SUBMITTED", "COLLECTING", "ISSUED", "FAILED", "ABANDONED")
_ACCEPTED = ("SUBMITTED", "COLLECTING")  # the CA has the order: its order id is known
_FAILED = ("FAILED", "ABANDONED")
MAX_INTEGRITY_LINES = 100  # SQLite lists every damaged page; the first hundred say enough


@dataclass(frozen=True)
class Finding:
    check: str  # e.g. "integrity", "foreign-key", "order-history", "issued-certificate"
    message: str

    def __str__(self) -> str:
        return f"{self.check}: {self.message}"


@dataclass
class CheckReport:
    """What :func:`check_database` found: ``findings`` empty means the ledger is sound."""

    path: Path
    schema_version: int = 0
    orders: Counter[str] = field(default_factory=Counter)  # by state
    certificates: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        states = ", ".join(f"{count} {state}" for state, count in sorted(self.orders.items())) or "none"
        verdict = "OK" if self.ok else f"{len(self.findings)} problem(s)"
        return (f"ledger {self.path}: schema version {self.schema_version}, {sum(self.orders.values())} "
                f"order(s) ({states}), {self.certificates} certificate(s): {verdict}")


def check_database(path: Path) -> CheckReport:
    """Check the ledger file ``path`` (see the module docstring). A file that is no SQLite database
    at all is reported as an integrity finding; a missing file raises ``FileNotFoundError``."""
    if not path.is_file():
        raise FileNotFoundError(f"no ledger file at {path}")
    report = CheckReport(path=path)
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        report.findings.append(Finding("integrity", f"cannot open the file: {exc}"))
        return report
    try:
        conn.execute("BEGIN")  # one snapshot for every query below
        _run(conn, report)
    except sqlite3.DatabaseError as exc:  # not a database, or too damaged to read on
        report.findings.append(Finding("integrity", f"the file cannot be read as a ledger: {exc}"))
    finally:
        conn.close()
    return report


def _run(conn: sqlite3.Connection, report: CheckReport) -> None:
    report.findings += _integrity(conn)
    report.schema_version = _schema_version(conn)
    if report.schema_version != LATEST_VERSION:
        report.findings.append(Finding("schema", f"schema version {report.schema_version}, this gateway "
                                                 f"writes version {LATEST_VERSION}: open it with the gateway "
                                                 "first (it migrates), then check again"))
        return  # the consistency checks read the latest schema's columns
    report.orders.update({str(state): int(count) for state, count in
                          conn.execute("SELECT state, COUNT(*) FROM orders GROUP BY state")})
    report.certificates = int(conn.execute("SELECT COUNT(*) FROM certificates").fetchone()[0])
    for check in (_order_states, _order_history, _issued_orders, _certificate_orders, _ca_order_ids,
                  _unfinished_twins, _failure_reasons):
        report.findings += check(conn)


def _integrity(conn: sqlite3.Connection) -> list[Finding]:
    found = [Finding("integrity", str(row[0])) for row in
             conn.execute(f"PRAGMA integrity_check({MAX_INTEGRITY_LINES})") if row[0] != "ok"]
    for table, rowid, parent, _ in conn.execute("PRAGMA foreign_key_check"):
        found.append(Finding("foreign-key", f"{table} row {rowid} names a missing row of {parent}"))
    return found


def _schema_version(conn: sqlite3.Connection) -> int:
    has_table = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'")
    if has_table.fetchone() is None:
        return 0
    return int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])


def _order_states(conn: sqlite3.Connection) -> Iterator[Finding]:
    marks = ", ".join("?" * len(_STATES))
    for order_id, state in conn.execute(f"SELECT id, state FROM orders WHERE state NOT IN ({marks})", _STATES):
        yield Finding("order-state", f"order {order_id} has the unknown state {state!r}")
    for order_id, state in conn.execute(
            f"SELECT id, state FROM orders WHERE ca_order_id IS NULL AND state IN (?, ?)", _ACCEPTED):
        yield Finding("order-state", f"order {order_id} is {state} but has no CA order id")
    for order_id, state, serial in conn.execute(
            "SELECT id, state, serial_number FROM orders WHERE serial_number IS NOT NULL AND state != 'ISSUED'"):
        yield Finding("order-state", f"order {order_id} is {state} but names certificate {serial}")


def _order_history(conn: sqlite3.Connection) -> Iterator[Finding]:
    rows = conn.execute(
        "SELECT o.id, o.state, "
        "  (SELECT h.state FROM order_history h WHERE h.order_id = o.id ORDER BY h.seq LIMIT 1), "
        "  (SELECT h.state FROM order_history h WHERE h.order_id = o.id ORDER BY h.seq DESC LIMIT 1) "
        "FROM orders o")
    for order_id, state, first, last in rows:
        if first is None:
            yield Finding("order-history", f"order {order_id} ({state}) has no history")
            continue
        if first != "RECEIVED":
            yield Finding("order-history", f"order {order_id}: its history starts {first}, not RECEIVED")
        if last != state:
            yield Finding("order-history", f"order {order_id} is {state} but its history ends {last}")


def _issued_orders(conn: sqlite3.Connection) -> Iterator[Finding]:
    rows = conn.execute(
        "SELECT o.id, o.ca_id, o.serial_number, c.serial_number, c.order_id FROM orders o "
        "LEFT JOIN certificates c ON c.ca_id = o.ca_id AND c.serial_number = o.serial_number "
        "WHERE o.state = 'ISSUED'")
    for order_id, ca_id, serial, stored, owner in rows:
        if serial is None:
            yield Finding("issued-certificate", f"order {order_id} is ISSUED but names no certificate")
        elif stored is None:
            yield Finding("issued-certificate", f"order {order_id} is ISSUED with certificate {serial}, "
                                                f"which CA {ca_id} has no record of")
        elif owner != order_id:
            yield Finding("issued-certificate", f"order {order_id} is ISSUED with certificate {serial}, "
                                                f"which is filed under {owner or 'no order'}")


def _certificate_orders(conn: sqlite3.Connection) -> Iterator[Finding]:
    rows = conn.execute(
        "SELECT c.ca_id, c.serial_number, c.order_id, o.id, o.state, o.ca_id FROM certificates c "
        "LEFT JOIN orders o ON o.id = c.order_id WHERE c.order_id IS NOT NULL")
    for ca_id, serial, order_id, found, state, order_ca in rows:
        if found is None:
            yield Finding("certificate-order", f"certificate {serial} of CA {ca_id} is filed under order "
                                               f"{order_id}, which does not exist")
        elif order_ca != ca_id:
            yield Finding("certificate-order", f"certificate {serial} of CA {ca_id} is filed under order "
                                               f"{order_id} of CA {order_ca}")
        elif state != "ISSUED":
            yield Finding("certificate-order", f"certificate {serial} of CA {ca_id} is filed under order "
                                               f"{order_id}, which is {state}, not ISSUED")


def _ca_order_ids(conn: sqlite3.Connection) -> Iterator[Finding]:
    rows = conn.execute(
        "SELECT ca_id, ca_order_id, GROUP_CONCAT(id, ', ') FROM orders WHERE ca_order_id IS NOT NULL "
        "GROUP BY ca_id, ca_order_id HAVING COUNT(*) > 1")
    for ca_id, ca_order_id, orders in rows:
        yield Finding("ordered-twice", f"CA {ca_id} order {ca_order_id} belongs to several orders: {orders}")


def _unfinished_twins(conn: sqlite3.Connection) -> Iterator[Finding]:
    rows = conn.execute(
        f"SELECT ca_id, fingerprint, GROUP_CONCAT(id, ', ') FROM orders WHERE {UNFINISHED_SQL} "
        "AND duplicate_of IS NULL GROUP BY ca_id, fingerprint HAVING COUNT(*) > 1")
    for ca_id, fingerprint, orders in rows:
        yield Finding("unfinished-twins", f"CA {ca_id}: several unfinished orders for one CSR "
                                          f"(fingerprint {fingerprint[:16]}…): {orders}")


def _failure_reasons(conn: sqlite3.Connection) -> Iterator[Finding]:
    for order_id, state in conn.execute(
            "SELECT id, state FROM orders WHERE error_reason = '' AND state IN (?, ?)", _FAILED):
        yield Finding("failure-reason", f"order {order_id} is {state} with no reason recorded")
