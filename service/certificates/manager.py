"""``CertificateManager``: the one object the certificate and subject servicers share.

It composes the four jobs of this package over one ledger and one clock, so a
serial revoked through either service is locked once and a status checked
through one lookup is not asked of the CA again by the other.
"""

from __future__ import annotations

import datetime as dt

from service.authorities import CARegistry, ManagedCA
from service.certificates.events import EventsFeed, EventsPage
from service.certificates.lookup import STATUS_CHECK_INTERVAL, CertificateLookup
from service.certificates.revocation import ActionInput, Revocations, RevokeOrder, RevokeOutcome, SubjectRevokeOutcome
from service.certificates.subjects import SubjectIndex, SubjectItem, SubjectPage
from service.clock import Clock, utcnow
from service.config.settings import Operation
from service.config import LookupLimits
from service.ledger.base import CertificateRecord, Ledger
from service.observability.events import NO_EVENTS, GatewayEvents
from service.policy import Caller
from service.policy.audit import AuditTrail

__all__ = ["CertificateManager"]


class CertificateManager:
    """Lookup, revocation, subjects and the events feed over the ledger and the CAs' connectors."""

    def __init__(self, ledger: Ledger, *, clock: Clock = utcnow,
                 status_check_interval: dt.timedelta = STATUS_CHECK_INTERVAL,
                 events: GatewayEvents = NO_EVENTS, lookups: LookupLimits = LookupLimits()) -> None:
        self._clock = clock
        self.lookup = CertificateLookup(ledger, clock=clock, status_check_interval=status_check_interval,
                                        limits=lookups)
        self.subjects = SubjectIndex(ledger, clock=clock)
        self.revocations = Revocations(ledger, self.lookup, self.subjects, clock=clock, events=events)
        self.feed = EventsFeed(ledger)
        self._audit = AuditTrail(ledger, clock=clock, events=events)

    async def authorize(self, cas: CARegistry, ca_id: str, caller: Caller, operation: Operation) -> ManagedCA:
        """The CA, once ``caller`` may do ``operation`` on it. A CA outside the caller's grants is
        refused (and the refusal audited) whether it exists or not, so grants reveal no other CA."""
        decision = caller.may(operation, ca_id)
        if not decision.allowed:
            await self._audit.record(caller, ca_id=ca_id[:64], action=operation, target=ca_id[:64],
                                     outcome="refused", detail=f"{decision.reason}: {decision.message}",
                                     refusals=(decision.error(),))
            raise decision.error()
        return cas.get(ca_id)

    def now(self) -> dt.datetime:
        return self._clock()

    async def find(self, ca: ManagedCA, serial_text: str, *, field: str = "serialNumber",
                   caller: str = "") -> CertificateRecord:
        return await self.lookup.find(ca, serial_text, field=field, caller=caller)

    async def revoke(self, ca: ManagedCA, serial_text: str, action: ActionInput, *,
                     caller: Caller) -> tuple[RevokeOrder, RevokeOutcome]:
        return await self.revocations.revoke(ca, serial_text, action, caller=caller)

    async def subject(self, ca: ManagedCA, dn_text: str, *, field: str = "dn") -> tuple[str, list[SubjectItem]]:
        return await self.subjects.subject(ca, dn_text, field=field)

    async def subject_page(self, ca: ManagedCA, dn_text: str, *, page_size: int, page_index: str) -> SubjectPage:
        return await self.subjects.page(ca, dn_text, page_size=page_size, page_index=page_index)

    async def revoke_subject(self, ca: ManagedCA, dn_text: str, action: ActionInput, *,
                             caller: Caller) -> tuple[RevokeOrder, SubjectRevokeOutcome]:
        return await self.revocations.revoke_subject(ca, dn_text, action, caller=caller)

    async def events(self, ca: ManagedCA, *, start_date: str, page_size: int, page_index: str,
                     with_certificates: bool) -> EventsPage:
        return await self.feed.events(ca, start_date=start_date, page_size=page_size, page_index=page_index,
                                      with_certificates=with_certificates)
