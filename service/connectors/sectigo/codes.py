"""Sectigo SCM's vocabulary as tables: error codes, status words, revocation reason codes.

Pure data and lookups, no I/O. The code sets come from the SCM error table
(reference §3); where the reference marks a use as inferred, the comment says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from service.connectors.base import (
    REASON_AUTH_FAILED,
    REASON_CERTIFICATE_REVOKED,
    REASON_NOT_FOUND,
    REASON_REJECTED,
    REASON_VALIDATION_FAILED,
    OrderStatus,
    RevokeReason,
)

__all__ = [
    "ACCESS_DENIED_CODES",
    "ALLOWED_REVOKE_REASONS",
    "AUTH_CODES",
    "NOT_FOUND_CODES",
    "PENDING_CODES",
    "REVOKED_CODES",
    "STATE_NOT_ISSUED_CODE",
    "TRANSIENT_CODES",
    "VALIDATION_CODES",
    "is_pending",
    "order_status",
    "rejection_reason",
    "revoke_reason_code",
    "status_filter",
]

# Collect answers HTTP 400 with one of these while the certificate is not ready.
# 0 is observed ("Being processed by Sectigo"), the others are documented.
PENDING_CODES: frozenset[int] = frozenset({0, -1400, -183, -109, -103})

# "Revoked, cannot be downloaded" (-110, documented), PCM's -192, and "already revoked" (-159) on a
# revoke: the certificate is revoked either way, which lets the core treat a repeated revoke as done.
REVOKED_CODES: frozenset[int] = frozenset({-110, -159, -192})

# The gateway's own credentials: unknown user (the 401 example), incorrect login.
AUTH_CODES: frozenset[int] = frozenset({-16, -970})

# "Not authorized" / "access denied": the credentials work but the admin may not do this.
# Mapped to REASON_AUTH_FAILED as well, because the fix is the same (the Sectigo account).
ACCESS_DENIED_CODES: frozenset[int] = frozenset({-3, -25, -37})

# Wrong SSL certificate id, certificate not found.
NOT_FOUND_CODES: frozenset[int] = frozenset({-124, -5101})

# The request itself is wrong: CSR, term, profile, organization, custom fields, formats, fields.
VALIDATION_CODES: frozenset[int] = frozenset(
    {
        -7,  # required field missing
        -9, -10, -11, -13, -138, -141, -170, -194,  # CSR: base64, decode, algorithm, key size, invalid, ECC
        -36,  # term invalid for the profile
        -39, -111,  # profile id invalid
        -62,  # missing mandatory custom field (also "invalid IP address")
        -107, -737, -1137,  # domain control validation incomplete
        -126, -1450,  # unknown or unsupported download format
        -639, -1023,  # organization id invalid or not found
        -843,  # profile blocked by the organization's validation status
        -1601,  # a field has an invalid value
    }
)

# "SSL state is not 'ISSUED': {state}": on collect the connector reads the order's details to
# tell a waiting order (pending) from a declined one (order failed); elsewhere a plain refusal.
STATE_NOT_ISSUED_CODE = -130

# "Try again later" answers that arrive as HTTP 400 (CA not available, CSR decoding
# temporarily unavailable): retryable, unlike every other 400.
TRANSIENT_CODES: frozenset[int] = frozenset({-195, -140})

# RFC 5280 reasons Sectigo accepts on revoke (reference §2.8); 2 and above 5 are refused.
ALLOWED_REVOKE_REASONS: Mapping[RevokeReason, int] = MappingProxyType(
    {
        RevokeReason.UNSPECIFIED: 0,
        RevokeReason.KEY_COMPROMISE: 1,
        RevokeReason.AFFILIATION_CHANGED: 3,
        RevokeReason.SUPERSEDED: 4,
        RevokeReason.CESSATION_OF_OPERATION: 5,
    }
)

# Details "status" words (case-insensitive) → our normalised state. Unknown words are UNKNOWN.
_STATUS_WORDS: Mapping[str, OrderStatus] = MappingProxyType(
    {
        "init": OrderStatus.REQUESTED,
        "requested": OrderStatus.REQUESTED,
        "awaiting approval": OrderStatus.REQUESTED,
        "not enrolled": OrderStatus.REQUESTED,
        "saapproved": OrderStatus.REQUESTED,
        "sa approved": OrderStatus.REQUESTED,
        "approved": OrderStatus.APPLIED,
        "applied": OrderStatus.APPLIED,
        "enrolled - pending download": OrderStatus.APPLIED,
        "issued": OrderStatus.ISSUED,
        "downloaded": OrderStatus.ISSUED,
        "revoked": OrderStatus.REVOKED,
        "expired": OrderStatus.EXPIRED,
        "replaced": OrderStatus.REPLACED,
        "declined": OrderStatus.FAILED,
        "rejected": OrderStatus.FAILED,
        "invalid": OrderStatus.FAILED,
    }
)

# Our state → the single word the list filter ``status`` takes. FAILED spans three
# Sectigo words and UNKNOWN none, so neither can be a filter.
_STATUS_FILTERS: Mapping[OrderStatus, str] = MappingProxyType(
    {
        OrderStatus.REQUESTED: "Requested",
        OrderStatus.APPLIED: "Applied",
        OrderStatus.ISSUED: "Issued",
        OrderStatus.REVOKED: "Revoked",
        OrderStatus.EXPIRED: "Expired",
        OrderStatus.REPLACED: "Replaced",
    }
)


def is_pending(http_status: int, code: int | None) -> bool:
    """True for a collect answer that means "not issued yet": HTTP 400 with a pending code, nothing else."""
    return http_status == 400 and code is not None and code in PENDING_CODES


def rejection_reason(http_status: int, code: int | None) -> str:
    """The ``REASON_*`` of a final refusal, from the HTTP status first and the Sectigo code second."""
    if http_status in (401, 403):
        return REASON_AUTH_FAILED
    if http_status == 404:
        return REASON_NOT_FOUND
    if code is None:
        return REASON_REJECTED
    if code in AUTH_CODES or code in ACCESS_DENIED_CODES:
        return REASON_AUTH_FAILED
    if code in NOT_FOUND_CODES:
        return REASON_NOT_FOUND
    if code in REVOKED_CODES:
        return REASON_CERTIFICATE_REVOKED
    if code in VALIDATION_CODES:
        return REASON_VALIDATION_FAILED
    return REASON_REJECTED


def revoke_reason_code(reason: RevokeReason) -> int | None:
    """Sectigo's ``reasonCode`` for an RFC 5280 reason, or ``None`` when Sectigo refuses that reason."""
    return ALLOWED_REVOKE_REASONS.get(reason)


def order_status(word: str | None) -> OrderStatus:
    """The normalised state of a details ``status`` word."""
    if not word:
        return OrderStatus.UNKNOWN
    return _STATUS_WORDS.get(" ".join(word.split()).lower(), OrderStatus.UNKNOWN)


def status_filter(status: OrderStatus) -> str | None:
    """The list filter word for ``status``, or ``None`` when Sectigo has no single word for it."""
    return _STATUS_FILTERS.get(status)
