"""Hooks around each HTTP exchange a connector makes with its CA (as httpx's event hooks).

A connector that speaks HTTP offers :class:`ExchangeObservable`; the gateway
hands it :class:`ExchangeHooks` once, before the first call. The connector
calls every ``on_request`` hook right before it sends a request (a hook may ask
for headers, e.g. W3C ``traceparent``, and keep state in ``extensions``; it never
sees the request's own headers, which hold credentials) and every
``on_response`` hook once the exchange is over, answered or failed. Hooks are
synchronous and must not raise; a failing hook is logged and skipped, never the
call's failure.

``path`` may hold order ids and serials: it is for spans and debug lines, never
for a metric label.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = ["ExchangeHooks", "ExchangeObservable", "ExchangeOutcome", "OutgoingRequest"]

log = logging.getLogger(__name__)


@dataclass
class OutgoingRequest:
    ca_id: str
    method: str  # GET, POST, ...
    path: str  # the URL path, without the query
    attempt: int  # 1 for the first try, 2 for the first retry, ...
    # headers a hook wants sent (traceparent); hooks never see the request's own (credentials)
    add_headers: MutableMapping[str, str] = field(default_factory=dict)
    extensions: dict[str, object] = field(default_factory=dict)  # a hook's state until on_response


@dataclass(frozen=True)
class ExchangeOutcome:
    request: OutgoingRequest
    seconds: float
    status: int | None = None  # the HTTP status, when an answer came
    error: BaseException | None = None  # why no (complete) answer came


@dataclass(frozen=True)
class ExchangeHooks:
    on_request: tuple[Callable[[OutgoingRequest], None], ...] = ()
    on_response: tuple[Callable[[ExchangeOutcome], None], ...] = ()

    def __add__(self, other: ExchangeHooks) -> ExchangeHooks:
        return ExchangeHooks(on_request=self.on_request + other.on_request,
                             on_response=self.on_response + other.on_response)

    def request(self, request: OutgoingRequest) -> None:
        for hook in self.on_request:
            try:
                hook(request)
            except Exception:
                log.exception("CA %s: a request hook failed", request.ca_id)

    def response(self, outcome: ExchangeOutcome) -> None:
        for hook in self.on_response:
            try:
                hook(outcome)
            except Exception:
                log.exception("CA %s: a response hook failed", outcome.request.ca_id)


@runtime_checkable
class ExchangeObservable(Protocol):
    """Optional: a connector whose HTTP exchanges can be observed (metrics, traces)."""

    def observe_exchanges(self, hooks: ExchangeHooks) -> None: ...
