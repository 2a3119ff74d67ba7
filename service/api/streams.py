"""Bounds on watch streams: how many one caller, and the whole gateway, may have open at once.

A watch stream (``EnrollAndWatch``, ``WatchEnrollment`` and their REST NDJSON routes) holds a
task, a queue and a connection for as long as its order takes, so a caller opening thousands
of them could starve everyone else. :class:`StreamLimiter` is a pipeline middleware, so both
transports share one count. Callers are told apart by their identity string
(:func:`service.api.identity.caller_of`). A slot is taken when the stream starts and given back
when it ends, however it ends; a caller without open streams leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from google.protobuf.message import Message

from service.api.pipeline import CallContext, MethodSpec
from service.config import StreamLimits
from service.errors import LimitExceeded

__all__ = ["StreamLimiter", "TOO_MANY_STREAMS"]

TOO_MANY_STREAMS = "TOO_MANY_STREAMS"
_RETRY_AFTER = 5.0  # seconds: streams end when their orders do, which takes a while


class StreamLimiter:
    """Middleware counting open streams per caller and in all (``limits``)."""

    def __init__(self, limits: StreamLimits) -> None:
        self.limits = limits
        self._per_caller: dict[str, int] = {}
        self.open = 0

    def open_for(self, caller: str) -> int:
        return self._per_caller.get(caller, 0)

    @property
    def callers(self) -> int:
        """Callers with at least one open stream (the size of the per-caller table)."""
        return len(self._per_caller)

    def __call__(self, spec: MethodSpec, request: Message, call: CallContext,
                 call_next: Callable[[Message, CallContext], Any]) -> Any:
        if not spec.server_streaming:
            return call_next(request, call)
        return self._bounded(request, call, call_next)

    async def _bounded(self, request: Message, call: CallContext,
                       call_next: Callable[[Message, CallContext], Any]) -> AsyncIterator[Message]:
        self._acquire(call.caller)
        try:
            stream: AsyncIterator[Message] = call_next(request, call)
            async for message in stream:
                yield message
        finally:
            self._release(call.caller)

    def _acquire(self, caller: str) -> None:
        if self.open >= self.limits.max_total:
            raise LimitExceeded(f"the gateway has {self.open} watch streams open, its limit (streams.max-total); "
                                "retry later or ask with GetEnrollment", reason=TOO_MANY_STREAMS,
                                retry_after=_RETRY_AFTER, metadata={"limit": str(self.limits.max_total)})
        held = self._per_caller.get(caller, 0)
        if held >= self.limits.max_per_caller:
            raise LimitExceeded(f"this caller has {held} watch streams open, its limit (streams.max-per-caller); "
                                "close one, or ask with GetEnrollment", reason=TOO_MANY_STREAMS,
                                retry_after=_RETRY_AFTER, metadata={"limit": str(self.limits.max_per_caller)})
        self._per_caller[caller] = held + 1
        self.open += 1

    def _release(self, caller: str) -> None:
        self.open -= 1
        left = self._per_caller.get(caller, 1) - 1
        if left > 0:
            self._per_caller[caller] = left
        else:
            self._per_caller.pop(caller, None)  # nothing kept for a caller without streams
