"""The gRPC transport: the pipeline's methods as a grpc.aio server, with health and reflection.

Errors leave through one place: :func:`service.api.status.status_from_error`
builds the ``google.rpc.Status`` and this adapter aborts the call with it, so
the details travel in ``grpc-status-details-bin``. Business code never calls
``context.abort``. Every call's request id (``x-request-id`` metadata, or a new
one) goes back in the initial metadata and into the error's ``ErrorInfo``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status
from google.protobuf.message import Message

from service.api.identity import caller_of
from service.api.pipeline import CallContext, MethodSpec, ServicePipeline
from service.api.status import status_from_error
from service.config import ListenSettings
from service.errors import ConfigError
from service.health import HealthState
from service.observability.requestid import REQUEST_ID_HEADER, bound_request_id, request_id_of

__all__ = ["GrpcServer"]

log = logging.getLogger(__name__)


def _call_context(spec: MethodSpec, context: grpc.aio.ServicerContext[Any, Any]) -> CallContext:
    remaining = context.time_remaining()
    metadata = {key.lower(): value for key, value in (context.invocation_metadata() or ())
                if isinstance(value, str)}
    pem = (context.auth_context() or {}).get("x509_pem_cert") or [None]
    return CallContext(
        method=spec.full_name,
        transport="grpc",
        peer=context.peer() or "",
        caller=caller_of(pem[0]),
        deadline=None if remaining is None else time.monotonic() + remaining,
        metadata=metadata,
        request_id=request_id_of(metadata),
    )


async def _begin(spec: MethodSpec, context: grpc.aio.ServicerContext[Any, Any]) -> CallContext:
    """The call's context; its request id goes back to the caller first, in the initial metadata."""
    call = _call_context(spec, context)
    await context.send_initial_metadata(((REQUEST_ID_HEADER, call.request_id),))
    return call


async def _abort(context: grpc.aio.ServicerContext[Any, Any], exc: Exception) -> None:
    await context.abort_with_status(rpc_status.to_status(status_from_error(exc)))


def _unary_handler(pipeline: ServicePipeline, spec: MethodSpec) -> grpc.RpcMethodHandler:
    async def handle(request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> Message | None:
        call = await _begin(spec, context)
        with bound_request_id(call.request_id):  # in the error's details too
            try:
                return await pipeline.call_unary(spec, request, call)
            except Exception as exc:  # every failure leaves as a google.rpc.Status
                await _abort(context, exc)
                return None

    return grpc.unary_unary_rpc_method_handler(
        handle, request_deserializer=spec.request_type.FromString,
        response_serializer=spec.response_type.SerializeToString)


def _stream_handler(pipeline: ServicePipeline, spec: MethodSpec) -> grpc.RpcMethodHandler:
    async def handle(request: Message, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Message]:
        call = await _begin(spec, context)
        with bound_request_id(call.request_id):
            stream = pipeline.call_stream(spec, request, call)
            try:
                async for message in stream:
                    yield message
            except Exception as exc:
                await _abort(context, exc)
            finally:
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    await aclose()

    return grpc.unary_stream_rpc_method_handler(
        handle, request_deserializer=spec.request_type.FromString,
        response_serializer=spec.response_type.SerializeToString)


class GrpcServer:
    """A grpc.aio server serving a pipeline, ``grpc.health.v1`` and server reflection."""

    def __init__(self, pipeline: ServicePipeline, listen: ListenSettings, *,
                 options: Sequence[tuple[str, Any]] = (), config_key: str = "grpc.listen") -> None:
        self._pipeline = pipeline
        self._listen = listen
        self._config_key = config_key  # named when the address cannot be bound
        # so_reuseport=0: a second gateway on the same port must fail loudly, not share it.
        self._server = grpc.aio.server(options=[("grpc.so_reuseport", 0), *options])
        self.health = health.aio.HealthServicer()
        self._health_updates: set[asyncio.Task[None]] = set()
        self.port: int | None = None
        handlers: list[grpc.GenericRpcHandler] = []
        for service in pipeline.services():
            table = {}
            for spec in pipeline.methods():
                if spec.service_name == service.full_name:
                    make = _stream_handler if spec.server_streaming else _unary_handler
                    table[spec.descriptor.name] = make(pipeline, spec)
            handlers.append(grpc.method_handlers_generic_handler(service.full_name, table))
        self._server.add_generic_rpc_handlers(tuple(handlers))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        self._service_names = [s.full_name for s in pipeline.services()]
        reflection.enable_server_reflection(
            (*self._service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), self._server)

    async def start(self) -> int:
        address = self._listen.address
        tls = self._listen.tls
        port: int
        try:
            if tls is None:
                port = self._server.add_insecure_port(address)
            else:
                credentials = grpc.ssl_server_credentials(
                    [(tls.key.read_bytes(), tls.cert.read_bytes())],
                    root_certificates=tls.client_ca.read_bytes() if tls.client_ca else None,
                    require_client_auth=tls.client_ca is not None)
                port = self._server.add_secure_port(address, credentials)
        except RuntimeError:  # grpcio raises this (it no longer returns 0) when the bind fails
            port = 0
        if port == 0:
            raise ConfigError(f"{self._config_key}: cannot listen on {address} (address in use or not available)")
        await self._server.start()
        self.port = port
        log.info("gRPC listening on %s:%d (%s)", self._listen.host, port, self._config_key)
        return port

    async def follow(self, health: HealthState) -> None:
        """Keep ``grpc.health.v1`` equal to the gateway's health (overall and per service)."""
        loop = asyncio.get_running_loop()

        def changed(serving: bool) -> None:
            task = loop.create_task(self._set_health(serving))
            self._health_updates.add(task)
            task.add_done_callback(self._health_updates.discard)

        await self._set_health(health.serving())
        health.watch(changed)

    async def _set_health(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", *self._service_names):
            await self.health.set(name, status)

    async def enter_graceful_shutdown(self) -> None:
        await asyncio.gather(*self._health_updates, return_exceptions=True)
        await self.health.enter_graceful_shutdown()

    async def stop(self, grace: float) -> None:
        await self._server.stop(grace)
