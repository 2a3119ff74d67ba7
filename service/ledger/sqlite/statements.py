"""Statements the SQLite ledger runs inside its write transactions, one helper each.

They are plain functions on a ``sqlite3`` connection: a whole transaction runs on the
ledger's writer thread in one go (see :mod:`service.ledger.sqlite.worker`)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import sqlite3
from collections.abc import Sequence

from service.errors import AlreadyExists
from service.ledger.base import CertificateRecord, NewOrder, OrderRecord, OrderState
from service.ledger.sqlite.migrations import UNFINISHED_SQL
from service.ledger.sqlite.rows import CERT_COLUMNS, CERT_SELECT, certificate_from_row, order_from_row, ts, ts_or_none

__all__ = [
    "TWIN_ORDER",
    "TWIN_WHERE",
    "append_history",
    "certificate_where",
    "execute",
    "file_order",
    "insert_certificate",
    "insert_event",
    "insert_replaced",
    "link_certificate",
    "existing_for",
    "order_where",
    "orders_like",
    "unfinished_twin",
]

# The CA's unfinished orders with one fingerprint (parameters: ca_id, fingerprint), the one that
# kept the fingerprint first: only a file migrated with duplicates has more than one (migration 3).
TWIN_WHERE = f"ca_id = ? AND fingerprint = ? AND {UNFINISHED_SQL}"
TWIN_ORDER = "ORDER BY duplicate_of IS NOT NULL, created_at, rowid"


def execute(conn: sqlite3.Connection, sql: str, params: Sequence[object] = ()) -> int:
    """Run one statement and return the number of rows it changed."""
    cursor = conn.execute(sql, params)
    try:
        return cursor.rowcount
    finally:
        cursor.close()


def order_where(conn: sqlite3.Connection, where: str, params: Sequence[object]) -> OrderRecord | None:
    row = conn.execute(f"SELECT * FROM orders WHERE {where}", params).fetchone()
    return order_from_row(row) if row is not None else None


def certificate_where(conn: sqlite3.Connection, ca_id: str, serial: str) -> CertificateRecord | None:
    row = conn.execute(f"SELECT {CERT_SELECT} FROM certificates c WHERE c.ca_id = ? AND c.serial_number = ?",
                       (ca_id, serial)).fetchone()
    return certificate_from_row(row) if row is not None else None


def append_history(conn: sqlite3.Connection, order_id: str, version: int, now: str, state: OrderState,
                   detail: str) -> None:
    """The history entry of the change that gave the order ``version``: every change bumps the
    version by one and appends one entry, so the version is the entry's sequence number."""
    conn.execute("INSERT INTO order_history (order_id, seq, time, state, detail) VALUES (?, ?, ?, ?, ?)",
                 (order_id, version, now, state.value, detail))


def file_order(conn: sqlite3.Connection, ca_id: str, dn: str, order_id: str, now: str) -> None:
    conn.execute("INSERT OR IGNORE INTO subjects (ca_id, dn, order_id, serial_number, created_at) "
                 "VALUES (?, ?, ?, NULL, ?)", (ca_id, dn, order_id, now))


def insert_certificate(conn: sqlite3.Connection, cert: CertificateRecord, order_id: str | None, now: str) -> bool:
    """Store the certificate unless its ``(ca_id, serial_number)`` is stored already; True when stored."""
    chain = json.dumps([base64.b64encode(der).decode("ascii") for der in cert.chain_der])
    return execute(
        conn,
        f"INSERT INTO certificates ({', '.join(CERT_COLUMNS)}, recorded_at) "
        f"VALUES ({', '.join('?' * (len(CERT_COLUMNS) + 1))}) ON CONFLICT (ca_id, serial_number) DO NOTHING",
        (cert.ca_id, cert.serial_number, order_id, cert.certificate_der, chain, cert.subject_dn, cert.issuer_dn,
         ts(cert.not_before), ts(cert.not_after), cert.status, ts_or_none(cert.revoked_at),
         cert.revocation_reason, cert.revocation_comment, ts_or_none(cert.issued_at),
         ts_or_none(cert.compromise_date), now)) > 0


