"""Drift sync: what the CA issued or revoked without the gateway, recorded in the ledger.

A CA may notify only e-mail addresses, and an order listing may have no date
filter, so a pass lists the CA's orders by status (``Issued``, then
``Revoked``), a bounded number of pages each (``gateway.sync.max-pages``), and
continues where it stopped at the next pass, starting over once it reached the
end. A listed serial the ledger does not know is fetched and stored as a
certificate the gateway did not order (the inventory and the events then show
it: an ``issued`` event); a serial the ledger holds as not revoked that the CA
lists as revoked is recorded revoked (a ``revoked`` event). Serials the ledger
already knows cost no further call, so a pass in a quiet account is the list
calls alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from service.authorities import ManagedCA
from service.certificates.lookup import CertificateLookup
from service.connectors.base import DetailsRequest, ListRequest, OrderStatus, OrderSummary
from service.errors import CagwError
from service.ledger.base import Ledger
from service.x509 import format_serial

__all__ = ["DriftSync", "SyncReport"]

log = logging.getLogger(__name__)

_LISTED = (OrderStatus.ISSUED, OrderStatus.REVOKED)


@dataclass
class SyncReport:
    """One pass over one CA."""

    listed: int = 0  # orders seen in the listings
    found: int = 0  # certificates stored that the gateway did not order
    revoked: int = 0  # revocations made at the CA, now recorded
    complete: bool = True  # False: the page bound stopped the pass; the next one goes on from there
    errors: list[str] = field(default_factory=list)


class DriftSync:
    """Passes over the CAs' listings (see the module docstring); one instance per gateway."""

    def __init__(self, ledger: Ledger, lookup: CertificateLookup, *,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._ledger = ledger
        self._lookup = lookup
        self._sleep = sleep
        self._positions: dict[tuple[str, OrderStatus], int] = {}

    async def run(self, ca: ManagedCA) -> None:
        """Pass after pass every ``gateway.sync.interval``, until cancelled (nothing when it is 0)."""
        interval = ca.settings.gateway.sync.interval
        if interval <= 0:
            return
        while True:
            report = await self.sync(ca)
            log.info("CA %s: sync listed %d order(s), stored %d certificate(s) issued outside the gateway, "
                     "recorded %d revocation(s) made at the CA%s", ca.id, report.listed, report.found,
                     report.revoked, "" if report.complete else " (to be continued)")
            await self._sleep(interval)

    async def sync(self, ca: ManagedCA) -> SyncReport:
        """One pass; a CA or ledger failure ends the listing it happened in, reported, not raised."""
        report = SyncReport()
        for status in _LISTED:
            try:
                await self._pass(ca, status, report)
            except CagwError as exc:
                report.complete = False
                report.errors.append(f"{status.value}: {exc.message}")
                log.warning("CA %s: sync of %s orders stopped: %s", ca.id, status.value, exc.message)
        return report

    async def _pass(self, ca: ManagedCA, status: OrderStatus, report: SyncReport) -> None:
        settings = ca.settings.gateway.sync
        key = (ca.id, status)
        position = self._positions.get(key, 0)
        for _ in range(settings.max_pages):
            page = await ca.connector.list(ListRequest(status=status, position=position, size=settings.page_size))
            for item in page.items:
                report.listed += 1
                await self._reconcile(ca, status, item, report)
            position += len(page.items)
            if len(page.items) < settings.page_size or position >= page.total:
                self._positions[key] = 0  # the end: the next pass starts over
                return
            self._positions[key] = position
        report.complete = False

    async def _reconcile(self, ca: ManagedCA, status: OrderStatus, item: OrderSummary, report: SyncReport) -> None:
        if item.serial_number is None:
            return
        hex_serial = format_serial(item.serial_number)
        stored = await self._ledger.get_certificate(ca.id, hex_serial)
        if stored is not None and (stored.status == "revoked" or status is OrderStatus.ISSUED):
            return  # nothing new: no call to the CA
        details = await ca.connector.details(DetailsRequest(order_id=item.order_id))
        if details.serial_number != item.serial_number:
            return  # the order moved on (replaced) since the listing
        if stored is None:
            found = await self._lookup.store_from_ca(ca, details)
            report.found += found is not None
            revoked = found is not None and found.status == "revoked"
        else:
            revoked = details.status is OrderStatus.REVOKED and \
                await self._lookup.record_revoked_at_ca(ca, hex_serial, details) is not None
        report.revoked += revoked
