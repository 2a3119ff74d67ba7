"""One pipeline around the service methods, shared by the gRPC server and the REST shim.

REST calls the servicers in-process, so gRPC interceptors would never see
them. Everything cross-cutting (authorization, limits, logging, metrics) is
therefore a :class:`Middleware` here, run for both transports alike.

A servicer is any object with one async method per RPC, named like the RPC:
``async def Enroll(self, request, call) -> EnrollResponse`` for unary methods
and an async generator for server-streaming ones. :func:`methods_of` binds such
an object to the service descriptor of the contract.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from service.policy import Caller, PeerIdentity

__all__ = [
    "CallContext",
    "Middleware",
    "MethodSpec",
    "ServicePipeline",
    "methods_of",
]

log = logging.getLogger(__name__)

UnaryHandler = Callable[[Any, "CallContext"], Awaitable[Message]]
StreamHandler = Callable[[Any, "CallContext"], AsyncIterator[Message]]


@dataclass(frozen=True)
class CallContext:
    """What a service method may know about its call, whatever the transport."""

    method: str  # "/cagw.v1.EnrollmentService/Enroll"
    transport: Literal["grpc", "rest", "internal"]
    peer: str = ""
    caller: str = "anonymous"  # caller identity (client certificate subject once mTLS is on)
    identity: PeerIdentity = PeerIdentity()  # the verified client certificate, as the transport read it
    principal: Caller | None = None  # set by the caller gate (service.api.callers) from ``identity``
    deadline: float | None = None  # time.monotonic() value by which the caller wants an answer
    request_id: str = ""  # the transport's (service.observability.requestid); the pipeline makes one if empty
    # lower-case keys; may hold credentials (authorization, cookies), so never in a repr
    metadata: Mapping[str, str] = field(default_factory=dict, repr=False)

    def time_remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    @property
    def caller_object(self) -> Caller:
        """The caller the core checks: the gate's, or an unrestricted one for a pipeline without a
        gate (internal calls and unit tests of servicers)."""
        return self.principal if self.principal is not None else Caller.unrestricted(
            PeerIdentity(subject="" if self.caller == "anonymous" else self.caller))


@dataclass(frozen=True)
class MethodSpec:
    full_name: str  # "/cagw.v1.EnrollmentService/Enroll"
    descriptor: MethodDescriptor
    request_type: type[Message]
    response_type: type[Message]
    server_streaming: bool
    handler: Callable[..., Any]

    @property
    def service_name(self) -> str:
        return self.descriptor.containing_service.full_name


class Middleware(Protocol):
    """Runs around every call. ``call_next`` continues the chain; for a streaming method
    the result of ``call_next`` is an async iterator the middleware may wrap."""

    def __call__(self, spec: MethodSpec, request: Message, call: CallContext,
                 call_next: Callable[[Message, CallContext], Any]) -> Any: ...


def methods_of(servicer: object, service: ServiceDescriptor) -> list[MethodSpec]:
    """Bind a servicer's methods to a service descriptor; every RPC must be implemented."""
    specs: list[MethodSpec] = []
    for method in service.methods:
        handler = getattr(servicer, method.name, None)
        if handler is None:
            raise TypeError(f"{type(servicer).__name__} does not implement {service.full_name}.{method.name}")
        specs.append(MethodSpec(
            full_name=f"/{service.full_name}/{method.name}",
            descriptor=method,
            request_type=GetMessageClass(method.input_type),
            response_type=GetMessageClass(method.output_type),
            server_streaming=method.server_streaming,
            handler=handler,
        ))
    return specs


class ServicePipeline:
    """The table of service methods and the middleware chain around them."""

    def __init__(self, methods: Sequence[MethodSpec], middlewares: Sequence[Middleware] = ()) -> None:
        self._methods = {spec.full_name: spec for spec in methods}
        self._middlewares = tuple(middlewares)

    def methods(self) -> list[MethodSpec]:
        return list(self._methods.values())

    def method(self, full_name: str) -> MethodSpec | None:
        return self._methods.get(full_name)

    def services(self) -> list[ServiceDescriptor]:
        seen: dict[str, ServiceDescriptor] = {}
        for spec in self._methods.values():
            seen.setdefault(spec.service_name, spec.descriptor.containing_service)
        return list(seen.values())

    def _chain(self, spec: MethodSpec) -> Callable[[Message, CallContext], Any]:
        call: Callable[[Message, CallContext], Any] = spec.handler
        for middleware in reversed(self._middlewares):
            call = _bind(middleware, spec, call)
        return call

    async def call_unary(self, spec: MethodSpec, request: Message, call: CallContext) -> Message:
        if spec.server_streaming:
            raise RuntimeError(f"{spec.full_name} is server-streaming; use call_stream")
        result: Message = await self._chain(spec)(request, call)
        return result

    def call_stream(self, spec: MethodSpec, request: Message, call: CallContext) -> AsyncIterator[Message]:
        if not spec.server_streaming:
            raise RuntimeError(f"{spec.full_name} is unary; use call_unary")
        stream: AsyncIterator[Message] = self._chain(spec)(request, call)
        return stream


def _bind(middleware: Middleware, spec: MethodSpec,
          call_next: Callable[[Message, CallContext], Any]) -> Callable[[Message, CallContext], Any]:
    def bound(request: Message, call: CallContext) -> Any:
        return middleware(spec, request, call, call_next)

    return bound
