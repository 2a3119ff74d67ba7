"""Load drivers: many calls at a fixed concurrency, each timed, through grpc.aio or aiohttp.

Every driver takes the prepared inputs (CSRs are made before the clock starts, in this
process, so their cost never lands on the gateway) and returns a :class:`Batch`: the latency
of each call that succeeded, the failures by kind, and what the calls returned that a later
scenario needs (serial numbers, subject DNs, Sectigo order ids).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.protobuf import duration_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from cagw.v1 import certificates_pb2 as cert_pb
from cagw.v1 import certificates_pb2_grpc as cert_grpc
from cagw.v1 import enrollments_pb2 as pb
from cagw.v1 import enrollments_pb2_grpc as pb_grpc
from cagw.v1 import subjects_pb2 as subj_pb
from cagw.v1 import subjects_pb2_grpc as subj_grpc

from .processes import CA_ID, PROFILE_ID

__all__ = ["Batch", "Issued", "Load", "make_csrs"]

T = TypeVar("T")
SIM_HEADERS = {"login": "simulator-admin", "password": "simulator-password", "customerUri": "simulator"}
_ISSUED = pb.ENROLLMENT_STATE_ISSUED


def make_csrs(count: int, *, prefix: str) -> list[str]:
    """``count`` PEM CSRs with distinct common names (one EC key: only the names need to differ)."""
    key = ec.generate_private_key(ec.SECP256R1())
    csrs = []
    for index in range(count):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{prefix}-{index}.bench.example.com")])
        csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
        csrs.append(csr.public_bytes(serialization.Encoding.PEM).decode("ascii"))
    return csrs


@dataclass(frozen=True)
class Issued:
    """What an enrollment returned: the gateway's id, serial, subject DN and Sectigo order id."""

    enrollment_id: str
    serial: str
    subject: str
    order_id: str
    answered_at: float  # time.time() when the answer arrived


@dataclass
class Batch:
    """One batch of calls: latencies (s) of the successful ones, failures by kind, results."""

    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    results: list[Issued] = field(default_factory=list)
    wall: float = 0.0

    @property
    def calls(self) -> int:
        return len(self.latencies) + sum(self.failures.values())


async def _drive(items: Sequence[T], concurrency: int, call: Callable[[T], Awaitable[Issued | None]]) -> Batch:
    """Run ``call`` over ``items`` with ``concurrency`` workers; an exception counts as a failure."""
    batch = Batch()
    queue = iter(items)

    async def worker() -> None:
        for item in queue:
            started = time.perf_counter()
            try:
                result = await call(item)
            except Exception as exc:  # a failed call is a figure, not the end of the benchmark
                batch.failures[_kind(exc)] += 1
                continue
            batch.latencies.append(time.perf_counter() - started)
            if result is not None:
                batch.results.append(result)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(items))))))
    batch.wall = time.perf_counter() - started
    return batch


def _kind(exc: Exception) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"grpc {exc.code().name}"
    return type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {str(exc)[:80]}"


def _issued(enrollment: Any) -> Issued:
    if enrollment.status != "ISSUED":
        raise RuntimeError(f"enrollment {enrollment.id} is {enrollment.status}")
    return Issued(enrollment.id, enrollment.serial_number, enrollment.subject_name, enrollment.sectigo_order_id,
                  time.time())


