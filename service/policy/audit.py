"""Every decision of the policy, allowed or refused, goes to the ledger's audit trail.

An entry names the client, the identity (the certificate subject), the CA, the
operation, the target (order, serial, DN or the names asked for) and the grant
that allowed it or the reason it was refused. Allowed reads are not recorded
(they change nothing and would write on every look-up); refused ones are.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.clock import Clock, utcnow
from service.errors import CagwError, CallerDenied, QuotaExceeded
from service.ledger.base import AuditEntry, Ledger
from service.observability.events import NO_EVENTS, GatewayEvents
from service.policy.caller import Caller

__all__ = ["AuditTrail"]

MAX_DETAIL = 1024


class AuditTrail:
    """Records decisions; ``events`` counts the policy's and the quotas' refusals (metrics)."""

    def __init__(self, ledger: Ledger, *, clock: Clock = utcnow, events: GatewayEvents = NO_EVENTS) -> None:
        self._ledger = ledger
        self._clock = clock
        self._events = events

    async def record(self, caller: Caller, *, ca_id: str, action: str, target: str, outcome: str,
                     detail: str, refusals: Sequence[CagwError] = ()) -> None:
        count_refusals(self._events, caller, refusals)
        await self._ledger.append_audit(AuditEntry(
            time=self._clock(), ca_id=ca_id, actor=caller.actor, action=action, target=target[:256],
            outcome=outcome, detail=detail[:MAX_DETAIL], client=caller.name))


def count_refusals(events: GatewayEvents, caller: Caller, refusals: Sequence[CagwError]) -> None:
    """One ``policy_refused`` or ``quota_refused`` per refusal of the caller policy or a quota
    (the client label is the configured name, ``-`` for a caller no client matched)."""
    client = caller.name or "-"
    for refusal in refusals:
        if isinstance(refusal, QuotaExceeded):
            events.quota_refused(client=client, reason=refusal.metadata.get("limit", refusal.reason))
        elif isinstance(refusal, CallerDenied):
            events.policy_refused(client=client, reason=refusal.reason)
