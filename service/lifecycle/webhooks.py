"""Certificate events pushed to receivers over HTTPS, signed, at least once, in order.

The ledger's certificate events are the outbox: each is written in the
transaction of the change it tells of (an issue, a revocation), so a crash
between the change and its delivery loses nothing. Each webhook has a cursor in
the ledger, the id of the last event its receiver acknowledged (any 2xx); a
delivery that fails is tried again, after a back-off, until it succeeds, and
the cursor moves only then. A receiver may therefore see an event twice (after a
crash between its 2xx and the cursor's update) and de-duplicates by the
``Cagw-Event-Id`` header.

Each request carries one event as JSON and ``Cagw-Signature: t=<unix seconds>,
v1=<hex HMAC-SHA256 of "<t>.<body>" under the webhook's secret>``; a receiver
recomputes it and refuses a stale ``t`` (replays).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import itertools
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from service.clock import Clock, utcnow
from service.config import WebhookSettings
from service.ledger.base import Ledger, OutboxEvent
from service.ledger.errors import LedgerError

__all__ = ["Delivery", "Sender", "WebhookDispatcher", "event_body", "event_fields", "event_type", "sign"]

log = logging.getLogger(__name__)

BATCH = 100  # events read from the outbox at once
POLL_INTERVAL = 1.0  # how often an idle webhook looks for new events
MAX_RETRY = 300.0
SIGNATURE_HEADER = "Cagw-Signature"
EVENT_ID_HEADER = "Cagw-Event-Id"


def event_type(outbox: OutboxEvent) -> str:
    """``issued``, ``renewed`` (issued by a renewal of another certificate), ``issued-outside``
    (a certificate the gateway did not order, found at the CA), ``revoked``, ``failed`` (an order
    that failed), ``expiring`` (a certificate entered one of its CA's thresholds) or ``replaced``
    (a renewal or reissue of the certificate was issued)."""
    if outbox.event.action == "issued" and not outbox.ordered:
        return "issued-outside"
    if outbox.event.action == "issued" and outbox.renewal_of:
        return "renewed"
    return outbox.event.action


def event_body(outbox: OutboxEvent) -> bytes:
    event = outbox.event
    document: dict[str, object] = {
        "id": str(event.id), "type": event_type(outbox), "ca": event.ca_id, "serialNumber": event.serial_number,
        "time": event.time.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"), "owner": outbox.owner}
    kind = document["type"]
    for key, value in event_fields(outbox).items():
        document[key] = value
    if outbox.renewal_of and kind not in ("failed", "replaced"):
        document["replaces"] = outbox.renewal_of
    if event.reason:
        document["reason"] = event.reason
    if event.detail:
        document["detail"] = event.detail
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def event_fields(outbox: OutboxEvent) -> dict[str, str]:
    """What an event type carries besides the common fields: ``enrollmentId`` (failed: the order;
    replaced: the order that replaced it), ``renewalOf`` (a failed renewal: the serial it renews),
    ``replacedBy`` (replaced: the new serial), ``expiresWithin`` (expiring: the threshold)."""
    event, fields = outbox.event, {}
    if event.action in ("failed", "replaced") and event.order_id:
        fields["enrollmentId"] = event.order_id
    if event.action == "failed" and outbox.renewal_of:
        fields["renewalOf"] = outbox.renewal_of
    if event.action == "replaced":
        fields["replacedBy"] = event.detail
    if event.action == "expiring":
        fields["expiresWithin"] = event.detail
    return fields


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Cagw-Signature`` header value of ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


@dataclass(frozen=True)
class Delivery:
    url: str
    body: bytes
    headers: Mapping[str, str]
    timeout: float


class Sender(Protocol):
    async def __call__(self, delivery: Delivery) -> int:
        """POST the delivery and return the HTTP status; raise OSError (or a subclass) when no answer came."""


def _wanted(webhook: WebhookSettings, outbox: OutboxEvent) -> bool:
    return ((webhook.cas is None or outbox.event.ca_id in webhook.cas)
            and (webhook.owner is None or outbox.owner == webhook.owner)
            and (webhook.events is None or event_type(outbox) in webhook.events))


class WebhookDispatcher:
    """One delivery loop per webhook, each on its own cursor; see the module docstring."""

    def __init__(self, ledger: Ledger, webhooks: Sequence[WebhookSettings], send: Sender, *,
                 clock: Clock = utcnow, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 poll_interval: float = POLL_INTERVAL) -> None:
        self._ledger = ledger
        self._webhooks = tuple(webhooks)
        self._send = send
        self._clock = clock
        self._sleep = sleep
        self._poll_interval = poll_interval
        self.delivered: dict[str, int] = {w.name: 0 for w in webhooks}  # since start, for logs and tests

    async def run(self) -> None:
        """Deliver for every webhook until cancelled."""
        await asyncio.gather(*(self.run_one(webhook) for webhook in self._webhooks))

    async def run_one(self, webhook: WebhookSettings) -> None:
        while True:
            try:
                moved = await self.deliver_pending(webhook)
            except LedgerError as exc:
                log.warning("webhook %s: the ledger cannot be read (%s); trying again", webhook.name, exc)
                moved = False
            if not moved:
                await self._sleep(self._poll_interval)

    async def _start_cursor(self, webhook: WebhookSettings) -> int:
        """A new webhook starts with the events after its creation, not with the whole history."""
        cursor = await self._ledger.webhook_cursor(webhook.name)
        if cursor is not None:
            return cursor
        latest = await self._ledger.latest_event_id()
        await self._ledger.advance_webhook_cursor(webhook.name, latest)
        return latest

    async def deliver_pending(self, webhook: WebhookSettings) -> bool:
        """Deliver what is waiting for this webhook, in order; True when its cursor moved."""
        cursor = await self._start_cursor(webhook)
        batch = await self._ledger.events_after(cursor, limit=BATCH)
        recorded = cursor
        for outbox in batch:
            if _wanted(webhook, outbox):
                await self._deliver(webhook, outbox)
                recorded = outbox.event.id
                await self._ledger.advance_webhook_cursor(webhook.name, recorded)
        if batch and batch[-1].event.id > recorded:  # the events it does not want: one write for them all
            await self._ledger.advance_webhook_cursor(webhook.name, batch[-1].event.id)
        return bool(batch)

    async def _deliver(self, webhook: WebhookSettings, outbox: OutboxEvent) -> None:
        """Send until the receiver answers 2xx, backing off in between."""
        body = event_body(outbox)
        delay = webhook.retry_delay
        for attempt in itertools.count(1):
            timestamp = int(self._clock().timestamp())
            headers = {"Content-Type": "application/json", EVENT_ID_HEADER: str(outbox.event.id),
                       SIGNATURE_HEADER: sign(webhook.secret.reveal(), timestamp, body)}
            try:
                status = await self._send(Delivery(webhook.url, body, headers, webhook.timeout))
            except (OSError, asyncio.TimeoutError) as exc:
                outcome = f"no answer ({type(exc).__name__})"
            else:
                if 200 <= status < 300:
                    self.delivered[webhook.name] += 1
                    return
                outcome = f"HTTP {status}"
            log.warning("webhook %s: event %d not delivered (attempt %d, %s); next try in %.0fs",
                        webhook.name, outbox.event.id, attempt, outcome, delay)
            await self._sleep(delay * random.uniform(0.8, 1.0))
            delay = min(delay * 2, MAX_RETRY)
