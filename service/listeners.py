"""Limits of the aiohttp listeners (REST and ops): slow heads, idle connections, too many connections.

aiohttp closes a connection that sends no complete request head within its
keep-alive timeout, counted from the connection's start and from the end of each
answer (``idle-timeout``). This module adds what aiohttp lacks:

* ``header-timeout``: once the first byte of a request arrives, its head must be
  complete within this time (a client trickling one header byte at a time is cut off);
* the TLS handshake must finish within ``header-timeout`` too;
* ``max-connections``: beyond it a new connection gets ``503`` and is closed
  before any request is read;
* ``body-timeout`` is applied where bodies are read (:func:`service.rest.transcode.read_body`).

Each connection's protocol is wrapped (:class:`_GuardedConnection`): it watches
the bytes arriving and the start and end of each request (seen by
:meth:`ListenerGuard.middleware`), and aborts the transport when a deadline passes.
Repeated refusals and timeouts are logged a few times a minute, not once per connection.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from service.config import HttpLimits

__all__ = ["GuardedSite", "ListenerGuard", "RateLimitedLog", "limit_loop_error_logs"]

log = logging.getLogger(__name__)

_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 1\r\n"
         b"Connection: close\r\nContent-Length: 41\r\n\r\ntoo many connections; retry in a moment\r\n")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RateLimitedLog:
    """At most ``burst`` lines per ``period`` seconds for one kind of event; the next line after a
    quiet spell says how many were left out."""

    def __init__(self, logger: logging.Logger, *, burst: int = 5, period: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self._burst = burst
        self._period = period
        self._clock = clock
        self._windows: dict[str, tuple[float, int, int]] = {}  # kind -> (window start, logged, left out)

    def warning(self, kind: str, message: str, *args: object, exc_info: BaseException | None = None) -> bool:
        """Log ``message`` unless ``kind`` was logged ``burst`` times in this period; True when logged."""
        now = self._clock()
        start, logged, skipped = self._windows.get(kind, (now, 0, 0))
        if now - start >= self._period:
            start, logged = now, 0
        if logged >= self._burst:
            self._windows[kind] = (start, logged, skipped + 1)
            return False
        if skipped:
            message += f" ({skipped} more like it were not logged)"
        self._logger.warning(message, *args, exc_info=exc_info)
        self._windows[kind] = (start, logged + 1, 0)
        return True


class ListenerGuard:
    """The limits of one listener (``name`` appears in its log lines) and its open connections."""

    def __init__(self, name: str, limits: HttpLimits) -> None:
        self.name = name
        self.limits = limits
        self.open = 0
        self.refused = 0
        self.timed_out = 0
        self._by_handler: dict[RequestHandler, _GuardedConnection] = {}
        self._log = RateLimitedLog(log)

    def handler_kwargs(self) -> dict[str, Any]:
        """What the aiohttp runner needs for these limits (its keep-alive is the idle timeout)."""
        return {"keepalive_timeout": self.limits.idle_timeout}

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Marks the request's head as complete (its deadline ends) until the answer is done."""
        connection = self._by_handler.get(request.protocol)
        if connection is not None:
            connection.request_started()
        try:
            return await handler(request)
        finally:
            if connection is not None:
                connection.request_finished()

    def admit(self, connection: _GuardedConnection) -> bool:
        """Count a new connection in, or refuse it (False) at ``max-connections``."""
        if self.open >= self.limits.max_connections:
            self.refused += 1
            self._log.warning(f"{self.name}:refused", "%s listener: %d connections open (max-connections); "
                             "refusing new ones", self.name, self.open)
            return False
        self.open += 1
        self._by_handler[connection.inner] = connection
        return True

    def release(self, connection: _GuardedConnection) -> None:
        self.open -= 1
        self._by_handler.pop(connection.inner, None)

    def expired(self, what: str) -> None:
        self.timed_out += 1
        self._log.warning(f"{self.name}:{what}", "%s listener: closed a connection whose %s did not arrive in time",
                         self.name, what)


class _GuardedConnection(asyncio.Protocol):
    """One connection: the aiohttp protocol inside, deadlines and the connection count around it."""

    def __init__(self, inner: RequestHandler, guard: ListenerGuard, loop: asyncio.AbstractEventLoop) -> None:
        self.inner = inner
        self._guard = guard
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._admitted = False
        self._in_request = False
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        if not self._guard.admit(self):
            transport.write(_BUSY)
            transport.close()
            return
        self._admitted = True
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return
        if self._head_timer is None and not self._in_request:
            self._head_timer = self._loop.call_later(self._guard.limits.header_timeout, self._head_expired)
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._admitted:
            self.inner.eof_received()
        return None  # close the transport, as aiohttp's own protocol does

    def pause_writing(self) -> None:
        if self._admitted:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self._admitted:
            self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        if self._admitted:
            self._admitted = False
            self._guard.release(self)
            self.inner.connection_lost(exc)

    def request_started(self) -> None:
        self._cancel_head_timer()
        self._in_request = True

    def request_finished(self) -> None:
        self._in_request = False

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if not self._in_request and self._transport is not None:
            self._guard.expired("request head")
            self._transport.abort()


class GuardedSite(web.BaseSite):
    """A TCP site whose connections are guarded by ``guard`` (and whose TLS handshakes are bounded).

    Example::

        guard = ListenerGuard("REST", limits)
        runner = web.AppRunner(app, **guard.handler_kwargs())
        await runner.setup()
        site = GuardedSite(runner, "127.0.0.1", 0, guard=guard)
        await site.start()
    """

    __slots__ = ("_host", "_port", "_guard")

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *, guard: ListenerGuard,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(runner, ssl_context=ssl_context)
        self._host = host
        self._port = port
        self._guard = guard

    @property
    def name(self) -> str:
        return f"{'https' if self._ssl_context else 'http'}://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None

        def connection() -> _GuardedConnection:
            return _GuardedConnection(server(), self._guard, loop)

        self._server = await loop.create_server(
            connection, self._host, self._port, ssl=self._ssl_context, backlog=self._backlog,
            reuse_port=False,
            ssl_handshake_timeout=self._guard.limits.header_timeout if self._ssl_context else None)


def limit_loop_error_logs(loop: asyncio.AbstractEventLoop, *, burst: int = 5, period: float = 60.0,
                          clock: Callable[[], float] = time.monotonic) -> None:
    """Log the event loop's repeated errors a few times a period, not once each.

    When a process runs out of file descriptors, asyncio fails every ``accept()`` of a listener
    with ``socket.accept() out of system resource`` and retries a second later; only that listener
    waits (calls to the CA and the ledger go on). Its default handler logs a traceback each time:
    here each kind of message is logged ``burst`` times per ``period``, then counted.
    """
    limiter = RateLimitedLog(logging.getLogger("service.loop"), burst=burst, period=period, clock=clock)

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", "unhandled error in the event loop"))
        exc = context.get("exception")
        limiter.warning(message, "%s", message, exc_info=exc if isinstance(exc, BaseException) else None)

    loop.set_exception_handler(handle)
