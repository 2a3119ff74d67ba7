"""``ObservedCalls``: the pipeline middleware that makes every call seen, on both transports alike.

Around each call of a service method it binds the call's request id (the
transport's, or a new one), opens the call's span (a child of the caller's
``traceparent``), and when the call ends counts it in ``cagw_calls_total`` and
``cagw_call_duration_seconds`` and writes its ``cagw.access`` line. A server
stream is one call from its start to its end, and counts in
``cagw_open_streams`` while open. It goes first in the chain, so the refusals of
later middlewares (caller policy, an open circuit) are seen like any answer.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from google.protobuf.message import Message
from google.rpc import code_pb2

from service.api.pipeline import CallContext, MethodSpec
from service.api.status import code_of
from service.observability.logs import log_access
from service.observability.metrics import GatewayMetrics
from service.observability.requestid import bound_request_id, new_request_id
from service.observability.tracing import Span, Tracing

__all__ = ["ObservedCalls"]

_CA_ID = re.compile(r"[A-Za-z0-9._~-]{1,64}")  # what the configuration allows as a CA id
CallNext = Callable[[Message, CallContext], Any]


def _ca_of(request: Message) -> str:
    """The CA a request names, when it names one that could be configured (it goes into log lines)."""
    ca_id = getattr(request, "ca_id", "")
    if not isinstance(ca_id, str) or not ca_id:
        return ""
    return ca_id if _CA_ID.fullmatch(ca_id) else "(invalid)"


class _Call:
    """One observed call, from its start to its end."""

    def __init__(self, observed: ObservedCalls, spec: MethodSpec, request: Message, call: CallContext) -> None:
        self.observed = observed
        self.spec = spec
        self.call = call if call.request_id else dataclasses.replace(call, request_id=new_request_id())
        self.ca = _ca_of(request)
        self.labels = (spec.service_name, spec.descriptor.name, call.transport)
        self.started = time.perf_counter()

    def span_attributes(self) -> dict[str, str]:
        attributes = {"rpc.system": "grpc", "rpc.service": self.spec.service_name,
                      "rpc.method": self.spec.descriptor.name, "cagw.transport": self.call.transport,
                      "cagw.request_id": self.call.request_id, "cagw.client": self.call.caller}
        if self.ca:
            attributes["cagw.ca"] = self.ca
        return attributes

    def finish(self, error: BaseException | None, span: Span) -> None:
        code = code_pb2.OK if error is None else code_of(error)
        name = code_pb2.Code.Name(code)
        duration = time.perf_counter() - self.started
        calls, durations = self.observed.series(self.labels, name)
        calls.inc()
        durations.observe(duration)
        span.set_attribute("rpc.grpc.status_code", code)
        if error is not None:
            span.fail(name)
        log_access(method=self.spec.full_name, transport=self.call.transport, client=self.call.caller,
                   ca=self.ca, status=name, duration=duration, peer=self.call.peer)


class ObservedCalls:
    """The middleware; see the module docstring."""

    def __init__(self, metrics: GatewayMetrics, tracing: Tracing) -> None:
        self.metrics = metrics
        self.tracing = tracing
        self._series: dict[tuple[tuple[str, str, str], str], tuple[Any, Any]] = {}

    def series(self, labels: tuple[str, str, str], code: str) -> tuple[Any, Any]:
        """The call counter and duration histogram of a method and code: looked up once each (the
        label sets are bounded: methods, transports and codes are fixed)."""
        found = self._series.get((labels, code))
        if found is None:
            found = self._series[(labels, code)] = (self.metrics.calls.labels(*labels, code),
                                                    self.metrics.call_duration.labels(*labels))
        return found

    def __call__(self, spec: MethodSpec, request: Message, call: CallContext, call_next: CallNext) -> Any:
        observed = _Call(self, spec, request, call)
        if spec.server_streaming:
            return self._stream(observed, request, call_next)
        return self._unary(observed, request, call_next)

    async def _unary(self, observed: _Call, request: Message, call_next: CallNext) -> Message:
        call = observed.call
        with bound_request_id(call.request_id), self.tracing.server_span(
                observed.spec.full_name.lstrip("/"), carrier=call.metadata,
                attributes=observed.span_attributes()) as span:
            try:
                response: Message = await call_next(request, call)
            except BaseException as exc:
                observed.finish(exc, span)
                raise
            observed.finish(None, span)
            return response

    async def _stream(self, observed: _Call, request: Message, call_next: CallNext) -> AsyncIterator[Message]:
        call = observed.call
        open_streams = self.metrics.open_streams.labels(*observed.labels)
        with bound_request_id(call.request_id), self.tracing.server_span(
                observed.spec.full_name.lstrip("/"), carrier=call.metadata,
                attributes=observed.span_attributes()) as span:
            open_streams.inc()
            stream: AsyncIterator[Message] = call_next(request, call)
            error: BaseException | None = None
            try:
                async for message in stream:
                    yield message
            except BaseException as exc:  # GeneratorExit too: the caller went away (CANCELLED)
                error = exc
                raise
            finally:
                open_streams.dec()
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    await aclose()
                observed.finish(error, span)
