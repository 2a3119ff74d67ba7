"""The ops listener: health for load balancers and metrics for scrapers, on its own port without client certificates.

Decision 9: when the API listeners demand mutual TLS, probes and scrapers still
need an address they can reach, so health lives here too (``GET /health``:
200 ``UP`` / 503 ``DOWN``), beside the Prometheus metrics (``GET /metrics``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from service.config import ListenSettings
from service.errors import ConfigError
from service.listeners import GuardedSite, ListenerGuard

__all__ = ["OpsServer"]

log = logging.getLogger(__name__)

# (body, content type) of a Prometheus scrape
Scrape = Callable[[], tuple[bytes, str]]


class OpsServer:
    """``GET /health`` and ``GET /metrics`` on ``ops.listen``; ``readiness`` is the gateway's one
    health source, ``metrics`` its scrape (without it, ``/metrics`` is not served)."""

    def __init__(self, listen: ListenSettings, *, readiness: Callable[[], bool],
                 metrics: Scrape | None = None) -> None:
        self._listen = listen
        self._readiness = readiness
        self._metrics = metrics
        self._runner: web.AppRunner | None = None
        self.guard = ListenerGuard("ops", listen.http_limits)
        self.port: int | None = None

    async def _health(self, request: web.Request) -> web.Response:
        up = self._readiness()
        return web.json_response({"status": "UP" if up else "DOWN"}, status=200 if up else 503)

    async def _scrape(self, request: web.Request) -> web.Response:
        assert self._metrics is not None
        body, content_type = self._metrics()
        # aiohttp refuses a content type with parameters in content_type=: set the header as it is.
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def start(self) -> int:
        app = web.Application(middlewares=[self.guard.middleware])
        app.router.add_get("/health", self._health)
        if self._metrics is not None:
            app.router.add_get("/metrics", self._scrape)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, **self.guard.handler_kwargs())
        await self._runner.setup()
        site = GuardedSite(self._runner, self._listen.host, self._listen.port, guard=self.guard)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise ConfigError(f"ops.listen: cannot listen on {self._listen.address}: {exc.strerror or exc}") from exc
        self.port = int(self._runner.addresses[0][1])
        log.info("ops (health, metrics) listening on %s:%d", self._listen.host, self.port)
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
