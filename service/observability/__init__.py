"""Watching the gateway run: metrics, structured logs, traces and request ids.

Modules, one job each:

- ``requestid``: the call's request id (taken from ``x-request-id`` or made) in a context variable;
- ``events``: the protocol the core calls for what only it knows (collect lateness, refusals);
- ``metrics``: every Prometheus family, in one registry per gateway;
- ``logs``: text or JSON lines, each with its request id; the access line;
- ``middleware``: the pipeline middleware that counts, times, traces and logs each call;
- ``connectors``: what is seen of the CAs (connector calls, HTTP exchanges, circuits);
- ``ledger``: the ledger with every operation timed, its order records watched;
- ``orders``: the unfinished orders as the ledger shows them (gauges, state-change lines);
- ``tracing``: spans, off by default; ``_otel`` is the OpenTelemetry side, imported only when on;
- ``gateway``: :class:`~service.observability.gateway.Observability`, the wiring of all of it.

The package root re-exports only the two small modules the transports and the core
import (``requestid``, ``events``), so importing it costs nothing and cannot loop back;
import ``Observability`` from ``service.observability.gateway``.
"""

from __future__ import annotations

from service.observability.events import NO_EVENTS, GatewayEvents, NoEvents
from service.observability.requestid import (
    REQUEST_ID_HEADER,
    accept_request_id,
    bound_request_id,
    current_request_id,
    new_request_id,
    request_id_of,
)

__all__ = [
    "NO_EVENTS",
    "REQUEST_ID_HEADER",
    "GatewayEvents",
    "NoEvents",
    "accept_request_id",
    "bound_request_id",
    "current_request_id",
    "new_request_id",
    "request_id_of",
]
