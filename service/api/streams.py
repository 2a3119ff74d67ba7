"""Bounds on watch streams: how many one caller, and the whole gateway, may have open at once.

A watch stream (``EnrollAndWatch``, ``WatchEnrollment`` and their REST NDJSON routes) holds a
task, a queue and a connection for as long as its order takes, so a caller opening thousands
of them could starve everyone else. :class:`StreamLimiter` is a pipeline middleware, so both
transports share one count. Callers are told apart by their identity string
(:func:`service.api.identity.caller_of`). A slot is taken when the stream starts and given back
when it ends, however it ends; a caller without open streams leaves nothing behind.

``WatchCertificateEvents`` streams do not end with an order: a client may keep one open for
days. Beyond the bounds above they are counted per client (its ``clients`` name; without a
clients section, its identity), at most ``streams.max-event-watches-per-client`` or the client's
own ``limits.event-watches``, so one client's reconnect loop cannot take every slot.
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
EVENT_WATCH_METHOD = "/cagw.v1.CertificateInventoryService/WatchCertificateEvents"
_RETRY_AFTER = 5.0  # seconds: streams end when their orders do, which takes a while


class StreamLimiter:
    """Middleware counting open streams per caller and in all (``limits``)."""

    def __init__(self, limits: StreamLimits) -> None:
        self.limits = limits
        self._per_caller: dict[str, int] = {}
        self._event_watches: dict[str, int] = {}  # per client, WatchCertificateEvents only
        self.open = 0

    def open_for(self, caller: str) -> int:
        return self._per_caller.get(caller, 0)

    def event_watches_for(self, client: str) -> int:
        return self._event_watches.get(client, 0)

    @property
    def callers(self) -> int:
        """Callers with at least one open stream (the size of the per-caller table)."""
        return len(self._per_caller)

    def __call__(self, spec: MethodSpec, request: Message, call: CallContext,
                 call_next: Callable[[Message, CallContext], Any]) -> Any:
        if not spec.server_streaming:
            return call_next(request, call)
        return self._bounded(request, call, call_next, events=spec.full_name == EVENT_WATCH_METHOD)

    async def _bounded(self, request: Message, call: CallContext,
                       call_next: Callable[[Message, CallContext], Any], *, events: bool) -> AsyncIterator[Message]:
        watch = _event_watcher(call) if events else None
        if watch is not None:
            self._check_event_watches(*watch)
        self._acquire(call.caller)
        if watch is not None:
            self._event_watches[watch[0]] = self._event_watches.get(watch[0], 0) + 1
        try:
            stream: AsyncIterator[Message] = call_next(request, call)
            async for message in stream:
                yield message
        finally:
            self._release(call.caller)
            if watch is not None:
                _take_one(self._event_watches, watch[0])

    def _check_event_watches(self, client: str, own_limit: int | None) -> None:
        limit = own_limit if own_limit is not None else self.limits.max_event_watches_per_client
        held = self._event_watches.get(client, 0)
        if held >= limit:
            source = "its limits.event-watches" if own_limit is not None else "streams.max-event-watches-per-client"
            raise LimitExceeded(f"this client has {held} certificate event streams open, its limit ({source}); "
                                "close one, or resume a closed one with `after`", reason=TOO_MANY_STREAMS,
                                retry_after=_RETRY_AFTER, metadata={"limit": str(limit)})

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
        _take_one(self._per_caller, caller)


def _take_one(counts: dict[str, int], key: str) -> None:
    left = counts.get(key, 1) - 1
    if left > 0:
        counts[key] = left
    else:
        counts.pop(key, None)  # nothing kept for a caller without streams


def _event_watcher(call: CallContext) -> tuple[str, int | None]:
    """Whose event streams a call counts among (the client's name, else the caller's identity),
    and that client's own limit, if it has one."""
    principal = call.principal
    if principal is not None and principal.client is not None:
        return f"client:{principal.client.name}", principal.client.limits.event_watches
    return f"caller:{call.caller}", None
