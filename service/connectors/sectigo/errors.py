"""The Sectigo error family, and the one place where aiohttp's exceptions are translated.

::

    SectigoError (ConnectorError)             http_status, code, description of what Sectigo said
    ├── SectigoUnavailable (CAUnavailable)    retryable; retry_after, maybe_processed
    │   ├── SectigoThrottled                  HTTP 429 (Retry-After honoured)
    │   ├── SectigoServerError                HTTP 5xx (not 501), or a "try later" code
    │   ├── SectigoBadResponse                a success answer that cannot be read
    │   └── SectigoTransportError             nothing usable came back
    │       ├── SectigoConnectionError        refused, reset, dropped mid-answer
    │       ├── SectigoTimeout                connect or request timeout
    │       ├── SectigoTLSError               Sectigo's certificate not trusted, handshake failed
    │       └── SectigoProxyError             the proxy refused (407) or failed the tunnel
    └── SectigoRejected (CARejected)          final; ``reason`` is a base.REASON_* constant
        ├── SectigoAuthError                  401/403, -16, -970, access denied
        ├── SectigoNotFound                   404, -124, -5101
        ├── SectigoValidationError            CSR, term, profile, org, custom field, format
        ├── SectigoRevoked                    -110, -192 (collecting a revoked certificate)
        └── SectigoOrderFailed                the order was declined, rejected or is invalid

``retryable`` says whether the client may send the same idempotent call again
by itself: TLS trust failures and a proxy's 407 are ``CAUnavailable`` (the CA
may be fine and an order must not be failed for our configuration) but are
not retried, because the next attempt fails the same way.

``maybe_processed`` is False only when the request provably never reached
Sectigo (connection not established, 429); after anything else an enroll may
have created an order, which the gateway finds again by its marker.

:func:`map_aiohttp_errors` is the only ``except`` for aiohttp exceptions in
the package; it picks the most specific class and chains ``from exc``.
:func:`error_for_response` turns an HTTP error answer into the family.
Messages name the CA and the operation, never a secret.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import json
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from service.connectors.base import (
    REASON_AUTH_FAILED,
    REASON_CERTIFICATE_REVOKED,
    REASON_NOT_FOUND,
    REASON_ORDER_FAILED,
    REASON_VALIDATION_FAILED,
)
from service.errors import CAUnavailable, CARejected, ConnectorError

from . import codes

ERROR_DOMAIN = "cagw.sectigo"  # the ErrorInfo domain of Sectigo's refusals and failures

__all__ = [
    "ERROR_DOMAIN",
    "SectigoAuthError",
    "SectigoBadResponse",
    "SectigoConnectionError",
    "SectigoError",
    "SectigoNotFound",
    "SectigoOrderFailed",
    "SectigoProxyError",
    "SectigoRejected",
    "SectigoRevoked",
    "SectigoServerError",
    "SectigoTLSError",
    "SectigoThrottled",
    "SectigoTimeout",
    "SectigoTransportError",
    "SectigoUnavailable",
    "SectigoValidationError",
    "error_for_response",
    "map_aiohttp_errors",
    "parse_error_body",
    "parse_retry_after",
]


class SectigoError(ConnectorError):
    """Anything that went wrong talking to Sectigo. ``code``/``description`` are Sectigo's own."""

    domain = ERROR_DOMAIN
    retryable: bool = False

    @property
    def code(self) -> int | None:
        return self.ca_code

    @property
    def description(self) -> str:
        return self.ca_description


class SectigoUnavailable(SectigoError, CAUnavailable):
    """Sectigo could not be reached or answered "later"; the same call may work later."""

    retryable = True

    def __init__(self, message: str, *, maybe_processed: bool = True, retryable: bool | None = None,
                 **kwargs: Any) -> None:
        if retryable is not None:
            self.retryable = retryable
        super().__init__(message, maybe_processed=maybe_processed, **kwargs)


class SectigoThrottled(SectigoUnavailable):
    """HTTP 429: too many requests; ``retry_after`` is Sectigo's ``Retry-After`` when it sent one."""


class SectigoServerError(SectigoUnavailable):
    """HTTP 5xx (other than 501), or a 400 whose code means "try again later" (-195, -140)."""


class SectigoBadResponse(SectigoUnavailable):
    """A success status with a body that is not what the API documents (an HTML page, truncated JSON)."""


class SectigoTransportError(SectigoUnavailable):
    """No HTTP answer at all."""


class SectigoConnectionError(SectigoTransportError):
    """Connection refused, reset or dropped before the answer was complete."""


class SectigoTimeout(SectigoTransportError):
    """The connect or request timeout of the CA's ``gateway`` settings expired."""


class SectigoTLSError(SectigoTransportError):
    """TLS failed: Sectigo's certificate is not trusted by ``ssl-trust-store``, or the handshake broke."""

    retryable = False


