"""A real HTTPS webhook receiver on loopback (trustme certificate) that checks each signature."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from aiohttp import web

__all__ = ["SECRET", "Receiver", "https_receiver", "receiver_tls"]

SECRET = "the-receivers-shared-secret-0001"


@dataclass
class Receiver:
    """Answers 503 to the first ``failures`` requests, then 200; keeps what it accepted."""

    failures: int = 0
    requests: int = 0
    accepted: list[dict[str, Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests += 1
        fields = dict(part.split("=", 1) for part in request.headers["Cagw-Signature"].split(","))
        expected = hmac.new(SECRET.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, fields["v1"]):
            return web.Response(status=401)
        if self.requests <= self.failures:
            return web.Response(status=503)
        event = json.loads(body)
        assert request.headers["Cagw-Event-Id"] == event["id"]
        if all(seen["id"] != event["id"] for seen in self.accepted):  # de-duplicate by event id
            self.accepted.append(event)
        self.arrived.set()
        return web.Response(status=204)

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(20):
            while len(self.accepted) < count:
                self.arrived.clear()
                await self.arrived.wait()


def receiver_tls(tmp: Path) -> tuple[ssl.SSLContext, Path]:
    """The receiver's server context, and the PEM of the CA its certificate chains to (the ``tls-ca``)."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca.cert_pem.write_to_path(str(tmp / "receiver-ca.pem"))
    return context, tmp / "receiver-ca.pem"


@contextlib.asynccontextmanager
async def https_receiver(receiver: Receiver, context: ssl.SSLContext, *, port: int = 0) -> AsyncIterator[str]:
    """Serve ``receiver`` over HTTPS on 127.0.0.1 (a free port unless given); yields its URL."""
    app = web.Application()
    app.router.add_post("/hooks/cagw", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=context)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"https://127.0.0.1:{bound}/hooks/cagw"
    finally:
        await runner.cleanup()
