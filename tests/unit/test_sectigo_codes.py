"""Sectigo code tables and the HTTP answer → exception mapping (pure, no sockets)."""

from __future__ import annotations

import datetime as dt

import pytest

from service.connectors import base
from service.connectors.base import OrderStatus, RevokeReason
from service.connectors.sectigo import codes
from service.connectors.sectigo.errors import (
    SectigoAuthError,
    SectigoError,
    SectigoNotFound,
    SectigoProxyError,
    SectigoRejected,
    SectigoRevoked,
    SectigoServerError,
    SectigoThrottled,
    SectigoTimeout,
    SectigoValidationError,
    error_for_response,
    parse_error_body,
    parse_retry_after,
)
from service.errors import CARejected, CAUnavailable


@pytest.mark.parametrize(
    ("status", "code", "pending"),
    [
        pytest.param(400, 0, True, id="ok-observed-0"),
        pytest.param(400, -1400, True, id="ok-1400"),
        pytest.param(400, -183, True, id="ok-183"),
        pytest.param(400, -109, True, id="ok-109"),
        pytest.param(400, -103, True, id="ok-103"),
        pytest.param(404, 0, False, id="fail-404-is-not-pending"),
        pytest.param(400, None, False, id="fail-no-code"),
        pytest.param(400, -110, False, id="fail-revoked"),
        pytest.param(500, -1400, False, id="fail-5xx"),
    ],
)
def test_pending_is_only_400_with_a_pending_code(status: int, code: int | None, pending: bool) -> None:
    assert codes.is_pending(status, code) is pending


@pytest.mark.parametrize(
    ("status", "code", "reason"),
    [
        pytest.param(401, None, base.REASON_AUTH_FAILED, id="ok-401-empty"),
        pytest.param(401, -16, base.REASON_AUTH_FAILED, id="ok-401-unknown-user"),
        pytest.param(400, -970, base.REASON_AUTH_FAILED, id="ok-970"),
        pytest.param(403, None, base.REASON_AUTH_FAILED, id="ok-403"),
        pytest.param(404, -124, base.REASON_NOT_FOUND, id="ok-124"),
        pytest.param(404, -5101, base.REASON_NOT_FOUND, id="ok-5101"),
        pytest.param(400, -5101, base.REASON_NOT_FOUND, id="ok-5101-as-400"),
        pytest.param(400, -110, base.REASON_CERTIFICATE_REVOKED, id="ok-110"),
        pytest.param(400, -192, base.REASON_CERTIFICATE_REVOKED, id="ok-192"),
        pytest.param(400, -10, base.REASON_VALIDATION_FAILED, id="ok-csr"),
        pytest.param(400, -36, base.REASON_VALIDATION_FAILED, id="ok-term"),
        pytest.param(400, -39, base.REASON_VALIDATION_FAILED, id="ok-profile"),
        pytest.param(400, -639, base.REASON_VALIDATION_FAILED, id="ok-org"),
        pytest.param(400, -62, base.REASON_VALIDATION_FAILED, id="ok-custom-field"),
        pytest.param(400, -159, base.REASON_CERTIFICATE_REVOKED, id="ok-already-revoked"),
        pytest.param(400, None, base.REASON_REJECTED, id="ok-unknown"),
    ],
)
def test_rejection_reason(status: int, code: int | None, reason: str) -> None:
    assert codes.rejection_reason(status, code) == reason


def test_revoke_reasons_sectigo_accepts() -> None:
    accepted = {reason: codes.revoke_reason_code(reason) for reason in RevokeReason}
    assert {r.cagw_name: c for r, c in accepted.items() if c is not None} == {
        "unspecified": 0, "keyCompromise": 1, "affiliationChanged": 3, "superseded": 4, "cessationOfOperation": 5,
    }
    assert accepted[RevokeReason.CA_COMPROMISE] is None
    assert accepted[RevokeReason.CERTIFICATE_HOLD] is None


