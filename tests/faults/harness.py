"""A gateway with two CAs on two simulators (over real TLS): ``flaky``, whose simulator gets the faults,
and ``steady``, which must keep serving whatever ``flaky`` does; and the books kept on both sides.

Timers are small (50–100 ms back-off, a 1 s call timeout, a circuit open for 300 ms), so every test
of the suite ends in seconds. ``check_books`` is the invariant every test ends with: each order the
gateway accepted is issued or still tracked, and the simulator holds exactly one order per ledger
order that reached it — none ordered twice, none the ledger does not know.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import re
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from cagw.v1 import enrollments_pb2, enrollments_pb2_grpc
from google.protobuf import duration_pb2

from service.app import Gateway
from service.config import parse_config
from service.ledger import OrderRecord
from service.simulator import Simulator, SimulatorSettings, start_simulator
from service.simulator.faults import FaultRule
from tests.integration.stack import PROFILE_ID, gateway_document, tls_files
from tests.support.csr import make_csr

__all__ = ["FLAKY", "STEADY", "FaultStack", "fault_stack", "steady_serves"]

FLAKY, STEADY = "flaky", "steady"
CALL_TIMEOUT = 1.0
OPEN_FOR = 0.3
_MARKER = re.compile(r"cagw-order:[0-9a-f-]{36}")
_NAMES = itertools.count(1)


@dataclass
class FaultStack:
    flaky: Simulator
    steady: Simulator
    gateway: Gateway
    channel: grpc.aio.Channel
    csrs: dict[str, str] = field(default_factory=dict)

    @property
    def stub(self) -> enrollments_pb2_grpc.EnrollmentServiceStub:
        return enrollments_pb2_grpc.EnrollmentServiceStub(self.channel)

    def fault(self, **rule: Any) -> None:
        """A fault on the flaky CA's simulator (see service.simulator.faults)."""
        self.flaky.faults.add(FaultRule(**rule))

    def clear(self) -> None:
        self.flaky.faults.clear()

    async def enroll(self, ca_id: str, name: str, *, max_wait: float | None = None,
                     request_id: str = "") -> enrollments_pb2.Enrollment:
        csr = self.csrs.setdefault(name, make_csr(name))  # a retry sends the same CSR
        request = enrollments_pb2.EnrollRequest(ca_id=ca_id, profile_id=PROFILE_ID, csr=csr, request_id=request_id)
        if max_wait is not None:
            request.max_wait.CopyFrom(duration_pb2.Duration(seconds=int(max_wait),
                                                            nanos=int(max_wait % 1 * 1e9)))
        return (await self.stub.Enroll(request, timeout=30)).enrollment

    async def issued(self, ca_id: str, enrollment_id: str, *, within: float = 20.0) -> None:
        """Watch the enrollment until it is issued (fails after ``within`` seconds or on a failure)."""
        async def watch() -> None:
            stream = self.stub.WatchEnrollment(enrollments_pb2.WatchEnrollmentRequest(
                ca_id=ca_id, enrollment_id=enrollment_id))
            async for message in stream:
                state = message.event.state
                if state == enrollments_pb2.ENROLLMENT_STATE_ISSUED:
                    return
                assert state != enrollments_pb2.ENROLLMENT_STATE_FAILED, message.event.detail
            raise AssertionError(f"the watch of {enrollment_id} ended before it was issued")

        await asyncio.wait_for(watch(), within)

    async def orders(self, ca_id: str) -> list[OrderRecord]:
        ledger = self.gateway.ledger
        assert ledger is not None
        return await ledger.list_orders(ca_id=ca_id, limit=10_000)

    async def check_books(self, accepted: list[str]) -> None:
        """See the module docstring; ``accepted``: enrollment ids the gateway answered with."""
        assert self.gateway.engine is not None and self.gateway.ledger is not None
        for enrollment_id in accepted:
            order = await self.gateway.ledger.get_order(enrollment_id)
            assert order is not None, enrollment_id
            tracked = not order.state.finished and (await self.gateway.engine.admin().show(order.id)).running
            assert order.state.value == "ISSUED" or tracked, (order.id, order.state, order.detail)
        for ca_id, simulator in ((FLAKY, self.flaky), (STEADY, self.steady)):
            at_ca = list(simulator.manager.book)
            markers = Counter(m.group(0) for o in at_ca if (m := _MARKER.search(o.comments)))
            assert [m for m, n in markers.items() if n > 1] == [], f"{ca_id}: ordered twice"
            known = {o.marker: o for o in await self.orders(ca_id) if o.ca_order_id}
            assert set(markers) == set(known), f"{ca_id}: the CA and the ledger disagree on what was ordered"
            for ca_order in at_ca:
                marker = _MARKER.search(ca_order.comments)
                assert marker is not None and known[marker.group(0)].ca_order_id == str(ca_order.ssl_id)


def _ca_entry(document: dict[str, Any], ca_id: str, url: str) -> dict[str, Any]:
    entry = copy.deepcopy(document["managed-cas"][0])
    entry["id"], entry["name"] = ca_id, f"Simulated CA ({ca_id})"
    entry["properties"]["url"] = f"{url}/api"
    entry["gateway"].update({
        "request-timeout": f"{CALL_TIMEOUT}s", "connect-timeout": "1s", "retry-attempts": "2",
        "retry-base-delay": "50ms",
        "circuit-breaker": {"failure-threshold": "3", "window": "30s", "open-for": f"{OPEN_FOR}s"}})
    return entry


@contextlib.asynccontextmanager
async def fault_stack(tmp: Path, *, issue_after_polls: int = 1, **gateway: Any) -> AsyncIterator[FaultStack]:
    """``gateway`` overrides keys of the flaky CA's ``gateway`` block."""
    trust, cert, key = tls_files(tmp)
    simulators: list[Simulator] = []
    started: Gateway | None = None
    try:
        for name in (FLAKY, STEADY):
            simulators.append(await start_simulator(SimulatorSettings(
                port=0, tls_cert=cert, tls_key=key, ca_dir=tmp / f"sim-{name}", issue_after_polls=issue_after_polls)))
        # Every status question reaches the CA (no status cache): the suite drives the breaker with them.
        document = gateway_document(simulators[0].url, trust, tmp, timer="50ms", max_timer="100ms", attempts=4,
                                    sections={"lookups": {"ca-status-ttl": "0s"}})
        flaky = _ca_entry(document, FLAKY, simulators[0].url)
        flaky["gateway"].update(gateway)
        document["managed-cas"] = [flaky, _ca_entry(document, STEADY, simulators[1].url)]
        started = Gateway(parse_config(document, base_dir=tmp))
        await started.start()
        assert started.grpc is not None
        async with grpc.aio.insecure_channel(f"127.0.0.1:{started.grpc.port}") as channel:
            yield FaultStack(simulators[0], simulators[1], started, channel)
    finally:
        if started is not None:
            await started.stop()
        for simulator in simulators:
            await simulator.stop()


async def steady_serves(stack: FaultStack, count: int = 3, *, within: float = 5.0) -> list[str]:
    """``count`` enrollments on the steady CA, concurrently, each issued within ``within`` seconds."""
    answers = await asyncio.wait_for(asyncio.gather(*(
        stack.enroll(STEADY, f"steady-{next(_NAMES)}.example.com") for _ in range(count))), within)
    assert [a.status for a in answers] == ["ISSUED"] * count
    return [a.id for a in answers]


