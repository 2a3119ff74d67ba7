"""``SectigoClient``: the HTTP side of one CA's Sectigo account.

One ``aiohttp.ClientSession`` per CA (keep-alive, a pool bounded by
``max-concurrent-requests``), the CA's timeouts, its authentication mode,
TLS context and proxy. Every call goes through :meth:`SectigoClient.request`,
which:

- holds one of the CA's concurrency slots only around the HTTP exchange, never
  across a back-off wait;
- retries transient failures (5xx, 429, timeouts, resets) of idempotent calls
  with capped, jittered exponential back-off (:class:`RetryPolicy`), honouring
  ``Retry-After``; non-idempotent calls (enroll, revoke, renew, replace) are
  sent once, except after a 401 in the API-key mode, which proves the request
  was not processed and is retried once with a fresh token;
- turns every failure into the :mod:`.errors` family and writes one redacted
  debug line per exchange;
- calls the :class:`~service.connectors.hooks.ExchangeHooks` it was given
  around each exchange (metrics, traces and the ``traceparent`` header).

Example::

    async with SectigoClient(ca_id="sectigo-ov", properties=ca.properties, gateway=ca.gateway) as client:
        types = await client.get_json("ssl/v1/types", operation="list cert types")

Nothing the client writes (logs, exception texts, ``repr``) contains a
password, key-store password, client secret, token or proxy password.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from service.config import GatewaySettings
from service.connectors.base import SleepFunction
from service.connectors.hooks import ExchangeHooks, ExchangeOutcome, OutgoingRequest
from service.errors import ConfigError

from .auth import ApiKeyAuthenticator, KeyStoreAuthenticator, PasswordAuthenticator, make_authenticator
from .errors import (
    SectigoBadResponse,
    SectigoError,
    SectigoUnavailable,
    error_for_response,
    map_aiohttp_errors,
    parse_error_body,
)
from .settings import ApiKeyAuth, SectigoProperties
from .tls import build_ssl_context

__all__ = ["ClientState", "RetryPolicy", "SectigoClient", "SectigoResponse", "Timeouts"]

log = logging.getLogger(__name__)

_MIN_SECRET_LENGTH = 3  # shorter "secrets" would garble every message they were scrubbed from


class ClientState(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True)
class RetryPolicy:
    """How idempotent calls are retried after transient failures.

    The wait before retry ``n`` (1-based) is drawn from ``[cap/2, cap]`` with
    ``cap = min(max_delay, base_delay * 2 ** (n - 1))`` ("equal jitter"). A
    ``Retry-After`` hint lengthens the wait; one longer than ``max_retry_after``
    is not waited for: the error goes to the caller with ``retry_after`` set,
    so the enrollment schedule can wait instead of this call.
    """

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("delays must not be negative")

    def delay(self, attempt: int, rng: random.Random, *, retry_after: float | None = None) -> float | None:
        """Seconds to wait after failed attempt ``attempt``, or ``None`` when the hint is too long to wait."""
        if retry_after is not None and retry_after > self.max_retry_after:
            return None
        cap = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        wait = cap / 2 + rng.uniform(0, cap / 2)
        return max(wait, retry_after or 0.0)


NO_RETRY = RetryPolicy(max_attempts=1)


@dataclass(frozen=True)
class Timeouts:
    """Per-request limits: the whole exchange, and establishing the connection (TCP, proxy, TLS)."""

    request: float
    connect: float

    @classmethod
    def from_settings(cls, gateway: GatewaySettings) -> Timeouts:
        return cls(request=gateway.request_timeout, connect=gateway.connect_timeout)


@dataclass(frozen=True)
class SectigoResponse:
    """A complete HTTP answer (the body is read while the concurrency slot is held)."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def __repr__(self) -> str:
        return f"SectigoResponse(status={self.status}, {len(self.body)} bytes)"


