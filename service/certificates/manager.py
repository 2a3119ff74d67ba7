"""``CertificateManager``: the one object the certificate and subject servicers share.

It composes the four jobs of this package over one ledger and one clock, so a
serial revoked through either service is locked once and a status checked
through one lookup is not asked of the CA again by the other.
"""

from __future__ import annotations

import datetime as dt

from service.authorities import ManagedCA
from service.certificates.events import EventsFeed, EventsPage
from service.certificates.lookup import STATUS_CHECK_INTERVAL, CertificateLookup
from service.certificates.revocation import ActionInput, Revocations, RevokeOrder, RevokeOutcome, SubjectRevokeOutcome
from service.certificates.subjects import SubjectIndex, SubjectItem, SubjectPage
from service.clock import Clock, utcnow
from service.config import LookupLimits
from service.ledger.base import CertificateRecord, Ledger

__all__ = ["CertificateManager"]


class CertificateManager:
    """Lookup, revocation, subjects and the events feed over the ledger and the CAs' connectors."""

    def __init__(self, ledger: Ledger, *, clock: Clock = utcnow,
                 status_check_interval: dt.timedelta = STATUS_CHECK_INTERVAL,
                 lookups: LookupLimits = LookupLimits()) -> None:
        self._clock = clock
        self.lookup = CertificateLookup(ledger, clock=clock, status_check_interval=status_check_interval,
                                        limits=lookups)
        self.subjects = SubjectIndex(ledger, clock=clock)
        self.revocations = Revocations(ledger, self.lookup, self.subjects, clock=clock)
        self.feed = EventsFeed(ledger)

    def now(self) -> dt.datetime:
        return self._clock()

    async def find(self, ca: ManagedCA, serial_text: str, *, field: str = "serialNumber",
                   caller: str = "") -> CertificateRecord:
        return await self.lookup.find(ca, serial_text, field=field, caller=caller)

    async def revoke(self, ca: ManagedCA, serial_text: str, action: ActionInput, *,
                     actor: str) -> tuple[RevokeOrder, RevokeOutcome]:
        return await self.revocations.revoke(ca, serial_text, action, actor=actor)

    async def subject(self, ca: ManagedCA, dn_text: str, *, field: str = "dn") -> tuple[str, list[SubjectItem]]:
        return await self.subjects.subject(ca, dn_text, field=field)

    async def subject_page(self, ca: ManagedCA, dn_text: str, *, page_size: int, page_index: str) -> SubjectPage:
        return await self.subjects.page(ca, dn_text, page_size=page_size, page_index=page_index)

    async def revoke_subject(self, ca: ManagedCA, dn_text: str, action: ActionInput, *,
                             actor: str) -> tuple[RevokeOrder, SubjectRevokeOutcome]:
        return await self.revocations.revoke_subject(ca, dn_text, action, actor=actor)

    async def events(self, ca: ManagedCA, *, start_date: str, page_size: int, page_index: str,
                     with_certificates: bool) -> EventsPage:
        return await self.feed.events(ca, start_date=start_date, page_size=page_size, page_index=page_index,
                                      with_certificates=with_certificates)
