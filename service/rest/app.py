"""The REST shim as an aiohttp application, and a small server around it.

One catch-all aiohttp route hands every request to :class:`_Dispatcher`, which
matches the raw path against the routes compiled from the annotations,
transcodes the request, calls the pipeline in-process and renders the answer.
Every failure leaves as a CAGW ``ErrorResponse`` with a status from the one
table in :mod:`service.rest.status_table`; nothing unhandled reaches aiohttp,
so no request ends in aiohttp's bare 500 or a stack trace.

Two fixed endpoints sit beside the contract's routes under the context path:
``GET /health`` (``{"status": "UP"}`` / 503 ``DOWN``, for load balancers) and
``GET /openapi.json`` (the document built from the same descriptors).
Every answer carries the call's ``X-Request-Id`` (the caller's, or a new one).
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web
from google.protobuf.message import Message
from google.rpc import code_pb2, status_pb2

from service.api.identity import caller_of
from service.api.pipeline import CallContext, ServicePipeline
from service.api.status import status_from_error
from service.config import ListenSettings, RestSettings
from service.errors import ConfigError
from service.keystores import listener_ssl_context
from service.observability.requestid import bound_request_id, request_id_of
from service.rest.openapi import build_openapi
from service.rest.refusals import Refusal
from service.rest.render import JsonMarshaler, response_type_of, retry_after_seconds
from service.rest.routes import Binding, RouteTable
from service.rest.status_table import StatusPolicy
from service.rest.transcode import build_request, read_body

__all__ = [
    "HEALTH_PATH",
    "OPENAPI_KEY",
    "OPENAPI_PATH",
    "ROUTES_KEY",
    "RestServer",
    "build_rest_app",
]

log = logging.getLogger(__name__)

HEALTH_PATH = "/health"
OPENAPI_PATH = "/openapi.json"
REQUEST_ID_KEY = web.RequestKey("cagw_request_id", str)  # the request's storage slot for its request id
MAX_QUERY_FIELDS = 100

StatusOf = Callable[[Exception], status_pb2.Status]

ROUTES_KEY = web.AppKey("cagw_rest_routes", RouteTable)
OPENAPI_KEY = web.AppKey("cagw_rest_openapi", dict)


@dataclass(frozen=True)
class _Endpoint:
    binding: Binding
    policy: StatusPolicy


def _split_target(request: web.Request) -> tuple[str, str]:
    """Raw (still percent-encoded) path and query of the request target."""
    target = request.raw_path
    if not target.startswith("/"):  # absolute-form target (a proxy-style request line)
        parts = urlsplit(target)
        return parts.path or "/", parts.query
    path, _, query = target.partition("?")
    return path.partition("#")[0], query.partition("#")[0]


def _caller(request: web.Request) -> str:
    """The verified client certificate's subject, when the listener asked for one."""
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport is not None else None
    return caller_of(ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None)


def _peer(request: web.Request) -> str:
    transport = request.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = str(peer[0]), peer[1]
        return f"ipv6:[{host}]:{port}" if ":" in host else f"ipv4:{host}:{port}"  # grpc's peer format
    return str(peer or "")


def _metadata(request: web.Request) -> dict[str, str]:
    metadata: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        metadata[key] = f"{metadata[key]}, {value}" if key in metadata else value
    return metadata


async def _close(stream: AsyncIterator[Message], method: str) -> None:
    """Close a method's stream (its ``finally`` blocks run now, not at garbage collection)."""
    aclose = getattr(stream, "aclose", None)
    if aclose is None:
        return
    try:
        await aclose()
    except Exception:
        log.exception("closing the stream of %s failed", method)


def _internal(message: str) -> status_pb2.Status:
    return status_pb2.Status(code=code_pb2.INTERNAL, message=message)


