"""What a caller reads when the CA side fails: a reason code and the request id, never the CA's host,
the proxy or a TLS detail; those go to the gateway log, on a line with the same request id.

Three real failures on loopback: the simulator is down, its TLS certificate is not the one the
gateway trusts, and the outgoing CONNECT proxy cannot open its tunnel.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
import trustme
from google.rpc import error_details_pb2, status_pb2

from cagw.v1 import certificate_authorities_pb2 as ca_pb
from cagw.v1 import certificate_authorities_pb2_grpc as ca_grpc
from cagw.v1 import certificates_pb2 as cert_pb
from cagw.v1 import certificates_pb2_grpc as cert_grpc
from service.app import Gateway
from service.config import parse_config
from service.simulator import SimulatorSettings, start_simulator
from tests.integration.proxy import start_connect_proxy
from tests.integration.stack import CA_ID, gateway_document, tls_files

UNKNOWN_SERIAL = "5e1f00d5"  # not in the ledger: looking it up asks the CA


@dataclasses.dataclass
class Failing:
    rest_base: str
    channel: grpc.aio.Channel
    hidden: tuple[str, ...]  # what no caller may read


@contextlib.asynccontextmanager
async def failing_gateway(tmp: Path, failure: str) -> AsyncIterator[Failing]:
    trust, cert, key = tls_files(tmp)
    sim = await start_simulator(SimulatorSettings(port=0, tls_cert=cert, tls_key=key, ca_dir=tmp / "sim-ca"))
    proxy = await start_connect_proxy(username="u", password="p") if failure == "proxy" else None
    hidden = ["127.0.0.1", f":{sim.port}", "ssl", "certificate verify", "tunnel"]
    if failure == "tls":
        trust = tmp / "other-trust.pem"
        trustme.CA().cert_pem.write_to_path(str(trust))  # the gateway trusts another CA
    document = gateway_document(sim.url, trust, tmp, extra_gateway={"retry-attempts": "1"})
    if proxy is not None:
        hidden.append(f":{proxy.port}")
        document["managed-cas"][0]["properties"].update({
            "proxy-host-name": "127.0.0.1", "proxy-port": str(proxy.port),
            "proxy-username": "u", "proxy-password": "p"})
    gateway = Gateway(parse_config(document, base_dir=tmp))
    try:
        if failure in ("down", "proxy"):
            await sim.stop()  # through the proxy: its CONNECT to the simulator fails (502)
        await gateway.start()
        assert gateway.grpc is not None and gateway.rest is not None
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.grpc.port}") as channel:
            yield Failing(f"http://127.0.0.1:{gateway.rest.port}/cagw", channel, tuple(hidden))
    finally:
        await gateway.stop()
        await sim.stop()
        if proxy is not None:
            await proxy.stop()


def _assert_clean(text: str, hidden: tuple[str, ...]) -> None:
    lowered = text.lower()
    for word in hidden:
        assert word.lower() not in lowered, f"{word!r} reached the caller: {text}"
    assert "traceback" not in lowered


@pytest.mark.parametrize(("failure", "reason", "words"), [
    pytest.param("down", "CA_UNAVAILABLE", "the CA cannot be reached", id="fail-simulator-down"),
    pytest.param("tls", "CA_UNAVAILABLE", "the CA's TLS certificate is not trusted", id="fail-tls-mismatch"),
    pytest.param("proxy", "CA_UNAVAILABLE", "the outgoing proxy failed", id="fail-proxy-tunnel"),
])
async def test_fail_ca_side_failures_show_a_reason_and_the_request_id_only(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, failure: str, reason: str, words: str) -> None:
    caplog.set_level(logging.WARNING)
    async with failing_gateway(tmp_path, failure) as gateway, aiohttp.ClientSession() as http:
        url = f"{gateway.rest_base}/v1/certificate-authorities/{CA_ID}/certificates/{UNKNOWN_SERIAL}"
        async with http.get(url, headers={"X-Request-Id": "hygiene-rest-1"}) as response:
            status, text = response.status, await response.text()
        assert status == 503, text
        error: dict[str, Any] = json.loads(text)["error"]
        assert error["code"] == reason
        assert words in error["message"] and "request id hygiene-rest-1" in error["message"]
        _assert_clean(text, gateway.hidden)

        stub = cert_grpc.CertificateServiceStub(gateway.channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetCertificate(cert_pb.GetCertificateRequest(ca_id=CA_ID, serial_number=UNKNOWN_SERIAL),
                                      metadata=(("x-request-id", "hygiene-grpc-1"),))
        assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
        assert "request id hygiene-grpc-1" in (caught.value.details() or "")
        trailers = dict(caught.value.trailing_metadata() or ())
        rich = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
        info = error_details_pb2.ErrorInfo()
        rich.details[0].Unpack(info)
        assert info.reason == reason and info.metadata["request_id"] == "hygiene-grpc-1"
        _assert_clean(rich.message + str(dict(info.metadata)), gateway.hidden)

        ca_stub = ca_grpc.CertificateAuthorityServiceStub(gateway.channel)
        down = await ca_stub.GetCertificateAuthorityStatus(ca_pb.GetCertificateAuthorityStatusRequest(ca_id=CA_ID))
        assert down.status == "DOWN"
        _assert_clean(down.message.message, gateway.hidden)

    # The operator's log has the whole story (the host), next to the caller's request id.
    logged = [r.getMessage() for r in caplog.records if "127.0.0.1" in r.getMessage()]
    assert logged, [r.getMessage() for r in caplog.records]
