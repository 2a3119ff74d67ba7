"""Expiry notices: an ``expiring`` event when a certificate enters "expires within N" for each
of a CA's thresholds (``gateway.renewal.notify-before``, e.g. 30 days, 7 days, 1 day).

Every ``check-interval`` a pass asks the ledger, threshold by threshold, to write the event for
the certificates that expire within that threshold but not yet within the next smaller one. The
ledger writes each (certificate, threshold) once, under a unique key, in one statement, so a
restart, a second pass or another gateway on the same ledger adds nothing; a certificate that
skipped a threshold while no gateway ran is told about the one it is in now, not the ones it
passed. Revoked certificates and certificates replaced by an issued renewal are not told about.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence

from service.authorities import ManagedCA
from service.clock import Clock, utcnow
from service.config import RenewalSettings
from service.errors import CagwError
from service.ledger.base import Ledger

__all__ = ["ExpiryNotices", "threshold_label"]

log = logging.getLogger(__name__)

_BATCH = 500  # events written by one ledger statement
_MAX_BATCHES = 100  # per threshold and pass: the rest waits for the next pass


def threshold_label(seconds: float) -> str:
    """``30d``, ``12h``, ``90m`` or ``45s``: the largest whole unit, what the events carry."""
    whole = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole >= size and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


class ExpiryNotices:
    """See the module docstring; one instance per gateway."""

    def __init__(self, ledger: Ledger, *, clock: Clock = utcnow,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._ledger = ledger
        self._clock = clock
        self._sleep = sleep

    async def run(self, ca: ManagedCA) -> None:
        """A pass every ``check-interval`` until cancelled; nothing without thresholds."""
        await self.run_for(ca.id, ca.settings.gateway.renewal)

    async def run_for(self, ca_id: str, renewal: RenewalSettings) -> None:
        if not renewal.notify_before:
            return
        while True:
            try:
                told = await self.notify_at(ca_id, renewal.notify_before, self._clock())
            except CagwError as exc:  # the ledger is unreachable: the next pass tries again
                log.warning("CA %s: expiry notices not written: %s", ca_id, exc.message)
            else:
                if told:
                    log.info("CA %s: %d certificate(s) told expiring", ca_id, told)
            await self._sleep(renewal.check_interval)

    async def notify(self, ca: ManagedCA) -> int:
        """One pass over the CA's thresholds; how many ``expiring`` events it wrote."""
        return await self.notify_at(ca.id, ca.settings.gateway.renewal.notify_before, self._clock())

    async def notify_at(self, ca_id: str, thresholds: Sequence[float], now: dt.datetime) -> int:
        ordered = sorted(set(thresholds), reverse=True)
        told = 0
        for index, seconds in enumerate(ordered):
            smaller = ordered[index + 1] if index + 1 < len(ordered) else 0.0
            for _ in range(_MAX_BATCHES):
                written = await self._ledger.record_expiring(
                    ca_id, now=now, within=dt.timedelta(seconds=seconds), beyond=dt.timedelta(seconds=smaller),
                    label=threshold_label(seconds), limit=_BATCH)
                told += written
                if written < _BATCH:
                    break
        return told