class _Dispatcher:
    """Routes, transcodes, calls and renders; one instance per application."""

    def __init__(self, pipeline: ServicePipeline, settings: RestSettings,
                 readiness: Callable[[], bool] | None, status_of: StatusOf) -> None:
        self.pipeline = pipeline
        self.status_of = status_of
        self.settings = settings
        self.readiness = readiness
        self.marshaler = JsonMarshaler()
        self.context_path = settings.context_path.rstrip("/")
        self.routes = RouteTable.from_methods(pipeline.methods(), context_path=self.context_path)
        self.endpoints: dict[Binding, _Endpoint] = {}
        for binding in self.routes.bindings:
            response_type_of(binding.spec.descriptor.output_type)  # fails start-up on a `type` clash
            self.endpoints[binding] = _Endpoint(binding, StatusPolicy(binding.spec.descriptor,
                                                                      settings.enrollment_status))
        rules = {e.binding.spec.full_name: e.policy.rule for e in self.endpoints.values()}
        self.openapi = build_openapi(self.routes.bindings, context_path=self.context_path, rules=rules,
                                     health_path=self.context_path + HEALTH_PATH)
        self._openapi_body = json.dumps(self.openapi).encode()
        self._fixed: dict[str, Callable[[], web.Response]] = {
            self.context_path + HEALTH_PATH: self._health,
            self.context_path + OPENAPI_PATH: self._openapi,
        }

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The aiohttp handler: never lets an exception reach aiohttp's bare 500."""
        request[REQUEST_ID_KEY] = request_id = request_id_of(request.headers)
        with bound_request_id(request_id):  # every log line and error of the call carries it
            try:
                return await self._handle(request)
            except Exception:
                log.exception("REST shim failed on %s %s", request.method, request.raw_path[:200])
                return self._error(_internal("internal error; see the gateway log"), 500)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            raw_path, raw_query = _split_target(request)
            fixed = self._fixed.get(raw_path)
            if fixed is not None:
                if request.method not in ("GET", "HEAD"):
                    raise Refusal.method_not_allowed(request.method, ["GET"])
                return fixed()
            match = self.routes.resolve(request.method, raw_path)
            binding = match.binding
            body = await read_body(request, limit=self.settings.max_body_bytes) if binding.body else b""
            try:
                query = parse_qsl(raw_query, keep_blank_values=True, errors="strict",
                                  max_num_fields=MAX_QUERY_FIELDS)
            except (UnicodeDecodeError, ValueError) as exc:
                raise Refusal.invalid(f"unreadable query string: {exc}") from exc
            message = build_request(binding, path_values=match.path_values, query=query, body=body,
                                    headers=request.headers)
        except Refusal as refusal:
            return self._error(refusal.status(), refusal.http_status, refusal.headers)
        endpoint = self.endpoints[binding]
        call = CallContext(method=binding.spec.full_name, transport="rest", peer=_peer(request),
                           caller=_caller(request), metadata=_metadata(request), request_id=request[REQUEST_ID_KEY])
        if binding.spec.server_streaming:
            return await self._stream(request, endpoint, message, call)
        return await self._unary(endpoint, message, call)

    # -- answers -------------------------------------------------------------------------

    def _error(self, status: status_pb2.Status, http_status: int,
               headers: Mapping[str, str] | None = None) -> web.Response:
        extra = dict(headers or {})
        if http_status in (429, 503):
            delay = retry_after_seconds(status)
            if delay is not None:
                extra["Retry-After"] = str(delay)
        return web.Response(body=self.marshaler.error_body(status), status=http_status,
                            content_type=self.marshaler.content_type, headers=extra)

    def _failure(self, endpoint: _Endpoint, exc: Exception) -> web.Response:
        status = self.status_of(exc)  # status_from_error logs unexpected exceptions, once
        return self._error(status, endpoint.policy.failure(status.code))

    async def _unary(self, endpoint: _Endpoint, message: Message, call: CallContext) -> web.Response:
        try:
            response = await self.pipeline.call_unary(endpoint.binding.spec, message, call)
        except Exception as exc:  # every failure leaves as an ErrorResponse; cancellation propagates
            return self._failure(endpoint, exc)
        try:
            body = self.marshaler.body(response, response_body=endpoint.binding.response_body)
            http_status = endpoint.policy.success(response)
        except Exception:
            log.exception("failed to render the response of %s", call.method)
            return self._error(_internal("failed to render the response"), 500)
        return web.Response(body=body, status=http_status, content_type=self.marshaler.content_type)

    async def _stream(self, request: web.Request, endpoint: _Endpoint, message: Message,
                      call: CallContext) -> web.StreamResponse:
        """NDJSON: one ``{"result": …}`` line per message, written and flushed as it comes.

        An error before the first line is a normal error answer; after it, a
        final ``{"error": <Status>}`` line, since the 200 is already sent. A client
        that goes away cancels the handler (``handler_cancellation``) or fails the
        next write; either way the stream is closed.
        """
        response_body = endpoint.binding.response_body
        try:
            stream = self.pipeline.call_stream(endpoint.binding.spec, message, call)
        except Exception as exc:
            return self._failure(endpoint, exc)
        try:
            try:
                first: Message | None = await anext(stream)
            except StopAsyncIteration:
                first = None
            except Exception as exc:
                return self._failure(endpoint, exc)
            try:
                line = self.marshaler.stream_line(first, response_body=response_body) if first is not None else b""
            except Exception:
                log.exception("failed to render a stream message of %s", call.method)
                return self._error(_internal("failed to render the response"), 500)
            answer = web.StreamResponse(status=200, headers={
                "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
                "Cache-Control": "no-store",
            })
            answer.content_type = self.marshaler.stream_content_type
            await answer.prepare(request)
            final = False
            while line:
                try:
                    await answer.write(line)  # aiohttp hands each write to the transport: one flush per line
                except ConnectionError:
                    return answer  # the client went away
                if final:
                    break
                line, final = await self._next_line(stream, response_body, call.method)
            try:
                await answer.write_eof()
            except ConnectionError:
                pass
            return answer
        finally:
            await _close(stream, call.method)

    async def _next_line(self, stream: AsyncIterator[Message], response_body: str,
                         method: str) -> tuple[bytes, bool]:
        """The next NDJSON line and whether it is the last: ``(b"", True)`` at the end,
        ``(error line, True)`` when the stream failed."""
        try:
            item = await anext(stream)
        except StopAsyncIteration:
            return b"", True
        except Exception as exc:
            return self.marshaler.stream_error_line(self.status_of(exc)), True
        try:
            return self.marshaler.stream_line(item, response_body=response_body), False
        except Exception:
            log.exception("failed to render a stream message of %s", method)
            return self.marshaler.stream_error_line(_internal("failed to render the response")), True

    # -- fixed endpoints -----------------------------------------------------------------

    def _health(self) -> web.Response:
        try:
            ready = self.readiness is None or bool(self.readiness())
        except Exception:
            log.exception("readiness check failed")
            ready = False
        return web.json_response({"status": "UP" if ready else "DOWN"}, status=200 if ready else 503)

    def _openapi(self) -> web.Response:
        return web.Response(body=self._openapi_body, content_type="application/json")


