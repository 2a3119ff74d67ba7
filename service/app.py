"""Wiring and lifecycle: build the CAs, the ledger, the engine and both servers; stop in order.

Each CA's connector sits behind its circuit breaker and the ledger is observed
(:class:`~service.observability.gateway.Observability`), its unwritable
moments watched (:class:`~service.ledger_watch.LedgerWatch`); the pipeline's
first middleware counts, times, traces and logs every call, its last refuses
new enrollments on a CA whose circuit is open. The operator's
``OrderAdminService`` has a pipeline and a gRPC server of its own, on
``admin.listen`` (loopback only).

Shutdown order (SIGTERM/SIGINT through ``loop.add_signal_handler``): health
NOT_SERVING → end open watch streams → ``grpc server.stop(grace)`` (in-flight
calls finish) → the admin listener → REST listener → the engine's order tasks →
each connector's HTTP session → the ledger → the last spans out → the embedded
simulator, if any.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field

from cagw.v1 import (
    admin_pb2,
    certificate_authorities_pb2,
    certificates_pb2,
    enrollments_pb2,
    inventory_pb2,
    subjects_pb2,
)

from service.api.admin import OrderAdminApi
from service.api.certificate_authorities import CertificateAuthorityApi
from service.api.callers import CallerGate
from service.api.certificates import CertificateApi
from service.api.circuit import OpenCircuitGate
from service.api.enrollments import EnrollmentApi
from service.api.grpc_server import GrpcServer
from service.api.inventory import InventoryApi
from service.api.pipeline import MethodSpec, Middleware, ServicePipeline, methods_of
from service.api.streams import StreamLimiter
from service.listeners import limit_loop_error_logs
from service.api.subjects import SubjectApi
from service.authorities import CARegistry, ManagedCA
from service.catalog import ProfileCatalog
from service.certificates import CertificateManager
from service.config import Config
from service.connectors.base import Connector
from service.connectors.registry import create_connector
from service.enrollment.engine import EnrollmentEngine
from service.health import HealthState
from service.ledger import Ledger, open_ledger
from service.ledger_watch import LedgerWatch
from service.lifecycle import Inventory
from service.lifecycle.autorenew import AutoRenewal
from service.lifecycle.expiry import ExpiryNotices
from service.lifecycle.feed import CertificateEventStream
from service.lifecycle.sync import DriftSync
from service.lifecycle.webhooks import WebhookDispatcher
from service.observability.certificates import CertificateGauges
from service.observability.gateway import Observability
from service.policy import CallerPolicy
from service.policy.audit import AuditTrail
from service.ops import OpsServer
from service.rest import RestServer
from service.webhook_sender import WebhookSender

__all__ = ["Gateway", "build_connectors"]

log = logging.getLogger(__name__)


def build_connectors(config: Config) -> list[tuple[str, Connector]]:
    """Create (not open) every CA's connector: this is where bad key stores stop start-up."""
    return [(ca.id, create_connector(ca)) for ca in config.managed_cas]


