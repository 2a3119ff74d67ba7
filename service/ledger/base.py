"""The ledger: the durable record of orders, certificates, events and the audit trail.

The core writes an order here **before** calling the CA, then every state
change, then the issued certificate. A restart resumes whatever is unfinished.
This module defines the records and the ``Ledger`` protocol; ``sqlite`` is the
embedded implementation, and a PostgreSQL one can fill the same protocol so
that several gateway replicas share work.

Serial numbers are stored canonical: lowercase hex without leading zeros.
Distinguished names are stored normalised (see ``service.x509.normalize_dn``).
Times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from service.connectors.base import SubjectAltName

__all__ = [
    "AuditEntry",
    "CertificateEventRecord",
    "CertificateRecord",
    "Ledger",
    "NewOrder",
    "OrderKind",
    "OrderRecord",
    "OrderState",
    "SubjectEntry",
]


class OrderState(enum.Enum):
    RECEIVED = "RECEIVED"  # recorded, not yet accepted by the CA (or reply lost)
    SUBMITTED = "SUBMITTED"  # the CA accepted it: ca_order_id is known
    COLLECTING = "COLLECTING"  # collect attempts are running (foreground or background)
    ISSUED = "ISSUED"
    FAILED = "FAILED"
    ABANDONED = "ABANDONED"  # background collection reached its give-up age

    @property
    def finished(self) -> bool:
        return self in (OrderState.ISSUED, OrderState.FAILED, OrderState.ABANDONED)


class OrderKind(enum.Enum):
    ENROLL = "ENROLL"
    RENEW = "RENEW"


@dataclass(frozen=True)
class NewOrder:
    """An order as recorded before anything is sent to the CA."""

    id: str
    ca_id: str
    profile_id: str  # the gateway profile id the caller named
    ca_profile_id: str  # the CA's own profile (e.g. its certificate type)
    term_days: int
    csr_pem: str
    fingerprint: str  # sha256 of (ca, profile, CSR DER): same request => same fingerprint
    requested_dn: str  # normalised DN the caller asked for
    common_name: str
    subject_alt_names: tuple[SubjectAltName, ...]
    marker: str  # put in the CA order's comments so a lost reply can be found again
    kind: OrderKind = OrderKind.ENROLL
    request_id: str | None = None  # caller's idempotency key, unique per CA
    renewal_of_serial: str | None = None
    requested_by: str = ""  # caller identity, for the audit trail
    options: Mapping[str, str] = field(default_factory=dict)  # required format etc., opaque to the ledger


@dataclass(frozen=True)
class OrderRecord:
    id: str
    ca_id: str
    profile_id: str
    ca_profile_id: str
    term_days: int
    csr_pem: str
    fingerprint: str
    requested_dn: str
    common_name: str
    subject_alt_names: tuple[SubjectAltName, ...]
    marker: str
    kind: OrderKind
    request_id: str | None
    renewal_of_serial: str | None
    requested_by: str
    options: Mapping[str, str]
    state: OrderState
    created_at: dt.datetime
    updated_at: dt.datetime
    ca_order_id: str | None = None
    attempts: int = 0  # collect attempts made so far
    next_attempt_at: dt.datetime | None = None
    detail: str = ""  # last word from the CA (pending text, failure message)
    error_reason: str = ""  # ErrorInfo reason when FAILED
    serial_number: str | None = None  # set when ISSUED


@dataclass(frozen=True)
class CertificateRecord:
    serial_number: str  # canonical lowercase hex
    ca_id: str
    order_id: str | None  # None for certificates found at the CA but not ordered here
    certificate_der: bytes
    chain_der: tuple[bytes, ...]
    subject_dn: str  # normalised
    issuer_dn: str
    not_before: dt.datetime
    not_after: dt.datetime
    status: str = "normal"  # normal | revoked (expired is derived from not_after by readers)
    revoked_at: dt.datetime | None = None
    revocation_reason: str = ""
    revocation_comment: str = ""
    issued_at: dt.datetime | None = None
    compromise_date: dt.datetime | None = None  # when the key was compromised, if the revoke said so


@dataclass(frozen=True)
class SubjectEntry:
    """One order or certificate filed under a subject DN; certificate is None while pending."""

    order_id: str | None
    order_state: OrderState | None
    certificate: CertificateRecord | None
    created_at: dt.datetime


@dataclass(frozen=True)
class CertificateEventRecord:
    id: int  # increasing
    ca_id: str
    action: str  # issued | revoked
    serial_number: str
    time: dt.datetime
    detail: str = ""
    reason: str = ""


@dataclass(frozen=True)
class AuditEntry:
    time: dt.datetime
    ca_id: str
    actor: str
    action: str  # enroll | renew | revoke | revoke-subject
    target: str  # order id, serial or DN
    outcome: str  # ok | refused | failed
    detail: str = ""


class Ledger(Protocol):
    """Durable store. Every method is safe to call concurrently from one event loop."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    # -- orders
    async def create_order(self, order: NewOrder) -> tuple[OrderRecord, bool]:
        """Record a new order. When ``request_id`` is already known for the CA, return that
        existing order and False instead (the caller decides whether it matches)."""

    async def get_order(self, order_id: str) -> OrderRecord | None: ...

    async def find_order_by_request_id(self, ca_id: str, request_id: str) -> OrderRecord | None: ...

    async def find_unfinished_by_fingerprint(self, ca_id: str, fingerprint: str) -> OrderRecord | None:
        """An unfinished order for the same CSR, CA and profile (so a duplicate is not paid twice)."""

    async def unfinished_orders(self) -> list[OrderRecord]:
        """Orders not ISSUED/FAILED/ABANDONED, oldest first (what a restart resumes)."""

    async def update_order(
        self,
        order_id: str,
        *,
        state: OrderState,
        ca_order_id: str | None = None,
        attempts: int | None = None,
        next_attempt_at: dt.datetime | None = None,
        detail: str | None = None,
        error_reason: str | None = None,
    ) -> OrderRecord:
        """Record a state change (and append it to the order's history)."""

    async def order_history(self, order_id: str) -> list[tuple[dt.datetime, OrderState, str]]: ...

    # -- certificates
    async def record_issued(self, order_id: str | None, certificate: CertificateRecord,
                            *, subject_dns: Sequence[str] = ()) -> OrderRecord | None:
        """Store the certificate, mark the order ISSUED, file it under its subject DN(s),
        append an ``issued`` event — all in one transaction. Idempotent per serial."""

    async def get_certificate(self, ca_id: str, serial_number: str) -> CertificateRecord | None: ...

    async def mark_revoked(self, ca_id: str, serial_number: str, *, reason: str, comment: str,
                           when: dt.datetime, compromise_date: dt.datetime | None = None
                           ) -> CertificateRecord | None:
        """Mark revoked and append a ``revoked`` event; no second event when already revoked."""

    async def subject_entries(self, ca_id: str, normalized_dn: str) -> list[SubjectEntry]:
        """Orders and certificates filed under the DN (requested or issued), newest first."""

    # -- feed and audit
    async def list_events(self, ca_id: str, *, after_id: int, since: dt.datetime | None,
                          limit: int) -> list[CertificateEventRecord]: ...

    async def count_events(self, ca_id: str, *, since: dt.datetime | None) -> int: ...

    async def append_audit(self, entry: AuditEntry) -> None: ...

    async def audit_entries(self, *, ca_id: str | None = None, limit: int = 100) -> list[AuditEntry]: ...

    async def backup(self, target: Path) -> None:
        """Write a consistent copy of the ledger while the gateway runs."""
