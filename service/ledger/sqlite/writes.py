"""The SQLite ledger's write transactions, each a plain function run whole on the writer thread.

Each function runs inside ``BEGIN IMMEDIATE`` … ``COMMIT`` (the ledger wraps
it with :func:`~service.ledger.sqlite.worker.in_transaction`): anything it
raises rolls the whole transaction back. Writes return what they changed from
what they wrote or from the statement's own ``RETURNING``, never by selecting
the row again.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence

from service.errors import NotFound
from service.ledger.base import CertificateRecord, NewOrder, OrderRecord, OrderState
from service.ledger.errors import DuplicateOrder, lost_update, twin_refusal
from service.ledger.sqlite.inventory import failed_reason
from service.ledger.sqlite.rows import NEW_ORDER_COLUMNS, new_order_record, new_order_values, order_from_row, ts
from service.ledger.sqlite.statements import (
    append_history,
    certificate_where,
    existing_for,
    file_order,
    insert_certificate,
    insert_event,
    insert_replaced,
    link_certificate,
    order_where,
    orders_like,
    unfinished_twin,
)

__all__ = ["OrderUpdate", "create_order", "record_issued", "update_order"]

_INSERT_ORDER = (f"INSERT INTO orders ({', '.join(NEW_ORDER_COLUMNS)}) "
                 f"VALUES ({', '.join('?' * len(NEW_ORDER_COLUMNS))})")

_UPDATE_ORDER = (
    "UPDATE orders SET state = ?, updated_at = ?, version = version + 1, "
    "ca_order_id = COALESCE(?, ca_order_id), attempts = COALESCE(?, attempts), "
    "next_attempt_at = COALESCE(?, next_attempt_at), detail = COALESCE(?, detail), "
    "error_reason = COALESCE(?, error_reason) "
    "WHERE id = ? AND (? IS NULL OR state = ?) AND (? IS NULL OR version = ?) RETURNING *")

_MARK_ISSUED = (
    "UPDATE orders SET state = ?, serial_number = ?, updated_at = ?, version = version + 1, "
    "attempts = COALESCE(?, attempts), detail = COALESCE(?, detail) WHERE id = ? AND ca_id = ? RETURNING *")


def create_order(conn: sqlite3.Connection, order: NewOrder, now: str) -> tuple[OrderRecord, bool]:
    existing = existing_for(order, orders_like(conn, order))
    if existing is not None:
        return existing, False
    conn.execute(_INSERT_ORDER, new_order_values(order, now))
    append_history(conn, order.id, 1, now, OrderState.RECEIVED, "")
    if order.server_key is not None:
        conn.execute("INSERT INTO server_keys (order_id, encrypted_pkcs8, created_at, expires_at) VALUES (?, ?, ?, ?)",
                     (order.id, order.server_key.encrypted_pkcs8, now, ts(order.server_key.expires_at)))
    if order.requested_dn:
        file_order(conn, order.ca_id, order.requested_dn, order.id, now)
    return new_order_record(order, now), True


class OrderUpdate:
    """The arguments of ``Ledger.update_order`` as the UPDATE's parameters."""

    def __init__(self, order_id: str, *, state: OrderState, ca_order_id: str | None, attempts: int | None,
                 next_attempt_at: str | None, detail: str | None, error_reason: str | None,
                 expected_state: OrderState | None, expected_version: int | None) -> None:
        self.order_id, self.state, self.detail = order_id, state, detail
        self.expected_state, self.expected_version = expected_state, expected_version
        expected = expected_state.value if expected_state is not None else None
        self._values = (ca_order_id, attempts, next_attempt_at, detail, error_reason, order_id,
                        expected, expected, expected_version, expected_version)

    def parameters(self, now: str) -> tuple[object, ...]:
        return (self.state.value, now, *self._values)


_FAILED = (OrderState.FAILED, OrderState.ABANDONED)


def update_order(conn: sqlite3.Connection, update: OrderUpdate, now: str) -> OrderRecord:
    order_id = update.order_id
    before = conn.execute("SELECT state FROM orders WHERE id = ?", (order_id,)).fetchone() \
        if update.state in _FAILED else None
    try:
        rows = conn.execute(_UPDATE_ORDER, update.parameters(now)).fetchall()
    except sqlite3.IntegrityError:
        duplicate = _duplicate_error(conn, order_id)
        if duplicate is None:
            raise  # another constraint: translated as it is
        raise duplicate from None
    if not rows:
        raise _lost_update_error(conn, order_id, update.expected_state, update.expected_version)
    record = order_from_row(rows[0])
    append_history(conn, order_id, record.version, now, update.state, update.detail or "")
    if before is not None and OrderState(before[0]) not in _FAILED:  # its owner is told, once per failure
        insert_event(conn, record.ca_id, "failed", "", record.updated_at, detail=record.detail,
                     reason=failed_reason(record.state.value, record.error_reason), order_id=record.id)
    return record


