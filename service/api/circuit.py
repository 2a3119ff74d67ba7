"""``OpenCircuitGate``: new enrollments on a CA whose circuit is open fail at once, before anything is written.

An enrollment records its order before the CA hears of it. While the CA's
circuit is open (:mod:`service.connectors.breaker`) such an order could only
wait: the gate refuses the call instead with ``UNAVAILABLE`` and ``RetryInfo``
(the time until the next probe), so callers back off rather than pile up orders.
Half-open, the call goes through and its enroll is the probe. Every other
method is let through: look-ups answer from the ledger, and a call that needs
the CA meets the open circuit at the connector and fails just as fast.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from google.protobuf.message import Message

from service.api.pipeline import CallContext, MethodSpec
from service.connectors.breaker import CircuitBreaker, CircuitState
from service.errors import CircuitOpen

__all__ = ["ORDER_PLACING_METHODS", "OpenCircuitGate"]

# The methods that place a new order on the CA the request names (its ``ca_id``).
ORDER_PLACING_METHODS = frozenset({
    "/cagw.v1.EnrollmentService/Enroll",
    "/cagw.v1.EnrollmentService/EnrollAndWatch",
})


class OpenCircuitGate:
    """The middleware; ``breaker_of(ca_id)`` is the CA's breaker, or None for an unknown CA."""

    def __init__(self, breaker_of: Callable[[str], CircuitBreaker | None], *,
                 methods: Collection[str] = ORDER_PLACING_METHODS) -> None:
        self._breaker_of = breaker_of
        self._methods = frozenset(methods)

    def __call__(self, spec: MethodSpec, request: Message, call: CallContext,
                 call_next: Callable[[Message, CallContext], Any]) -> Any:
        if spec.full_name in self._methods:
            breaker = self._breaker_of(str(getattr(request, "ca_id", "")))
            if breaker is not None and breaker.state is CircuitState.OPEN:
                refusal = CircuitOpen(f"CA {breaker.name} is unavailable: its circuit is open after repeated "
                                      "failures; no order was placed, retry later", retry_after=breaker.retry_after(),
                                      metadata={"ca_id": breaker.name})
                return _refuse(refusal, streaming=spec.server_streaming)
        return call_next(request, call)


def _refuse(refusal: CircuitOpen, *, streaming: bool) -> Any:
    if streaming:
        async def stream() -> Any:
            raise refusal
            yield  # an async generator that fails at its first item, as a failing stream does

        return stream()

    async def unary() -> Any:
        raise refusal

    return unary()