def link_certificate(conn: sqlite3.Connection, ca_id: str, serial: str, order_id: str) -> None:
    """Attach a certificate stored without an order to its order, moving its subject filings."""
    conn.execute("UPDATE certificates SET order_id = ? WHERE ca_id = ? AND serial_number = ?",
                 (order_id, ca_id, serial))
    # OR IGNORE: the order may already be filed under the same DN; the leftover row goes next.
    conn.execute("UPDATE OR IGNORE subjects SET order_id = ?, serial_number = NULL "
                 "WHERE ca_id = ? AND serial_number = ? AND order_id IS NULL", (order_id, ca_id, serial))
    conn.execute("DELETE FROM subjects WHERE ca_id = ? AND serial_number = ? AND order_id IS NULL", (ca_id, serial))


def insert_event(conn: sqlite3.Connection, ca_id: str, action: str, serial: str, when: dt.datetime,
                 *, detail: str = "", reason: str = "", order_id: str | None = None,
                 event_key: str | None = None) -> None:
    """Append one event; with ``event_key``, none when the CA has an event under that key already."""
    conn.execute("INSERT INTO certificate_events (ca_id, action, serial_number, time, detail, reason, order_id, "
                 "event_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                 (ca_id, action, serial, ts(when), detail, reason, order_id, event_key))


def insert_replaced(conn: sqlite3.Connection, order: OrderRecord, new_serial: str, when: dt.datetime) -> None:
    """The ``replaced`` event of the certificate ``order`` renews or reissues, now that ``new_serial``
    is issued for it: once per replaced serial, and only for a certificate the ledger holds."""
    old = order.renewal_of_serial
    if old and old != new_serial and certificate_where(conn, order.ca_id, old) is not None:
        insert_event(conn, order.ca_id, "replaced", old, when, detail=new_serial, order_id=order.id,
                     event_key=f"replaced:{old}")


def unfinished_twin(conn: sqlite3.Connection, ca_id: str, fingerprint: str, *,
                    other_than: str | None = None) -> OrderRecord | None:
    row = conn.execute(f"SELECT * FROM orders WHERE {TWIN_WHERE} AND id IS NOT ? {TWIN_ORDER} LIMIT 1",
                       (ca_id, fingerprint, other_than)).fetchone()
    return order_from_row(row) if row is not None else None


def orders_like(conn: sqlite3.Connection, order: NewOrder) -> list[sqlite3.Row]:
    """In one query, what a new order may turn out to be: the CA's order with its request id,
    the CA's unfinished orders with its fingerprint, the order with its id."""
    return conn.execute(
        f"SELECT * FROM orders WHERE (ca_id = ? AND request_id = ?) OR ({TWIN_WHERE}) OR id = ? {TWIN_ORDER}",
        (order.ca_id, order.request_id, order.ca_id, order.fingerprint, order.id)).fetchall()


def existing_for(order: NewOrder, rows: Sequence[sqlite3.Row]) -> OrderRecord | None:
    """The recorded order ``order`` is a repeat of, by :meth:`create_order`'s rules (rows from
    :func:`orders_like`), or None for a new one; an id reused for another request is refused."""
    for row in rows:
        if order.request_id is not None and (row["ca_id"], row["request_id"]) == (order.ca_id, order.request_id):
            return order_from_row(row)
    for row in rows:
        if row["id"] == order.id:
            existing = order_from_row(row)
            if (existing.ca_id, existing.fingerprint, existing.request_id) == (
                    order.ca_id, order.fingerprint, order.request_id):
                return existing
            raise AlreadyExists(f"order id {order.id} is already used by another request",
                                metadata={"order_id": order.id})
    for row in rows:  # in TWIN_ORDER: the one that kept the fingerprint first
        if (row["ca_id"], row["fingerprint"]) == (order.ca_id, order.fingerprint) \
                and not OrderState(row["state"]).finished:
            return order_from_row(row)
    return None
