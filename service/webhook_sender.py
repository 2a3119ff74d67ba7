"""The HTTP side of webhooks: one aiohttp session per webhook, trusting its ``tls-ca`` when given."""

from __future__ import annotations

import ssl
from collections.abc import Sequence

import aiohttp

from service.config import WebhookSettings
from service.lifecycle.webhooks import Delivery

__all__ = ["MAX_ANSWER", "WebhookSender"]

# Only the status of an answer counts; a receiver cannot make the gateway read more than this of it.
MAX_ANSWER = 64 * 1024


class WebhookSender:
    """A :class:`~service.lifecycle.webhooks.Sender` over aiohttp; close it when done."""

    def __init__(self, webhooks: Sequence[WebhookSettings]) -> None:
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        for webhook in webhooks:
            if webhook.url in self._sessions:
                continue  # two webhooks to one receiver share its session
            context = ssl.create_default_context(cafile=str(webhook.tls_ca) if webhook.tls_ca else None)
            connector = aiohttp.TCPConnector(ssl=context, limit=1)  # one request at a time: events go in order
            self._sessions[webhook.url] = aiohttp.ClientSession(connector=connector)

    async def __call__(self, delivery: Delivery) -> int:
        try:
            async with self._sessions[delivery.url].post(
                    delivery.url, data=delivery.body, headers=dict(delivery.headers), allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=delivery.timeout)) as response:
                await response.content.read(MAX_ANSWER)
                return response.status
        except aiohttp.ClientError as exc:
            raise OSError(f"webhook request failed: {type(exc).__name__}") from None

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
