"""The error tree → ``google.rpc.Status`` (code, message, details), once for both transports.

``ErrorInfo`` carries the stable reason and safe metadata, ``BadRequest`` the
field violations, ``RetryInfo`` the delay after which a retry makes sense.
Anything that is not a ``CagwError`` becomes ``INTERNAL`` with a generic
message; the traceback goes to the log, never to the caller.
"""

from __future__ import annotations

import asyncio
import logging

from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from service.connectors import base
from service.ledger.errors import LedgerUnavailable
from service.observability.requestid import current_request_id
from service.errors import (
    GATEWAY_ERROR_DOMAIN,
    AlreadyExists,
    CAUnavailable,
    CagwError,
    CallerDenied,
    CARejected,
    ConnectorError,
    FailedPrecondition,
    InvalidRequest,
    LimitExceeded,
    NotFound,
    QuotaExceeded,
    ShuttingDown,
    Unimplemented,
)

__all__ = ["ERROR_DOMAIN", "DEFAULT_RETRY_SECONDS", "code_of", "status_from_error"]

log = logging.getLogger(__name__)

ERROR_DOMAIN = GATEWAY_ERROR_DOMAIN  # of the gateway's own refusals; a connector's errors carry theirs
DEFAULT_RETRY_SECONDS = 5.0
MAX_ECHOED_VALUE = 200  # characters of an offending value echoed back (never a whole CSR)

_CA_REJECTED_CODES: dict[str, int] = {
    base.REASON_VALIDATION_FAILED: code_pb2.INVALID_ARGUMENT,
    base.REASON_NOT_FOUND: code_pb2.NOT_FOUND,
    # The gateway's own credentials toward the CA are wrong: never blamed on the caller (not 401/403).
    base.REASON_AUTH_FAILED: code_pb2.FAILED_PRECONDITION,
    base.REASON_CERTIFICATE_REVOKED: code_pb2.FAILED_PRECONDITION,
    base.REASON_ORDER_FAILED: code_pb2.FAILED_PRECONDITION,
}


_CODE_BY_CLASS: tuple[tuple[type[CagwError], int], ...] = (
    (InvalidRequest, code_pb2.INVALID_ARGUMENT),
    (NotFound, code_pb2.NOT_FOUND),
    (AlreadyExists, code_pb2.ALREADY_EXISTS),
    (Unimplemented, code_pb2.UNIMPLEMENTED),
    (FailedPrecondition, code_pb2.FAILED_PRECONDITION),
    (CAUnavailable, code_pb2.UNAVAILABLE),
    (ShuttingDown, code_pb2.UNAVAILABLE),
    (LedgerUnavailable, code_pb2.UNAVAILABLE),
    (QuotaExceeded, code_pb2.RESOURCE_EXHAUSTED),
    (LimitExceeded, code_pb2.RESOURCE_EXHAUSTED),
)


def _code_of(exc: CagwError) -> int:
    if isinstance(exc, CallerDenied):
        denied: int = code_pb2.PERMISSION_DENIED if exc.authenticated else code_pb2.UNAUTHENTICATED
        return denied
    if isinstance(exc, CARejected):
        rejected: int = _CA_REJECTED_CODES.get(exc.reason, code_pb2.FAILED_PRECONDITION)
        return rejected
    for kind, code in _CODE_BY_CLASS:
        if isinstance(exc, kind):
            return code
    internal: int = code_pb2.INTERNAL
    return internal


def code_of(exc: BaseException) -> int:
    """The ``google.rpc.Code`` a caller gets for ``exc`` (as :func:`status_from_error`, without logging)."""
    if isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
        cancelled: int = code_pb2.CANCELLED
        return cancelled
    if not isinstance(exc, CagwError):
        internal: int = code_pb2.INTERNAL
        return internal
    return _code_of(exc)


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def status_from_error(exc: BaseException) -> status_pb2.Status:
    """The google.rpc.Status a caller sees for an exception."""
    if not isinstance(exc, CagwError):
        log.error("unexpected error", exc_info=exc)
        return status_pb2.Status(code=code_pb2.INTERNAL, message="internal error; see the gateway log")
    code = _code_of(exc)
    if code == code_pb2.INTERNAL:
        log.error("internal error: %s", exc.message, exc_info=exc)
    metadata = dict(exc.metadata)
    request_id = current_request_id()
    message = exc.caller_message
    if exc.hides_details:
        # The operator reads the whole story in the log line, which carries the same request id.
        log.warning("%s", exc.message)
        message = f"{message} (request id {request_id or 'unknown'}; the gateway log has the details)"
    if request_id:
        metadata.setdefault("request_id", request_id)  # the caller can quote it; it is in every log line
    if isinstance(exc, InvalidRequest):
        # BadRequest has no slot for the offending value; REST renders it from here as `value`.
        for violation in exc.violations:
            if violation.value:
                metadata.setdefault(f"value:{violation.field}", violation.value[:MAX_ECHOED_VALUE])
    if isinstance(exc, ConnectorError):
        if exc.http_status is not None:
            metadata.setdefault("ca_http_status", str(exc.http_status))
        if exc.ca_code is not None:
            metadata.setdefault("ca_code", str(exc.ca_code))
    details = [_pack(error_details_pb2.ErrorInfo(reason=exc.reason, domain=exc.domain, metadata=metadata))]
    if isinstance(exc, InvalidRequest) and exc.violations:
        details.append(_pack(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
            for v in exc.violations
        ])))
    if isinstance(exc, (CAUnavailable, LedgerUnavailable, QuotaExceeded, LimitExceeded)):
        delay = exc.retry_after if exc.retry_after is not None else DEFAULT_RETRY_SECONDS
        retry = duration_pb2.Duration()
        retry.FromNanoseconds(round(delay * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=retry)))
    return status_pb2.Status(code=code, message=message, details=details)
