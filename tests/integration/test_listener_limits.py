"""The listeners' limits with short timeouts: idle and trickling sockets are closed, a connection
beyond the limit is refused, a gRPC server bounds concurrent RPCs and enforces keep-alive pings.

Raw sockets on loopback play the slow clients; the gateway is the real one (simulator behind it).
A limit that were not applied leaves the socket open, and the test's own bound (a few seconds,
far above the configured limit) fails it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from cagw.v1 import certificate_authorities_pb2 as ca_pb
from cagw.v1 import certificate_authorities_pb2_grpc as ca_grpc
from tests.integration.stack import Stack, running_stack

LIMITS = {"header-timeout": "300ms", "body-timeout": "300ms", "idle-timeout": "400ms", "max-connections": "3"}
BOUND = 3.0  # seconds: far beyond every configured limit, far below the defaults (10 s and more)
OPS_IDLE = 2.0


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    # On ops the idle timeout is long, so only the header timeout can cut a trickling head short.
    sections = {"rest": {"limits": LIMITS}, "ops": {"limits": {**LIMITS, "max-connections": "2",
                                                             "idle-timeout": f"{OPS_IDLE}s"}},
                "grpc": {"limits": {"max-concurrent-rpcs": "2", "max-connection-idle": "300ms"}}}
    async with running_stack(tmp_path_factory.mktemp("limits"), sections=sections) as running:
        yield running


def _port(stack: Stack, listener: str) -> int:
    server = stack.gateway.rest if listener == "rest" else stack.gateway.ops
    assert server is not None and server.port
    return server.port


async def _until_closed(reader: asyncio.StreamReader) -> tuple[float, bytes]:
    """Seconds until the server closed the connection, and what it sent before."""
    started, received = time.monotonic(), b""
    with contextlib.suppress(ConnectionError):
        while chunk := await asyncio.wait_for(reader.read(4096), BOUND):
            received += chunk
    return time.monotonic() - started, received


@pytest.mark.parametrize("listener", ["rest", "ops"])
async def test_fail_an_idle_connection_is_closed(stack: Stack, listener: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(stack, listener))
    try:
        elapsed, received = await _until_closed(reader)
    finally:
        writer.close()
    assert received == b"" and elapsed < BOUND


@pytest.mark.parametrize("listener", ["rest", "ops"])
async def test_fail_a_trickling_request_head_is_cut_off(stack: Stack, listener: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(stack, listener))
    head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    started = time.monotonic()
    try:
        for byte in head:  # one byte every 50 ms: the head would take 12 s
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.05)
            if reader.at_eof() or time.monotonic() - started > BOUND:
                break
        elapsed, received = await _until_closed(reader)
    except ConnectionError:
        received = b""
    finally:
        writer.close()
    assert received == b"", received  # no answer: the head never completed
    # Cut off by the header timeout (300 ms), well before the idle timeout (ops: 2 s) could.
    assert time.monotonic() - started < (1.5 if listener == "ops" else BOUND)


async def test_fail_a_trickling_body_is_answered_408_and_closed(stack: Stack) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(stack, "rest"))
    try:
        writer.write(b"POST /cagw/v1/certificate-authorities/sim/enrollments HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"profileId\": ")
        await writer.drain()
        elapsed, received = await _until_closed(reader)
    finally:
        writer.close()
    assert received.startswith(b"HTTP/1.1 408 "), received[:200]
    assert b"REQUEST_BODY_TIMEOUT" in received and b"body-timeout" in received
    assert elapsed < BOUND


async def test_fail_connections_beyond_the_limit_are_refused_503(stack: Stack) -> None:
    opened = [await asyncio.open_connection("127.0.0.1", _port(stack, "ops")) for _ in range(2)]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(stack, "ops"))
        _, received = await _until_closed(reader)
        writer.close()
        assert received.startswith(b"HTTP/1.1 503 ") and b"too many connections" in received
    finally:
        for _, held in opened:
            held.close()
    assert stack.gateway.ops is not None and stack.gateway.ops.guard.refused >= 1


async def test_ok_a_connection_within_the_limits_is_served(stack: Stack) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(stack, "rest"))
    try:
        writer.write(b"GET /cagw/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        await writer.drain()
        _, received = await _until_closed(reader)
    finally:
        writer.close()
    assert received.startswith(b"HTTP/1.1 200 ")


async def test_fail_grpc_rpcs_beyond_the_limit_are_resource_exhausted(stack: Stack) -> None:
    stub = ca_grpc.CertificateAuthorityServiceStub(stack.channel)
    request = ca_pb.ListCertificateAuthoritiesRequest()
    # A burst far beyond the limit of 2 concurrent RPCs: some are refused at once, none is lost silently.
    results = await asyncio.gather(*(stub.ListCertificateAuthorities(request) for _ in range(40)),
                                   return_exceptions=True)
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert refused and all(r.code() is grpc.StatusCode.RESOURCE_EXHAUSTED for r in refused)
    assert len(refused) < len(results)


async def test_fail_an_idle_grpc_connection_is_sent_away(stack: Stack) -> None:
    async with grpc.aio.insecure_channel(stack.grpc_target) as channel:
        stub = ca_grpc.CertificateAuthorityServiceStub(channel)
        await stub.ListCertificateAuthorities(ca_pb.ListCertificateAuthoritiesRequest())
        assert channel.get_state() is grpc.ChannelConnectivity.READY
        # max-connection-idle: 300ms, so the server ends the connection (GOAWAY) and the channel idles.
        await asyncio.wait_for(channel.wait_for_state_change(grpc.ChannelConnectivity.READY), BOUND)
        assert channel.get_state() is grpc.ChannelConnectivity.IDLE
        # The next call simply connects again.
        await stub.ListCertificateAuthorities(ca_pb.ListCertificateAuthoritiesRequest())


async def test_fail_a_tls_handshake_that_never_comes_is_cut_off(tmp_path: Path) -> None:
    sections = {"rest": {"limits": {"header-timeout": "300ms", "idle-timeout": "20s"}}}
    async with running_stack(tmp_path, client_name="slow-client", sections=sections) as tls_stack:
        reader, writer = await asyncio.open_connection("127.0.0.1", _port(tls_stack, "rest"))
        try:
            writer.write(b"\x16\x03\x01")  # the first bytes of a ClientHello, and then nothing
            await writer.drain()
            elapsed, _ = await _until_closed(reader)
        finally:
            writer.close()
        assert elapsed < 1.5  # the handshake is bounded by header-timeout (asyncio's own default is 60 s)
