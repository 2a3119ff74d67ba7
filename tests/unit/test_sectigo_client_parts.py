"""The client's small parts without sockets: retry policy, aiohttp error mapping, auth modes."""

from __future__ import annotations

import asyncio
import inspect
import random
import ssl
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import aiohttp
import aiohttp.client_exceptions as client_exceptions
import pytest

from service.connectors.sectigo.connector import subj_alt_names_item
from service.x509 import SubjectAltNameValue
from service.config import Secret
from service.connectors.sectigo.auth import ApiKeyAuthenticator, private_api_base
from service.connectors.sectigo.client import RetryPolicy
from service.connectors.sectigo.errors import (
    SectigoBadResponse,
    SectigoConnectionError,
    SectigoError,
    SectigoProxyError,
    SectigoTimeout,
    SectigoTLSError,
    map_aiohttp_errors,
)

# ---------------------------------------------------------------- retry policy


def test_backoff_is_capped_and_jittered() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=0.5, max_delay=4.0)
    rng = random.Random(1)
    for attempt in range(1, 10):
        cap = min(4.0, 0.5 * 2 ** (attempt - 1))
        waits = {policy.delay(attempt, rng) for _ in range(20)}
        assert all(w is not None and cap / 2 <= w <= cap for w in waits)
        assert len(waits) > 1  # jittered


def test_retry_after_lengthens_the_wait_or_is_left_to_the_caller() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0, max_retry_after=10.0)
    assert policy.delay(1, random.Random(0), retry_after=5.0) == 5.0
    assert policy.delay(1, random.Random(0), retry_after=11.0) is None


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)


# ---------------------------------------------------------------- aiohttp → Sectigo family

_KEY = SimpleNamespace(host="scm.example", port=443, ssl=True)


def _instance(cls: type[BaseException]) -> BaseException:
    """One instance of an aiohttp exception class, built through its real constructor."""
    params = inspect.signature(cls.__init__).parameters
    if "certificate_error" in params:
        return cls(_KEY, ssl.SSLCertVerificationError(1, "certificate verify failed"))
    if "os_error" in params:
        return cls(_KEY, ConnectionRefusedError(111, "Connection refused"))
    if "request_info" in params:
        return cls(None, (), status=407, message="Proxy Authentication Required")  # type: ignore[call-arg]
    if "expected" in params:
        return cls(b"a", b"b", "scm.example", 443)
    if "url" in params:
        return cls("http://[bad")
    return cls("boom")


_AIOHTTP_ERRORS = [
    getattr(client_exceptions, name)
    for name in client_exceptions.__all__
    if inspect.isclass(getattr(client_exceptions, name))
    and issubclass(getattr(client_exceptions, name), aiohttp.ClientError)
]


@pytest.mark.parametrize("cls", _AIOHTTP_ERRORS, ids=lambda c: c.__name__)
def test_every_aiohttp_error_is_mapped_and_chained(cls: type[BaseException]) -> None:
    original = _instance(cls)
    with pytest.raises(SectigoError) as caught:
        with map_aiohttp_errors(ca_id="ca1", operation="details 5", target="scm.example:443"):
            raise original
    assert caught.value.__cause__ is original
    assert str(caught.value).startswith("CA ca1: details 5 failed")


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        pytest.param(_instance(aiohttp.ClientConnectorCertificateError), SectigoTLSError, id="ok-untrusted"),
        pytest.param(_instance(aiohttp.ClientHttpProxyError), SectigoProxyError, id="ok-407"),
        pytest.param(_instance(aiohttp.ClientProxyConnectionError), SectigoProxyError, id="ok-proxy-down"),
        pytest.param(aiohttp.ServerDisconnectedError(), SectigoConnectionError, id="ok-dropped"),
        pytest.param(aiohttp.ConnectionTimeoutError("t"), SectigoTimeout, id="ok-connect-timeout"),
        pytest.param(asyncio.TimeoutError(), SectigoTimeout, id="ok-timeout"),
        pytest.param(aiohttp.ClientPayloadError("cut"), SectigoConnectionError, id="ok-cut-short"),
        pytest.param(ConnectionResetError(104, "reset"), SectigoConnectionError, id="ok-raw-reset"),
        pytest.param(_instance(aiohttp.ContentTypeError), SectigoBadResponse, id="ok-unreadable"),
    ],
)
def test_most_specific_class(raised: BaseException, expected: type[SectigoError]) -> None:
    with pytest.raises(expected):
        with map_aiohttp_errors(ca_id="ca1", operation="op", target="scm.example:443"):
            raise raised


