"""The gRPC → HTTP table and the ``rest_status`` method option of the REST shim."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import code_pb2

from cagw.v1 import certificates_pb2, enrollments_pb2
from service.rest.status_table import HTTP_STATUS_BY_CODE, StatusPolicy, StatusRule, code_name, http_status_from_code

ENROLLMENTS = enrollments_pb2.DESCRIPTOR.services_by_name["EnrollmentService"]
ENROLL = ENROLLMENTS.methods_by_name["Enroll"]
GET_CERTIFICATE = certificates_pb2.DESCRIPTOR.services_by_name["CertificateService"].methods_by_name["GetCertificate"]


@pytest.mark.parametrize("code", list(grpc.StatusCode), ids=lambda c: f"ok-{c.name}")
def test_every_grpc_code_has_a_row(code: grpc.StatusCode) -> None:
    number, _ = code.value
    assert number in HTTP_STATUS_BY_CODE
    assert code_name(number) == code.name


@pytest.mark.parametrize(("code", "http"), [
    (code_pb2.OK, 200), (code_pb2.CANCELLED, 408), (code_pb2.UNKNOWN, 500), (code_pb2.INVALID_ARGUMENT, 400),
    (code_pb2.DEADLINE_EXCEEDED, 504), (code_pb2.NOT_FOUND, 404), (code_pb2.ALREADY_EXISTS, 409),
    (code_pb2.PERMISSION_DENIED, 403), (code_pb2.RESOURCE_EXHAUSTED, 429), (code_pb2.FAILED_PRECONDITION, 400),
    (code_pb2.ABORTED, 409), (code_pb2.OUT_OF_RANGE, 400), (code_pb2.UNIMPLEMENTED, 501), (code_pb2.INTERNAL, 500),
    (code_pb2.UNAVAILABLE, 503), (code_pb2.DATA_LOSS, 500), (code_pb2.UNAUTHENTICATED, 401),
], ids=lambda v: f"ok-{v}" if isinstance(v, int) and v >= 100 else f"ok-{code_name(v)}")
def test_grpc_gateway_table(code: int, http: int) -> None:
    assert http_status_from_code(code) == http


def test_unknown_code_is_500() -> None:
    assert http_status_from_code(99) == 500
    assert code_name(99) == "CODE_99"


def test_enroll_rule_is_read_from_the_descriptor() -> None:
    rule = StatusRule.of(ENROLL)
    assert rule is not None
    assert rule.accepted_field == ("enrollment", "status")
    assert rule.accepted_values == {"PENDING"}
    assert (rule.accepted_http_status, rule.failure_http_status) == (202, 404)
    assert rule.kept_codes == {code_pb2.UNAUTHENTICATED, code_pb2.PERMISSION_DENIED, code_pb2.RESOURCE_EXHAUSTED}


def test_methods_without_rule() -> None:
    assert StatusRule.of(GET_CERTIFICATE) is None
    assert StatusRule.of(ENROLLMENTS.methods_by_name["EnrollAndWatch"]) is None


@pytest.mark.parametrize(("mode", "status", "http"), [
    pytest.param("documented", "PENDING", 202, id="ok-documented-pending"),
    pytest.param("documented", "ISSUED", 200, id="ok-documented-issued"),
    pytest.param("documented", "", 200, id="ok-documented-unset"),
    pytest.param("standard", "PENDING", 200, id="ok-standard-pending"),
])
def test_success_status(mode: str, status: str, http: int) -> None:
    policy = StatusPolicy(ENROLL, mode)  # type: ignore[arg-type]
    response = enrollments_pb2.EnrollResponse(enrollment=enrollments_pb2.Enrollment(status=status))
    assert policy.success(response) == http


@pytest.mark.parametrize(("mode", "code", "http"), [
    pytest.param("documented", code_pb2.NOT_FOUND, 404, id="fail-documented-not-found"),
    pytest.param("documented", code_pb2.INVALID_ARGUMENT, 404, id="fail-documented-invalid"),
    pytest.param("documented", code_pb2.UNAVAILABLE, 404, id="fail-documented-unavailable"),
    pytest.param("documented", code_pb2.INTERNAL, 404, id="fail-documented-internal"),
    pytest.param("documented", code_pb2.UNAUTHENTICATED, 401, id="fail-documented-kept-401"),
    pytest.param("documented", code_pb2.PERMISSION_DENIED, 403, id="fail-documented-kept-403"),
    pytest.param("standard", code_pb2.INVALID_ARGUMENT, 400, id="fail-standard-invalid"),
    pytest.param("standard", code_pb2.UNAVAILABLE, 503, id="fail-standard-unavailable"),
])
def test_failure_status(mode: str, code: int, http: int) -> None:
    assert StatusPolicy(ENROLL, mode).failure(code) == http  # type: ignore[arg-type]


def test_plain_methods_follow_the_table() -> None:
    policy = StatusPolicy(GET_CERTIFICATE, "documented")
    assert policy.rule is None
    assert policy.failure(code_pb2.NOT_FOUND) == 404
    assert policy.failure(code_pb2.UNAVAILABLE) == 503
