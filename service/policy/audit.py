"""Every decision of the policy, allowed or refused, goes to the ledger's audit trail.

An entry names the client, the identity (the certificate subject), the CA, the
operation, the target (order, serial, DN or the names asked for) and the grant
that allowed it or the reason it was refused. Allowed reads are not recorded
(they change nothing and would write on every look-up); refused ones are.
"""

from __future__ import annotations

from service.clock import Clock, utcnow
from service.ledger.base import AuditEntry, Ledger
from service.policy.caller import Caller

__all__ = ["AuditTrail"]

MAX_DETAIL = 1024


class AuditTrail:
    def __init__(self, ledger: Ledger, *, clock: Clock = utcnow) -> None:
        self._ledger = ledger
        self._clock = clock

    async def record(self, caller: Caller, *, ca_id: str, action: str, target: str, outcome: str,
                     detail: str) -> None:
        await self._ledger.append_audit(AuditEntry(
            time=self._clock(), ca_id=ca_id, actor=caller.actor, action=action, target=target[:256],
            outcome=outcome, detail=detail[:MAX_DETAIL], client=caller.name))
