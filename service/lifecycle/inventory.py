"""The inventory: every certificate the ledger knows, filtered and paged in expiry order, and
the renewal advice for one of them."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass, replace

from service.authorities import ManagedCA
from service.certificates import CertificateManager
from service.certificates.common import STATUS_EXPIRED, STATUS_NORMAL, STATUS_REVOKED, parse_iso_datetime
from service.clock import Clock, utcnow
from service.errors import FieldViolation, InvalidRequest
from service.ledger.base import CertificateQuery, InventoryEntry, Ledger
from service.lifecycle.renewal import RenewalAdvice, renewal_advice
from service.x509 import normalize_dns_name

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "Inventory", "InventoryPage", "InventoryQuery"]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_STATUSES = (STATUS_NORMAL, STATUS_REVOKED, STATUS_EXPIRED)
_MAX_OWNER = 256
_MAX_TOKEN = 512


@dataclass(frozen=True)
class InventoryQuery:
    """What a caller asks for, as written (the transports pass their fields through unchanged)."""

    status: str = ""
    owner: str = ""
    name: str = ""
    expiring_before: str = ""  # ISO 8601
    expiring_within: float | None = None  # seconds from now; the earlier of the two bounds wins
    issued_after: str = ""  # ISO 8601
    page_size: int = 0
    page_token: str = ""


@dataclass(frozen=True)
class InventoryPage:
    entries: list[InventoryEntry]
    next_page_token: str  # empty on the last page


def _bad(field: str, description: str, value: str = "") -> InvalidRequest:
    return InvalidRequest.of([FieldViolation(field, description, value[:100])])


def _encode_token(entry: InventoryEntry) -> str:
    raw = json.dumps([entry.certificate.not_after.isoformat(), entry.certificate.serial_number],
                     separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_token(token: str) -> tuple[dt.datetime, str]:
    """The (not_after, serial) of the last entry of the previous page."""
    def refused() -> InvalidRequest:
        return _bad("pageToken", "not a page token this gateway issued; pass nextPageToken back unchanged", token)

    if len(token) > _MAX_TOKEN:
        raise refused()
    try:
        document = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        moment, serial = document
        after = dt.datetime.fromisoformat(moment)
    except (binascii.Error, ValueError, TypeError, OverflowError):
        raise refused() from None
    if after.tzinfo is None or not isinstance(serial, str) or not serial.isalnum():
        raise refused()
    return after.astimezone(dt.UTC), serial


def _page_size(requested: int) -> int:
    if requested < 0:
        raise _bad("pageSize", "must not be negative", str(requested))
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


class Inventory:
    """Certificates of a CA from the ledger, and when each should be renewed."""

    def __init__(self, ledger: Ledger, certificates: CertificateManager, *, clock: Clock = utcnow) -> None:
        self._ledger = ledger
        self._certificates = certificates
        self._clock = clock

    def now(self) -> dt.datetime:
        return self._clock()

    def _ledger_query(self, ca: ManagedCA, query: InventoryQuery, now: dt.datetime, limit: int) -> CertificateQuery:
        status = query.status.strip().lower() or None
        if status is not None and status not in _STATUSES:
            raise _bad("status", f"must be one of {', '.join(_STATUSES)}", query.status)
        owner = query.owner.strip() or None
        if owner is not None and len(owner) > _MAX_OWNER:
            raise _bad("owner", f"is longer than {_MAX_OWNER} characters", owner)
        name = normalize_dns_name(query.name, field="name") if query.name.strip() else None
        bounds = []
        if query.expiring_before.strip():
            bounds.append(parse_iso_datetime(query.expiring_before, field="expiringBefore"))
        if query.expiring_within is not None:
            if not 0 <= query.expiring_within <= 100 * 365 * 86400:
                raise _bad("expiringWithin", "must be between 0 and 100 years", str(query.expiring_within))
            bounds.append(now + dt.timedelta(seconds=query.expiring_within))
        issued_after = (parse_iso_datetime(query.issued_after, field="issuedAfter")
                        if query.issued_after.strip() else None)
        return CertificateQuery(
            ca_id=ca.id, now=now, limit=limit, status=status, owner=owner, name=name,
            expiring_before=min(bounds) if bounds else None, issued_after=issued_after,
            after=_decode_token(query.page_token.strip()) if query.page_token.strip() else None)

    async def list(self, ca: ManagedCA, query: InventoryQuery) -> InventoryPage:
        """One page of the CA's certificates matching the query, soonest expiry first."""
        limit = _page_size(query.page_size)
        ledger_query = self._ledger_query(ca, query, self._clock(), limit + 1)
        entries = await self._ledger.list_certificates(ledger_query)
        more = len(entries) > limit
        entries = entries[:limit]
        return InventoryPage(entries=entries, next_page_token=_encode_token(entries[-1]) if more else "")

    async def renewal_info(self, ca: ManagedCA, serial_text: str) -> tuple[InventoryEntry, RenewalAdvice]:
        """The certificate (from the ledger, or found at the CA and stored; its status kept current)
        with what the ledger knows around it, and its renewal window."""
        certificate = await self._certificates.find(ca, serial_text)
        entry = await self._ledger.inventory_entry(ca.id, certificate.serial_number)
        entry = replace(entry, certificate=certificate) if entry else InventoryEntry(certificate=certificate)
        policy = ca.settings.gateway.renewal.for_profile(entry.profile_id)
        advice = renewal_advice(serial_number=certificate.serial_number, not_before=certificate.not_before,
                                not_after=certificate.not_after, revoked=certificate.status == STATUS_REVOKED,
                                policy=policy, now=self._clock())
        return entry, advice