class SectigoProxyError(SectigoTransportError):
    """The configured proxy could not be reached, refused our credentials (407) or failed the tunnel."""


class SectigoRejected(SectigoError, CARejected):
    """Sectigo refused for good; sending the same request again gives the same answer."""


class SectigoAuthError(SectigoRejected):
    """The gateway's own Sectigo credentials were refused (or may not do this)."""

    reason = REASON_AUTH_FAILED


class SectigoNotFound(SectigoRejected):
    """Unknown order id or serial number."""

    reason = REASON_NOT_FOUND


class SectigoValidationError(SectigoRejected):
    """The request's CSR, term, profile, organization, custom fields or other values were refused."""

    reason = REASON_VALIDATION_FAILED


class SectigoRevoked(SectigoRejected):
    """The certificate was revoked and cannot be downloaded."""

    reason = REASON_CERTIFICATE_REVOKED


class SectigoOrderFailed(SectigoRejected):
    """The order will never be issued: Sectigo declined or rejected it, or it became invalid."""

    reason = REASON_ORDER_FAILED


_REJECTED_BY_REASON: Mapping[str, type[SectigoRejected]] = {
    REASON_AUTH_FAILED: SectigoAuthError,
    REASON_NOT_FOUND: SectigoNotFound,
    REASON_VALIDATION_FAILED: SectigoValidationError,
    REASON_CERTIFICATE_REVOKED: SectigoRevoked,
}


# ---------------------------------------------------------------- HTTP error answers


def parse_error_body(body: bytes) -> tuple[int | None, str]:
    """Sectigo's ``{code, description}`` (or an OAuth ``{error, error_description}``) from an error body.

    Bodies that are not JSON (HTML 502 pages, empty 401s) give ``(None, "")``: the caller
    still has the HTTP status, and raw pages are not worth echoing into messages.
    """
    try:
        document = json.loads(body.decode("utf-8")) if body.strip() else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None, ""
    if not isinstance(document, dict):
        return None, ""
    code: int | None = None
    raw_code = document.get("code")
    if isinstance(raw_code, int) and not isinstance(raw_code, bool):
        code = raw_code
    elif isinstance(raw_code, str):
        try:
            code = int(raw_code.strip())
        except ValueError:
            code = None
    description = document.get("description")
    if not isinstance(description, str):
        description = document.get("error_description") or document.get("error") or ""
    return code, str(description)[:500]


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date), or ``None``."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    current = now or dt.datetime.now(dt.timezone.utc)
    return max(0.0, (when - current).total_seconds())


def error_for_response(
    *,
    ca_id: str,
    operation: str,
    http_status: int,
    body: bytes,
    headers: Mapping[str, str],
) -> SectigoError:
    """The exception for an error answer (status >= 400) of ``operation``."""
    code, description = parse_error_body(body)
    what = f"CA {ca_id}: {operation} failed: HTTP {http_status}"
    if code is not None:
        what += f", Sectigo code {code}"
    if description:
        what += f": {description}"
    elif code is None:
        content_type = headers.get("Content-Type", "no content type")
        what += f" without a Sectigo error body ({content_type}, {len(body)} bytes)"
    details: dict[str, Any] = {"http_status": http_status, "ca_code": code, "ca_description": description}
    retry_after = parse_retry_after(headers.get("Retry-After"))

    if http_status == 429:
        return SectigoThrottled(what, retry_after=retry_after, maybe_processed=False, **details)
    if http_status == 407:
        return SectigoProxyError(what + " (check proxy-username and proxy-password)", retryable=False,
                                 maybe_processed=False, **details)
    if http_status == 408:
        return SectigoTimeout(what, retry_after=retry_after, **details)
    if http_status >= 500 and http_status != 501:
        return SectigoServerError(what, retry_after=retry_after, **details)
    if code is not None and code in codes.TRANSIENT_CODES:
        return SectigoServerError(what, retry_after=retry_after, **details)
    reason = codes.rejection_reason(http_status, code)
    cls = _REJECTED_BY_REASON.get(reason, SectigoRejected)
    if cls is SectigoNotFound and code is None:
        what += " (no Sectigo error code: is the url right?)"
    return cls(what, reason=reason, **details)


# ---------------------------------------------------------------- transport failures


