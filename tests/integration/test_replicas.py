"""Three gateway replicas on one PostgreSQL schema and one simulator: work is shared (each order
ordered and collected by one of them), watchers and unary callers on one replica see what another
does, a request id sent to two at once is one order, a revocation on one is seen by the others."""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path

import aiohttp
import pytest
from google.protobuf import duration_pb2

from cagw.v1 import (
    certificates_pb2,
    certificates_pb2_grpc,
    common_pb2,
    enrollments_pb2,
    enrollments_pb2_grpc,
    subjects_pb2,
    subjects_pb2_grpc,
)
from service.simulator import SimulatorSettings
from tests.integration.replicas import Replica, needs_postgres, running_replicas
from tests.integration.stack import CA_ID, PROFILE_ID
from tests.support.csr import make_csr

ISSUED = enrollments_pb2.ENROLLMENT_STATE_ISSUED
# A watched state as the ledger records it: the phases of collecting are one COLLECTING state there.
_RECORDED = {enrollments_pb2.ENROLLMENT_STATE_RECEIVED: "RECEIVED", enrollments_pb2.ENROLLMENT_STATE_SUBMITTED:
             "SUBMITTED", enrollments_pb2.ENROLLMENT_STATE_WAITING: "COLLECTING",
             enrollments_pb2.ENROLLMENT_STATE_PENDING: "COLLECTING", enrollments_pb2.ENROLLMENT_STATE_TIMED_OUT:
             "COLLECTING", ISSUED: "ISSUED", enrollments_pb2.ENROLLMENT_STATE_FAILED: "FAILED"}


@pytest.fixture(autouse=True)
def server() -> None:
    needs_postgres()


def _enrollments(replica: Replica) -> enrollments_pb2_grpc.EnrollmentServiceStub:
    return enrollments_pb2_grpc.EnrollmentServiceStub(replica.channel)  # type: ignore[no-untyped-call]


@pytest.mark.slow
async def test_ok_150_enrollments_over_three_replicas_each_ordered_and_collected_once(tmp_path: Path) -> None:
    orders = 150
    # Issued at the third collect: one collect loop per order makes exactly three collects of it.
    async with running_replicas(tmp_path, 3, simulator=SimulatorSettings(issue_after_polls=2),
                                attempts=8) as (sim, replicas):
        limit = asyncio.Semaphore(30)

        async def enroll(n: int) -> enrollments_pb2.Enrollment:
            async with limit:
                request = enrollments_pb2.EnrollRequest(ca_id=CA_ID, profile_id=PROFILE_ID,
                                                        csr=make_csr(f"r{n}.replicas.example.com"))
                return (await _enrollments(replicas[n % 3]).Enroll(request, timeout=60)).enrollment

        answers = await asyncio.gather(*(enroll(n) for n in range(orders)))
        assert {a.status for a in answers} == {"ISSUED"}
        assert len({a.id for a in answers}) == len({a.serial_number for a in answers}) == orders
        assert sim.stats.requests["enroll"] == orders
        collects = collections.Counter(c.ssl_id for c in sim.stats.calls if c.route == "collect")
        assert len(collects) == orders and set(collects.values()) == {3}, collects.most_common(3)
        # Each replica placed (and so collected) its own share: none sat idle, none took another's.
        for index, replica in enumerate(replicas):
            assert replica.gateway.ledger is not None
            mine = [a for n, a in enumerate(answers) if n % 3 == index]
            history = await replica.gateway.ledger.order_history(mine[0].id)
            assert [state.value for _, state, _ in history][-1] == "ISSUED"
        # Any replica finds every certificate by its subject.
        for n, answer in enumerate(answers[:30]):
            subjects = subjects_pb2_grpc.SubjectServiceStub(replicas[(n + 1) % 3].channel)  # type: ignore[no-untyped-call]
            found = await subjects.GetSubject(subjects_pb2.GetSubjectRequest(ca_id=CA_ID, dn=answer.subject_name))
            assert answer.serial_number in {c.serial_number for c in found.subject.certificates}