class Load:
    """The clients of one stack: a gRPC channel, an HTTP session for REST and one for the simulator."""

    def __init__(self, *, grpc_target: str, rest_base: str, sim_url: str, sim_tls: Any, concurrency: int) -> None:
        self.concurrency = concurrency
        self.rest_base = rest_base
        self.sim_api = f"{sim_url}/api"
        self._channel = grpc.aio.insecure_channel(grpc_target)
        self.enrollments = pb_grpc.EnrollmentServiceStub(self._channel)
        self.certificates = cert_grpc.CertificateServiceStub(self._channel)
        self.subjects = subj_grpc.SubjectServiceStub(self._channel)
        self.health = health_pb2_grpc.HealthStub(self._channel)
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))
        self._sim = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency, ssl=sim_tls),
                                          headers=SIM_HEADERS)

    async def close(self) -> None:
        await self._http.close()
        await self._sim.close()
        await self._channel.close()

    # -------------------------------------------------------------------- through the gateway

    async def grpc_enroll(self, csrs: Sequence[str], *, max_wait: float | None = None,
                          expect_issued: bool = True) -> Batch:
        async def call(csr: str) -> Issued:
            request = pb.EnrollRequest(ca_id=CA_ID, profile_id=PROFILE_ID, csr=csr)
            if max_wait is not None:
                request.max_wait.CopyFrom(duration_pb2.Duration(nanos=int(max_wait * 1e9)))
            answer = await self.enrollments.Enroll(request, timeout=120)
            e = answer.enrollment
            if expect_issued:
                return _issued(e)
            return Issued(e.id, e.serial_number, e.subject_name, e.sectigo_order_id, time.time())

        return await _drive(csrs, self.concurrency, call)

    async def rest_enroll(self, csrs: Sequence[str]) -> Batch:
        url = f"{self.rest_base}/v1/certificate-authorities/{CA_ID}/enrollments"

        async def call(csr: str) -> Issued:
            async with self._http.post(url, json={"profileId": PROFILE_ID, "csr": csr}) as response:
                body = await response.json()
                if response.status != 200:
                    raise RuntimeError(f"REST enroll HTTP {response.status}")
            e = body["enrollment"]
            return Issued(e["id"], e["serialNumber"], e["subjectName"], e.get("sectigoOrderId", ""), time.time())

        return await _drive(csrs, self.concurrency, call)

    async def enroll_and_watch(self, csrs: Sequence[str]) -> Batch:
        async def call(csr: str) -> Issued:
            request = pb.EnrollAndWatchRequest(ca_id=CA_ID, profile_id=PROFILE_ID, csr=csr)
            async for answer in self.enrollments.EnrollAndWatch(request, timeout=120):
                if answer.event.state == _ISSUED:
                    return _issued(answer.event.enrollment)
            raise RuntimeError("the stream ended before ISSUED")

        return await _drive(csrs, self.concurrency, call)

    async def get_certificates(self, serials: Iterable[str]) -> Batch:
        async def call(serial: str) -> None:
            await self.certificates.GetCertificate(cert_pb.GetCertificateRequest(ca_id=CA_ID, serial_number=serial),
                                                   timeout=60)

        return await _drive(list(serials), self.concurrency, call)

    async def get_subjects(self, subjects: Iterable[str]) -> Batch:
        async def call(dn: str) -> None:
            await self.subjects.GetSubject(subj_pb.GetSubjectRequest(ca_id=CA_ID, dn=dn), timeout=60)

        return await _drive(list(subjects), self.concurrency, call)

    async def grpc_health(self, count: int) -> Batch:
        """``grpc.health.v1`` Check: a unary call that does next to nothing (the gRPC floor)."""
        async def call(_: int) -> None:
            await self.health.Check(health_pb2.HealthCheckRequest(), timeout=60)

        return await _drive(range(count), self.concurrency, call)

    async def rest_health(self, count: int) -> Batch:
        """``GET /cagw/health``: an HTTP exchange with the REST listener that does next to nothing."""
        async def call(_: int) -> None:
            async with self._http.get(f"{self.rest_base}/health") as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"REST health HTTP {response.status}")

        return await _drive(range(count), self.concurrency, call)

    async def open_watches(self, enrollment_ids: Sequence[str]) -> tuple[list[Any], Batch]:
        """One WatchEnrollment stream per id, each read up to its first event and left open."""
        streams: list[Any] = []

        async def call(enrollment_id: str) -> None:
            stream = self.enrollments.WatchEnrollment(
                pb.WatchEnrollmentRequest(ca_id=CA_ID, enrollment_id=enrollment_id))
            await stream.read()
            streams.append(stream)

        batch = await _drive(enrollment_ids, self.concurrency, call)
        return streams, batch

    # -------------------------------------------------------------------- the direct baseline

    async def direct(self, csrs: Sequence[str]) -> Batch:
        """The gateway's Sectigo calls for an instantly issued order, made straight to the simulator:
        enroll, then download the certificate and its chain."""
        async def call(csr: str) -> Issued:
            body = {"orgId": 1234, "certType": 1001, "term": 365, "csr": csr, "comments": "direct"}
            async with self._sim.post(f"{self.sim_api}/ssl/v1/enroll", json=body) as response:
                ssl_id = (await response.json())["sslId"]
            for fmt in ("x509CO", "x509IOR"):
                async with self._sim.get(f"{self.sim_api}/ssl/v1/collect/{ssl_id}", params={"format": fmt}) as r:
                    if r.status != 200:
                        raise RuntimeError(f"direct collect HTTP {r.status}")
                    await r.read()
            return Issued("", "", "", str(ssl_id), time.time())

        return await _drive(csrs, self.concurrency, call)
