"""Enrollment end to end over gRPC: gateway + simulator on loopback, real TLS toward the simulator.

Tests that need no schedule of their own share one stack per module and schedule (``stack``,
``pending_stack``, ``faults_stack``): before each test the simulator's request counters and
faults are cleared and its issuance setting put back, and each test enrolls its own common
names, so no test sees another's orders. Tests of timing, streams, restarts or other schedules
start a stack of their own.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
import trustme
from cagw.v1 import certificates_pb2, common_pb2, enrollments_pb2, subjects_pb2
from cagw.v1 import certificates_pb2_grpc, enrollments_pb2_grpc, subjects_pb2_grpc
from cryptography import x509
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from service.simulator import SimulatorSettings
from service.simulator.faults import FaultRule
from tests.integration.stack import CA_ID, PROFILE_ID, Stack, running_stack
from tests.support.csr import make_csr

ISSUED = enrollments_pb2.ENROLLMENT_STATE_ISSUED
States = enrollments_pb2.EnrollmentState


def _fresh(shared: Stack, *, issue_after_polls: int) -> Stack:
    """A shared stack as a new one would be: no request counted, no fault armed, its own issuance."""
    shared.simulator.stats.reset()
    shared.simulator.faults.clear()
    _issue_after(shared, issue_after_polls)
    return shared


def _issue_after(stack: Stack, polls: int) -> None:
    """From now on the simulator issues an order after ``polls`` pending collect answers."""
    stack.simulator.manager.settings = dataclasses.replace(  # type: ignore[misc]
        stack.simulator.manager.settings, issue_after_polls=polls)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def default_stack(tmp_path_factory: pytest.TempPathFactory, test_ca: trustme.CA) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path_factory.mktemp("grpc-default"), ca=test_ca,
                             simulator=SimulatorSettings(issue_after_polls=1)) as shared:
        yield shared


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def never_issuing_stack(tmp_path_factory: pytest.TempPathFactory,
                              test_ca: trustme.CA) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path_factory.mktemp("grpc-pending"), ca=test_ca,
                             simulator=SimulatorSettings(issue_after_polls=1000), attempts=1) as shared:
        yield shared


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def faulty_collect_stack(tmp_path_factory: pytest.TempPathFactory,
                               test_ca: trustme.CA) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path_factory.mktemp("grpc-faults"), ca=test_ca,
                             simulator=SimulatorSettings(issue_after_polls=0), attempts=5,
                             extra_gateway={"retry-attempts": "1"}) as shared:
        yield shared


@pytest.fixture
def stack(default_stack: Stack) -> Stack:
    """The default schedule (50 ms timers, 3 attempts); the simulator issues at the second collect."""
    return _fresh(default_stack, issue_after_polls=1)


@pytest.fixture
def pending_stack(never_issuing_stack: Stack) -> Stack:
    """One collect attempt, and a simulator that never issues: every order stays pending."""
    return _fresh(never_issuing_stack, issue_after_polls=1000)


@pytest.fixture
def faults_stack(faulty_collect_stack: Stack) -> Stack:
    """Five attempts, no retry inside a call (each fault costs one attempt); issued at the first collect."""
    return _fresh(faulty_collect_stack, issue_after_polls=0)


def _enroll_request(csr: str, **fields: object) -> enrollments_pb2.EnrollRequest:
    return enrollments_pb2.EnrollRequest(ca_id=CA_ID, profile_id=PROFILE_ID, csr=csr, **fields)  # type: ignore[arg-type]


def _stub(stack: Stack) -> enrollments_pb2_grpc.EnrollmentServiceStub:
    return enrollments_pb2_grpc.EnrollmentServiceStub(stack.channel)


def _verify_chain(stack: Stack, pem_body: str) -> x509.Certificate:
    certs = x509.load_pem_x509_certificates(pem_body.encode())
    issuing = x509.load_pem_x509_certificate(stack.issuing_ca_pem)
    certs[0].verify_directly_issued_by(issuing)
    return certs[0]


async def _watch_until_final(stack: Stack, enrollment_id: str) -> list[enrollments_pb2.EnrollmentEvent]:
    events = []
    call = _stub(stack).WatchEnrollment(enrollments_pb2.WatchEnrollmentRequest(ca_id=CA_ID,
                                                                              enrollment_id=enrollment_id))
    async for message in call:
        events.append(message.event)
    return events


def _details(error: grpc.aio.AioRpcError) -> dict[str, object]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    found: dict[str, object] = {}
    for detail in status.details if status else ():
        for kind in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest, error_details_pb2.RetryInfo):
            if detail.Is(kind.DESCRIPTOR):
                message = kind()
                detail.Unpack(message)
                found[kind.__name__] = message
    return found


async def test_ok_issued_in_time_returns_the_certificate_with_its_chain(stack: Stack) -> None:
    response = await _stub(stack).Enroll(_enroll_request(make_csr("www.example.com", sans=("www.example.com",))))
    enrollment = response.enrollment
    assert enrollment.status == "ISSUED"
    leaf = _verify_chain(stack, enrollment.body)
    assert enrollment.serial_number == format(leaf.serial_number, "x")
    assert leaf.subject.rfc4514_string() == "CN=www.example.com"
    assert enrollment.sectigo_order_id
    assert "/" in enrollment.validity_period


async def test_ok_x509_format_is_base64_der(stack: Stack) -> None:
    response = await _stub(stack).Enroll(_enroll_request(
        make_csr("der.example.com"), required_format=enrollments_pb2.RequiredFormat(format="X509")))
    leaf = x509.load_der_x509_certificate(base64.b64decode(response.enrollment.body))
    assert format(leaf.serial_number, "x") == response.enrollment.serial_number


async def test_ok_stream_reports_every_state_with_the_documented_waits(tmp_path: Path) -> None:
    # Timer 1.01 s would be slow; the formula is what matters: timer ** attempt capped by the max timer.
    async with running_stack(tmp_path, simulator=SimulatorSettings(issue_after_polls=2), timer="0.3s",
                             max_timer="0.05s", attempts=4) as stack:
        call = _stub(stack).EnrollAndWatch(enrollments_pb2.EnrollAndWatchRequest(
            ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr("stream.example.com")))
        events = [message.event async for message in call]
    states = [States.Name(e.state).removeprefix("ENROLLMENT_STATE_") for e in events]
    assert states == ["RECEIVED", "SUBMITTED", "WAITING", "PENDING", "WAITING", "PENDING", "WAITING", "ISSUED"]
    waits = [e.delay.ToTimedelta().total_seconds() for e in events if e.state == enrollments_pb2.ENROLLMENT_STATE_WAITING]
    assert waits == pytest.approx([0.05, 0.05, 0.027])  # min(0.3 ** n, 0.05) for n = 1, 2, 3
    assert [e.attempt for e in events if e.state == enrollments_pb2.ENROLLMENT_STATE_PENDING] == [1, 2]
    assert events[1].sectigo_order_id and events[-1].enrollment.body.startswith("-----BEGIN CERTIFICATE-----")
    assert {e.max_attempts for e in events} == {4}


async def test_ok_timed_out_then_background_collection_then_subject_lookup(tmp_path: Path) -> None:
    # Two foreground attempts pending, then one background collect pending before the one that issues.
    async with running_stack(tmp_path, simulator=SimulatorSettings(issue_after_polls=3), attempts=2) as stack:
        csr = make_csr("slow.example.com")
        response = await _stub(stack).Enroll(_enroll_request(csr))
        enrollment = response.enrollment
        assert enrollment.status == "PENDING"
        assert enrollment.id and enrollment.sectigo_order_id and enrollment.subject_name == "CN=slow.example.com"
        # The order keeps being collected in the background (at the 1 s floor of the background interval).
        events = await asyncio.wait_for(_watch_until_final(stack, enrollment.id), timeout=20)
        assert events[-1].state == ISSUED
        subjects = subjects_pb2_grpc.SubjectServiceStub(stack.channel)
        subject = await subjects.GetSubject(subjects_pb2.GetSubjectRequest(ca_id=CA_ID, dn=enrollment.subject_name))
        serial = subject.subject.certificates[0].serial_number
        certificate = await certificates_pb2_grpc.CertificateServiceStub(stack.channel).GetCertificate(
            certificates_pb2.GetCertificateRequest(ca_id=CA_ID, serial_number=serial.upper()))
        assert certificate.certificate.serial_number == serial
        assert certificate.certificate.status == "normal"


async def test_ok_deadline_shorter_than_the_schedule_still_gets_the_enrollment_id(tmp_path: Path) -> None:
    async with running_stack(tmp_path, simulator=SimulatorSettings(issue_after_polls=1000), timer="1s",
                             max_timer="1s", attempts=5) as stack:
        response = await _stub(stack).Enroll(_enroll_request(make_csr("deadline.example.com")), timeout=1.5)
        assert response.enrollment.status == "PENDING" and response.enrollment.id


async def test_ok_two_watchers_share_one_poll_loop(tmp_path: Path) -> None:
    async with running_stack(tmp_path, simulator=SimulatorSettings(issue_after_polls=3), timer="0.2s",
                             max_timer="0.2s", attempts=6) as stack:
        stack.simulator.stats.reset()
        call = _stub(stack).EnrollAndWatch(enrollments_pb2.EnrollAndWatchRequest(
            ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr("shared.example.com")))
        first = await call.read()
        watchers = [asyncio.ensure_future(_watch_until_final(stack, first.event.enrollment_id)) for _ in range(2)]
        rest = []
        while (message := await call.read()) is not grpc.aio.EOF:
            rest.append(message.event)
        results = await asyncio.gather(*watchers)
        assert rest[-1].state == ISSUED and all(r[-1].state == ISSUED for r in results)
        # 3 pending answers + the issuing collect (one download, certificate with its chain): one
        # poll loop for three watchers.
        assert stack.simulator.stats.requests["collect"] == 4


async def test_ok_client_disconnect_does_not_stop_the_order(tmp_path: Path) -> None:
    async with running_stack(tmp_path, simulator=SimulatorSettings(issue_after_polls=2), timer="0.1s",
                             max_timer="0.1s") as stack:
        call = _stub(stack).EnrollAndWatch(enrollments_pb2.EnrollAndWatchRequest(
            ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr("gone.example.com")))
        first = await call.read()
        call.cancel()
        events = await asyncio.wait_for(_watch_until_final(stack, first.event.enrollment_id), timeout=10)
        assert events[-1].state == ISSUED


async def test_ok_idempotent_retry_returns_the_same_order(stack: Stack) -> None:
    csr = make_csr("idem.example.com")
    first = await _stub(stack).Enroll(_enroll_request(csr, request_id="req-1"))
    second = await _stub(stack).Enroll(_enroll_request(csr, request_id="req-1"))
    assert first.enrollment.id == second.enrollment.id
    assert first.enrollment.serial_number == second.enrollment.serial_number
    assert stack.simulator.stats.requests["enroll"] == 1
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _stub(stack).Enroll(_enroll_request(make_csr("other.example.com"), request_id="req-1"))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_ok_same_csr_while_pending_is_not_paid_twice(pending_stack: Stack) -> None:
    csr = make_csr("dup.example.com")
    first = await _stub(pending_stack).Enroll(_enroll_request(csr))
    second = await _stub(pending_stack).Enroll(_enroll_request(csr))
    assert first.enrollment.status == second.enrollment.status == "PENDING"
    assert first.enrollment.id == second.enrollment.id
    assert pending_stack.simulator.stats.requests["enroll"] == 1


@pytest.mark.parametrize(("fields", "field_name"), [
    pytest.param({"csr": "not a csr"}, "csr", id="fail-garbage-csr"),
    pytest.param({"csr": ""}, "csr", id="fail-missing-csr"),
    pytest.param({"profile_id": "nope"}, "profileId", id="fail-unknown-profile"),
    pytest.param({"subject_alt_names": [enrollments_pb2.SubjectAltName(type="dNSName", value="bad..name")]},
                 "subjectAltNames[0].value", id="fail-bad-san"),
    pytest.param({"required_format": enrollments_pb2.RequiredFormat(format="DOCX")}, "requiredFormat.format",
                 id="fail-unknown-format"),
    pytest.param({"csr": "RSA1024"}, "csr", id="fail-key-too-small-for-profile"),
])
async def test_fail_validation_names_the_field_before_sectigo_is_called(stack: Stack, fields: dict[str, object],
                                                                        field_name: str) -> None:
    if fields.get("csr") == "RSA1024":
        fields = {**fields, "csr": make_csr("weak.example.com", kind="rsa1024")}
    request = _enroll_request(make_csr("valid.example.com"))
    for key, value in fields.items():
        if isinstance(value, list):
            getattr(request, key).extend(value)
        elif isinstance(value, str):
            setattr(request, key, value)
        else:
            getattr(request, key).CopyFrom(value)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _stub(stack).Enroll(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = [v.field for v in _details(caught.value)["BadRequest"].field_violations]  # type: ignore[attr-defined]
    assert field_name in violations
    assert stack.simulator.stats.requests["enroll"] == 0


async def test_fail_unknown_ca_is_not_found(stack: Stack) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _stub(stack).Enroll(enrollments_pb2.EnrollRequest(ca_id="nope", profile_id=PROFILE_ID,
                                                                csr=make_csr("x.example.com")))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_ok_revoke_then_certificate_shows_revoked(stack: Stack) -> None:
    enrollment = (await _stub(stack).Enroll(_enroll_request(make_csr("revoke.example.com")))).enrollment
    certificates = certificates_pb2_grpc.CertificateServiceStub(stack.channel)
    action = common_pb2.Action(type="RevokeAction", reason="keyCompromise", comment="test")
    response = await certificates.PerformCertificateAction(certificates_pb2.PerformCertificateActionRequest(
        ca_id=CA_ID, serial_number=enrollment.serial_number, action=action))
    assert response.action.status == "COMPLETED"
    again = await certificates.PerformCertificateAction(certificates_pb2.PerformCertificateActionRequest(
        ca_id=CA_ID, serial_number=enrollment.serial_number, action=action))
    assert again.action.status == "COMPLETED"
    assert stack.simulator.stats.requests["revoke"] == 1
    shown = await certificates.GetCertificate(certificates_pb2.GetCertificateRequest(
        ca_id=CA_ID, serial_number=enrollment.serial_number))
    assert shown.certificate.status == "revoked"
    assert shown.certificate.revocation_info.reason == "keyCompromise"


async def test_fail_hold_is_unimplemented(stack: Stack) -> None:
    enrollment = (await _stub(stack).Enroll(_enroll_request(make_csr("hold.example.com")))).enrollment
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await certificates_pb2_grpc.CertificateServiceStub(stack.channel).PerformCertificateAction(
            certificates_pb2.PerformCertificateActionRequest(
                ca_id=CA_ID, serial_number=enrollment.serial_number,
                action=common_pb2.Action(type="HoldAction", reason="unspecified")))
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_ok_renewal_issues_a_new_certificate(stack: Stack) -> None:
    first = (await _stub(stack).Enroll(_enroll_request(make_csr("renew.example.com")))).enrollment
    renewed = (await _stub(stack).Enroll(enrollments_pb2.EnrollRequest(
        ca_id=CA_ID, profile_id=PROFILE_ID, renewal=True,
        properties={"RenewalSerialNumber": first.serial_number}))).enrollment
    assert renewed.status == "ISSUED"
    assert renewed.serial_number != first.serial_number
    assert renewed.sectigo_order_id != first.sectigo_order_id
    assert stack.simulator.stats.requests["renew"] == 1


@pytest.mark.parametrize("fault", [
    pytest.param(FaultRule(route="collect", kind="status", status=503, count=2), id="ok-collect-503-twice"),
    pytest.param(FaultRule(route="collect", kind="throttle", retry_after=0.2, count=1), id="ok-collect-429"),
    # aiohttp itself resends an idempotent GET once on a dropped connection: drop twice.
    pytest.param(FaultRule(route="collect", kind="drop", count=2), id="ok-collect-dropped"),
])
async def test_ok_transient_collect_faults_count_as_attempts_and_the_order_completes(
        faults_stack: Stack, fault: FaultRule) -> None:
    # No retries inside a collect call: each fault then costs one attempt of the schedule.
    faults_stack.simulator.faults.add(fault)
    call = _stub(faults_stack).EnrollAndWatch(enrollments_pb2.EnrollAndWatchRequest(
        ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr("faulty.example.com")))
    events = [message.event async for message in call]
    assert events[-1].state == ISSUED
    assert any(e.state == enrollments_pb2.ENROLLMENT_STATE_PENDING for e in events)


async def test_ok_lost_enroll_reply_is_found_by_its_marker_and_not_ordered_twice(stack: Stack) -> None:
    _issue_after(stack, 0)
    stack.simulator.faults.add(FaultRule(route="enroll", kind="drop_reply", count=1))
    response = await _stub(stack).Enroll(_enroll_request(make_csr("lost.example.com")))
    assert response.enrollment.status == "ISSUED"
    assert stack.simulator.stats.requests["enroll"] == 1
    assert len(stack.simulator.state.find(common_name="lost.example.com")) == 1


async def test_fail_sectigo_down_for_enroll_is_unavailable_with_retry_info(stack: Stack) -> None:
    stack.simulator.faults.add(FaultRule(route="enroll", kind="status", status=503, count=1))
    csr = make_csr("down.example.com")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _stub(stack).Enroll(_enroll_request(csr, request_id="down-1"))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "RetryInfo" in _details(caught.value)
    # The same request id, once Sectigo is back, goes through as the same order.
    retried = await _stub(stack).Enroll(_enroll_request(csr, request_id="down-1"))
    assert retried.enrollment.status == "ISSUED"
    assert len(stack.simulator.state.find(common_name="down.example.com")) == 1


async def test_ok_restart_resumes_pending_orders(tmp_path: Path) -> None:
    settings = SimulatorSettings(issue_after_polls=1000)
    async with running_stack(tmp_path, simulator=settings, attempts=1) as stack:
        ids = [(await _stub(stack).Enroll(_enroll_request(make_csr(f"r{i}.example.com")))).enrollment.id
               for i in range(3)]
        await stack.gateway.stop()
        # Sectigo issues everything while the gateway is down.
        stack.simulator.manager.settings = dataclasses.replace(settings, issue_after_polls=0)  # type: ignore[misc]
        from service.app import Gateway

        restarted = Gateway(stack.config)
        await restarted.start()
        try:
            assert restarted.grpc is not None
            async with grpc.aio.insecure_channel(f"127.0.0.1:{restarted.grpc.port}") as channel:
                stack.channel = channel
                for enrollment_id in ids:
                    events = await asyncio.wait_for(_watch_until_final(stack, enrollment_id), timeout=15)
                    assert events[-1].state == ISSUED
        finally:
            await restarted.stop()
        assert stack.simulator.stats.requests["enroll"] == 3


async def test_ok_concurrent_copies_of_one_csr_become_one_order(pending_stack: Stack) -> None:
    csr = make_csr("race.example.com")
    answers = await asyncio.gather(*(_stub(pending_stack).Enroll(_enroll_request(csr)) for _ in range(5)))
    assert len({answer.enrollment.id for answer in answers}) == 1
    assert pending_stack.simulator.stats.requests["enroll"] == 1


