"""Subjects: every certificate and pending order filed under a normalised DN, paged with a cursor."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass

from service.authorities import ManagedCA
from service.certificates.common import PENDING_STATES, STATUS_PENDING, certificate_status
from service.errors import FieldViolation, InvalidRequest, NotFound
from service.clock import Clock
from service.ledger.base import CertificateRecord, Ledger, SubjectEntry, SubjectPosition
from service.x509 import normalize_dn


@dataclass(frozen=True)
class SubjectItem:
    """One certificate (or pending order) of a subject."""

    status: str  # normal | revoked | expired | PENDING
    order_id: str | None
    certificate: CertificateRecord | None
    created_at: dt.datetime

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500  # one page is at most this many entries, whatever the caller prefers
_SCAN_ROUNDS = 4  # ledger reads per page when failed orders (never listed) fill a read


@dataclass(frozen=True)
class SubjectCursor:
    """Where the next page of a subject starts: url-safe base64 (no padding) of
    ``{"dn": "cn=a", "time": "…", "id": 12, "limit": 50}``, the normalised DN it
    belongs to, the ledger position of the last entry returned and the page size.
    Opaque to callers; anything else, or a cursor of another DN, is refused."""

    dn: str
    position: SubjectPosition
    limit: int

    def encode(self) -> str:
        document = {"dn": self.dn, "time": self.position.time, "id": self.position.filing_id, "limit": self.limit}
        raw = json.dumps(document, separators=(",", ":")).encode("utf-8")
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, text: str, *, dn: str, field: str = "nextPageIndex") -> SubjectCursor:
        def bad(why: str) -> InvalidRequest:
            return InvalidRequest.of([FieldViolation(field, f"not a page index this gateway issued for this subject "
                                                            f"({why}); pass nextPageIndex back unchanged",
                                                     text[:100])])

        token = text.strip()
        try:
            document = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        except (binascii.Error, ValueError):
            raise bad("does not decode") from None
        if not isinstance(document, dict) or set(document) != {"dn", "time", "id", "limit"}:
            raise bad("unexpected content")
        if document["dn"] != dn:
            raise bad("it belongs to another subject")
        position, limit = document["id"], document["limit"]
        if not isinstance(document["time"], str) or not _natural(position):
            raise bad("bad position")
        if not _natural(limit) or not 1 <= limit <= MAX_PAGE_SIZE:
            raise bad("bad page size")
        return cls(dn=dn, position=SubjectPosition(document["time"][:64], position), limit=limit)


def _natural(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


@dataclass(frozen=True)
class SubjectPage:
    dn: str  # normalised
    items: tuple[SubjectItem, ...]
    next_cursor: SubjectCursor | None  # None on the last page


class SubjectIndex:
    """The certificates and pending orders of a subject DN, from the ledger."""

    def __init__(self, ledger: Ledger, *, clock: Clock) -> None:
        self._ledger = ledger
        self._clock = clock

    async def subject(self, ca: ManagedCA, dn_text: str, *, field: str = "dn") -> tuple[str, list[SubjectItem]]:
        """The normalised DN and its certificates and pending orders, newest first.

        Failed and abandoned orders are left out (they will never have a
        certificate). Raises :class:`NotFound` (``SUBJECT_NOT_FOUND``) when nothing is left.
        """
        dn = normalize_dn(dn_text, field=field)
        now = self._clock()
        items: list[SubjectItem] = []
        seen: set[tuple[str | None, str | None]] = set()
        for entry in await self._ledger.subject_entries(ca.id, dn):
            certificate = entry.certificate
            key = (entry.order_id, certificate.serial_number if certificate else None)
            if key in seen:  # filed under both the requested and the issued DN
                continue
            seen.add(key)
            item = _item(entry, now)
            if item is not None:
                items.append(item)
        if not items:
            raise NotFound(f"CA {ca.id}: no certificate or pending order for subject {dn!r}",
                           reason="SUBJECT_NOT_FOUND", metadata={"ca_id": ca.id, "dn": dn[:256]})
        items.sort(key=lambda item: item.created_at, reverse=True)  # stable: the ledger's order breaks ties
        return dn, items

    async def page(self, ca: ManagedCA, dn_text: str, *, page_size: int = 0, page_index: str = "",
                   field: str = "dn") -> SubjectPage:
        """One page of :meth:`subject`, newest first: ``page_size`` 0 means the cursor's size (else
        50), larger than 500 is capped. Each ledger read is bounded by the page size; failed orders
        are skipped, so a page may hold fewer entries when many of them fill a read."""
        if page_size < 0:
            raise InvalidRequest.of([FieldViolation("preferredPageSize", "page size must not be negative",
                                                    str(page_size))])
        dn = normalize_dn(dn_text, field=field)
        cursor = SubjectCursor.decode(page_index, dn=dn) if page_index.strip() else None
        limit = min(page_size or (cursor.limit if cursor else DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE)
        before = cursor.position if cursor else None
        now = self._clock()
        items: list[SubjectItem] = []
        last: SubjectEntry | None = None
        more = False
        for _ in range(_SCAN_ROUNDS):
            entries = await self._ledger.subject_entries(ca.id, dn, before=before, limit=limit + 1 - len(items))
            more = len(entries) > limit - len(items)
            for entry in entries[: limit - len(items)]:
                last = entry
                item = _item(entry, now)
                if item is not None:
                    items.append(item)
            if not more or len(items) >= limit or last is None:
                break
            before = last.position
        if not items and cursor is None and not more:
            raise NotFound(f"CA {ca.id}: no certificate or pending order for subject {dn!r}",
                           reason="SUBJECT_NOT_FOUND", metadata={"ca_id": ca.id, "dn": dn[:256]})
        position = last.position if last is not None else None
        next_cursor = SubjectCursor(dn, position, limit) if more and position is not None else None
        return SubjectPage(dn=dn, items=tuple(items), next_cursor=next_cursor)


def _item(entry: SubjectEntry, now: dt.datetime) -> SubjectItem | None:
    """The listed form of a ledger entry; None for an order that failed (it will never have a certificate)."""
    if entry.certificate is not None:
        return SubjectItem(certificate_status(entry.certificate, now), entry.order_id, entry.certificate,
                           entry.created_at)
    if entry.order_state in PENDING_STATES:
        return SubjectItem(STATUS_PENDING, entry.order_id, None, entry.created_at)
    return None
