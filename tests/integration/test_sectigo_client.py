"""The Sectigo connector against the embedded SCM simulator over real loopback sockets.

Every operation and every authentication mode (password over HTTP and HTTPS, key store on
``/private/api`` with mutual TLS, API key with a cached OAuth token), TLS trust failures, a real
CONNECT proxy with credentials, and every error class produced by the simulator's real behaviour
or its fault injection. Back-off waits are recorded by a fake sleep, never slept.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from pathlib import Path

import aiohttp
import pytest
import trustme
from cryptography import x509

from service.config import Secret
from service.connectors import base
from service.connectors.base import (
    CollectRequest,
    Connector,
    DetailsRequest,
    EnrollRequest,
    ListRequest,
    OrderStatus,
    RenewRequest,
    RevokeReason,
    RevokeRequest,
    SubjectAltName,
)
from service.connectors.registry import create_connector
from service.connectors.sectigo import (
    ClientState,
    ReplaceRequest,
    RetryPolicy,
    SectigoAuthError,
    SectigoBadResponse,
    SectigoConnectionError,
    SectigoConnector,
    SectigoError,
    SectigoNotFound,
    SectigoOrderFailed,
    SectigoProxyError,
    SectigoRevoked,
    SectigoServerError,
    SectigoThrottled,
    SectigoTimeout,
    SectigoTLSError,
    SectigoValidationError,
)
from service.connectors.sectigo.settings import ApiKeyAuth, KeyStoreAuth, PasswordAuth, ProxySettings
from service.errors import CARejected, CAUnavailable
from service.simulator import FaultRule, SimulatorSettings, start_simulator

from tests.integration.proxy import ConnectProxy
from tests.integration.sectigo_support import (
    CERT_TYPE,
    CLIENT_ID,
    CLIENT_SECRET,
    KEYSTORES,
    LOGIN,
    PASSWORD,
    PROXY_PASSWORD,
    PROXY_USER,
    STORE_PASSWORD,
    FakeSleep,
    SimHandle,
    iter_exception_texts,
    sectigo_settings,
)
from tests.support.clocks import SecondsClock
from tests.support.csr import make_csr

FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, max_retry_after=10.0)


@pytest.fixture(autouse=True)
def _no_faults_left(plain_sim: SimHandle) -> None:
    plain_sim.sim.faults.clear()


def _connector(url: str, sleep: FakeSleep | None = None, *, retry: RetryPolicy = FAST, **settings: object
               ) -> SectigoConnector:
    return SectigoConnector(ca=sectigo_settings(url=url, **settings), retry=retry,  # type: ignore[arg-type]
                            sleep=sleep or FakeSleep())


def _enroll_request(common_name: str = "www.example.com", *, marker: str = "cagw-order-1", term: int = 365,
                    profile: str = CERT_TYPE, csr: str | None = None) -> EnrollRequest:
    return EnrollRequest(csr_pem=csr or make_csr(common_name, sans=(common_name, f"alt.{common_name}")), profile_id=profile,
                         term_days=term, common_name=common_name, subject_alt_names=(SubjectAltName("dNSName", f"alt.{common_name}"),),
                         comments=f"requested by cagw; {marker}", external_requester="ops@example.com",
                         custom_fields={"Cost Center": "42"})


async def _issue(connector: SectigoConnector, handle: SimHandle, common_name: str, marker: str) -> str:
    order = await connector.enroll(_enroll_request(common_name, marker=marker))
    handle.clock.advance(5)
    result = await connector.collect(CollectRequest(order_id=order.order_id))
    assert result.issued is not None
    return order.order_id


# ---------------------------------------------------------------- every operation (password, plain HTTP)


async def test_ok_every_operation_with_password(plain_sim: SimHandle) -> None:
    sim = plain_sim.sim
    async with _connector(sim.api_url) as sectigo:
        assert isinstance(sectigo, Connector)
        await sectigo.check()
        profiles = await sectigo.profiles()
        assert profiles[0].id == CERT_TYPE and profiles[0].terms == (365, 730)
        assert profiles[0].key_types["EC"] == ("P-256", "P-384")
        fields = await sectigo.custom_fields()
        assert [(f.name, f.mandatory) for f in fields] == [("Cost Center", False)]

        order = await sectigo.enroll(_enroll_request("every.example.com", marker="m-every"))
        assert order.order_id.isdigit() and len(order.renew_id) == 20

        pending = await sectigo.collect(CollectRequest(order_id=order.order_id))
        assert pending.is_pending and pending.pending_code == 0
        assert pending.pending_detail == "Being processed by Sectigo"

        plain_sim.clock.advance(5)
        issued = await sectigo.collect(CollectRequest(order_id=order.order_id))
        assert issued.issued is not None
        leaf = x509.load_der_x509_certificate(issued.issued.certificate_der)
        ca = x509.load_pem_x509_certificate(sim.ca_certificate_path.read_bytes())
        assert [x509.load_der_x509_certificate(d) for d in issued.issued.chain_der] == [ca]
        leaf.verify_directly_issued_by(ca)

        details = await sectigo.details(DetailsRequest(order_id=order.order_id))
        assert details.status is OrderStatus.ISSUED and details.ca_status == "Issued"
        assert details.serial_number == leaf.serial_number
        assert details.common_name == "every.example.com" and "m-every" in details.comments
        assert details.profile_id == CERT_TYPE and details.term_days == 365
        assert "alt.every.example.com" in details.subject_alt_names
        assert details.requested is not None and details.expires is not None

        by_name = await sectigo.list(ListRequest(common_name="every.example.com"))
        assert by_name.total == 1 and by_name.items[0].order_id == order.order_id
        by_serial = await sectigo.list(ListRequest(serial_number=leaf.serial_number))
        assert [i.order_id for i in by_serial.items] == [order.order_id]
        assert by_serial.items[0].serial_number == leaf.serial_number
        issued_page = await sectigo.list(ListRequest(status=OrderStatus.ISSUED, size=1))
        assert len(issued_page.items) == 1 and issued_page.total >= 1

        renewed = await sectigo.renew(RenewRequest(order_id=order.order_id))
        assert renewed.order_id != order.order_id
        renewed_with_csr = await sectigo.renew(RenewRequest(order_id=order.order_id,
                                                            csr_pem=make_csr("every.example.com", sans=("every.example.com",))))
        assert renewed_with_csr.order_id not in (order.order_id, renewed.order_id)

        await sectigo.replace(ReplaceRequest(order_id=order.order_id, csr_pem=make_csr("every.example.com", sans=("every.example.com",)),
                                             reason="key rotated", subject_alt_names=("every.example.com",)))
        assert (await sectigo.collect(CollectRequest(order_id=order.order_id))).is_pending
        plain_sim.clock.advance(5)
        replaced = await sectigo.collect(CollectRequest(order_id=order.order_id))
        assert replaced.issued is not None and replaced.issued.certificate_der != issued.issued.certificate_der

        await sectigo.revoke(RevokeRequest(reason=RevokeReason.KEY_COMPROMISE, comment="key leaked",
                                           order_id=order.order_id))
        revoked = await sectigo.details(DetailsRequest(order_id=order.order_id))
        assert revoked.status is OrderStatus.REVOKED and revoked.revoked is not None
        with pytest.raises(SectigoRevoked) as caught:
            await sectigo.collect(CollectRequest(order_id=order.order_id))
        assert caught.value.reason == base.REASON_CERTIFICATE_REVOKED and caught.value.code == -110

        other = await _issue(sectigo, plain_sim, "serial.example.com", "m-serial")
        serial = (await sectigo.details(DetailsRequest(order_id=other))).serial_number
        assert serial is not None
        await sectigo.revoke(RevokeRequest(reason=RevokeReason.SUPERSEDED, comment="", serial_number=serial))
        assert (await sectigo.details(DetailsRequest(order_id=other))).status is OrderStatus.REVOKED


@pytest.mark.parametrize(("code", "description"), [(-1400, "The request is being processed by Sectigo."),
                                                   (-183, "Certificate is not collectable.")],
                         ids=["ok-pending-1400", "ok-pending-183"])
async def test_ok_other_pending_codes(plain_sim: SimHandle, code: int, description: str) -> None:
    async with _connector(plain_sim.sim.api_url) as sectigo:
        order = await sectigo.enroll(_enroll_request("pending.example.com"))
        plain_sim.sim.faults.add(FaultRule(route="collect", status=400, body={"code": code,
                                                                              "description": description}))
        result = await sectigo.collect(CollectRequest(order_id=order.order_id))
        assert result.is_pending and (result.pending_code, result.pending_detail) == (code, description)


async def test_fail_declined_order_is_order_failed_not_pending(approval_sim: SimHandle) -> None:
    sim = approval_sim.sim
    async with _connector(sim.api_url) as sectigo:
        order = await sectigo.enroll(_enroll_request("declined.example.com"))
        waiting = await sectigo.collect(CollectRequest(order_id=order.order_id))
        assert waiting.is_pending
        assert (await sectigo.details(DetailsRequest(order_id=order.order_id))).status is OrderStatus.REQUESTED
        async with aiohttp.ClientSession() as http:
            answer = await http.post(f"{sim.api_url}/ssl/v1/decline/{order.order_id}", json={"message": "no"},
                                     headers=sim.credentials_headers())
            assert answer.status == 204
        with pytest.raises(SectigoOrderFailed) as caught:
            await sectigo.collect(CollectRequest(order_id=order.order_id))
        assert caught.value.reason == base.REASON_ORDER_FAILED and caught.value.code == -130


async def test_ok_find_order_whose_enroll_reply_was_lost(plain_sim: SimHandle) -> None:
    sim = plain_sim.sim
    async with _connector(sim.api_url) as sectigo:
        await sectigo.enroll(_enroll_request("lost.example.com", marker="cagw-other"))
        sim.faults.add(FaultRule(route="enroll", kind="drop_reply"))
        before = sim.stats.requests["enroll"]
        with pytest.raises(SectigoConnectionError) as caught:
            await sectigo.enroll(_enroll_request("lost.example.com", marker="cagw-lost-42"))
        assert caught.value.maybe_processed and isinstance(caught.value, CAUnavailable)
        assert sim.stats.requests["enroll"] == before + 1  # never sent twice
        found = await sectigo.find_order_by_marker("lost.example.com", "cagw-lost-42")
        assert found is not None and "cagw-lost-42" in found.comments
        assert await sectigo.find_order_by_marker("lost.example.com", "cagw-never-sent") is None


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        pytest.param(_enroll_request(csr="-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----"),
                     None, id="fail-bad-csr"),
        pytest.param(_enroll_request(term=123), -36, id="fail-bad-term"),
        pytest.param(_enroll_request(profile="9999"), -39, id="fail-unknown-profile"),
    ],
)
async def test_fail_validation(plain_sim: SimHandle, request_: EnrollRequest, code: int | None) -> None:
    async with _connector(plain_sim.sim.api_url) as sectigo:
        with pytest.raises(SectigoValidationError) as caught:
            await sectigo.enroll(request_)
    error = caught.value
    assert isinstance(error, CARejected) and error.reason == base.REASON_VALIDATION_FAILED
    assert error.http_status == 400 and error.code is not None and error.description
    if code is not None:
        assert error.code == code


async def test_fail_validation_before_sending(plain_sim: SimHandle) -> None:
    sim = plain_sim.sim
    async with _connector(sim.api_url) as sectigo:
        before = dict(sim.stats.requests)
        with pytest.raises(SectigoValidationError, match="not a Sectigo cert type"):
            await sectigo.enroll(_enroll_request(profile="ov-server"))
        for reason in (RevokeReason.CA_COMPROMISE, RevokeReason.CERTIFICATE_HOLD, RevokeReason.AA_COMPROMISE):
            with pytest.raises(SectigoValidationError, match="does not accept the revocation reason") as caught:
                await sectigo.revoke(RevokeRequest(reason=reason, comment="x", order_id="1"))
            assert caught.value.reason == base.REASON_VALIDATION_FAILED
        assert dict(sim.stats.requests) == before


async def test_fail_not_found(plain_sim: SimHandle) -> None:
    async with _connector(plain_sim.sim.api_url) as sectigo:
        with pytest.raises(SectigoNotFound) as caught:
            await sectigo.details(DetailsRequest(order_id="999999999"))
        assert (caught.value.http_status, caught.value.code) == (404, -124)
        assert caught.value.reason == base.REASON_NOT_FOUND
        with pytest.raises(SectigoNotFound):
            await sectigo.collect(CollectRequest(order_id="999999999"))
        with pytest.raises(SectigoNotFound) as by_serial:
            await sectigo.revoke(RevokeRequest(reason=RevokeReason.UNSPECIFIED, comment="x", serial_number=0xABCDEF))
        assert by_serial.value.code == -5101
        with pytest.raises(SectigoNotFound):
            await sectigo.details(DetailsRequest(order_id="../types"))


async def test_fail_wrong_password_is_auth_failed_and_not_retried(plain_sim: SimHandle) -> None:
    sim = plain_sim.sim
    sleep = FakeSleep()
    wrong = PasswordAuth(login=LOGIN, password=Secret("not-the-password"))
    async with _connector(sim.api_url, sleep, auth=wrong) as sectigo:
        before = sim.stats.requests["types"]
        with pytest.raises(SectigoAuthError) as caught:
            await sectigo.profiles()
    error = caught.value
    assert (error.http_status, error.code, error.description) == (401, -16, "Unknown user")
    assert error.reason == base.REASON_AUTH_FAILED and isinstance(error, CARejected)
    assert sim.stats.requests["types"] == before + 1 and sleep.waits == []


async def test_fail_empty_401_body(plain_sim: SimHandle) -> None:
    plain_sim.sim.faults.add(FaultRule(route="details", status=401, body=""))
    async with _connector(plain_sim.sim.api_url) as sectigo:
        with pytest.raises(SectigoAuthError, match="without a Sectigo error body") as caught:
            await sectigo.details(DetailsRequest(order_id="1"))
    assert caught.value.code is None


# ---------------------------------------------------------------- transient failures and retries


async def test_ok_5xx_retried_then_ok(plain_sim: SimHandle) -> None:
    sim = plain_sim.sim
    sim.faults.add(FaultRule(route="types", status=503, count=2))
    sleep = FakeSleep()
    async with _connector(sim.api_url, sleep) as sectigo:
        assert await sectigo.profiles()
    assert len(sleep.waits) == 2 and all(0 < w <= FAST.max_delay for w in sleep.waits)


async def test_fail_5xx_exhausts_attempts(plain_sim: SimHandle) -> None:
    plain_sim.sim.faults.add(FaultRule(route="customFields", status=502, body="<html><h1>502 Bad Gateway</h1></html>",
                                       count=None))
    sleep = FakeSleep()
    async with _connector(plain_sim.sim.api_url, sleep) as sectigo:
        with pytest.raises(SectigoServerError, match="without a Sectigo error body") as caught:
            await sectigo.custom_fields()
    assert caught.value.http_status == 502 and isinstance(caught.value, CAUnavailable)
    assert len(sleep.waits) == FAST.max_attempts - 1


async def test_fail_writes_are_never_resent(plain_sim: SimHandle) -> None:
    sim = plain_sim.sim
    sim.faults.add(FaultRule(route="enroll", status=503, count=None))
    sim.faults.add(FaultRule(route="revoke", status=500, count=None))
    sim.faults.add(FaultRule(route="renew", kind="drop", count=None))
    sim.faults.add(FaultRule(route="replace", status=503, count=None))
    sleep = FakeSleep()
    before = dict(sim.stats.requests)
    async with _connector(sim.api_url, sleep) as sectigo:
        with pytest.raises(SectigoServerError):
            await sectigo.enroll(_enroll_request())
        with pytest.raises(SectigoServerError):
            await sectigo.revoke(RevokeRequest(reason=RevokeReason.UNSPECIFIED, comment="x", order_id="1"))
        with pytest.raises(SectigoConnectionError):
            await sectigo.renew(RenewRequest(order_id="1"))
        with pytest.raises(SectigoServerError):
            await sectigo.replace(ReplaceRequest(order_id="1", csr_pem=make_csr(sans=("www.example.com",)), reason="r"))
    after = sim.stats.requests
    assert [after[r] - before.get(r, 0) for r in ("enroll", "revoke", "renew", "replace")] == [1, 1, 1, 1]
    assert sleep.waits == []


async def test_ok_429_retry_after_is_honoured(plain_sim: SimHandle) -> None:
    plain_sim.sim.faults.add(FaultRule(route="details", kind="throttle", retry_after=3))
    sleep = FakeSleep()
    async with _connector(plain_sim.sim.api_url, sleep) as sectigo:
        order = await sectigo.enroll(_enroll_request("throttled.example.com"))
        details = await sectigo.details(DetailsRequest(order_id=order.order_id))
    assert details.order_id == order.order_id
    assert sleep.waits == [3.0]


async def test_fail_429_longer_than_we_wait_goes_to_the_caller(plain_sim: SimHandle) -> None:
    plain_sim.sim.faults.add(FaultRule(route="collect", kind="throttle", retry_after=120))
    sleep = FakeSleep()
    async with _connector(plain_sim.sim.api_url, sleep) as sectigo:
        with pytest.raises(SectigoThrottled) as caught:
            await sectigo.collect(CollectRequest(order_id="1"))
    assert caught.value.retry_after == 120.0 and caught.value.http_status == 429
    assert isinstance(caught.value, CAUnavailable) and sleep.waits == []


async def test_ok_dropped_connections_are_retried_for_reads(plain_sim: SimHandle) -> None:
    sim = plain_sim.sim
    sleep = FakeSleep()
    async with _connector(sim.api_url, sleep) as sectigo:
        order = await sectigo.enroll(_enroll_request("dropped.example.com"))
        # aiohttp itself resends a GET once on a dropped connection; two drops reach our retry.
        sim.faults.add(FaultRule(route="details", kind="drop", count=2))
        details = await sectigo.details(DetailsRequest(order_id=order.order_id))
    assert details.order_id == order.order_id and len(sleep.waits) >= 1


async def test_fail_dropped_connections_exhaust_attempts(plain_sim: SimHandle) -> None:
    plain_sim.sim.faults.add(FaultRule(route="details", kind="drop", count=None))
    async with _connector(plain_sim.sim.api_url) as sectigo:
        with pytest.raises(SectigoConnectionError, match="closed the connection") as caught:
            await sectigo.details(DetailsRequest(order_id="1"))
    assert isinstance(caught.value.__cause__, aiohttp.ServerDisconnectedError)


async def test_fail_non_json_success_body(plain_sim: SimHandle) -> None:
    plain_sim.sim.faults.add(FaultRule(route="types", status=200, body="<html>maintenance</html>", count=None))
    sleep = FakeSleep()
    async with _connector(plain_sim.sim.api_url, sleep) as sectigo:
        with pytest.raises(SectigoBadResponse, match="not JSON"):
            await sectigo.profiles()


async def test_fail_timeout(plain_sim: SimHandle) -> None:
    plain_sim.sim.faults.add(FaultRule(route="details", kind="latency", latency=0.6))
    async with _connector(plain_sim.sim.api_url, retry=RetryPolicy(max_attempts=1), request_timeout=0.2) as sectigo:
        with pytest.raises(SectigoTimeout, match="did not answer in time") as caught:
            await sectigo.details(DetailsRequest(order_id="1"))
    assert isinstance(caught.value, CAUnavailable) and caught.value.retryable


async def test_ok_concurrency_slot_is_not_held_across_back_off(plain_sim: SimHandle) -> None:
    sim = plain_sim.sim
    sleep = FakeSleep(gate=asyncio.Event())
    async with _connector(sim.api_url, sleep, max_concurrent=1) as sectigo:
        sim.faults.add(FaultRule(route="types", status=503))
        failing_first = asyncio.ensure_future(sectigo.profiles())
        while not sleep.waits:  # the first call is now waiting in its back-off
            await asyncio.sleep(0.01)
        # With the only slot held across the wait, this would hang.
        fields = await asyncio.wait_for(sectigo.custom_fields(), timeout=5)
        assert fields
        assert sleep.gate is not None
        sleep.gate.set()
        assert await failing_first


async def test_ok_concurrency_is_bounded(plain_sim: SimHandle) -> None:
    sim = plain_sim.sim
    while plain_sim.latency.current:  # an earlier test's slow answer may still be sleeping
        await asyncio.sleep(0.02)
    sim.faults.add(FaultRule(route="customFields", kind="latency", latency=0.05, count=None))
    plain_sim.latency.peak = 0
    async with _connector(sim.api_url, max_concurrent=2) as sectigo:
        await asyncio.gather(*(sectigo.custom_fields() for _ in range(8)))
    assert plain_sim.latency.peak == 2


# ---------------------------------------------------------------- API key (OAuth2 client credentials)


def _api_key(sim_url: str, secret: str = CLIENT_SECRET) -> ApiKeyAuth:
    return ApiKeyAuth(client_id=CLIENT_ID, client_secret=Secret(secret), token_url=f"{sim_url}/oauth/token")


async def test_ok_api_key_token_is_cached_and_refreshed(plain_sim: SimHandle) -> None:
    sim = plain_sim.sim
    client_clock = SecondsClock(1000.0)
    connector = SectigoConnector(ca=sectigo_settings(url=sim.api_url, auth=_api_key(sim.url)), retry=FAST,
                                 sleep=FakeSleep(), clock=client_clock)
    before = sim.tokens_issued
    async with connector as sectigo:
        await asyncio.gather(*(sectigo.profiles() for _ in range(5)))
        order = await sectigo.enroll(_enroll_request("oauth.example.com"))
        await sectigo.details(DetailsRequest(order_id=order.order_id))
        assert sim.tokens_issued == before + 1  # one token for seven calls, fetched once under concurrency

        client_clock.advance(sim.settings.token_ttl - 5)  # inside the refresh margin
        await sectigo.profiles()
        assert sim.tokens_issued == before + 2

        plain_sim.clock.advance(sim.settings.token_ttl + 1)  # the simulator expires it early: 401, one fresh retry
        await sectigo.enroll(_enroll_request("oauth.example.com"))
        assert sim.tokens_issued == before + 3


async def test_fail_api_key_with_wrong_secret(plain_sim: SimHandle) -> None:
    sim = plain_sim.sim
    connector = SectigoConnector(ca=sectigo_settings(url=sim.api_url, auth=_api_key(sim.url, "wrong-secret-value")),
                                 retry=FAST, sleep=FakeSleep())
    async with connector as sectigo:
        with pytest.raises(SectigoAuthError, match="token request failed: HTTP 401") as caught:
            await sectigo.check()
    assert caught.value.description == "Invalid client credentials"


# ---------------------------------------------------------------- HTTPS, trust stores, mutual TLS


@pytest.mark.parametrize(
    ("store", "store_type"),
    [
        pytest.param("truststore.pem", "PEM", id="ok-pem"),
        pytest.param("truststore.jks", "JKS", id="ok-jks"),
        pytest.param("truststore.p12", "PKCS12", id="ok-pkcs12"),
        pytest.param("truststore-pkcs12-content.jks", "JKS", id="ok-jdk17-pkcs12-named-jks"),
    ],
)
async def test_ok_password_over_https(tls_sim: SimHandle, store: str, store_type: str) -> None:
    async with _connector(tls_sim.sim.api_url, trust_store=KEYSTORES / store, trust_type=store_type) as sectigo:
        await sectigo.check()
        order = await sectigo.enroll(_enroll_request("https.example.com"))
        tls_sim.clock.advance(5)
        assert (await sectigo.collect(CollectRequest(order_id=order.order_id))).issued is not None


async def test_fail_untrusted_server_certificate(tls_sim: SimHandle) -> None:
    sleep = FakeSleep()
    async with _connector(tls_sim.sim.api_url, sleep, trust_store=KEYSTORES / "other-truststore.jks",
                          trust_type="JKS") as sectigo:
        with pytest.raises(SectigoTLSError, match="not trusted by the configured ssl-trust-store") as caught:
            await sectigo.profiles()
    assert isinstance(caught.value, CAUnavailable) and not caught.value.retryable
    cause = caught.value.__cause__
    assert isinstance(cause, aiohttp.ClientConnectorCertificateError)
    assert f"({cause.certificate_error.verify_message})" in str(caught.value)  # type: ignore[attr-defined]
    assert sleep.waits == []


async def test_fail_hostname_is_checked(tmp_path: Path) -> None:
    authority = trustme.CA()
    elsewhere = authority.issue_cert("scm.elsewhere.example")
    elsewhere.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    authority.cert_pem.write_to_path(str(tmp_path / "trust.pem"))
    sim = await start_simulator(SimulatorSettings(port=0, tls_cert=tmp_path / "server.pem", ca_dir=tmp_path / "ca"))
    try:
        async with _connector(sim.api_url, trust_store=tmp_path / "trust.pem", trust_type="PEM") as sectigo:
            with pytest.raises(SectigoTLSError, match="mismatch"):
                await sectigo.check()
    finally:
        await sim.stop()


def _key_store_auth(store: str = "client.jks", store_type: str = "JKS") -> KeyStoreAuth:
    return KeyStoreAuth(login=LOGIN, key_store=KEYSTORES / store, key_alias=store.split(".")[0].split("-")[0],
                        key_store_password=Secret(STORE_PASSWORD), key_store_type=store_type)  # type: ignore[arg-type]


@pytest.mark.parametrize(("store", "store_type"), [("client.jks", "JKS"), ("client.p12", "PKCS12")],
                         ids=["ok-jks", "ok-pkcs12"])
async def test_ok_key_store_mutual_tls_on_private_api(tls_sim: SimHandle, store: str, store_type: str) -> None:
    connector = _connector(tls_sim.sim.api_url, auth=_key_store_auth(store, store_type),
                           trust_store=KEYSTORES / "truststore.jks", trust_type="JKS")
    assert connector.client.api_base == tls_sim.sim.private_api_url
    async with connector as sectigo:
        await sectigo.check()
        order = await sectigo.enroll(_enroll_request("mtls.example.com"))
        tls_sim.clock.advance(5)
        assert (await sectigo.collect(CollectRequest(order_id=order.order_id))).issued is not None


async def test_fail_private_api_without_client_certificate(tls_sim: SimHandle) -> None:
    # Password mode pointed at /private/api: no client certificate, so the simulator refuses.
    async with _connector(tls_sim.sim.private_api_url, trust_store=KEYSTORES / "truststore.jks",
                          trust_type="JKS") as sectigo:
        with pytest.raises(SectigoAuthError):
            await sectigo.check()


# ---------------------------------------------------------------- CONNECT proxy with credentials


def _proxy(proxy: ConnectProxy, password: str = PROXY_PASSWORD) -> ProxySettings:
    return ProxySettings(host="127.0.0.1", port=proxy.port, username=PROXY_USER, password=Secret(password))


async def test_ok_https_and_mutual_tls_through_a_connect_proxy(tls_sim: SimHandle,
                                                              connect_proxy: ConnectProxy) -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        async with _connector(tls_sim.sim.api_url, proxy=_proxy(connect_proxy),
                              trust_store=KEYSTORES / "truststore.jks", trust_type="JKS") as sectigo:
            await sectigo.check()
            await sectigo.profiles()
            await sectigo.custom_fields()
        assert connect_proxy.tunnels == 1  # keep-alive: one tunnel for three calls
        async with _connector(tls_sim.sim.api_url, auth=_key_store_auth(), proxy=_proxy(connect_proxy),
                              trust_store=KEYSTORES / "truststore.jks", trust_type="JKS") as sectigo:
            await sectigo.check()  # the client certificate is presented to the simulator inside the tunnel
    assert connect_proxy.tunnels == 2
    assert not [w for w in seen if issubclass(w.category, DeprecationWarning)]
    for head in connect_proxy.requests:
        assert head.method == "CONNECT"
        assert not {"login", "password", "customeruri", "authorization"} & set(head.headers)


async def test_fail_proxy_refuses_wrong_password(tls_sim: SimHandle, connect_proxy: ConnectProxy) -> None:
    sleep = FakeSleep()
    async with _connector(tls_sim.sim.api_url, sleep, proxy=_proxy(connect_proxy, "wrong-proxy-password"),
                          trust_store=KEYSTORES / "truststore.jks", trust_type="JKS") as sectigo:
        with pytest.raises(SectigoProxyError, match="407") as caught:
            await sectigo.profiles()
    assert isinstance(caught.value, CAUnavailable) and not caught.value.retryable
    assert (connect_proxy.refused, connect_proxy.tunnels, sleep.waits) == (1, 0, [])


# ---------------------------------------------------------------- hygiene and lifecycle


async def test_no_secret_in_logs_exceptions_or_reprs(plain_sim: SimHandle, tls_sim: SimHandle,
                                                     connect_proxy: ConnectProxy,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sim = plain_sim.sim
    texts: list[str] = []

    async def failing(call: object) -> None:
        try:
            await call  # type: ignore[misc]
        except SectigoError as exc:
            texts.extend(iter_exception_texts(exc))
        else:
            raise AssertionError("expected a failure")

    # Sectigo echoing a secret into an error description must not carry it further.
    sim.faults.add(FaultRule(route="details", status=400, body={"code": -1, "description": f"bad {PASSWORD}"}))
    api_key = SectigoConnector(ca=sectigo_settings(url=sim.api_url, auth=_api_key(sim.url)), retry=FAST, sleep=FakeSleep())
    async with _connector(sim.api_url) as password_mode, api_key:
        texts.append(repr(password_mode))
        await failing(password_mode.details(DetailsRequest(order_id="1")))
        await failing(password_mode.details(DetailsRequest(order_id="999999999")))
        await api_key.check()
        tokens = list(api_key.client._auth.secrets())  # noqa: SLF001 - the issued tokens, to look for them
        texts.append(repr(api_key))
        sim.faults.add(FaultRule(route="collect", status=503, count=None))
        await failing(api_key.collect(CollectRequest(order_id="1")))
        plain_sim.clock.advance(sim.settings.token_ttl + 1)
        await failing(api_key.enroll(_enroll_request(profile="9999")))
    async with _connector(tls_sim.sim.api_url, auth=_key_store_auth(), proxy=_proxy(connect_proxy, "wrong-proxy"),
                          trust_store=KEYSTORES / "truststore.jks", trust_type="JKS") as via_bad_proxy:
        texts.append(repr(via_bad_proxy))
        await failing(via_bad_proxy.check())
    async with _connector(tls_sim.sim.api_url, auth=_key_store_auth(), proxy=_proxy(connect_proxy),
                          trust_store=KEYSTORES / "other-truststore.jks", trust_type="JKS") as untrusted:
        await failing(untrusted.check())
    async with _connector(sim.api_url, auth=_api_key(sim.url, "wrong-secret-value")) as bad_secret:
        await failing(bad_secret.check())

    import base64

    basic = base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode()
    wrong_basic = base64.b64encode(f"{PROXY_USER}:wrong-proxy".encode()).decode()
    secrets = [PASSWORD, CLIENT_SECRET, "wrong-secret-value", STORE_PASSWORD, PROXY_PASSWORD, "wrong-proxy",
               basic, wrong_basic, *tokens]
    assert len(tokens) >= 2
    written = "\n".join([*texts, *(r.getMessage() for r in caplog.records), caplog.text])
    assert "CA sim-ca" in written  # the texts are really there
    for secret in secrets:
        assert secret not in written


async def test_lifecycle(plain_sim: SimHandle) -> None:
    connector = _connector(plain_sim.sim.api_url)

    def state() -> ClientState:
        return connector.client.state

    assert state() is ClientState.UNOPENED
    with pytest.raises(RuntimeError, match="not open"):
        await connector.check()
    async with connector:
        assert state() is ClientState.OPEN
        await connector.open()  # idempotent
        await connector.check()
    assert state() is ClientState.CLOSED
    with pytest.raises(RuntimeError, match="closed"):
        await connector.check()
    with pytest.raises(RuntimeError, match="closed"):
        await connector.open()
    await connector.close()  # closing twice is fine


def test_registered_as_sectigo() -> None:
    connector = create_connector(sectigo_settings(url="http://127.0.0.1:9/api"))
    assert isinstance(connector, SectigoConnector) and isinstance(connector, Connector)
    assert "password" not in repr(connector).lower().replace("auth='password'", "")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param(dict(url="https://127.0.0.1:9/api"), "no ssl-trust-store", id="fail-https-without-trust-store"),
        pytest.param(dict(url="https://127.0.0.1:9/api", trust_store=KEYSTORES / "truststore.jks", trust_type="JKS",
                          trust_password="wrong-trust-pw"), "wrong password", id="fail-trust-store-password"),
        pytest.param(dict(url="https://127.0.0.1:9/api", trust_store=KEYSTORES / "truststore.jks", trust_type="JKS",
                          auth=KeyStoreAuth(login=LOGIN, key_store=KEYSTORES / "client.jks", key_alias="client",
                                            key_store_password=Secret("wrong-store-pw"), key_store_type="JKS")),
                     "wrong password", id="fail-key-store-password"),
        pytest.param(dict(url="https://127.0.0.1:9/api", trust_store=KEYSTORES / "truststore.jks", trust_type="JKS",
                          auth=KeyStoreAuth(login=LOGIN, key_store=KEYSTORES / "client.jks", key_alias="nobody",
                                            key_store_password=Secret(STORE_PASSWORD), key_store_type="JKS")),
                     "alias", id="fail-key-alias"),
        pytest.param(dict(url="http://127.0.0.1:9/api", auth=_key_store_auth()), "needs an https url",
                     id="fail-key-store-over-http"),
    ],
)
def test_fail_bad_tls_settings_are_config_errors_at_start(settings: dict[str, object], message: str) -> None:
    from service.errors import ConfigError

    with pytest.raises(ConfigError, match=message) as caught:
        create_connector(sectigo_settings(**settings))  # type: ignore[arg-type]
    assert str(caught.value).startswith("CA sim-ca: ")
    assert "wrong-store-pw" not in str(caught.value) and "wrong-trust-pw" not in str(caught.value)
