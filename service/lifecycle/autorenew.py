"""Automatic renewal: the gateway renews a certificate itself once its renewal window has started.

Opt-in per profile (``gateway.renewal.automatic`` or ``gateway.renewal.profiles.<id>.automatic``)
or per order (``properties.AutomaticRenewal: true`` or ``false``, which wins over the profile).
Every ``check-interval`` each CA's certificates are walked in expiry order; one that the
gateway ordered, that is neither revoked nor expired, that renews automatically (its order's
choice, else its profile's),
whose window (:func:`~service.lifecycle.renewal.renewal_advice`) has started and that has no
renewal yet, is renewed by id at the CA (it keeps its key) through the enrollment engine,
so the new order is tracked, resumed after a restart and told like any other (a ``renewed``
event once issued).

A renewal never doubles: it is placed with the request id ``auto-renew:<serial>``, and the
ledger keeps one order per request id and CA, so a second pass, a restart or another
gateway on the same ledger finds the first renewal instead of placing another.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

from service.authorities import ManagedCA
from service.clock import Clock, utcnow
from service.enrollment.channel import OrderEvent
from service.enrollment.engine import EnrollmentEngine
from service.enrollment.requests import RENEWAL_SERIAL, EnrollmentInput
from service.errors import CagwError
from service.ledger.base import CertificateQuery, InventoryEntry, Ledger
from service.lifecycle.renewal import renewal_advice

__all__ = ["AutoRenewal", "RenewalPass", "renewal_request_id"]

log = logging.getLogger(__name__)

_PAGE = 200
_MAX_PAGES = 50  # a pass looks at this many pages of a CA's certificates at most


def renewal_request_id(serial_number: str) -> str:
    """The idempotency key of the automatic renewal of one certificate."""
    return f"auto-renew:{serial_number}"


@dataclass
class RenewalPass:
    """One pass over one CA."""

    looked_at: int = 0
    renewed: list[str] = field(default_factory=list)  # serials whose renewal this pass placed
    failed: list[str] = field(default_factory=list)  # serials whose renewal was refused (tried again next pass)


class AutoRenewal:
    """See the module docstring."""

    def __init__(self, ledger: Ledger, engine: EnrollmentEngine, *, clock: Clock = utcnow,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._ledger = ledger
        self._engine = engine
        self._clock = clock
        self._sleep = sleep

    async def run(self, ca: ManagedCA) -> None:
        """A pass every ``check-interval`` until cancelled (on every CA: any order may opt in)."""
        while True:
            done = await self.renew_due(ca)
            if done.renewed or done.failed:
                log.info("CA %s: automatic renewal placed %d renewal(s), %d refused (tried again next pass)",
                         ca.id, len(done.renewed), len(done.failed))
            await self._sleep(ca.settings.gateway.renewal.check_interval)

    async def renew_due(self, ca: ManagedCA) -> RenewalPass:
        """One pass over the CA's normal certificates, soonest expiry first."""
        done = RenewalPass()
        now = self._clock()
        after: tuple[dt.datetime, str] | None = None
        for _ in range(_MAX_PAGES):
            page = await self._ledger.list_certificates(CertificateQuery(
                ca_id=ca.id, now=now, limit=_PAGE, status="normal", after=after))
            for entry in page:
                done.looked_at += 1
                if self._due(ca, entry, now):
                    await self._renew(ca, entry, done)
            if len(page) < _PAGE:
                break
            after = (page[-1].certificate.not_after, page[-1].certificate.serial_number)
        return done

    @staticmethod
    def _due(ca: ManagedCA, entry: InventoryEntry, now: dt.datetime) -> bool:
        if not entry.profile_id or entry.replacement_order_id is not None:
            return False  # not ordered here (no way to renew by id), or renewed already
        policy = ca.settings.gateway.renewal.for_profile(entry.profile_id)
        if not (policy.automatic if entry.auto_renew is None else entry.auto_renew):
            return False
        certificate = entry.certificate
        advice = renewal_advice(serial_number=certificate.serial_number, not_before=certificate.not_before,
                                not_after=certificate.not_after, revoked=False, policy=policy, now=now)
        return advice.start <= now

    async def _renew(self, ca: ManagedCA, entry: InventoryEntry, done: RenewalPass) -> None:
        serial = entry.certificate.serial_number
        # The renewal keeps the order's own choice (by inheriting it), so it is renewed in its turn.
        request = EnrollmentInput(ca_id=ca.id, profile_id=entry.profile_id, renewal=True,
                                  properties={RENEWAL_SERIAL: serial}, request_id=renewal_request_id(serial),
                                  caller=entry.owner)
        try:
            # An async generator: its first event means the order is recorded; its task goes on without us.
            events = cast(AsyncGenerator[OrderEvent, None], self._engine.enroll_and_watch(request))
            first = await anext(events)
            await events.aclose()
        except CagwError as exc:
            done.failed.append(serial)
            log.warning("CA %s: automatic renewal of %s refused: %s", ca.id, serial, exc.message)
            return
        done.renewed.append(serial)
        log.info("CA %s: renewing %s automatically (enrollment %s)", ca.id, serial, first.order.id)
