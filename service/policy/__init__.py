"""Who may call the gateway and what each caller may do: the ``clients`` section applied.

The package, one job a module: ``identity`` (the verified certificate of a call),
``names`` (name patterns of grants), ``caller`` (clients, grants, ownership and
the :class:`Decision` of each check), ``quotas`` (the per-client and per-CA
order limits, counted from the ledger).

The transports only say who is calling (:class:`PeerIdentity`); the core asks
the :class:`Caller` before it writes or pays anything.
"""

from __future__ import annotations

from service.policy.caller import Caller, CallerPolicy, CertificateName, Decision
from service.policy.identity import ANONYMOUS, PeerIdentity
from service.policy.names import dns_allowed, email_allowed, ip_allowed, uri_allowed

__all__ = [
    "ANONYMOUS",
    "Caller",
    "CallerPolicy",
    "CertificateName",
    "Decision",
    "PeerIdentity",
    "dns_allowed",
    "email_allowed",
    "ip_allowed",
    "uri_allowed",
]
