"""What a tracer offers the gateway, whether it exports spans or not: the shared protocols of
:mod:`service.observability.tracing` (off) and :mod:`service.observability._otel` (on)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Protocol

from service.connectors.hooks import ExchangeOutcome, OutgoingRequest

__all__ = ["Attributes", "Span", "Tracing"]

Attributes = Mapping[str, str | int | float | bool]


class Span(Protocol):
    def set_attribute(self, key: str, value: str | int | float | bool) -> None: ...

    def fail(self, description: str) -> None:
        """Mark the span failed (its status), with a short safe description."""


class Tracing(Protocol):
    @property
    def enabled(self) -> bool: ...

    def server_span(self, name: str, *, carrier: Mapping[str, str],
                    attributes: Attributes) -> contextlib.AbstractContextManager[Span]:
        """The span of one call, current until the block ends; ``carrier`` may hold ``traceparent``."""

    def span(self, name: str, *, attributes: Attributes) -> contextlib.AbstractContextManager[Span]:
        """A child of the current span, current until the block ends."""

    def exchange_started(self, request: OutgoingRequest) -> None:
        """Start the client span of an HTTP exchange and ask for its ``traceparent`` header."""

    def exchange_ended(self, outcome: ExchangeOutcome) -> None: ...

    async def shutdown(self) -> None:
        """Send what is buffered and stop exporting."""