@pytest.mark.parametrize(
    ("word", "status"),
    [("Issued", OrderStatus.ISSUED), ("applied", OrderStatus.APPLIED), ("Requested", OrderStatus.REQUESTED),
     ("SA Approved", OrderStatus.REQUESTED), ("Declined", OrderStatus.FAILED), ("Revoked", OrderStatus.REVOKED),
     ("Enrolled - Pending Download", OrderStatus.APPLIED), ("Weird", OrderStatus.UNKNOWN), ("", OrderStatus.UNKNOWN)],
)
def test_order_status_words(word: str, status: OrderStatus) -> None:
    assert codes.order_status(word) is status


def test_status_filter_has_no_word_for_failed() -> None:
    assert codes.status_filter(OrderStatus.ISSUED) == "Issued"
    assert codes.status_filter(OrderStatus.FAILED) is None


# ---------------------------------------------------------------- error answers


def _error(status: int, body: bytes, **headers: str) -> SectigoError:
    return error_for_response(ca_id="ca1", operation="details 5", http_status=status, body=body, headers=headers)


@pytest.mark.parametrize(
    ("status", "body", "cls", "family"),
    [
        pytest.param(401, b"", SectigoAuthError, CARejected, id="ok-empty-401"),
        pytest.param(401, b'{"code":-16,"description":"Unknown user"}', SectigoAuthError, CARejected, id="ok-401"),
        pytest.param(404, b'{"code":-124,"description":"Wrong SSL certificate id 5."}', SectigoNotFound, CARejected,
                     id="ok-404"),
        pytest.param(400, b'{"code":-36,"description":"term"}', SectigoValidationError, CARejected, id="ok-term"),
        pytest.param(400, b'{"code":-110,"description":"revoked"}', SectigoRevoked, CARejected, id="ok-revoked"),
        pytest.param(400, b'{"code":-1,"description":"x"}', SectigoRejected, CARejected, id="ok-other"),
        pytest.param(501, b"", SectigoRejected, CARejected, id="ok-501-is-final"),
        pytest.param(502, b"<html><body>Bad gateway</body></html>", SectigoServerError, CAUnavailable,
                     id="ok-html-502"),
        pytest.param(503, b"", SectigoServerError, CAUnavailable, id="ok-503"),
        pytest.param(400, b'{"code":-195,"description":"CA not available now"}', SectigoServerError, CAUnavailable,
                     id="ok-try-later-code"),
        pytest.param(408, b"", SectigoTimeout, CAUnavailable, id="ok-408"),
        pytest.param(407, b"", SectigoProxyError, CAUnavailable, id="ok-407"),
    ],
)
def test_error_for_response(status: int, body: bytes, cls: type[SectigoError], family: type[Exception]) -> None:
    error = _error(status, body, **{"Content-Type": "text/html"})
    assert type(error) is cls
    assert isinstance(error, family)
    assert error.http_status == status
    assert "CA ca1: details 5 failed: HTTP" in str(error)


def test_error_carries_code_and_description() -> None:
    error = _error(400, b'{"code":-10,"description":"Error while decoding CSR."}')
    assert (error.code, error.description, error.ca_code, error.reason) == (
        -10, "Error while decoding CSR.", -10, base.REASON_VALIDATION_FAILED)


def test_throttled_has_retry_after_and_was_not_processed() -> None:
    error = _error(429, b'{"code":429,"description":"Rate limited"}', **{"Retry-After": "7"})
    assert isinstance(error, SectigoThrottled)
    assert error.retry_after == 7.0
    assert error.maybe_processed is False and error.retryable is True


def test_proxy_407_is_not_retried() -> None:
    assert _error(407, b"").retryable is False


@pytest.mark.parametrize(
    ("body", "parsed"),
    [
        (b'{"code":-16,"description":"Unknown user"}', (-16, "Unknown user")),
        (b'{"code":"-36","description":"t"}', (-36, "t")),
        (b'{"description":"only text"}', (None, "only text")),
        (b'{"error":"invalid_client","error_description":"Invalid client credentials"}',
         (None, "Invalid client credentials")),
        (b"", (None, "")),
        (b"<html>502</html>", (None, "")),
        (b"[1,2]", (None, "")),
        (b"\xff\xfe", (None, "")),
    ],
)
def test_parse_error_body(body: bytes, parsed: tuple[int | None, str]) -> None:
    assert parse_error_body(body) == parsed


def test_parse_retry_after() -> None:
    now = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Thu, 01 Jan 2026 12:00:10 GMT", now=now) == 10.0
    assert parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
