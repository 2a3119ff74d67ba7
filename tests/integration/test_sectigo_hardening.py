"""The Sectigo client against a misbehaving server on loopback: redirects, huge bodies,
echoed secrets, deeply nested JSON, lists without X-Total-Count."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import trustme
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from service.config import CASettings, parse_config
from service.connectors.base import CollectRequest, ListRequest, RevokeReason, RevokeRequest
from service.connectors.sectigo import SectigoConnector
from service.connectors.sectigo.client import MAX_RESPONSE_BYTES
from service.errors import CAUnavailable, CARejected, ConfigError, ConnectorError
from tests.support.settings import build_ca_settings, ca_entry, config_document, parse_document

PASSWORD = "changeit2024Secret!"
TRUST_PASSWORD = "changeit"  # a prefix of the login password: redaction must not leave "2024Secret!"

Handler = Callable[[web.Request], web.StreamResponse]


@pytest.fixture
async def server() -> AsyncIterator[Callable[[Handler], str]]:
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)  # type: ignore[arg-type]
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}/api"

    yield start  # type: ignore[misc]
    for runner in runners:
        await runner.cleanup()


def _ca(tmp_path: Path, url: str, **extra: str) -> CASettings:
    return build_ca_settings(tmp_path, ca_id="ca1", connector=None, gateway={"retry-attempts": "1"},
                             properties={"url": url, "login": "admin", "login-password": PASSWORD, **extra})


async def test_fail_a_redirect_is_not_a_successful_revoke(tmp_path: Path, server: Callable[..., object]) -> None:
    async def redirect(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "https://login.example/"})

    url = await server(redirect)  # type: ignore[misc]
    async with SectigoConnector(ca=_ca(tmp_path, url)) as connector:
        with pytest.raises(ConnectorError):
            await connector.revoke(RevokeRequest(reason=RevokeReason.SUPERSEDED, comment="x", order_id="123"))


async def test_fail_an_answer_larger_than_the_limit_is_refused(tmp_path: Path, server: Callable[..., object]) -> None:
    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        await response.prepare(request)
        chunk = b" " * (1024 * 1024)
        for _ in range(MAX_RESPONSE_BYTES // len(chunk) + 2):
            await response.write(chunk)
        await response.write_eof()
        return response

    url = await server(huge)  # type: ignore[misc]
    async with SectigoConnector(ca=_ca(tmp_path, url)) as connector:
        with pytest.raises(CAUnavailable, match="larger than 16 MiB"):
            await connector.profiles()


async def test_ok_an_echoed_password_is_redacted_whole_even_when_another_secret_is_its_prefix(
        tmp_path: Path, server: Callable[..., object]) -> None:
    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"code": -16, "description": f"bad password {request.headers['password']}"},
                                 status=401)

    url = await server(echo)  # type: ignore[misc]
    trust = tmp_path / "trust.pem"
    trust.write_text("unused for http")
    ca = _ca(tmp_path, url, **{"ssl-trust-store": str(trust), "ssl-trust-store-password": TRUST_PASSWORD,
                               "ssl-truststore-type": "PEM"})
    async with SectigoConnector(ca=ca) as connector:
        with pytest.raises(CARejected) as caught:
            await connector.profiles()
    text = f"{caught.value} {caught.value!r} {caught.value.ca_description}"
    assert "2024Secret" not in text and TRUST_PASSWORD not in text


async def test_fail_deeply_nested_json_is_a_bad_answer_not_a_recursion_error(
        tmp_path: Path, server: Callable[..., object]) -> None:
    async def nested(request: web.Request) -> web.Response:
        return web.Response(status=200, body=b"[" * 200_000, content_type="application/json")

    url = await server(nested)  # type: ignore[misc]
    async with SectigoConnector(ca=_ca(tmp_path, url)) as connector:
        with pytest.raises(CAUnavailable):
            await connector.profiles()


async def test_ok_a_full_page_without_x_total_count_says_more_may_follow(
        tmp_path: Path, server: Callable[..., object]) -> None:
    async def page(request: web.Request) -> web.Response:
        size = int(request.query["size"])
        return web.json_response([{"sslId": 1000 + i, "commonName": "a.example"} for i in range(size)])

    url = await server(page)  # type: ignore[misc]
    async with SectigoConnector(ca=_ca(tmp_path, url)) as connector:
        listed = await connector.list(ListRequest(common_name="a.example", size=5))
    assert listed.total > len(listed.items) == 5


@pytest.mark.parametrize(("extra", "message"), [
    pytest.param({"url": "http://user:TOPSECRET@127.0.0.1:1/api"}, "url: credentials do not belong in the url",
                 id="fail-credentials-in-url"),
    pytest.param({"login-password": "bad\r\nX-Evil: 1"}, "login-password: contains a control character",
                 id="fail-control-character-in-password"),
])
def test_fail_values_that_would_leak_or_break_headers(tmp_path: Path, extra: dict[str, str], message: str) -> None:
    entry = ca_entry(ca_id="ca1", connector=None, properties={"login": "admin", "login-password": PASSWORD, **extra})
    with pytest.raises(ConfigError) as caught:
        parse_document(config_document(None, entry), tmp_path)
    assert message in caught.value.message
    assert "TOPSECRET" not in caught.value.message and "X-Evil" not in caught.value.message


async def test_ok_a_bundle_without_a_clear_leaf_is_collected_in_two_downloads(
        tmp_path: Path, server: Callable[..., object]) -> None:
    """The x509 bundle holds two end-entity certificates: the connector does not guess, it asks
    for the certificate alone (x509CO) and the chain alone (x509IOR)."""
    root = trustme.CA()
    leaf, other = root.issue_cert("www.example.com"), root.issue_cert("other.example.com")
    bodies = {"x509": leaf.cert_chain_pems[0].bytes() + other.cert_chain_pems[0].bytes() + root.cert_pem.bytes(),
              "x509CO": leaf.cert_chain_pems[0].bytes(), "x509IOR": root.cert_pem.bytes()}
    formats: list[str] = []

    async def collect(request: web.Request) -> web.Response:
        formats.append(request.query["format"])
        return web.Response(body=bodies[request.query["format"]], content_type="application/octet-stream")

    url = await server(collect)  # type: ignore[misc]
    async with SectigoConnector(ca=_ca(tmp_path, url)) as connector:
        result = await connector.collect(CollectRequest(order_id="4711"))
    assert formats == ["x509", "x509CO", "x509IOR"]
    assert result.issued is not None
    load = x509.load_pem_x509_certificate
    assert result.issued.certificate_der == load(leaf.cert_chain_pems[0].bytes()).public_bytes(Encoding.DER)
    assert result.issued.chain_der == (load(root.cert_pem.bytes()).public_bytes(Encoding.DER),)
