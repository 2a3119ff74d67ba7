"""The certificate events feed: every event about a certificate, paged with an opaque cursor.

The feed shows what the event stream and the webhooks tell (issued, revoked, expiring, replaced)
except ``failed`` orders: every feed event names a certificate a CAGW client can fetch by its
serial, and a failed order has none (its owner hears of it through the stream and webhooks)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass

from service.authorities import ManagedCA
from service.certificates.common import parse_iso_datetime
from service.errors import FieldViolation, InvalidRequest
from service.ledger.base import CertificateEventRecord, CertificateRecord, Ledger

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500  # one page is at most this many events, whatever the caller prefers
FEED_ACTIONS = ("issued", "revoked", "expiring", "replaced")  # every kind that names a certificate


@dataclass(frozen=True)
class EventCursor:
    """Where the next page of the events feed starts.

    On the wire it is url-safe base64 (no padding) of a small JSON object
    ``{"after_id": 12, "since": "2024-01-01T00:00:00+00:00", "offset": 50, "limit": 50}``:
    the last event id already returned, the ``startDate`` of the first page,
    how many events came before, and the page size in use (kept when a caller
    sends only the cursor, as CAGW clients do). It is opaque to callers; a
    cursor that does not decode to exactly that shape is refused. It is not
    signed: it only says how far a caller has read in a feed it may read anyway.
    """

    after_id: int = 0
    since: dt.datetime | None = None
    offset: int = 0
    limit: int = DEFAULT_PAGE_SIZE

    def encode(self) -> str:
        document = {"after_id": self.after_id, "since": self.since.isoformat() if self.since else None,
                    "offset": self.offset, "limit": self.limit}
        raw = json.dumps(document, separators=(",", ":")).encode("ascii")
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, text: str, *, field: str = "nextPageIndex") -> EventCursor:
        def bad(why: str) -> InvalidRequest:
            return InvalidRequest.of([FieldViolation(field, f"not a page index this gateway issued ({why}); "
                                                            "pass nextPageIndex back unchanged", text[:100])])

        token = text.strip()
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            document = json.loads(raw)
        except (binascii.Error, ValueError):
            raise bad("does not decode") from None
        if not isinstance(document, dict) or set(document) != {"after_id", "since", "offset", "limit"}:
            raise bad("unexpected content")
        after_id, since, offset, limit = (document[key] for key in ("after_id", "since", "offset", "limit"))
        if not _natural(after_id) or not _natural(offset):
            raise bad("bad position")
        if not _natural(limit) or not 1 <= limit <= MAX_PAGE_SIZE:
            raise bad("bad page size")
        if since is None:
            return cls(after_id=after_id, offset=offset, limit=limit)
        if not isinstance(since, str):
            raise bad("bad start date")
        try:
            moment = dt.datetime.fromisoformat(since).astimezone(dt.timezone.utc)
        except (ValueError, OverflowError):
            raise bad("bad start date") from None
        if dt.datetime.fromisoformat(since).tzinfo is None:
            raise bad("bad start date")
        return cls(after_id=after_id, since=moment, offset=offset, limit=limit)


def _natural(value: object) -> bool:
    # SQLite integers are signed 64-bit: a larger position is not a cursor this gateway wrote.
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63


@dataclass(frozen=True)
class EventsPage:
    events: tuple[tuple[CertificateEventRecord, CertificateRecord | None], ...]  # certificate when asked for
    next_cursor: EventCursor  # always set: a feed reader resumes from it later, even after the last page
    more: bool
    total: int
    offset: int
    limit: int


# ---------------------------------------------------------------- the manager


class EventsFeed:
    """Pages of one CA's certificate events from the ledger."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def events(self, ca: ManagedCA, *, start_date: str, page_size: int, page_index: str,
                     with_certificates: bool) -> EventsPage:
        """One page of the feed.

        ``page_size`` 0 (absent) means the cursor's page size, else the default
        (50); larger than 500 is capped at 500. With a ``page_index`` (cursor)
        the cursor's start date wins over ``start_date``, so the totals of
        every page agree.
        """
        if page_size < 0:
            raise InvalidRequest.of([FieldViolation("preferredPageSize", "page size must not be negative",
                                                    str(page_size))])
        if page_index.strip():
            cursor = EventCursor.decode(page_index)
        else:
            since = parse_iso_datetime(start_date, field="startDate") if start_date.strip() else None
            cursor = EventCursor(since=since)
        limit = min(page_size or cursor.limit, MAX_PAGE_SIZE)
        records = await self._ledger.list_events(ca.id, after_id=cursor.after_id, since=cursor.since,
                                                 limit=limit + 1, actions=FEED_ACTIONS)
        more = len(records) > limit
        records = records[:limit]
        total = await self._ledger.count_events(ca.id, since=cursor.since, actions=FEED_ACTIONS)
        certificates: dict[str, CertificateRecord | None] = {}
        if with_certificates:
            for serial in dict.fromkeys(record.serial_number for record in records):
                certificates[serial] = await self._ledger.get_certificate(ca.id, serial)
        events = tuple((record, certificates.get(record.serial_number)) for record in records)
        last_id = records[-1].id if records else cursor.after_id
        next_cursor = EventCursor(after_id=last_id, since=cursor.since, offset=cursor.offset + len(records),
                                  limit=limit)
        return EventsPage(events=events, next_cursor=next_cursor, more=more, total=total, offset=cursor.offset,
                          limit=limit)
