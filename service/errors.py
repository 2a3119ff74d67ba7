"""The one exception tree of the gateway.

::

    CagwError
    ├── ConfigError            bad configuration or key store; names the YAML path / file
    ├── InvalidRequest         the caller's request is wrong; carries field violations
    ├── NotFound               unknown CA, profile, serial, DN or enrollment
    ├── AlreadyExists          idempotency key reused with a different request
    ├── Unimplemented          a CAGW feature the CA cannot serve (hold, unhold, ...)
    ├── FailedPrecondition     the request is valid but the object's state forbids it
    ├── CallerDenied           the caller's own credentials (unauthenticated / forbidden)
    ├── QuotaExceeded          a client or CA order limit is reached; retry_after
    ├── LimitExceeded          a bound on open streams or calls was reached (retry_after)
    ├── ShuttingDown           the gateway is stopping (retry elsewhere or later)
    └── ConnectorError         the CA side failed
        ├── CAUnavailable      retryable: down, throttling, timeout; retry_after, maybe_processed
        │   └── CircuitOpen    the CA's circuit is open: nothing was sent
        └── CARejected         the CA refused for good; carries the CA's own code

Business code raises these; only the transport adapters (``api/``, ``rest/``)
turn them into gRPC statuses or HTTP answers. Messages never contain secrets.
``domain`` is the ``ErrorInfo`` domain of the reason: the gateway's own, or a
connector's for the errors that connector raises (its error classes set it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "GATEWAY_ERROR_DOMAIN",
    "AlreadyExists",
    "CAUnavailable",
    "CARejected",
    "CagwError",
    "CallerDenied",
    "CircuitOpen",
    "ConfigError",
    "ConnectorError",
    "FailedPrecondition",
    "FieldViolation",
    "InvalidRequest",
    "LimitExceeded",
    "NotFound",
    "QuotaExceeded",
    "ShuttingDown",
    "Unimplemented",
]


GATEWAY_ERROR_DOMAIN = "cagw.gateway"


@dataclass(frozen=True)
class FieldViolation:
    """One bad request field: ``field`` is the JSON path (``csr``, ``subjectAltNames[2].value``)."""

    field: str
    description: str
    value: str = ""


class CagwError(Exception):
    """Base of every error the gateway raises on purpose.

    ``reason`` is a stable UPPER_SNAKE machine-readable reason (the ErrorInfo
    reason on the wire); ``metadata`` holds safe structured context; ``domain``
    says whose reason it is (the ErrorInfo domain).
    """

    reason: str = "CAGW_ERROR"
    domain: str = GATEWAY_ERROR_DOMAIN

    def __init__(self, message: str, *, reason: str | None = None, metadata: Mapping[str, str] | None = None,
                 caller_message: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        # What a caller is told when ``message`` holds what only the operator should read (a CA's
        # host, a proxy, a TLS detail): the full message goes to the log with the request id.
        self.caller_message = caller_message or message
        if reason is not None:
            self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})

    @property
    def hides_details(self) -> bool:
        """True when callers see less than the log (``caller_message`` differs from ``message``)."""
        return self.caller_message != self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, reason={self.reason!r})"


class ConfigError(CagwError):
    """Configuration or key store problem. ``problems`` lists every one found, each naming its path."""

    reason = "CONFIG_INVALID"

    def __init__(self, message: str, *, problems: Sequence[str] = (), **kwargs: object) -> None:
        self.problems: list[str] = list(problems) or [message]
        super().__init__(message, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def collect(cls, problems: Sequence[str]) -> ConfigError:
        text = problems[0] if len(problems) == 1 else f"{len(problems)} configuration problems:\n  " + "\n  ".join(problems)
        return cls(text, problems=problems)


class InvalidRequest(CagwError):
    """The caller's request is invalid; ``violations`` name each bad field."""

    reason = "INVALID_REQUEST"

    def __init__(self, message: str, *, violations: Sequence[FieldViolation] = (), **kwargs: object) -> None:
        self.violations: list[FieldViolation] = list(violations)
        super().__init__(message, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def of(cls, violations: Sequence[FieldViolation]) -> InvalidRequest:
        first = violations[0]
        text = f"{first.field}: {first.description}"
        if len(violations) > 1:
            text += f" (and {len(violations) - 1} more)"
        return cls(text, violations=violations)


class NotFound(CagwError):
    reason = "NOT_FOUND"


class AlreadyExists(CagwError):
    reason = "ALREADY_EXISTS"


class Unimplemented(CagwError):
    reason = "NOT_SUPPORTED_BY_CA"


class FailedPrecondition(CagwError):
    reason = "FAILED_PRECONDITION"


class CallerDenied(CagwError):
    """The caller is not authenticated (``authenticated=False``) or not allowed."""

    reason = "CALLER_DENIED"

    def __init__(self, message: str, *, authenticated: bool = True, **kwargs: object) -> None:
        self.authenticated = authenticated
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class QuotaExceeded(CagwError):
    """An order limit (a client's ``limits``, a CA's ``max-pending-orders``) is reached; nothing was
    written or sent. ``retry_after`` (seconds) is when a retry may succeed."""

    reason = "QUOTA_EXCEEDED"

    def __init__(self, message: str, *, retry_after: float, **kwargs: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class ConnectorError(CagwError):
    """The CA side failed. ``http_status``, ``ca_code`` and ``ca_description`` are what the CA said."""

    reason = "CA_ERROR"

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        ca_code: int | None = None,
        ca_description: str = "",
        **kwargs: object,
    ) -> None:
        self.http_status = http_status
        self.ca_code = ca_code
        self.ca_description = ca_description
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class CAUnavailable(ConnectorError):
    """Retryable CA failure; ``retry_after`` (seconds) is the CA's hint or our back-off.

    ``maybe_processed`` is False only when the request provably never reached
    the CA (connection refused, TLS failure, a 429 or 503 answer): a write that
    failed that way can be sent again without looking for it first.
    """

    reason = "CA_UNAVAILABLE"

    def __init__(self, message: str, *, retry_after: float | None = None, maybe_processed: bool = True,
                 **kwargs: object) -> None:
        self.retry_after = retry_after
        self.maybe_processed = maybe_processed
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class CircuitOpen(CAUnavailable):
    """The CA failed often enough that its circuit is open: the call was refused without being
    sent (``maybe_processed`` is False), and ``retry_after`` is when the next probe is allowed."""

    reason = "CA_CIRCUIT_OPEN"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        super().__init__(message, retry_after=retry_after, maybe_processed=False, **kwargs)


class CARejected(ConnectorError):
    """The CA refused the request for good (validation, revoked, bad credentials of the gateway...)."""

    reason = "CA_REJECTED"


class LimitExceeded(CagwError):
    """A bound on what one caller or the whole gateway may hold at once was reached (gRPC
    ``RESOURCE_EXHAUSTED``, REST 429); ``retry_after`` (seconds) is when trying again makes sense."""

    reason = "LIMIT_EXCEEDED"

    def __init__(self, message: str, *, retry_after: float = 1.0, **kwargs: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class ShuttingDown(CagwError):
    """The gateway is stopping; the caller should retry against another replica or later."""

    reason = "GATEWAY_SHUTTING_DOWN"