class SectigoClient:
    """Low-level HTTP client of one CA's Sectigo account; see the module docstring."""

    def __init__(
        self,
        *,
        ca_id: str,
        properties: SectigoProperties,
        gateway: GatewaySettings = GatewaySettings(),
        retry: RetryPolicy = RetryPolicy(),
        sleep: SleepFunction = asyncio.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ca_id = ca_id
        self._properties = properties
        self._timeouts = Timeouts.from_settings(gateway)
        self._pool_size = gateway.max_concurrent_requests
        self._retry = retry
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clock = clock
        self._state = ClientState.UNOPENED
        self._session: aiohttp.ClientSession | None = None
        # Created here, so every task that ever calls this client shares the same bound.
        self._slots = asyncio.Semaphore(gateway.max_concurrent_requests)
        self._hooks = ExchangeHooks()

        self._ssl_context = build_ssl_context(properties, ca_id=ca_id)
        self._auth: PasswordAuthenticator | KeyStoreAuthenticator | ApiKeyAuthenticator = make_authenticator(
            properties.auth, customer_uri=properties.customer_uri, fetch_token=self._fetch_token, clock=clock
        )
        self._base = self._auth.api_base(properties.url)
        self._proxy_url: str | None = None
        self._proxy_headers: dict[str, str] = {}
        self._fixed_secrets: list[str] = []
        if properties.trust_store_password is not None:
            self._fixed_secrets.append(properties.trust_store_password.reveal())
        proxy = properties.proxy
        if proxy is not None:
            host = f"[{proxy.host}]" if ":" in proxy.host else proxy.host
            self._proxy_url = f"http://{host}:{proxy.port}"
            if proxy.username is not None and proxy.password is not None:
                try:
                    value = aiohttp.encode_basic_auth(proxy.username, proxy.password.reveal())
                except ValueError as exc:  # a ':' in the user name
                    raise ConfigError(f"CA {ca_id}: proxy-username: {exc}") from None
                self._proxy_headers = {"Proxy-Authorization": value}
                self._fixed_secrets += [proxy.password.reveal(), value, value.removeprefix("Basic ")]

    # ------------------------------------------------------------ lifecycle

    @property
    def state(self) -> ClientState:
        return self._state

    @property
    def api_base(self) -> str:
        """The base the API paths are appended to (``…/private/api`` in the key-store mode)."""
        return self._base

    @property
    def auth_mode(self) -> str:
        return self._auth.mode

    async def open(self) -> None:
        """Create the session; calling it on an open client does nothing."""
        if self._state is ClientState.OPEN:
            return
        if self._state is ClientState.CLOSED:
            raise RuntimeError(f"SectigoClient of CA {self._ca_id} is closed; create a new one")
        connector = aiohttp.TCPConnector(limit=self._pool_size, limit_per_host=0)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self._timeouts.request, connect=self._timeouts.connect),
            # No session-wide headers: aiohttp also sends those to the proxy on CONNECT.
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,  # the proxy comes from the CA's properties, never from the environment
        )
        self._state = ClientState.OPEN

    async def close(self) -> None:
        """Close the session and its connections; the client cannot be reopened."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._state = ClientState.CLOSED

    def observe_exchanges(self, hooks: ExchangeHooks) -> None:
        """Add hooks called around every HTTP exchange (see :mod:`service.connectors.hooks`)."""
        self._hooks = self._hooks + hooks

    async def __aenter__(self) -> SectigoClient:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return (
            f"SectigoClient(ca_id={self._ca_id!r}, base={_without_userinfo(self._base)!r}, "
            f"auth={self._auth.mode!r}, proxy={self._proxy_url!r}, state={self._state.value!r})"
        )

    # ------------------------------------------------------------ calls

    async def get_json(
        self, path: str, *, operation: str, params: Mapping[str, str] | None = None, retry: bool = True
    ) -> tuple[Any, SectigoResponse]:
        """GET ``path`` (relative to the API base) and decode its JSON body; idempotent, so retried."""
        response = await self.request("GET", path, operation=operation, params=params, idempotent=retry)
        return self.decode_json(response, operation=operation), response

    async def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        idempotent: bool,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        url: str | None = None,
        form: Mapping[str, str] | None = None,
        authenticate: bool = True,
        accept: str = "application/json",
    ) -> SectigoResponse:
        """Send one API call; a 2xx answer is returned, anything else raises the Sectigo family.

        ``operation`` names the call in logs and messages ("enroll", "collect 1234").
        ``url`` replaces ``base/path`` for calls outside the API (the OAuth token url).
        ``accept`` is the ``Accept`` header (downloads are not JSON).
        """
        self._open_session()  # misuse fails before any credentials are fetched
        target_url = url or f"{self._base}/{path.lstrip('/')}"
        policy = self._retry if idempotent else NO_RETRY
        attempt = 0
        fresh_credentials_tried = False
        while True:
            attempt += 1
            headers = {"Accept": accept}
            if authenticate:
                headers.update(await self._auth.headers())
            try:
                response = await self._exchange(method, target_url, operation=operation, params=params,
                                                json_body=json_body, form=form, headers=headers, attempt=attempt)
                if (response.status == 401 and authenticate and not fresh_credentials_tried
                        and self._auth.unauthorized(headers)):
                    # A 401 proves nothing was processed: resending is safe even for enroll.
                    fresh_credentials_tried = True
                    attempt -= 1
                    continue
                if not 200 <= response.status < 300:
                    # A redirect is not a success: a revoke answered 302 (an SSO page) revoked nothing.
                    raise error_for_response(ca_id=self._ca_id, operation=operation, http_status=response.status,
                                             body=response.body, headers=response.headers)
                return response
            except SectigoError as exc:
                self._scrub(exc)
                if not isinstance(exc, SectigoUnavailable) or not exc.retryable or attempt >= policy.max_attempts:
                    raise
                wait = policy.delay(attempt, self._rng, retry_after=exc.retry_after)
                if wait is None:
                    raise
                log.debug("CA %s: %s: retrying in %.2f s after attempt %d (%s)", self._ca_id, operation, wait,
                          attempt, type(exc).__name__)
                await self._sleep(wait)  # no concurrency slot is held here

    def decode_json(self, response: SectigoResponse, *, operation: str) -> Any:
        """The JSON document of a success answer; an unreadable one is ``SectigoBadResponse``."""
        try:
            return json.loads(response.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            content_type = response.headers.get("Content-Type", "no content type")
            raise SectigoBadResponse(
                f"CA {self._ca_id}: {operation}: HTTP {response.status} answer is not JSON "
                f"({content_type}, {len(response.body)} bytes)",
                http_status=response.status,
            ) from None

    def bad_response(self, response: SectigoResponse, *, operation: str, problem: str) -> SectigoBadResponse:
        """The error for a success answer whose content does not make sense."""
        return SectigoBadResponse(self._redact(f"CA {self._ca_id}: {operation}: unexpected answer: {problem}"),
                                  http_status=response.status)

    # ------------------------------------------------------------ internals

    async def _exchange(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        params: Mapping[str, str] | None,
        json_body: Any,
        form: Mapping[str, str] | None,
        headers: Mapping[str, str],
        attempt: int,
    ) -> SectigoResponse:
        session = self._open_session()
        is_https = urlsplit(url).scheme == "https"
        request_headers: dict[str, str] = dict(headers)
        if self._proxy_headers and not is_https:
            # aiohttp sends proxy_headers on CONNECT only; a plain-http request goes to the proxy itself.
            request_headers.update(self._proxy_headers)
        target = _host_port(url)
        hooked = self._request_hooks(method, url, attempt, request_headers)
        started = self._clock()
        outcome = "failed"
        status: int | None = None
        error: BaseException | None = None
        try:
            async with self._slots:
                with map_aiohttp_errors(ca_id=self._ca_id, operation=operation, target=target):
                    async with session.request(
                        method,
                        url,
                        params=params,
                        json=json_body,
                        data=dict(form) if form is not None else None,
                        headers=request_headers,
                        # With a trust store configured the context always exists; system roots only serve
                        # an https token url of a CA configured without any trust store.
                        ssl=self._ssl_context if is_https and self._ssl_context is not None else True,
                        proxy=self._proxy_url,
                        proxy_headers=self._proxy_headers or None,
                        allow_redirects=False,
                    ) as answer:
                        body = await _read_bounded(answer, self._ca_id, operation)
                        response = SectigoResponse(status=answer.status, headers=CIMultiDictProxy(
                            CIMultiDict(answer.headers)), body=body)
            status, outcome = response.status, _answer_text(response)
            return response
        except BaseException as exc:
            error = exc
            outcome = type(exc).__name__
            raise
        finally:
            elapsed = (self._clock() - started) * 1000
            self._hooks.response(ExchangeOutcome(request=hooked, seconds=elapsed / 1000, status=status,
                                                 error=error))
            log.debug(self._redact(f"CA {self._ca_id}: {operation}: {method} {urlsplit(url).path} -> {outcome} "
                                   f"in {elapsed:.0f} ms (attempt {attempt})"))

    def _request_hooks(self, method: str, url: str, attempt: int, request_headers: dict[str, str]) -> OutgoingRequest:
        """Run the request hooks; the headers they ask for (traceparent) join ``request_headers``. They
        never see the headers already there (credentials), and cannot replace one."""
        hooked = OutgoingRequest(ca_id=self._ca_id, method=method, path=urlsplit(url).path, attempt=attempt)
        self._hooks.request(hooked)
        request_headers.update({k: v for k, v in hooked.add_headers.items() if k not in request_headers})
        return hooked

    async def _fetch_token(self, form: Mapping[str, str]) -> Any:
        """POST the OAuth client-credentials form to the token url (retried: asking for a token is safe)."""
        if not isinstance(self._properties.auth, ApiKeyAuth):
            raise RuntimeError("token requested outside the API-key mode")
        response = await self.request("POST", "", operation="token request", url=self._properties.auth.token_url,
                                      form=form, idempotent=True, authenticate=False)
        return self.decode_json(response, operation="token request")

    def _open_session(self) -> aiohttp.ClientSession:
        if self._state is ClientState.CLOSED:
            raise RuntimeError(f"SectigoClient of CA {self._ca_id} is closed")
        if self._session is None:
            raise RuntimeError(f"SectigoClient of CA {self._ca_id} is not open; call open() or use 'async with'")
        return self._session

    def _secrets(self) -> Iterable[str]:
        return (*self._fixed_secrets, *self._auth.secrets())

    def _redact(self, text: str) -> str:
        # Longest first: a short secret inside a longer one must not leave the rest of the longer one.
        for secret in sorted(set(self._secrets()), key=len, reverse=True):
            if len(secret) >= _MIN_SECRET_LENGTH and secret in text:
                text = text.replace(secret, "***")
        return text

    def _scrub(self, exc: SectigoError) -> None:
        """Remove any secret Sectigo (or anyone) echoed into an error before it leaves the client."""
        message = self._redact(exc.message)
        if message != exc.message:
            exc.message = message
            exc.args = (message,)
        exc.ca_description = self._redact(exc.ca_description)


def _answer_text(response: SectigoResponse) -> str:
    """An answer as the debug line names it: ``HTTP 400 (code -105)``."""
    text = f"HTTP {response.status}"
    if response.status >= 400:
        code, _ = parse_error_body(response.body)
        text += f" (code {code})" if code is not None else " (no Sectigo code)"
    return text


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or "?"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


MAX_RESPONSE_BYTES = 16 * 1024 * 1024  # the largest SCM answer the gateway needs is a list page or a chain


async def _read_bounded(answer: aiohttp.ClientResponse, ca_id: str, operation: str) -> bytes:
    """The body, refusing one larger than MAX_RESPONSE_BYTES (a broken proxy must not fill memory)."""
    too_large = SectigoBadResponse(f"CA {ca_id}: {operation}: the answer is larger than "
                                   f"{MAX_RESPONSE_BYTES // (1024 * 1024)} MiB", http_status=answer.status,
                                   maybe_processed=True, retryable=False)
    if answer.content_length is not None and answer.content_length > MAX_RESPONSE_BYTES:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in answer.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)
