"""Rows of the SQLite ledger <-> the ledger's records, and the stored time format."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from service.connectors.base import SubjectAltName
from service.ledger.base import (
    AUTO_RENEW_OPTION,
    AuditEntry,
    CertificateEventRecord,
    CertificateRecord,
    NewOrder,
    OrderKind,
    OrderRecord,
    OrderState,
    OutboxEvent,
    SubjectEntry,
    SubjectPosition,
)

__all__ = [
    "CERT_COLUMNS",
    "CERT_SELECT",
    "NEW_ORDER_COLUMNS",
    "TS_FORMAT",
    "audit_entry_from_row",
    "certificate_from_row",
    "auto_renew_choice",
    "event_from_row",
    "outbox_event_from_row",
    "subject_entry_from_row",
    "from_ts",
    "new_order_record",
    "new_order_values",
    "order_from_row",
    "sans_from_json",
    "sans_json",
    "ts",
    "ts_or_none",
]

NEW_ORDER_COLUMNS = (
    "id", "ca_id", "kind", "profile_id", "ca_profile_id", "term_days", "csr_pem", "fingerprint",
    "requested_dn", "common_name", "subject_alt_names", "marker", "request_id", "renewal_of_serial",
    "requested_by", "options", "state", "created_at", "updated_at", "version", "client",
)

CERT_COLUMNS = (
    "ca_id", "serial_number", "order_id", "der", "chain", "subject_dn", "issuer_dn", "not_before",
    "not_after", "status", "revoked_at", "revocation_reason", "revocation_comment", "issued_at", "compromise_date",
)
# Prefixed, so the columns keep their names when joined with orders and subjects.
CERT_SELECT = ", ".join(f"c.{name} AS c_{name}" for name in CERT_COLUMNS)


def new_order_values(order: NewOrder, now: str) -> tuple[object, ...]:
    return (
        order.id, order.ca_id, order.kind.value, order.profile_id, order.ca_profile_id, order.term_days,
        order.csr_pem, order.fingerprint, order.requested_dn, order.common_name,
        sans_json(order.subject_alt_names), order.marker, order.request_id, order.renewal_of_serial,
        order.requested_by, json.dumps(dict(order.options), sort_keys=True), OrderState.RECEIVED.value,
        now, now, 1,  # version 1: the history's first entry
        order.client,
    )


def new_order_record(order: NewOrder, now: str) -> OrderRecord:
    """The record :func:`new_order_values` stores, as :func:`order_from_row` would read it back."""
    created = from_ts(now)
    return OrderRecord(
        id=order.id, ca_id=order.ca_id, profile_id=order.profile_id, ca_profile_id=order.ca_profile_id,
        term_days=order.term_days, csr_pem=order.csr_pem, fingerprint=order.fingerprint,
        requested_dn=order.requested_dn, common_name=order.common_name,
        subject_alt_names=tuple(order.subject_alt_names), marker=order.marker, kind=order.kind,
        request_id=order.request_id, renewal_of_serial=order.renewal_of_serial, requested_by=order.requested_by,
        options=dict(order.options), state=OrderState.RECEIVED, created_at=created, updated_at=created, version=1)


def order_from_row(row: sqlite3.Row) -> OrderRecord:
    options: Mapping[str, str] = json.loads(row["options"])
    return OrderRecord(
        id=str(row["id"]),
        ca_id=str(row["ca_id"]),
        profile_id=str(row["profile_id"]),
        ca_profile_id=str(row["ca_profile_id"]),
        term_days=int(row["term_days"]),
        csr_pem=str(row["csr_pem"]),
        fingerprint=str(row["fingerprint"]),
        requested_dn=str(row["requested_dn"]),
        common_name=str(row["common_name"]),
        subject_alt_names=sans_from_json(row["subject_alt_names"]),
        marker=str(row["marker"]),
        kind=OrderKind(row["kind"]),
        request_id=row["request_id"],
        renewal_of_serial=row["renewal_of_serial"],
        requested_by=str(row["requested_by"]),
        options=options,
        state=OrderState(row["state"]),
        created_at=from_ts(row["created_at"]),
        updated_at=from_ts(row["updated_at"]),
        ca_order_id=row["ca_order_id"],
        attempts=int(row["attempts"]),
        next_attempt_at=from_ts(row["next_attempt_at"]) if row["next_attempt_at"] is not None else None,
        detail=str(row["detail"]),
        error_reason=str(row["error_reason"]),
        serial_number=row["serial_number"],
        version=int(row["version"]),
        client=str(row["client"] or ""),
    )


def sans_json(sans: Sequence[SubjectAltName]) -> str:
    return json.dumps([[san.type, san.value] for san in sans])


def sans_from_json(text: str) -> tuple[SubjectAltName, ...]:
    """``[[type, value], …]``; a ledger written before SANs were typed holds bare values, whose
    type shows in their form (an ``@`` is an e-mail address, an address parses as IP)."""
    return tuple(SubjectAltName(*item) if isinstance(item, list) else _legacy_san(str(item))
                 for item in json.loads(text))


def _legacy_san(value: str) -> SubjectAltName:
    if "@" in value:
        return SubjectAltName("rfc822Name", value)
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return SubjectAltName("dNSName", value)
    return SubjectAltName("iPAddress", value)


def certificate_from_row(row: sqlite3.Row) -> CertificateRecord:
    """From a row selected with ``CERT_SELECT`` (``c_``-prefixed columns)."""
    return CertificateRecord(
        serial_number=str(row["c_serial_number"]),
        ca_id=str(row["c_ca_id"]),
        order_id=row["c_order_id"],
        certificate_der=bytes(row["c_der"]),
        chain_der=tuple(base64.b64decode(item) for item in json.loads(row["c_chain"])),
        subject_dn=str(row["c_subject_dn"]),
        issuer_dn=str(row["c_issuer_dn"]),
        not_before=from_ts(row["c_not_before"]),
        not_after=from_ts(row["c_not_after"]),
        status=str(row["c_status"]),
        revoked_at=from_ts(row["c_revoked_at"]) if row["c_revoked_at"] is not None else None,
        revocation_reason=str(row["c_revocation_reason"]),
        revocation_comment=str(row["c_revocation_comment"]),
        issued_at=from_ts(row["c_issued_at"]) if row["c_issued_at"] is not None else None,
        compromise_date=from_ts(row["c_compromise_date"]) if row["c_compromise_date"] is not None else None,
    )


def auto_renew_choice(options_json: object) -> bool | None:
    """The order's automatic-renewal choice from its stored options (JSON text), None when it made none."""
    try:
        options = json.loads(str(options_json)) if options_json is not None else {}
    except ValueError:
        return None
    value = options.get(AUTO_RENEW_OPTION) if isinstance(options, dict) else None
    return None if value not in ("true", "false") else value == "true"


