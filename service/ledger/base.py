"""The ledger: the durable record of orders, certificates, events and the audit trail.

The core writes an order here **before** calling the CA, then every state
change, then the issued certificate. A restart resumes whatever is unfinished.
This module defines the records and the ``Ledger`` protocol; ``sqlite/`` is the
embedded implementation, ``postgres/`` the one several gateway replicas share
(splitting the unfinished orders between them by leases, :mod:`service.ledger.leases`).

The guarantees that keep an order from being paid twice belong to the ledger,
not to one process's locks, so that they hold for every gateway sharing it:
one unfinished order per CSR (:meth:`Ledger.create_order`), state changes
conditional on what the caller read (:meth:`Ledger.update_order`), and one
revoke in flight per serial (:meth:`Ledger.claim_revocation`).

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
    "AUTO_RENEW_OPTION",
    "AuditEntry",
    "CertificateEventRecord",
    "CertificateQuery",
    "CertificateRecord",
    "InventoryEntry",
    "OutboxEvent",
    "Ledger",
    "NewOrder",
    "OrderKind",
    "OrderRecord",
    "OrderState",
    "RevocationClaim",
    "ServerKey",
    "SubjectEntry",
    "SubjectPosition",
]


# The order option (in ``options``, otherwise opaque to the ledger) that records the order's own
# choice of automatic renewal, "true" or "false" (absent: its profile decides): the inventory
# reads it (``InventoryEntry.auto_renew``). Written by ``service.enrollment.orders.OrderOptions``.
AUTO_RENEW_OPTION = "auto_renew"


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
    RENEW = "RENEW"  # a new CA order renewing an issued one
    REISSUE = "REISSUE"  # the same CA order issued again for a new CSR


@dataclass(frozen=True)
class ServerKey:
    """The private key the gateway made for an order (``requiredFormat: PKCS12``), only ever
    encrypted: DER PKCS#8 ``EncryptedPrivateKeyInfo`` under the caller's password. The ledger
    deletes it at ``expires_at`` (see :meth:`Ledger.purge_server_keys`) and hands it to no call
    other than :meth:`Ledger.get_server_key`."""

    encrypted_pkcs8: bytes = field(repr=False)
    expires_at: dt.datetime


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
    server_key: ServerKey | None = field(default=None, repr=False)  # stored with the order, in one write
    client: str = ""  # the `clients` entry that ordered it ("" without a clients section): its owner


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
    # +1 with every recorded state change (it is the length of the order's history): what a
    # conditional update compares.
    version: int = 0
    client: str = ""  # the `clients` entry that ordered it; "" for orders placed before clients existed


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
class CertificateQuery:
    """Which certificates of one CA to list, in expiry order (``not_after``, then serial).

    ``status``: ``normal`` (not revoked, not expired at ``now``), ``revoked``, ``expired``, or
    None for all. ``name``: a DNS name the certificate carries in its common name or a SAN, either
    exact or ``*.suffix`` (any name ending in ``.suffix``). ``after``: the (``not_after``, serial) of
    the last entry of the previous page."""

    ca_id: str
    now: dt.datetime
    limit: int
    status: str | None = None
    owner: str | None = None
    name: str | None = None
    expiring_before: dt.datetime | None = None
    issued_after: dt.datetime | None = None
    after: tuple[dt.datetime, str] | None = None


@dataclass(frozen=True)
class InventoryEntry:
    """A certificate with what the ledger knows around it: the order it came from (profile,
    owner, names), and the certificate that replaced it (an issued renewal of it), if any."""

    certificate: CertificateRecord
    profile_id: str = ""  # empty for certificates the gateway did not order
    owner: str = ""
    common_name: str = ""
    subject_alt_names: tuple[SubjectAltName, ...] = ()
    replaced_by: str | None = None  # serial of the certificate issued by a renewal of this one
    replacement_order_id: str | None = None  # the renewal order, issued or still pending
    auto_renew: bool | None = None  # the order's own choice of automatic renewal; None: its profile's


@dataclass(frozen=True)
class SubjectEntry:
    """One order or certificate filed under a subject DN; certificate is None while pending."""

    order_id: str | None
    order_state: OrderState | None
    certificate: CertificateRecord | None
    created_at: dt.datetime
    position: SubjectPosition | None = None  # where a page after this entry starts


@dataclass(frozen=True)
class SubjectPosition:
    """A place in a subject's newest-first listing: the entry's time as the ledger keeps it and its
    filing id (ties broken by id), so pages stay stable while new orders arrive at the front."""

    time: str
    filing_id: int


@dataclass(frozen=True)
class CertificateEventRecord:
    id: int  # increasing
    ca_id: str
    action: str  # issued | revoked | failed | expiring | replaced
    serial_number: str  # "" for a ``failed`` order, which has no certificate
    time: dt.datetime
    detail: str = ""
    reason: str = ""
    # failed: the order that failed; replaced: the order whose certificate replaced this serial.
    order_id: str | None = None


@dataclass(frozen=True)
class OutboxEvent:
    """A certificate event with what a receiver outside needs around it: who ordered the
    certificate, the serial it renewed (when its order was a renewal), whether it was ordered here."""

    event: CertificateEventRecord
    owner: str = ""
    renewal_of: str | None = None
    ordered: bool = True  # False: a certificate the gateway did not order (found at the CA)


@dataclass(frozen=True)
class RevocationClaim:
    """Who may send the revoke of one serial to the CA, until when (the ledger's time)."""

    ca_id: str
    serial_number: str
    claimant: str
    expires_at: dt.datetime

    def held_by(self, claimant: str) -> bool:
        return self.claimant == claimant


@dataclass(frozen=True)
class AuditEntry:
    time: dt.datetime
    ca_id: str
    actor: str
    action: str  # enroll | renew | revoke | revoke-subject
    target: str  # order id, serial or DN
    outcome: str  # ok | refused | failed
    detail: str = ""
    client: str = ""  # the `clients` entry of the actor ("" without a clients section, or unknown)


class Ledger(Protocol):
    """Durable store. Every method is safe to call concurrently from one event loop, and every
    guarantee below holds for all the gateways (processes) that share one ledger, not only for
    the calls of one of them: each is kept by the ledger itself (a unique index, a conditional
    write), never by a lock in the caller's memory."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    # -- orders
    async def create_order(self, order: NewOrder) -> tuple[OrderRecord, bool]:
        """Record a new order in state RECEIVED and return ``(record, True)``, or an existing
        order and False instead, atomically (of any number of concurrent calls from any number
        of gateways, exactly one creates):

        - the order with the same ``request_id`` on the CA (the caller decides whether it
          matches the request);
        - else the unfinished order of the CA with the same ``fingerprint``: there is at most
          one (a unique index on unfinished ``(ca_id, fingerprint)``), so an identical pending
          CSR is never ordered (paid) twice;
        - else the order already recorded with the same id for the same request (a retried
          call); an id reused for another request raises ``AlreadyExists``.
        """

    async def get_order(self, order_id: str) -> OrderRecord | None: ...

    async def find_order_by_request_id(self, ca_id: str, request_id: str) -> OrderRecord | None: ...

    async def find_unfinished_by_fingerprint(self, ca_id: str, fingerprint: str) -> OrderRecord | None:
        """The unfinished order for the same CSR, CA and profile, the one :meth:`create_order`
        would return (so a duplicate is not paid twice)."""

    async def count_orders(self, *, ca_id: str | None = None, client: str | None = None,
                           unfinished: bool = False, since: dt.datetime | None = None) -> tuple[int, dt.datetime | None]:
        """How many orders match (of the CA, of the client, unfinished only, created at or after
        ``since``), and the creation time of the oldest of them: what quotas are counted from, so
        a restart does not reset them."""

    async def unfinished_orders(self) -> list[OrderRecord]:
        """Orders not ISSUED/FAILED/ABANDONED, oldest first: what a starting gateway resumes.

        A ledger used by one gateway (SQLite) is resumed from this. A ledger shared by several
        gateways is a :class:`~service.ledger.leases.LeasingLedger` as well: its gateways claim
        the due orders by lease instead, so that no two work on one order at once; this still
        lists every unfinished order (for the operator and the checks).
        """

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
        expected_state: OrderState | None = None,
        expected_version: int | None = None,
    ) -> OrderRecord:
        """Record a state change (and append it to the order's history); ``version`` grows by one.
        An order moving to FAILED or ABANDONED from another state gets a ``failed`` event (reason:
        ``error_reason``, or ``ABANDONED``) in the same transaction.

        With ``expected_state`` and/or ``expected_version`` the change is a compare-and-set:
        it is made only if the order still has that state and/or version (what the caller read),
        atomically; otherwise nothing changes and ``OrderChanged`` (with the current record)
        says the caller lost to another writer. Moving an order back to an unfinished state
        while another unfinished order has its fingerprint raises ``DuplicateOrder`` (with that
        order), since two would then be worked on. An unknown order is ``NotFound``.
        """

    async def order_history(self, order_id: str) -> list[tuple[dt.datetime, OrderState, str]]: ...

    async def list_orders(self, *, states: Sequence[OrderState] = (), ca_id: str | None = None,
                          before: tuple[dt.datetime, str] | None = None, limit: int = 100) -> list[OrderRecord]:
        """Orders newest first (by creation time, then id): only those in ``states`` (every state when
        empty) and of ``ca_id`` (every CA when None), and only those older than ``before`` (the
        creation time and id of the last order of the previous page). For the operator's listing."""

    # -- keys the gateway made (requiredFormat PKCS12), kept encrypted only
    async def get_server_key(self, order_id: str) -> ServerKey | None:
        """The encrypted key :meth:`create_order` stored with the order, until it is deleted."""

    async def delete_server_key(self, order_id: str) -> bool:
        """Delete the order's key now; True when there was one."""

    async def purge_server_keys(self, *, expired_at: dt.datetime) -> int:
        """Delete every key whose ``expires_at`` is at or before ``expired_at``; return how many."""

    # -- certificates
    async def record_issued(self, order_id: str | None, certificate: CertificateRecord,
                            *, subject_dns: Sequence[str] = (), attempts: int | None = None,
                            detail: str | None = None) -> OrderRecord | None:
        """Store the certificate, mark the order ISSUED (with ``attempts`` and ``detail`` when
        given), file it under its subject DN(s), append an ``issued`` event and, when the order
        renews or reissues a stored certificate, a ``replaced`` event for that one (once per
        replaced serial) — all in one transaction. Idempotent per serial: of any number
        of calls (from any gateway), one stores it and the others change nothing."""

    async def get_certificate(self, ca_id: str, serial_number: str) -> CertificateRecord | None: ...

    async def claim_revocation(self, ca_id: str, serial_number: str, *, claimant: str,
                               seconds: float) -> RevocationClaim:
        """Claim the right to send this serial's revoke to the CA for ``seconds`` (the ledger's
        own time decides expiry) and return the claim that holds now, atomically: ours, or
        another claimant's that has not expired (``claim.held_by(claimant)`` tells). A claimant
        may renew its own claim; an expired one is taken over. So two gateways never both send
        one revoke: claim, re-read the certificate, call the CA, then :meth:`mark_revoked`
        (which ends the claim) or :meth:`release_revocation`.
        """

    async def release_revocation(self, ca_id: str, serial_number: str, *, claimant: str) -> bool:
        """End our claim (the revoke failed or was not needed); another claimant's is left
        alone. True when a claim of ``claimant`` was ended."""

    async def mark_revoked(self, ca_id: str, serial_number: str, *, reason: str, comment: str,
                           when: dt.datetime, compromise_date: dt.datetime | None = None
                           ) -> CertificateRecord | None:
        """Mark revoked and append a ``revoked`` event, once: no second event when already revoked
        (the first reason and time stand), whoever calls. Ends any revocation claim on the serial."""

    async def record_expiring(self, ca_id: str, *, now: dt.datetime, within: dt.timedelta,
                              beyond: dt.timedelta, label: str, limit: int) -> int:
        """Append an ``expiring`` event (``detail`` = ``label``) for at most ``limit`` certificates of
        the CA that expire after ``now + beyond`` and at or before ``now + within``, are not revoked
        and not replaced (no issued renewal), and have no ``expiring`` event under ``label`` yet;
        return how many. Once per certificate and label, whoever calls how often: a unique key."""

    async def list_certificates(self, query: CertificateQuery) -> list[InventoryEntry]:
        """At most ``query.limit`` certificates of the CA matching the query, by (``not_after``,
        serial) after ``query.after``; found by an index on (ca_id, not_after), not by a scan."""

    async def count_certificates(self, ca_id: str, *, now: dt.datetime,
                                 horizons: Sequence[dt.timedelta]) -> list[tuple[str, str, int, int]]:
        """(owner, status, horizon index, count) of the CA's certificates: status ``normal`` or
        ``revoked``; the horizon index is that of the first horizon (ascending) within which the
        certificate expires, ``-1`` once expired, ``len(horizons)`` beyond the last."""

    async def inventory_entry(self, ca_id: str, serial_number: str) -> InventoryEntry | None:
        """The certificate with what the ledger knows around it (see :class:`InventoryEntry`)."""

    async def subject_entries(self, ca_id: str, normalized_dn: str, *, before: SubjectPosition | None = None,
                              limit: int | None = None) -> list[SubjectEntry]:
        """Orders and certificates filed under the DN (requested or issued), newest first; with
        ``before``, only those after that position, and at most ``limit`` of them."""

    # -- the CA's own chain
    async def ca_chain(self, ca_id: str) -> tuple[bytes, ...]:
        """The issuing CA chain kept for ``ca_id`` (DER, issuing CA first), or ``()``."""

    async def keep_ca_chain(self, ca_id: str, chain: Sequence[bytes]) -> tuple[bytes, ...]:
        """Keep ``chain`` as the CA's unless one is kept already, atomically (the first wins, from
        any gateway), and return the chain kept now. An empty ``chain`` changes nothing."""

    # -- feed and audit
    async def list_events(self, ca_id: str, *, after_id: int, since: dt.datetime | None,
                          limit: int, actions: Sequence[str] = ()) -> list[CertificateEventRecord]:
        """The CA's events after ``after_id`` (and at or after ``since``), by id; only those whose
        action is in ``actions`` when it is not empty."""

    async def count_events(self, ca_id: str, *, since: dt.datetime | None, actions: Sequence[str] = ()) -> int:
        """How many :meth:`list_events` would list from the start."""

    async def events_after(self, after_id: int, *, limit: int) -> list[OutboxEvent]:
        """Events of every CA with ``id > after_id``, by id: the outbox webhooks deliver from.
        An event is written in the transaction of the change it tells of."""

    async def latest_event_id(self) -> int:
        """The id of the newest event of any CA (0 when there is none)."""

    async def webhook_cursor(self, name: str) -> int | None:
        """The id of the last event delivered to the webhook; None before its first delivery."""

    async def advance_webhook_cursor(self, name: str, event_id: int) -> None:
        """Record a delivery; the cursor only moves forward (a slower writer cannot move it back)."""

    async def append_audit(self, entry: AuditEntry) -> None: ...

    async def audit_entries(self, *, ca_id: str | None = None, limit: int = 100,
                            target: str | None = None) -> list[AuditEntry]:
        """Newest first; all CAs when ``ca_id`` is None; only entries about ``target`` when given."""

    async def check_writable(self) -> None:
        """Return when a write that grows the ledger would go through now; raise ``LedgerUnwritable``
        when it would not (the disk is full, the file read-only). Writes nothing."""

    async def backup(self, target: Path) -> None:
        """Write a consistent copy of the ledger while the gateway runs; a ledger that has no copy
        of its own raises ``Unimplemented`` saying so."""
