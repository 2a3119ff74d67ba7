"""The API listeners with mutual TLS: both transports demand a client certificate, and the
audit trail names the caller by its certificate subject."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
import grpc
import pytest
from cagw.v1 import certificate_authorities_pb2, certificate_authorities_pb2_grpc, common_pb2
from cagw.v1 import certificates_pb2, certificates_pb2_grpc, enrollments_pb2, enrollments_pb2_grpc

from tests.integration.stack import CA_ID, PROFILE_ID, running_stack

from tests.support.csr import make_csr

CLIENT = "orders-service.internal"


async def test_ok_callers_with_a_certificate_are_served_and_audited_by_subject(tmp_path: Path) -> None:
    async with running_stack(tmp_path, client_name=CLIENT) as stack:
        enrollment = (await enrollments_pb2_grpc.EnrollmentServiceStub(stack.channel).Enroll(
            enrollments_pb2.EnrollRequest(ca_id=CA_ID, profile_id=PROFILE_ID,
                                          csr=make_csr("tls.example.com")))).enrollment
        assert enrollment.status == "ISSUED"
        await certificates_pb2_grpc.CertificateServiceStub(stack.channel).PerformCertificateAction(
            certificates_pb2.PerformCertificateActionRequest(
                ca_id=CA_ID, serial_number=enrollment.serial_number,
                action=common_pb2.Action(type="RevokeAction", reason="superseded")))
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{stack.rest_base}/v1/certificate-authorities/{CA_ID}/certificates/"
                                f"{enrollment.serial_number}", ssl=stack.client_ssl) as response:
                assert response.status == 200
                assert (await response.json())["certificate"]["status"] == "revoked"
        assert stack.gateway.ledger is not None
        audit = await stack.gateway.ledger.audit_entries(ca_id=CA_ID)
        # Every decision is audited now: the enrollment's too (newest first).
        assert [entry.action for entry in audit] == ["revoke", "enroll"]
        assert audit[0].actor.startswith(f"CN={CLIENT},")  # RFC 4514, most specific first
        assert {entry.client for entry in audit} == {"tests"}
        order = await stack.gateway.ledger.get_order(enrollment.id)
        assert order is not None and order.requested_by == audit[0].actor and order.client == "tests"


async def test_fail_callers_without_a_certificate_are_refused_on_both_transports(tmp_path: Path) -> None:
    async with running_stack(tmp_path, client_name=CLIENT) as stack:
        assert stack.client_ssl is not None
        no_certificate = ssl.create_default_context()
        no_certificate.load_verify_locations(cadata=(tmp_path / "api-tls" / "clients-ca.pem").read_text())
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.ClientError):
                async with http.get(f"{stack.rest_base}/v1/certificate-authorities", ssl=no_certificate):
                    pass
        credentials = grpc.ssl_channel_credentials(
            root_certificates=(tmp_path / "api-tls" / "clients-ca.pem").read_bytes())
        async with grpc.aio.secure_channel(stack.grpc_target, credentials) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await certificate_authorities_pb2_grpc.CertificateAuthorityServiceStub(channel)\
                    .ListCertificateAuthorities(certificate_authorities_pb2.ListCertificateAuthoritiesRequest(),
                                                timeout=5)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