def event_from_row(row: sqlite3.Row) -> CertificateEventRecord:
    return CertificateEventRecord(id=int(row["id"]), ca_id=str(row["ca_id"]), action=str(row["action"]),
                                  serial_number=str(row["serial_number"]), time=from_ts(row["time"]),
                                  detail=str(row["detail"]), reason=str(row["reason"]), order_id=row["order_id"])


def outbox_event_from_row(row: Any) -> OutboxEvent:
    """From a row of ``OUTBOX_SELECT`` (``service.ledger.sqlite.inventory``)."""
    return OutboxEvent(event=event_from_row(row), owner=str(row["owner"]), renewal_of=row["renewal_of"],
                       ordered=bool(row["ordered"]))


def subject_entry_from_row(row: Any) -> SubjectEntry:
    """From a row of the subject query: ``s_id``, ``s_order_id``, ``o_state``, ``CERT_SELECT``, ``entry_time``."""
    return SubjectEntry(
        order_id=row["s_order_id"],
        order_state=OrderState(row["o_state"]) if row["o_state"] is not None else None,
        certificate=certificate_from_row(row) if row["c_serial_number"] is not None else None,
        created_at=from_ts(row["entry_time"]),
        position=SubjectPosition(str(row["entry_time"]), int(row["s_id"])),
    )


def audit_entry_from_row(row: Any) -> AuditEntry:
    return AuditEntry(time=from_ts(row["time"]), ca_id=str(row["ca_id"]), actor=str(row["actor"]),
                      action=str(row["action"]), target=str(row["target"]), outcome=str(row["outcome"]),
                      detail=str(row["detail"]), client=str(row["client"] or ""))


# Times: fixed-width ISO-8601 UTC text, so text order is time order.
TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def ts(value: dt.datetime) -> str:
    """``TS_FORMAT`` text (isoformat is several times faster than strftime and writes the same)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"the ledger stores timezone-aware times only, got naive {value.isoformat()}")
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def ts_or_none(value: dt.datetime | None) -> str | None:
    return ts(value) if value is not None else None


def from_ts(text: Any) -> dt.datetime:
    """A stored time (``TS_FORMAT``); fromisoformat reads it, with its ``Z``, far faster than strptime."""
    return dt.datetime.fromisoformat(str(text)).astimezone(dt.UTC)


