"""Webhooks against the live gateway: a real HTTPS receiver on loopback that checks each signature."""

from __future__ import annotations

from pathlib import Path

from cagw.v1 import certificates_pb2, certificates_pb2_grpc, common_pb2, enrollments_pb2, enrollments_pb2_grpc
from tests.integration.stack import CA_ID, PROFILE_ID, Stack, running_stack
from tests.integration.webhook_receiver import SECRET, Receiver, https_receiver, receiver_tls
from tests.support.csr import make_csr


async def _enroll(stack: Stack, common_name: str) -> enrollments_pb2.Enrollment:
    return (await enrollments_pb2_grpc.EnrollmentServiceStub(stack.channel).Enroll(enrollments_pb2.EnrollRequest(
        ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr(common_name)))).enrollment


async def test_ok_a_receiver_failing_three_times_gets_each_event_once_and_signed(tmp_path: Path) -> None:
    receiver = Receiver(failures=3)
    context, receiver_ca = receiver_tls(tmp_path)
    async with https_receiver(receiver, context) as url:
        webhooks = [{"name": "team-a", "url": url, "secret": SECRET, "tls-ca": str(receiver_ca),
                     "retry-delay": "50ms"}]
        async with running_stack(tmp_path, extra_top={"webhooks": webhooks}) as stack:
            issued = await _enroll(stack, "hooked.example.com")
            await certificates_pb2_grpc.CertificateServiceStub(stack.channel).PerformCertificateAction(
                certificates_pb2.PerformCertificateActionRequest(
                    ca_id=CA_ID, serial_number=issued.serial_number,
                    action=common_pb2.Action(type="RevokeAction", reason="superseded")))
            await receiver.wait_for(2)
    assert [(e["type"], e["serialNumber"]) for e in receiver.accepted] == [
        ("issued", issued.serial_number), ("revoked", issued.serial_number)]
    assert receiver.requests == 5  # three refusals, then each event once
