"""Validity periods and terms: CAGW ``validityPeriod`` text to a lifetime, and the profile term to use."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from service.x509._violations import _VALIDITY_FIELD, _violation

_NUMBER = r"(\d{1,9}(?:[.,]\d{1,9})?)"
_DURATION_RE = re.compile(
    rf"P(?!$)(?:{_NUMBER}Y)?(?:{_NUMBER}M)?(?:{_NUMBER}W)?(?:{_NUMBER}D)?"
    rf"(?:T(?=\d)(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?"
)
# What each duration component is worth, in days: a year is 365 days, a month 30.
_DURATION_UNITS_DAYS = (365.0, 30.0, 7.0, 1.0, 1 / 24, 1 / 1440, 1 / 86400)
_ONE_DAY = dt.timedelta(days=1)


def parse_validity_period(text: str, *, now: dt.datetime, field: str = _VALIDITY_FIELD) -> dt.timedelta | None:
    """The lifetime a caller asks for in ``validityPeriod``, or ``None`` when the text is blank.

    Forms (ISO 8601): ``start/end``, ``start/P…``, ``P…/end`` and bare
    durations (``P1Y3M10DT0H0M``, ``PT43200M``, ``P90D``). A year counts 365
    days, a month 30, a week 7. Times without an offset are UTC. Each form
    describes an interval (a bare duration starts ``now``); since a CA
    starts a certificate when it issues it, the answer is the time from
    ``max(start, now)`` to the interval's end. Intervals that end before they
    start, or before ``now``, are refused.

    >>> parse_validity_period("P90D", now=dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc))
    datetime.timedelta(days=90)
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    source = text.strip().upper()
    if not source:
        return None
    if "/" in source:
        left, _, right = source.partition("/")
        if left.startswith("P") and right.startswith("P"):
            raise _violation(field, "an interval needs a start or an end, not two durations", text)
        if left.startswith("P"):
            end = _iso_datetime(right, field, text)
            start = end - _iso_duration(left, field, text)
        elif right.startswith("P"):
            start = _iso_datetime(left, field, text)
            end = start + _iso_duration(right, field, text)
        else:
            start, end = _iso_datetime(left, field, text), _iso_datetime(right, field, text)
    elif source.startswith("P"):
        start = now
        end = now + _iso_duration(source, field, text)
    else:
        raise _violation(field, "expected an ISO 8601 duration (P90D) or interval (start/end)", text)
    if end <= start:
        raise _violation(field, "validity period must be positive (it ends before it starts)", text)
    if end <= now:
        raise _violation(field, "validity period ends in the past", text)
    return end - max(start, now)


def _iso_duration(text: str, field: str, original: str) -> dt.timedelta:
    match = _DURATION_RE.fullmatch(text)
    if match is None:
        raise _violation(field, f"{text!r} is not an ISO 8601 duration like P1Y3M10DT0H0M, PT43200M or P90D", original)
    days = sum(
        float(group.replace(",", ".")) * unit
        for group, unit in zip(match.groups(), _DURATION_UNITS_DAYS, strict=True)
        if group is not None
    )
    try:
        return dt.timedelta(days=days)
    except OverflowError:
        raise _violation(field, f"duration {text!r} is too long", original) from None


def _iso_datetime(text: str, field: str, original: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise _violation(field, f"{text!r} is not an ISO 8601 date-time like 2025-01-02T08:03:49Z", original) from None
    return parsed.replace(tzinfo=dt.timezone.utc) if parsed.tzinfo is None else parsed


def is_zero_duration(text: str) -> bool:
    """True for a bare ISO 8601 duration of zero (``PT0M``, ``P0D``, ``P0Y0M0DT0H0M``): CAGW clients
    send one to mean "no validity requested" (Entrust's Vault plugin, ``PT%dM`` with no TTL)."""
    match = _DURATION_RE.fullmatch(text.strip().upper())
    return match is not None and all(float(g.replace(",", ".")) == 0 for g in match.groups() if g is not None)


# Time between a caller writing its validityPeriod and the CA starting the certificate: a request
# for exactly 365 days computed a moment before it is sent still gets a 365-day term.
_ISSUE_SLACK = dt.timedelta(minutes=5)


def whole_days_within(lifetime: dt.timedelta) -> int:
    """Whole days that do not exceed ``lifetime`` (allowing a few minutes for the time to issue)."""
    return max(0, (lifetime + _ISSUE_SLACK) // _ONE_DAY)


def longest_term_within(requested_days: int, terms: Sequence[int]) -> int | None:
    """The longest profile term (days) that does not exceed ``requested_days``, or ``None``."""
    fitting = [term for term in terms if term <= requested_days]
    return max(fitting) if fitting else None


def lifetime_days(lifetime: dt.timedelta) -> int:
    """Whole days covering ``lifetime`` (rounded up), the unit of CA profile terms."""
    return -(-lifetime // _ONE_DAY)


def choose_term(requested_days: int | None, terms: Sequence[int]) -> int:
    """The profile term (days) rounded up: the smallest ≥ the request, else the largest; none asked → the first.

    Used for the operator's own default term, and for a caller's request only
    where the CA opted into rounding up (``gateway.validity-rounding: up``);
    otherwise a request gets :func:`longest_term_within`.

    The first term when nothing is asked mirrors DESIGN decision 4 (and what
    CA vendors' own clients do). ``terms`` must not be empty.
    """
    if not terms:
        raise ValueError("the profile lists no terms")
    if requested_days is None:
        return terms[0]
    long_enough = [term for term in terms if term >= requested_days]
    return min(long_enough) if long_enough else max(terms)


def _iso_z(moment: dt.datetime) -> str:
    moment = moment.replace(tzinfo=dt.timezone.utc) if moment.tzinfo is None else moment.astimezone(dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def format_validity(not_before: dt.datetime, not_after: dt.datetime) -> str:
    """CAGW's ``validityPeriod``: ``2020-01-02T08:03:49Z/2023-01-02T08:33:49Z`` (UTC, whole seconds)."""
    return f"{_iso_z(not_before)}/{_iso_z(not_after)}"