def build_rest_app(pipeline: ServicePipeline, settings: RestSettings, *,
                   readiness: Callable[[], bool] | None = None,
                   status_of: StatusOf = status_from_error) -> web.Application:
    """The REST shim for every annotated method of ``pipeline``, under ``settings.context_path``.

    Routes, the status rules and the OpenAPI document are compiled here, so a
    broken annotation fails at start-up (``RouteError`` / ``ValueError``).
    ``app[ROUTES_KEY]`` and ``app[OPENAPI_KEY]`` expose them to tests and tools.
    ``status_of`` turns a method's exception into its ``google.rpc.Status``
    (grpc-gateway's replaceable error hook; the default is the one the gRPC
    transport uses, so both transports answer alike).
    Serve it with ``handler_cancellation=True`` (as :class:`RestServer` does) so
    a client that leaves an idle NDJSON stream ends it at once.

    Example::

        app = build_rest_app(pipeline, config.rest, readiness=lambda: tracker.ready)
    """
    dispatcher = _Dispatcher(pipeline, settings, readiness, status_of)
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[ROUTES_KEY] = dispatcher.routes
    app[OPENAPI_KEY] = dispatcher.openapi
    # One catch-all: matching needs the raw path, the `:verb` rule and 404 kept apart from 405.
    app.router.add_route("*", r"/{tail:[\s\S]*}", dispatcher.handle)
    app.on_response_prepare.append(_send_request_id)
    return app


async def _send_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer (streams, errors and the fixed endpoints too) names the call's request id."""
    request_id = request.get(REQUEST_ID_KEY)
    if request_id is not None:
        response.headers["X-Request-Id"] = request_id


def _server_ssl_context(listen: ListenSettings) -> ssl.SSLContext | None:
    tls = listen.tls
    if tls is None:
        return None
    # Same rule as the gRPC listener: a client CA means a client certificate is required.
    return listener_ssl_context(tls.cert, tls.key, client_ca=tls.client_ca, client_auth="required")


class RestServer:
    """The REST application on one listener (``settings.listen``; port 0 picks a free port).

    Example::

        server = RestServer(pipeline, config.rest)
        port = await server.start()
        ...
        await server.stop()
    """

    def __init__(self, pipeline: ServicePipeline, settings: RestSettings, *,
                 readiness: Callable[[], bool] | None = None, ssl_context: ssl.SSLContext | None = None,
                 shutdown_timeout: float = 5.0, status_of: StatusOf = status_from_error) -> None:
        self.settings = settings
        self.app = build_rest_app(pipeline, settings, readiness=readiness, status_of=status_of)
        self._ssl = ssl_context if ssl_context is not None else _server_ssl_context(settings.listen)
        self._shutdown_timeout = shutdown_timeout
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        """Base URL including the context path, e.g. ``http://127.0.0.1:8444/cagw``."""
        if self.port is None:
            raise RuntimeError("RestServer is not started")
        host = self.settings.listen.host
        host = f"[{host}]" if ":" in host else host
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://{host}:{self.port}{self.settings.context_path.rstrip('/')}"

    async def start(self) -> int:
        if self._runner is not None:
            raise RuntimeError("RestServer already started")
        # handler_cancellation: a caller that leaves cancels its handler, as grpc.aio does, so an
        # idle NDJSON stream ends at once instead of at its next write.
        # No aiohttp access log: its request line carries the query string, which may hold a secret
        # (GetEnrollment's protection.password); the gateway writes its own access line per call.
        runner = web.AppRunner(self.app, handler_cancellation=True, shutdown_timeout=self._shutdown_timeout,
                               access_log=None)
        await runner.setup()
        listen = self.settings.listen
        site = web.TCPSite(runner, listen.host, listen.port, ssl_context=self._ssl, reuse_port=False)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(f"rest.listen: cannot listen on {listen.address}: {exc.strerror or exc}") from exc
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        address = runner.addresses[0]
        self.port = int(address[1])
        log.info("REST listening on %s", self.url)
        return self.port

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
