"""``cagw_certificates{ca,owner,status,expires_in}``: the inventory by days to expiry, for dashboards and alerts.

The counts come from one grouped ledger query per CA (never a read of every
certificate), refreshed every ``interval`` by :meth:`CertificateGauges.run`
and once at start, so a scrape costs nothing. ``expires_in`` is the first
horizon the certificate expires within (``7d``, ``30d``, ``90d``), ``expired``
once ``notAfter`` has passed, ``later`` beyond the last. ``owner`` is the client
that ordered it (empty for certificates the gateway did not order): client
names come from the configuration, so the label stays bounded.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Gauge

from service.ledger.base import Ledger
from service.ledger.errors import LedgerError

__all__ = ["DEFAULT_INTERVAL", "HORIZONS", "CertificateGauges"]

log = logging.getLogger(__name__)

HORIZONS: Sequence[tuple[str, dt.timedelta]] = (
    ("7d", dt.timedelta(days=7)), ("30d", dt.timedelta(days=30)), ("90d", dt.timedelta(days=90)))
DEFAULT_INTERVAL = 60.0


def horizon_label(index: int) -> str:
    if index < 0:
        return "expired"
    return HORIZONS[index][0] if index < len(HORIZONS) else "later"


class CertificateGauges:
    """Counts the CAs' certificates into one gauge family; see the module docstring."""

    def __init__(self, registry: CollectorRegistry, ledger: Ledger, ca_ids: Sequence[str], *,
                 clock: Callable[[], dt.datetime], interval: float = DEFAULT_INTERVAL) -> None:
        self._gauge = Gauge("cagw_certificates", "Certificates in the ledger by owner, status (normal, revoked) "
                            "and expiry horizon (expired, 7d, 30d, 90d, later).",
                            ["ca", "owner", "status", "expires_in"], registry=registry)
        self._ledger = ledger
        self._ca_ids = tuple(ca_ids)
        self._clock = clock
        self._interval = interval
        self._shown: dict[str, set[tuple[str, str, str, str]]] = {}

    async def refresh(self) -> None:
        """Count again; a CA whose count fails keeps its last figures (the failure is logged)."""
        now = self._clock()
        for ca_id in self._ca_ids:
            try:
                rows = await self._ledger.count_certificates(ca_id, now=now,
                                                             horizons=[h for _, h in HORIZONS])
            except LedgerError as exc:
                log.warning("certificate counts of CA %s not refreshed: %s", ca_id, exc)
                continue
            labels = {(ca_id, owner, status, horizon_label(index)): count for owner, status, index, count in rows}
            for gone in self._shown.get(ca_id, set()) - labels.keys():
                self._gauge.remove(*gone)
            for key, count in labels.items():
                self._gauge.labels(*key).set(count)
            self._shown[ca_id] = set(labels)

    async def run(self) -> None:
        """Refresh now and then every interval, until cancelled."""
        while True:
            await self.refresh()
            await asyncio.sleep(self._interval)
