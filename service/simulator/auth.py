"""Who may call the simulated SCM: header login, client certificates and OAuth2 tokens.

* ``/api``: headers ``login``, ``password``, ``customerUri``, or
  ``Authorization: Bearer <token>`` from the client-credentials grant.
* ``/private/api``: headers ``login`` and ``customerUri`` plus a TLS client
  certificate verified against the client CA (when one is configured). A
  password never replaces the certificate there.

Failures are SCM's 401 ``{"code":-16,"description":"Unknown user"}``.
Secrets are compared in constant time and never logged.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from . import scm_errors
from .settings import SimulatorSettings

__all__ = ["Authenticator", "OAuthError", "TokenGrant"]


class OAuthError(Exception):
    """A token-endpoint refusal, rendered as OAuth2's ``{"error", "error_description"}``."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, object]:
        return {"error": self.error, "error_description": self.description}


@dataclass(frozen=True)
class TokenGrant:
    """An issued access token (the token itself is kept out of ``repr``)."""

    access_token: str
    expires_at: float
    expires_in: int

    def __repr__(self) -> str:
        return f"TokenGrant(expires_at={self.expires_at})"

    def to_json(self) -> dict[str, object]:
        return {"access_token": self.access_token, "token_type": "Bearer", "expires_in": self.expires_in}


def _same(given: str | None, expected: str | None) -> bool:
    if given is None or expected is None:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


class Authenticator:
    """Checks SCM credentials and runs the OAuth2 client-credentials token endpoint."""

    def __init__(self, settings: SimulatorSettings, *, clock: Callable[[], float]) -> None:
        self._settings = settings
        self._clock = clock
        self._tokens: dict[str, float] = {}
        self.tokens_issued = 0

    def __repr__(self) -> str:
        return f"Authenticator(login={self._settings.login!r}, tokens_issued={self.tokens_issued})"

    def check_api(self, headers: Mapping[str, str]) -> None:
        """``/api``: bearer token, or login + password + customerUri."""
        authorization = headers.get("Authorization")
        if authorization is not None and authorization.lower().startswith("bearer "):
            self._check_token(authorization[7:].strip())
            return
        s = self._settings
        if not (
            _same(headers.get("login"), s.login)
            and _same(headers.get("password"), s.password)
            and _same(headers.get("customerUri"), s.customer_uri)
        ):
            raise scm_errors.unknown_user()

    def check_private(self, headers: Mapping[str, str], *, has_client_certificate: bool) -> None:
        """``/private/api``: login + customerUri, plus a verified client certificate if required."""
        s = self._settings
        if s.client_ca is not None and not has_client_certificate:
            raise scm_errors.unknown_user()
        if not (_same(headers.get("login"), s.login) and _same(headers.get("customerUri"), s.customer_uri)):
            raise scm_errors.unknown_user()

    def _check_token(self, token: str) -> None:
        expires_at = self._tokens.get(token)
        if expires_at is None:
            raise scm_errors.unknown_user()
        if self._clock() >= expires_at:
            del self._tokens[token]
            raise scm_errors.unknown_user()

    def issue_token(self, form: Mapping[str, str], *, basic_auth: str | None = None) -> TokenGrant:
        """The client-credentials grant; credentials from the form or HTTP Basic."""
        s = self._settings
        if form.get("grant_type") != "client_credentials":
            raise OAuthError(400, "unsupported_grant_type", "Only client_credentials is supported")
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if basic_auth is not None and basic_auth.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(basic_auth[6:].strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise OAuthError(401, "invalid_client", "Invalid client credentials") from exc
            client_id, _, client_secret = decoded.partition(":")
        if not (_same(client_id, s.oauth_client_id) and _same(client_secret, s.oauth_client_secret)):
            raise OAuthError(401, "invalid_client", "Invalid client credentials")
        now = self._clock()
        self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
        token = secrets.token_urlsafe(32)
        ttl = max(1, int(s.token_ttl))
        self._tokens[token] = now + s.token_ttl
        self.tokens_issued += 1
        return TokenGrant(access_token=token, expires_at=now + s.token_ttl, expires_in=ttl)
