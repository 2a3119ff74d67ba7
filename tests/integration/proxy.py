"""A small HTTP CONNECT proxy on loopback that demands Basic credentials, for the Sectigo client tests.

It answers ``407`` (with ``Proxy-Authenticate``) unless ``Proxy-Authorization`` matches, then
opens a TCP connection to the target, answers ``200 Connection established`` and copies bytes
both ways. It records every CONNECT head it saw and counts the tunnels it opened, so tests can
check credentials, connection reuse and that nothing else (no Sectigo password) reached it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from dataclasses import dataclass, field

__all__ = ["ConnectProxy", "ProxyRequest", "start_connect_proxy"]


@dataclass(frozen=True)
class ProxyRequest:
    """One request head the proxy received."""

    method: str
    target: str
    headers: dict[str, str]


@dataclass
class ConnectProxy:
    """A running proxy: ``port``, what it saw, and ``stop()``."""

    server: asyncio.Server
    port: int
    username: str
    password: str
    requests: list[ProxyRequest] = field(default_factory=list)
    tunnels: int = 0
    refused: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def expected_authorization(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return f"Basic {token}"

    async def stop(self) -> None:
        self.server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.server.wait_closed()


async def _read_head(reader: asyncio.StreamReader) -> ProxyRequest | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = raw.decode("latin-1").split("\r\n")
    method, target, _version = (lines[0].split(" ") + ["", "", ""])[:3]
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return ProxyRequest(method=method.upper(), target=target, headers=headers)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def start_connect_proxy(*, username: str, password: str) -> ConnectProxy:
    """Listen on 127.0.0.1, port chosen by the system."""
    proxy: ConnectProxy

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        proxy._tasks.add(task)  # noqa: SLF001 - the proxy's own bookkeeping
        try:
            head = await _read_head(reader)
            if head is None:
                return
            proxy.requests.append(head)
            if head.method != "CONNECT":
                writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            if head.headers.get("proxy-authorization") != proxy.expected_authorization:
                proxy.refused += 1
                writer.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                             b'Proxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
                return
            host, _, port = head.target.rpartition(":")
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(host.strip("[]"), int(port))
            except OSError:
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            proxy.tunnels += 1
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            with contextlib.suppress(Exception):
                await writer.drain()
            writer.close()
            proxy._tasks.discard(task)  # noqa: SLF001

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    proxy = ConnectProxy(server=server, port=port, username=username, password=password)
    return proxy
