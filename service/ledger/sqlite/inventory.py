"""The SQLite ledger's inventory queries: certificates in expiry order, with their order and replacement."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence

from service.ledger.base import CertificateQuery, InventoryEntry
from service.ledger.sqlite.rows import CERT_SELECT, auto_renew_choice, certificate_from_row, sans_from_json, ts

# Who a certificate belongs to: the client that ordered it, or (orders from before caller
# authorization, or without a clients section) the identity of the caller.
OWNER_SQL = "COALESCE(NULLIF(o.client, ''), o.requested_by, '')"

__all__ = ["EXPIRING_INSERT", "INVENTORY_SELECT", "OUTBOX_SELECT", "OWNER_SQL", "count_statement", "expiring_params",
           "failed_reason", "inventory_entries", "inventory_entry", "inventory_where"]

# The renewal of a certificate is the newest renewal order naming its serial; its certificate,
# once issued, is the replacement. ``orders_renewal_of`` (migration 4) finds it without a scan.
INVENTORY_SELECT = (
    f"SELECT {CERT_SELECT}, o.profile_id AS o_profile_id, {OWNER_SQL} AS o_owner, "
    "o.common_name AS o_common_name, o.subject_alt_names AS o_sans, o.options AS o_options, "
    "r.id AS r_id, r.serial_number AS r_serial "
    "FROM certificates c "
    "LEFT JOIN orders o ON o.id = c.order_id "
    "LEFT JOIN orders r ON r.id = ("
    "    SELECT n.id FROM orders n WHERE n.ca_id = c.ca_id AND n.renewal_of_serial = c.serial_number "
    "    AND n.state NOT IN ('FAILED', 'ABANDONED') ORDER BY n.created_at DESC LIMIT 1)"
)


# The certificate events after an id, with their owner and origin: the webhooks' outbox. The order
# is the certificate's; a ``failed`` event has no certificate, only the order it names.
OUTBOX_SELECT = (
    f"SELECT e.*, {OWNER_SQL} AS owner, o.renewal_of_serial AS renewal_of, o.id IS NOT NULL AS ordered "
    "FROM certificate_events e "
    "LEFT JOIN certificates c ON c.ca_id = e.ca_id AND c.serial_number = e.serial_number "
    "LEFT JOIN orders o ON o.id = COALESCE(c.order_id, e.order_id) WHERE e.id > ? ORDER BY e.id LIMIT ?"
)

# ``expiring`` events for the certificates of a CA entering one threshold (``Ledger.record_expiring``):
# not revoked, expiring in (now + beyond, now + within], not replaced by an issued renewal, not told
# under this threshold before. The NOT EXISTS lets LIMIT count new events only; the unique key
# (ON CONFLICT) is what keeps two gateways racing from writing one twice.
EXPIRING_INSERT = (
    "INSERT INTO certificate_events (ca_id, action, serial_number, time, detail, reason, order_id, event_key) "
    "SELECT c.ca_id, 'expiring', c.serial_number, CAST(? AS TEXT), CAST(? AS TEXT), '', c.order_id, "
    "CAST(? AS TEXT) || c.serial_number FROM certificates c "
    "WHERE c.ca_id = ? AND c.status <> 'revoked' AND c.not_after > ? AND c.not_after <= ? "
    "AND NOT EXISTS (SELECT 1 FROM orders n WHERE n.ca_id = c.ca_id AND n.renewal_of_serial = c.serial_number "
    "    AND n.state = 'ISSUED') "
    "AND NOT EXISTS (SELECT 1 FROM certificate_events k WHERE k.ca_id = c.ca_id "
    "    AND k.event_key = CAST(? AS TEXT) || c.serial_number) "
    "ORDER BY c.not_after, c.serial_number LIMIT ? ON CONFLICT DO NOTHING"
)


def expiring_params(ca_id: str, *, now: dt.datetime, within: dt.timedelta, beyond: dt.timedelta, label: str,
                    limit: int) -> list[object]:
    key = f"expiring:{label}:"
    return [ts(now), label, key, ca_id, ts(now + beyond), ts(now + within), key, max(limit, 0)]


def failed_reason(state: str, error_reason: str) -> str:
    """What a ``failed`` event gives as its reason: the order's error reason, else its final state."""
    return error_reason or ("ABANDONED" if state == "ABANDONED" else "FAILED")


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _name_clause(name: str) -> tuple[str, list[object]]:
    """Matches the order's common name or one of its SAN values (stored as JSON ``[type, value]``
    pairs, so a value is always followed by ``"]``), or, for a certificate nobody here ordered,
    the common name in its (normalised) subject DN."""
    name = name.strip().lower()
    dn = "(',' || c.subject_dn || ',')"
    if name.startswith("*."):
        suffix = _like_escaped(name[1:])
        return (f"(lower(o.common_name) LIKE ? ESCAPE '\\' OR lower(o.subject_alt_names) LIKE ? ESCAPE '\\' "
                f"OR (o.id IS NULL AND {dn} LIKE ? ESCAPE '\\'))",
                [f"%_{suffix}", f'%_{suffix}"]%', f"%,cn=%_{suffix},%"])
    exact = _like_escaped(name)
    return (f"(lower(o.common_name) = ? OR lower(o.subject_alt_names) LIKE ? ESCAPE '\\' "
            f"OR (o.id IS NULL AND {dn} LIKE ? ESCAPE '\\'))",
            [name, f'%"{exact}"]%', f"%,cn={exact},%"])