def record_issued(conn: sqlite3.Connection, order_id: str | None, certificate: CertificateRecord,
                  subject_dns: Sequence[str], now_dt: dt.datetime, *, attempts: int | None = None,
                  detail: str | None = None) -> OrderRecord | None:
    now = ts(now_dt)
    ca_id, serial = certificate.ca_id, certificate.serial_number
    if _stored_new(conn, order_id, certificate, now):
        # A new certificate: its order (if any) cannot hold it yet. Inserting first (the order's
        # serial refers to it) and checking the order after is safe: raising rolls it all back.
        insert_event(conn, ca_id, "issued", serial, certificate.issued_at or now_dt, detail=certificate.subject_dn)
        order = None if order_id is None else _mark_issued(conn, order_id, certificate, now, attempts, detail)
    else:
        order, order_id = _issued_again(conn, order_id, certificate, now, attempts, detail)
    # The order was filed under its requested DN when it was created (and stays filed there).
    filed = order.requested_dn if order is not None else ""
    dns = [dn for dn in dict.fromkeys((certificate.subject_dn, *subject_dns)) if dn and dn != filed]
    for dn in dns:
        if order_id is not None:
            file_order(conn, ca_id, dn, order_id, now)
        else:
            conn.execute("INSERT OR IGNORE INTO subjects (ca_id, dn, order_id, serial_number, created_at) "
                         "VALUES (?, ?, NULL, ?, ?)", (ca_id, dn, serial, now))
    return order


def _stored_new(conn: sqlite3.Connection, order_id: str | None, certificate: CertificateRecord, now: str) -> bool:
    """Insert the certificate; False when it was stored before. An unknown order is NotFound."""
    try:
        return insert_certificate(conn, certificate, order_id, now)
    except sqlite3.IntegrityError:  # the certificate's order must exist (foreign key)
        if order_id is not None and order_where(conn, "id = ?", (order_id,)) is None:
            raise NotFound(f"order {order_id} not found", metadata={"order_id": order_id}) from None
        raise


def _order_error(conn: sqlite3.Connection, order_id: str, ca_id: str, serial: str) -> Exception:
    order = order_where(conn, "id = ?", (order_id,))
    if order is None:
        return NotFound(f"order {order_id} not found", metadata={"order_id": order_id})
    return ValueError(f"order {order_id} belongs to CA {order.ca_id}, certificate {serial} to CA {ca_id}")


def _mark_issued(conn: sqlite3.Connection, order_id: str, certificate: CertificateRecord, now: str,
                 attempts: int | None, detail: str | None) -> OrderRecord:
    ca_id, serial = certificate.ca_id, certificate.serial_number
    rows = conn.execute(_MARK_ISSUED, (OrderState.ISSUED.value, serial, now, attempts, detail, order_id,
                                       ca_id)).fetchall()
    if not rows:
        raise _order_error(conn, order_id, ca_id, serial)
    order = order_from_row(rows[0])
    append_history(conn, order_id, order.version, now, OrderState.ISSUED, f"serial {serial}")
    insert_replaced(conn, order, serial, certificate.issued_at or order.updated_at)
    return order


def _issued_again(conn: sqlite3.Connection, order_id: str | None, certificate: CertificateRecord, now: str,
                  attempts: int | None, detail: str | None) -> tuple[OrderRecord | None, str | None]:
    """The certificate was stored before: link it to its order, or mark an order that does not
    hold it yet; an order already issued with it changes nothing (a repeated call)."""
    ca_id, serial = certificate.ca_id, certificate.serial_number
    order: OrderRecord | None = None
    if order_id is not None:
        order = order_where(conn, "id = ? AND ca_id = ?", (order_id, ca_id))
        if order is None:
            raise _order_error(conn, order_id, ca_id, serial)
    stored = certificate_where(conn, ca_id, serial)
    assert stored is not None  # the insert met it
    if order_id is not None and stored.order_id is None:
        link_certificate(conn, ca_id, serial, order_id)
    elif order_id is None and stored.order_id is not None:
        order_id = stored.order_id  # already ours: file the order, not a loose certificate
    if order is not None and (order.state is not OrderState.ISSUED or order.serial_number != serial):
        order = _mark_issued(conn, order.id, certificate, now, attempts, detail)
    return order, order_id


def _lost_update_error(conn: sqlite3.Connection, order_id: str, expected_state: OrderState | None,
                       expected_version: int | None) -> Exception:
    """Why a conditional UPDATE changed no row: the order is unknown, or it moved meanwhile."""
    return lost_update(order_id, order_where(conn, "id = ?", (order_id,)), expected_state, expected_version)


def _duplicate_error(conn: sqlite3.Connection, order_id: str) -> DuplicateOrder | None:
    """The unique index on unfinished fingerprints refused reviving ``order_id``: name the twin."""
    order = order_where(conn, "id = ?", (order_id,))
    twin = None if order is None else unfinished_twin(conn, order.ca_id, order.fingerprint, other_than=order_id)
    if twin is None:
        return None
    return twin_refusal(order_id, twin)