@contextmanager
def map_aiohttp_errors(*, ca_id: str, operation: str, target: str) -> Iterator[None]:
    """Translate aiohttp and socket failures inside the block into the Sectigo family.

    ``target`` is ``host:port`` of the server called, named in the message. Cancellation
    passes through untouched.
    """
    where = f"CA {ca_id}: {operation} failed"

    def hidden(what: str) -> str:  # the caller's words: no host, proxy or TLS detail
        return f"{where}: {what}"

    try:
        yield
    except aiohttp.ClientConnectorCertificateError as exc:
        raise SectigoTLSError(
            f"{where}: the TLS certificate of {target} is not trusted by the configured ssl-trust-store "
            f"({_ssl_reason(exc.certificate_error)})",
            maybe_processed=False, caller_message=hidden("the CA's TLS certificate is not trusted"),
        ) from exc
    except (aiohttp.ClientHttpProxyError, aiohttp.ClientProxyConnectionError) as exc:
        raise _proxy_error(exc, where=where, target=target) from exc
    except (aiohttp.ClientSSLError, aiohttp.ServerFingerprintMismatch) as exc:
        raise SectigoTLSError(f"{where}: TLS handshake with {target} failed ({_ssl_reason(exc)})",
                              maybe_processed=False, caller_message=hidden("the TLS handshake with the CA failed")) from exc
    except aiohttp.ConnectionTimeoutError as exc:
        raise SectigoTimeout(f"{where}: connecting to {target} timed out", maybe_processed=False,
                             caller_message=hidden("connecting to the CA timed out")) from exc
    except aiohttp.ClientConnectorError as exc:
        raise SectigoConnectionError(f"{where}: cannot connect to {target} ({_os_reason(exc)})",
                                     maybe_processed=False, caller_message=hidden("the CA cannot be reached")) from exc
    except (aiohttp.ServerTimeoutError, asyncio.TimeoutError) as exc:
        raise SectigoTimeout(f"{where}: {target} did not answer in time",
                             caller_message=hidden("the CA did not answer in time")) from exc
    except aiohttp.ServerDisconnectedError as exc:
        raise SectigoConnectionError(f"{where}: {target} closed the connection before answering",
                                     caller_message=hidden("the CA closed the connection before answering")) from exc
    except aiohttp.ClientPayloadError as exc:
        raise SectigoConnectionError(f"{where}: the answer of {target} was cut short",
                                     caller_message=hidden("the CA's answer was cut short")) from exc
    except aiohttp.ClientResponseError as exc:
        _forget_request_headers(exc)
        raise SectigoBadResponse(f"{where}: unreadable HTTP answer from {target} ({exc.message})",
                                 http_status=exc.status or None,
                                 caller_message=hidden("the CA's answer could not be read")) from exc
    except aiohttp.InvalidURL as exc:
        raise SectigoRejected(f"{where}: invalid URL {target}",
                              caller_message=hidden("the CA's configured URL is invalid")) from exc
    except aiohttp.ClientError as exc:
        raise SectigoConnectionError(f"{where}: {type(exc).__name__} talking to {target}",
                                     caller_message=hidden("the connection to the CA failed")) from exc
    except ssl.SSLError as exc:
        raise SectigoTLSError(f"{where}: TLS with {target} failed ({_ssl_reason(exc)})",
                              caller_message=hidden("TLS with the CA failed")) from exc
    except OSError as exc:
        raise SectigoConnectionError(f"{where}: {target}: {_os_reason(exc)}",
                                     caller_message=hidden("the connection to the CA failed")) from exc


def _proxy_error(exc: aiohttp.ClientError, *, where: str, target: str) -> SectigoProxyError:
    if not isinstance(exc, aiohttp.ClientHttpProxyError):
        return SectigoProxyError(f"{where}: cannot reach the proxy ({_os_reason(exc)})", maybe_processed=False,
                                 caller_message=f"{where}: the outgoing proxy cannot be reached")
    _forget_request_headers(exc)
    if exc.status == 407:
        return SectigoProxyError(
            f"{where}: the proxy refused the credentials (HTTP 407); check proxy-username and proxy-password",
            http_status=407, retryable=False, maybe_processed=False,
            caller_message=f"{where}: the outgoing proxy refused the gateway")
    return SectigoProxyError(f"{where}: the proxy could not open a tunnel to {target} (HTTP {exc.status})",
                             http_status=exc.status, maybe_processed=False,
                             caller_message=f"{where}: the outgoing proxy failed")


def _forget_request_headers(exc: aiohttp.ClientResponseError) -> None:
    """aiohttp keeps the request's headers (credentials, Proxy-Authorization) on response errors and
    shows them in ``repr``; drop them before the exception is chained to ours."""
    info = exc.request_info
    if isinstance(info, aiohttp.RequestInfo):
        exc.request_info = info._replace(headers=CIMultiDictProxy(CIMultiDict()))


def _ssl_reason(exc: BaseException) -> str:
    verify = getattr(exc, "verify_message", None)
    if verify:
        return str(verify)
    reason = getattr(exc, "reason", None)
    if isinstance(reason, str) and reason:
        return reason
    inner = getattr(exc, "os_error", None) or getattr(exc, "certificate_error", None)
    if isinstance(inner, BaseException) and inner is not exc:
        return _ssl_reason(inner)
    return type(exc).__name__


def _os_reason(exc: BaseException) -> str:
    inner = getattr(exc, "os_error", exc)
    strerror = getattr(inner, "strerror", None)
    return str(strerror) if strerror else type(inner).__name__