def inventory_where(query: CertificateQuery) -> tuple[str, list[object]]:
    """The WHERE, ORDER and LIMIT of a query, and their parameters."""
    now = ts(query.now)
    clauses = ["c.ca_id = ?"]
    params: list[object] = [query.ca_id]
    if query.status == "revoked":
        clauses.append("c.status = 'revoked'")
    elif query.status == "expired":
        clauses.append("c.status <> 'revoked' AND c.not_after <= ?")
        params.append(now)
    elif query.status == "normal":
        clauses.append("c.status <> 'revoked' AND c.not_after > ?")
        params.append(now)
    if query.owner is not None:
        clauses.append(f"{OWNER_SQL} = ?")
        params.append(query.owner)
    if query.name is not None:
        clause, values = _name_clause(query.name)
        clauses.append(clause)
        params.extend(values)
    if query.expiring_before is not None:
        clauses.append("c.not_after < ?")
        params.append(ts(query.expiring_before))
    if query.issued_after is not None:
        clauses.append("COALESCE(c.issued_at, c.not_before) > ?")
        params.append(ts(query.issued_after))
    if query.after is not None:
        clauses.append("(c.not_after, c.serial_number) > (?, ?)")
        params.extend([ts(query.after[0]), query.after[1]])
    params.append(max(query.limit, 0))
    return " WHERE " + " AND ".join(clauses) + " ORDER BY c.not_after, c.serial_number LIMIT ?", params


def inventory_entry(row: sqlite3.Row) -> InventoryEntry:
    """From a row selected with :data:`INVENTORY_SELECT`."""
    ordered = row["o_profile_id"] is not None
    return InventoryEntry(
        certificate=certificate_from_row(row),
        profile_id=str(row["o_profile_id"]) if ordered else "",
        owner=str(row["o_owner"]) if ordered else "",
        common_name=str(row["o_common_name"]) if ordered else "",
        subject_alt_names=sans_from_json(row["o_sans"]) if ordered else (),
        replaced_by=row["r_serial"],
        replacement_order_id=row["r_id"],
        auto_renew=auto_renew_choice(row["o_options"]) if ordered else None,
    )


def inventory_entries(rows: Sequence[sqlite3.Row]) -> list[InventoryEntry]:
    return [inventory_entry(row) for row in rows]


def count_statement(ca_id: str, now: dt.datetime, horizons: Sequence[dt.timedelta]) -> tuple[str, list[object]]:
    """Certificates of a CA counted by owner, status and expiry horizon (see ``Ledger.count_certificates``)."""
    cases = " ".join(f"WHEN c.not_after <= ? THEN {index}" for index in range(len(horizons)))
    sql = (f"SELECT {OWNER_SQL} AS owner, "
           "CASE WHEN c.status = 'revoked' THEN 'revoked' ELSE 'normal' END AS status, "
           f"CASE WHEN c.not_after <= ? THEN -1 {cases} ELSE {len(horizons)} END AS horizon, COUNT(*) "
           "FROM certificates c LEFT JOIN orders o ON o.id = c.order_id WHERE c.ca_id = ? "
           "GROUP BY owner, status, horizon")
    return sql, [ts(now), *(ts(now + horizon) for horizon in horizons), ca_id]