def test_untrusted_certificate_and_407_are_not_retried() -> None:
    for raised in (_instance(aiohttp.ClientConnectorCertificateError), _instance(aiohttp.ClientHttpProxyError)):
        with pytest.raises(SectigoError) as caught:
            with map_aiohttp_errors(ca_id="ca1", operation="op", target="scm.example:443"):
                raise raised
        assert caught.value.retryable is False
        assert caught.value.maybe_processed is False  # type: ignore[attr-defined]


def test_cancellation_passes_through() -> None:
    with pytest.raises(asyncio.CancelledError):
        with map_aiohttp_errors(ca_id="ca1", operation="op", target="x:1"):
            raise asyncio.CancelledError()


# ---------------------------------------------------------------- auth modes


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://cert-manager.com/api", "https://cert-manager.com/private/api"),
        ("https://cert-manager.com/api/", "https://cert-manager.com/private/api"),
        ("https://h:8443/x/api", "https://h:8443/x/private/api"),
        ("https://cert-manager.com/private/api", "https://cert-manager.com/private/api"),
        ("https://h/custom", "https://h/custom"),
    ],
)
def test_private_api_base(url: str, base: str) -> None:
    assert private_api_base(url) == base


class _TokenServer:
    def __init__(self) -> None:
        self.forms: list[Mapping[str, str]] = []
        self.gate = asyncio.Event()

    async def fetch(self, form: Mapping[str, str]) -> Any:
        self.forms.append(dict(form))
        await self.gate.wait()
        return {"access_token": f"token-{len(self.forms)}", "expires_in": 100, "token_type": "Bearer"}


async def test_one_token_fetch_under_concurrency_then_refresh_before_expiry() -> None:
    server = _TokenServer()
    now = [0.0]
    auth = ApiKeyAuthenticator(client_id="cid", client_secret=Secret("s3cret-value"), fetch_token=server.fetch,
                               clock=lambda: now[0])
    waiting = [asyncio.ensure_future(auth.headers()) for _ in range(10)]
    await asyncio.sleep(0)
    server.gate.set()
    headers = await asyncio.gather(*waiting)
    assert len(server.forms) == 1
    assert server.forms[0] == {"grant_type": "client_credentials", "client_id": "cid", "client_secret": "s3cret-value"}
    assert {h["Authorization"] for h in headers} == {"Bearer token-1"}

    now[0] = 89.0  # refresh margin is min(30, 100 / 10) = 10 s
    assert await auth.token() == "token-1"
    now[0] = 90.5
    assert await auth.token() == "token-2"


async def test_a_refused_token_is_dropped_once() -> None:
    server = _TokenServer()
    server.gate.set()
    auth = ApiKeyAuthenticator(client_id="cid", client_secret=Secret("s3cret-value"), fetch_token=server.fetch)
    first = await auth.headers()
    assert auth.unauthorized(first) is True
    second = await auth.headers()
    assert second != first
    # A late 401 for the old token must not throw the new one away.
    auth.unauthorized(first)
    assert await auth.headers() == second
    assert "s3cret-value" not in repr(auth) and "token-" not in repr(auth)


async def test_token_answer_without_access_token_is_a_bad_response() -> None:
    async def fetch(form: Mapping[str, str]) -> Any:
        return {"token_type": "Bearer"}

    auth = ApiKeyAuthenticator(client_id="cid", client_secret=Secret("s3cret-value"), fetch_token=fetch)
    with pytest.raises(SectigoBadResponse):
        await auth.token()


@pytest.mark.parametrize(
    ("san", "expected"),
    [
        pytest.param(SubjectAltNameValue("dNSName", "a.example.com"), "a.example.com", id="ok-dns"),
        pytest.param(SubjectAltNameValue("iPAddress", "192.0.2.1"), "192.0.2.1", id="ok-ip"),
        pytest.param(SubjectAltNameValue("rfc822Name", "a@example.com"), "a@example.com", id="ok-email"),
        pytest.param(SubjectAltNameValue("uniformResourceIdentifier", "https://a"), None, id="fail-uri"),
        pytest.param(SubjectAltNameValue("directoryName", "CN=a"), None, id="fail-directory-name"),
        pytest.param(SubjectAltNameValue("registeredID", "1.2.3"), None, id="fail-registered-id"),
    ],
)
def test_subj_alt_names_item(san: SubjectAltNameValue, expected: str | None) -> None:
    assert subj_alt_names_item(san) == expected