async def test_ok_a_watcher_on_one_replica_sees_every_change_another_makes(tmp_path: Path) -> None:
    async with running_replicas(tmp_path, 2, simulator=SimulatorSettings(issue_after_polls=3), attempts=2,
                                timer="300ms", max_timer="300ms") as (_, (a, b)):
        pending = (await _enrollments(a).Enroll(enrollments_pb2.EnrollRequest(
            ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr("watched.example.com"),
            max_wait=duration_pb2.Duration(nanos=1_000_000)))).enrollment
        assert a.gateway.engine is not None and a.gateway.engine.running_orders == 1  # a collects it
        states = []
        async for message in _enrollments(b).WatchEnrollment(
                enrollments_pb2.WatchEnrollmentRequest(ca_id=CA_ID, enrollment_id=pending.id), timeout=30):
            states.append(message.event.state)
        assert states[-1] == ISSUED and states.count(ISSUED) == 1
        # Every change a recorded after the watch began reached b, in order: the tail of the history.
        assert a.gateway.ledger is not None
        history = [state.value for _, state, _ in await a.gateway.ledger.order_history(pending.id)]
        seen = [_RECORDED[state] for state in states]
        assert len(seen) >= 3 and seen == history[len(history) - len(seen):], (seen, history)


async def test_ok_one_request_id_sent_to_two_replicas_at_once_is_one_order_and_both_answer_200(
        tmp_path: Path) -> None:
    async with running_replicas(tmp_path, 2, simulator=SimulatorSettings(issue_after_polls=3),
                                timer="200ms", max_timer="200ms", attempts=6) as (sim, (a, b)):
        body = {"profileId": PROFILE_ID, "csr": make_csr("twice.example.com"), "requestId": "req-7"}
        async with aiohttp.ClientSession() as http:
            async def post(replica: Replica) -> tuple[int, dict[str, object]]:
                url = f"{replica.rest_base}/v1/certificate-authorities/{CA_ID}/enrollments"
                async with http.post(url, json=body, timeout=aiohttp.ClientTimeout(total=30)) as answer:
                    return answer.status, await answer.json()

            (status_a, body_a), (status_b, body_b) = await asyncio.gather(post(a), post(b))
        assert (status_a, status_b) == (200, 200), (body_a, body_b)
        enrollment_a, enrollment_b = body_a["enrollment"], body_b["enrollment"]
        assert isinstance(enrollment_a, dict) and isinstance(enrollment_b, dict)
        assert enrollment_a["id"] == enrollment_b["id"] and enrollment_a["status"] == "ISSUED"
        assert enrollment_a["serialNumber"] == enrollment_b["serialNumber"]
        assert sim.stats.requests["enroll"] == 1
        collects = [c for c in sim.stats.calls if c.route == "collect"]
        assert len(collects) == 4  # one collect loop: issued at the fourth


async def test_ok_a_revocation_on_one_replica_is_seen_on_the_others(tmp_path: Path) -> None:
    async with running_replicas(tmp_path, 3, simulator=SimulatorSettings(issue_after_polls=1)) as (_, replicas):
        issued = (await _enrollments(replicas[0]).Enroll(enrollments_pb2.EnrollRequest(
            ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr("revoked.example.com")))).enrollment
        assert issued.status == "ISSUED"
        await certificates_pb2_grpc.CertificateServiceStub(replicas[1].channel).PerformCertificateAction(  # type: ignore[no-untyped-call]
            certificates_pb2.PerformCertificateActionRequest(
                ca_id=CA_ID, serial_number=issued.serial_number,
                action=common_pb2.Action(type="RevokeAction", reason="superseded")))
        for replica in (replicas[0], replicas[2]):
            seen = await certificates_pb2_grpc.CertificateServiceStub(replica.channel).GetCertificate(  # type: ignore[no-untyped-call]
                certificates_pb2.GetCertificateRequest(ca_id=CA_ID, serial_number=issued.serial_number))
            assert seen.certificate.status == "revoked"
