"""What the certificate services share: CAGW status words, ISO 8601 input dates."""

from __future__ import annotations

import datetime as dt

from service.errors import FieldViolation, InvalidRequest
from service.ledger.base import CertificateRecord, OrderState


# CAGW status words of a certificate; PENDING is a subject entry whose order has no certificate yet.
STATUS_NORMAL = "normal"
STATUS_REVOKED = "revoked"
STATUS_EXPIRED = "expired"
STATUS_PENDING = "PENDING"

PENDING_STATES = frozenset({OrderState.RECEIVED, OrderState.SUBMITTED, OrderState.COLLECTING})


def certificate_status(record: CertificateRecord, now: dt.datetime) -> str:
    """``revoked`` wins over ``expired``; ``expired`` once ``not_after`` has passed."""
    if record.status == STATUS_REVOKED:
        return STATUS_REVOKED
    if record.not_after < now:
        return STATUS_EXPIRED
    return STATUS_NORMAL


def parse_iso_datetime(text: str, *, field: str) -> dt.datetime:
    """An ISO 8601 date or date-time (``Z`` or an offset; none means UTC), as aware UTC."""
    try:
        parsed = dt.datetime.fromisoformat(text.strip())
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.timezone.utc)
        # Dates at the calendar's edges overflow when moved to UTC: a client error, not a 500.
        return parsed.astimezone(dt.timezone.utc)
    except (ValueError, OverflowError):
        raise InvalidRequest.of([FieldViolation(
            field, "expected an ISO 8601 date-time like 2024-03-05T22:43:23.429Z", text[:100])]) from None