@dataclass
class Gateway:
    """The running gateway. ``start`` then ``stop``; ``serve_forever`` waits for a signal."""

    config: Config
    middlewares: Sequence[Middleware] = ()
    observability: Observability | None = None  # built from the configuration when not given
    grpc: GrpcServer | None = field(default=None, init=False)
    admin: GrpcServer | None = field(default=None, init=False)  # OrderAdminService on admin.listen
    rest: RestServer | None = field(default=None, init=False)
    ops: OpsServer | None = field(default=None, init=False)
    cas: CARegistry | None = field(default=None, init=False)
    ledger: Ledger | None = field(default=None, init=False)
    engine: EnrollmentEngine | None = field(default=None, init=False)
    pipeline: ServicePipeline | None = field(default=None, init=False)
    streams: StreamLimiter | None = field(default=None, init=False)
    certificate_gauges: CertificateGauges | None = field(default=None, init=False)
    webhooks: WebhookDispatcher | None = field(default=None, init=False)
    drift_sync: DriftSync | None = field(default=None, init=False)
    auto_renewal: AutoRenewal | None = field(default=None, init=False)
    expiry_notices: ExpiryNotices | None = field(default=None, init=False)
    _webhook_sender: WebhookSender | None = field(default=None, init=False)
    health: HealthState = field(default_factory=HealthState, init=False)
    _connectors: list[Connector] = field(default_factory=list, init=False)
    _ledger_watch: LedgerWatch | None = field(default=None, init=False)
    _background: list[asyncio.Task[None]] = field(default_factory=list, init=False)
    _stopped: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _stopping: asyncio.Future[None] | None = field(default=None, init=False)

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        if self.observability is None:
            self.observability = Observability.from_config(self.config)
        observability = self.observability
        self._ledger_watch = LedgerWatch(self.health, on_recovered=self._take_up_orders)
        self.ledger = observability.observe_ledger(await open_ledger(self.config.ledger),
                                                   on_error=self._ledger_watch.failed)
        self._ledger_watch.ledger = self.ledger
        log.info("ledger: %s", self.config.ledger.url)
        managed: list[ManagedCA] = []
        for ca in self.config.managed_cas:
            connector = create_connector(ca)
            self._connectors.append(connector)
            await connector.open()
            guarded = observability.guard(ca, connector)  # the circuit breaker and the CA metrics
            managed.append(ManagedCA(settings=ca, connector=guarded, catalog=ProfileCatalog(ca, guarded)))
        self.cas = CARegistry(managed)
        self.engine = EnrollmentEngine(self.ledger, self.cas, events=observability.events)
        # One per-serial revoke lock, and one set of look-up bounds, for both services.
        certificates = CertificateManager(self.ledger, events=observability.events, lookups=self.config.lookups)

        servicers = [
            (CertificateAuthorityApi(self.cas, self.ledger, status_ttl=self.config.lookups.ca_status_ttl),
             certificate_authorities_pb2, "CertificateAuthorityService"),
            (EnrollmentApi(self.engine), enrollments_pb2, "EnrollmentService"),
            (CertificateApi(self.cas, certificates, engine=self.engine), certificates_pb2,
             "CertificateService"),
            (SubjectApi(self.cas, certificates), subjects_pb2, "SubjectService"),
            (InventoryApi(self.cas, Inventory(self.ledger, certificates), CertificateEventStream(self.ledger)),
             inventory_pb2,
             "CertificateInventoryService"),
        ]
        methods: list[MethodSpec] = []
        for servicer, module, service_name in servicers:
            methods += methods_of(servicer, module.DESCRIPTOR.services_by_name[service_name])
        # Observed first, so every refusal after it is counted and logged like any answer; then who
        # is calling, before anything else looks at the request.
        gate = CallerGate(CallerPolicy(self.config.clients), AuditTrail(self.ledger, events=observability.events))
        self.streams = StreamLimiter(self.config.streams)
        self.pipeline = ServicePipeline(methods, [observability.middleware(), gate, *self.middlewares, self.streams,
                                                  OpenCircuitGate(observability.breakers.get)])
        self._warn_about_listeners()

        await self.engine.resume()
        self._start_lifecycle(observability, certificates)
        self.engine.start_key_retention()  # deletes server-side keys whose retention ran out
        self.grpc = GrpcServer(self.pipeline, self.config.grpc)
        await self.grpc.start()
        self.admin = self._admin_server(observability)
        await self.admin.start()
        self.rest = RestServer(self.pipeline, self.config.rest, readiness=self.ready)
        await self.rest.start()
        self.ops = OpsServer(self.config.ops, readiness=self.ready, metrics=observability.scrape)
        await self.ops.start()
        await self.grpc.follow(self.health)
        self.health.up("starting")

    def _admin_server(self, observability: Observability) -> GrpcServer:
        """The operator's service on its own loopback listener (``admin.listen``): never on the API
        listeners, never over REST, since whoever reaches it may abandon any order."""
        assert self.engine is not None
        api = OrderAdminApi(self.engine.admin(), observability.journal)
        methods = methods_of(api, admin_pb2.DESCRIPTOR.services_by_name["OrderAdminService"])
        return GrpcServer(ServicePipeline(methods, [observability.middleware()]), self.config.admin,
                          config_key="admin.listen")

    async def _take_up_orders(self) -> None:
        """After the ledger could not be written: the orders whose tasks stopped on it go on."""
        if self.engine is not None:
            await self.engine.resume()

    def _warn_about_listeners(self) -> None:
        """What the configuration allowed but an operator should hear of at every start."""
        if self.config.clients is None:
            log.warning("no clients section: every caller that reaches the (loopback) API listeners may do "
                        "everything; see docs/security.md")
        for name, listen in (("grpc", self.config.grpc), ("rest", self.config.rest.listen)):
            if listen.insecure:
                log.warning("%s.listen %s is marked insecure: callers there are not authenticated by mutual TLS",
                            name, listen.address)

    def _start_lifecycle(self, observability: Observability, certificates: CertificateManager) -> None:
        """The background jobs after issuance: expiry gauges, drift sync, automatic renewal and expiry
        notices per CA, webhook delivery."""
        assert self.ledger is not None and self.cas is not None
        self.certificate_gauges = observability.count_certificates(self.ledger, [m.id for m in self.cas])
        jobs = [("certificate-gauges", self.certificate_gauges.run())]
        self.drift_sync = DriftSync(self.ledger, certificates.lookup)
        jobs += [(f"sync-{m.id}", self.drift_sync.run(m)) for m in self.cas if m.settings.gateway.sync.interval > 0]
        assert self.engine is not None
        self.auto_renewal = AutoRenewal(self.ledger, self.engine)
        jobs += [(f"renew-{m.id}", self.auto_renewal.run(m)) for m in self.cas]
        self.expiry_notices = ExpiryNotices(self.ledger)
        jobs += [(f"expiry-{m.id}", self.expiry_notices.run(m)) for m in self.cas
                 if m.settings.gateway.renewal.notify_before]
        if self.config.webhooks:
            self._webhook_sender = WebhookSender(self.config.webhooks)
            self.webhooks = WebhookDispatcher(self.ledger, self.config.webhooks, self._webhook_sender)
            jobs.append(("webhooks", self.webhooks.run()))
        self._background += [asyncio.create_task(job, name=name) for name, job in jobs]

    def ready(self) -> bool:
        """Serving and not stopping: what every health endpoint reports (one source, :attr:`health`)."""
        return self.health.serving()

    @property
    def draining(self) -> bool:
        """Set to report DOWN on every health endpoint before stopping (a load balancer drains first)."""
        return "draining" in self.health.reasons

    @draining.setter
    def draining(self, value: bool) -> None:
        if value:
            self.health.down("draining", "draining before a stop")
        else:
            self.health.up("draining")

    async def stop(self) -> None:
        """Stop in order; safe to call again (a later call waits for the first one to finish)."""
        if self._stopping is None:
            self._stopped.set()
            self.health.down("stopping", "the gateway is stopping")
            self._stopping = asyncio.ensure_future(self._stop())
        # Shielded: a second Ctrl-C cancelling the caller must not leave the ledger open (its
        # threads would keep the process alive).
        await asyncio.shield(self._stopping)

    async def _stop(self) -> None:
        grace = self.config.shutdown_grace
        try:
            if self.grpc is not None:
                await self.grpc.enter_graceful_shutdown()
            if self.engine is not None:
                # Open streams end and waiting Enroll calls answer with the current (pending) state.
                self.engine.stop_accepting()
            if self.grpc is not None:
                await self.grpc.stop(grace)
            if self.admin is not None:
                await self.admin.stop(grace)
            if self.rest is not None:
                await self.rest.stop()
            if self.ops is not None:
                await self.ops.stop()
        finally:
            if self._ledger_watch is not None:
                await self._ledger_watch.close()
            for task in self._background:
                task.cancel()
            await asyncio.gather(*self._background, return_exceptions=True)
            if self._webhook_sender is not None:
                await self._webhook_sender.close()
            if self.engine is not None:
                await self.engine.close()
            for connector in self._connectors:
                with contextlib.suppress(Exception):
                    await connector.close()
            if self.ledger is not None:
                await self.ledger.close()
            if self.observability is not None:
                with contextlib.suppress(Exception):
                    await self.observability.close()  # the last spans go out
            log.info("gateway stopped")

    async def serve_forever(self) -> None:
        """Run until SIGTERM or SIGINT, then stop gracefully. A second signal while stopping is
        logged and otherwise ignored: the stop already under way finishes (within the grace)."""
        loop = asyncio.get_running_loop()
        limit_loop_error_logs(loop)  # out of file descriptors: a few log lines, not one per accept
        stop_requested = asyncio.Event()

        def on_signal() -> None:
            if stop_requested.is_set():
                log.warning("already stopping (grace %.0fs)", self.config.shutdown_grace)
            stop_requested.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        try:
            await stop_requested.wait()
            log.info("signal received: stopping (grace %.0fs)", self.config.shutdown_grace)
            await self.stop()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await self.stop()
