"""``CallerGate``: every call's verified identity becomes the :class:`~service.policy.Caller` the core checks.

The first thing after observation in the pipeline, for both transports: a
caller no client matches is refused here (``PERMISSION_DENIED``, or
``UNAUTHENTICATED`` without a certificate), audited, before any method runs.
What the caller may do on a CA, with which names and on whose certificates is
decided by the core (the enrollment engine, the certificate manager), which
gets the caller in ``CallContext.principal``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message

from service.api.pipeline import CallContext, MethodSpec
from service.errors import CallerDenied
from service.policy import Caller, CallerPolicy
from service.policy.audit import AuditTrail

__all__ = ["CallerGate"]

log = logging.getLogger(__name__)


class CallerGate:
    """The middleware. ``audit`` records the refusals of unknown callers (None: not recorded)."""

    def __init__(self, policy: CallerPolicy, audit: AuditTrail | None = None) -> None:
        self._policy = policy
        self._audit = audit

    def __call__(self, spec: MethodSpec, request: Message, call: CallContext,
                 call_next: Callable[[Message, CallContext], Any]) -> Any:
        try:
            caller = self._policy.resolve(call.identity)
        except CallerDenied as refusal:
            return self._refuse(spec, request, call, refusal)
        return call_next(request, dataclasses.replace(call, principal=caller))

    def _refuse(self, spec: MethodSpec, request: Message, call: CallContext, refusal: CallerDenied) -> Any:
        ca_id = str(getattr(request, "ca_id", ""))[:64]
        method = spec.full_name.rsplit("/", 1)[-1]
        log.warning("refused %s from %s (%s): %s", method, call.identity.text[:200], call.peer, refusal.reason)

        async def refuse() -> None:
            if self._audit is not None:
                await self._audit.record(Caller(identity=call.identity, enforced=True), ca_id=ca_id,
                                         action=method, target=ca_id or "-", outcome="refused",
                                         detail=f"{refusal.reason}: {refusal.message}", refusals=(refusal,))
            raise refusal

        if spec.server_streaming:
            async def stream() -> Any:
                await refuse()
                yield  # an async generator that fails at its first item, as a failing stream does

            return stream()
        return refuse()
