"""How each request proves who the gateway is: the three Sectigo authentication modes.

- **password**: headers ``login``, ``password`` and ``customerUri`` on the configured url.
- **key store**: a TLS client certificate (put into the ``SSLContext`` by :mod:`.tls`) plus
  headers ``login`` and ``customerUri``; Sectigo serves certificate logins under
  ``/private/api``, so a url ending in ``/api`` is rewritten to end in ``/private/api``
  (see :func:`private_api_base`).
- **API key**: OAuth2 client credentials. A bearer token is fetched from ``api-token-url``,
  cached until shortly before ``expires_in`` runs out, refreshed by one task at a time, and
  dropped when Sectigo answers 401 so that the one retry uses a fresh token.

Authenticators never log or show their secrets; :meth:`Authenticator.secrets` lists them so
the client can scrub them from anything it writes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

from service.config import Secret

from .errors import SectigoBadResponse
from .settings import ApiKeyAuth, KeyStoreAuth, PasswordAuth

__all__ = [
    "DEFAULT_TOKEN_LIFETIME",
    "ApiKeyAuthenticator",
    "Authenticator",
    "BearerToken",
    "KeyStoreAuthenticator",
    "PasswordAuthenticator",
    "TokenFetcher",
    "make_authenticator",
    "private_api_base",
]

log = logging.getLogger(__name__)

DEFAULT_TOKEN_LIFETIME = 300.0  # seconds, when the token answer has no expires_in (Keycloak's default)

TokenFetcher = Callable[[Mapping[str, str]], Awaitable[Any]]
"""Posts the OAuth form to the token url and returns the decoded JSON answer (raises the Sectigo family)."""


class Authenticator(Protocol):
    """One authentication mode."""

    mode: str

    def api_base(self, url: str) -> str:
        """The API base to call for the configured ``url``."""

    async def headers(self) -> dict[str, str]:
        """The authentication headers for the next request."""

    def unauthorized(self, used: Mapping[str, str]) -> bool:
        """Sectigo answered 401 to a request sent with ``used``: may one retry with fresh credentials help?"""

    def secrets(self) -> Iterable[str]:
        """Every secret value this mode holds now, to scrub from logs and messages."""


def private_api_base(url: str) -> str:
    """The certificate-login base for ``url``: ``…/api`` → ``…/private/api``.

    Rule: when the url's path ends with ``/api`` and not already with ``/private/api``, the last
    segment becomes ``private/api``; any other url is used as configured (a warning is logged),
    so a deployment with an unusual path can still point at its certificate endpoint directly.
    """
    parts = urlsplit(url)
    path = parts.path.rstrip("/")
    if path.endswith("/private/api"):
        return urlunsplit(parts._replace(path=path))
    if path.endswith("/api"):
        return urlunsplit(parts._replace(path=path[: -len("/api")] + "/private/api"))
    log.warning("key-store authentication: url %s does not end in /api, so it is used as is "
                "(Sectigo serves certificate logins under /private/api)", url)
    return urlunsplit(parts._replace(path=path))


class PasswordAuthenticator:
    """Headers ``login``, ``password``, ``customerUri``."""

    mode = "password"

    def __init__(self, *, login: str, password: Secret, customer_uri: str) -> None:
        self._login = login
        self._password = password
        self._customer_uri = customer_uri

    def api_base(self, url: str) -> str:
        return url.rstrip("/")

    async def headers(self) -> dict[str, str]:
        return {"login": self._login, "password": self._password.reveal(), "customerUri": self._customer_uri}

    def unauthorized(self, used: Mapping[str, str]) -> bool:
        return False  # the same password will be refused again

    def secrets(self) -> Iterable[str]:
        return (self._password.reveal(),)

    def __repr__(self) -> str:
        return f"PasswordAuthenticator(login={self._login!r}, customer_uri={self._customer_uri!r})"


class KeyStoreAuthenticator:
    """Headers ``login`` and ``customerUri``; the client certificate travels in the TLS handshake."""

    mode = "key-store"

    def __init__(self, *, login: str, customer_uri: str, key_store_password: Secret) -> None:
        self._login = login
        self._customer_uri = customer_uri
        self._key_store_password = key_store_password

    def api_base(self, url: str) -> str:
        return private_api_base(url)

    async def headers(self) -> dict[str, str]:
        return {"login": self._login, "customerUri": self._customer_uri}

    def unauthorized(self, used: Mapping[str, str]) -> bool:
        return False

    def secrets(self) -> Iterable[str]:
        return (self._key_store_password.reveal(),)

    def __repr__(self) -> str:
        return f"KeyStoreAuthenticator(login={self._login!r}, customer_uri={self._customer_uri!r})"


@dataclass(frozen=True)
class BearerToken:
    """A cached access token and the monotonic time after which it is not used any more."""

    value: str
    refresh_at: float

    def __repr__(self) -> str:
        return f"BearerToken(value='***', refresh_at={self.refresh_at:.1f})"


class ApiKeyAuthenticator:
    """OAuth2 client credentials with a cached bearer token.

    The token is refreshed ``min(refresh_margin, expires_in / 10)`` seconds before it
    expires, so a request never leaves with a token about to lapse. Concurrent callers
    that find no valid token wait on one lock; the first fetches, the rest reuse its token.
    """

    mode = "api-key"

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: Secret,
        fetch_token: TokenFetcher,
        clock: Callable[[], float] = time.monotonic,
        refresh_margin: float = 30.0,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._fetch_token = fetch_token
        self._clock = clock
        self._refresh_margin = refresh_margin
        self._token: BearerToken | None = None
        self._lock = asyncio.Lock()
        self._issued: list[str] = []  # every token seen, so the redactor scrubs old ones too
        self.token_requests = 0

    def api_base(self, url: str) -> str:
        return url.rstrip("/")

    async def headers(self) -> dict[str, str]:
        token = await self.token()
        return {"Authorization": f"Bearer {token}"}

    async def token(self) -> str:
        """A valid access token, fetched when none is cached or the cached one is about to expire."""
        current = self._token
        if current is not None and self._clock() < current.refresh_at:
            return current.value
        async with self._lock:
            current = self._token  # another task may have refreshed while this one waited
            if current is not None and self._clock() < current.refresh_at:
                return current.value
            self._token = await self._fetch()
            return self._token.value

    def unauthorized(self, used: Mapping[str, str]) -> bool:
        """Drop the token that was refused (unless a newer one replaced it already); retry once."""
        refused = used.get("Authorization", "").removeprefix("Bearer ")
        if self._token is not None and self._token.value == refused:
            self._token = None
        return True

    def secrets(self) -> Iterable[str]:
        return (self._client_secret.reveal(), *self._issued)

    async def _fetch(self) -> BearerToken:
        self.token_requests += 1
        started = self._clock()
        document = await self._fetch_token(
            {
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._client_secret.reveal(),
            }
        )
        if not isinstance(document, Mapping):
            raise SectigoBadResponse("the token endpoint's answer is not a JSON object")
        value = document.get("access_token")
        if not isinstance(value, str) or not value:
            raise SectigoBadResponse("the token endpoint's answer has no access_token")
        self._issued.append(value)
        del self._issued[:-4]  # the current token and a few recent ones are enough to scrub
        lifetime = _lifetime(document.get("expires_in"))
        margin = min(self._refresh_margin, lifetime / 10)
        log.debug("API client %s: new access token valid for %.0f s", self._client_id, lifetime)
        return BearerToken(value=value, refresh_at=started + lifetime - margin)

    def __repr__(self) -> str:
        return f"ApiKeyAuthenticator(client_id={self._client_id!r})"


def _lifetime(raw: object) -> float:
    if isinstance(raw, bool):
        return DEFAULT_TOKEN_LIFETIME
    if isinstance(raw, (int, float)) and raw > 0:
        return float(raw)
    if isinstance(raw, str):
        try:
            value = float(raw)
        except ValueError:
            return DEFAULT_TOKEN_LIFETIME
        return value if value > 0 else DEFAULT_TOKEN_LIFETIME
    return DEFAULT_TOKEN_LIFETIME


def make_authenticator(
    auth: PasswordAuth | KeyStoreAuth | ApiKeyAuth,
    *,
    customer_uri: str,
    fetch_token: TokenFetcher,
    clock: Callable[[], float] = time.monotonic,
) -> PasswordAuthenticator | KeyStoreAuthenticator | ApiKeyAuthenticator:
    """The authenticator for a CA's configured mode."""
    if isinstance(auth, PasswordAuth):
        return PasswordAuthenticator(login=auth.login, password=auth.password, customer_uri=customer_uri)
    if isinstance(auth, KeyStoreAuth):
        return KeyStoreAuthenticator(login=auth.login, customer_uri=customer_uri,
                                     key_store_password=auth.key_store_password)
    return ApiKeyAuthenticator(client_id=auth.client_id, client_secret=auth.client_secret,
                               fetch_token=fetch_token, clock=clock)
