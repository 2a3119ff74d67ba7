"""The REST shim's JSON marshaler: bodies with CAGW ``type``, ErrorResponse, NDJSON lines, fallbacks."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from cagw.v1 import certificates_pb2, common_pb2, enrollments_pb2, options_pb2
from service.api.status import status_from_error
from service.errors import CAUnavailable, FieldViolation, InvalidRequest, NotFound
from service.rest.render import (
    FALLBACK_ERROR_BODY,
    FALLBACK_STREAM_ERROR_LINE,
    JsonMarshaler,
    response_type_of,
    retry_after_seconds,
)

MARSHALER = JsonMarshaler()


def test_body_has_type_first_and_emits_defaults() -> None:
    body = json.loads(MARSHALER.body(certificates_pb2.ListCertificateEventsResponse(next_page_index="n1")))
    assert list(body)[0] == "type"
    assert body == {"type": "CertificateEventsResponse", "events": [], "nextPageIndex": "n1",
                    "morePages": False, "hasMore": False}  # unset messages (metadata) stay absent


def test_body_uses_json_names() -> None:
    response = certificates_pb2.GetCertificateResponse(certificate=certificates_pb2.Certificate(
        serial_number="ab", signature_alg_id="1.2.840.113549.1.1.11"))
    body = json.loads(MARSHALER.body(response))
    assert body["certificate"]["serialNumber"] == "ab"
    assert body["certificate"]["signatureAlgID"] == "1.2.840.113549.1.1.11"
    assert body["chain"] == []


def test_message_without_type() -> None:
    body = json.loads(MARSHALER.body(enrollments_pb2.Enrollment(id="e1")))
    assert "type" not in body and body["id"] == "e1"


def test_response_body_picks_a_field_without_type() -> None:
    response = enrollments_pb2.EnrollResponse(enrollment=enrollments_pb2.Enrollment(id="e1"))
    assert json.loads(MARSHALER.body(response, response_body="enrollment"))["id"] == "e1"


def test_stream_line() -> None:
    event = enrollments_pb2.EnrollAndWatchResponse(event=enrollments_pb2.EnrollmentEvent(
        state=enrollments_pb2.ENROLLMENT_STATE_WAITING, delay=duration_pb2.Duration(seconds=2)))
    line = MARSHALER.stream_line(event)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line)["result"]["event"]["state"] == "ENROLLMENT_STATE_WAITING"
    assert json.loads(line)["result"]["event"]["delay"] == "2s"


def _error(status: status_pb2.Status) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(MARSHALER.error_body(status))
    assert body["type"] == "ErrorResponse"
    return body["error"]  # type: ignore[no-any-return]


def test_error_with_field_violations() -> None:
    exc = InvalidRequest.of([FieldViolation("csr", "not a PKCS#10 request", value="MIIB..."),
                             FieldViolation("subjectAltNames[0].type", "unknown SAN type", value="dns")])
    error = _error(status_from_error(exc))
    assert error == {
        "code": "INVALID_REQUEST",
        "message": "csr: not a PKCS#10 request (and 1 more)",
        "target": "csr",
        "value": "MIIB...",
        "details": [
            {"code": "INVALID_FIELD", "message": "not a PKCS#10 request", "target": "csr", "value": "MIIB..."},
            {"code": "INVALID_FIELD", "message": "unknown SAN type", "target": "subjectAltNames[0].type",
             "value": "dns"},
        ],
    }


def test_error_reason_and_code_name() -> None:
    assert _error(status_from_error(NotFound("no CA 'x'")))["code"] == "NOT_FOUND"
    bare = _error(status_pb2.Status(code=code_pb2.DATA_LOSS, message="lost"))
    assert bare == {"code": "DATA_LOSS", "message": "lost", "target": "", "value": "", "details": []}


def test_unexpected_exception_is_generic() -> None:
    error = _error(status_from_error(RuntimeError("secret at /etc/key")))
    assert error["code"] == "INTERNAL" and "secret" not in error["message"]


@pytest.mark.parametrize(("retry_after", "seconds"), [
    pytest.param(2.1, 3, id="ok-rounded-up"),
    pytest.param(4.0, 4, id="ok-whole"),
    pytest.param(None, 5, id="ok-default"),
    pytest.param(0.0, 0, id="ok-zero"),
])
def test_retry_after(retry_after: float | None, seconds: int) -> None:
    assert retry_after_seconds(status_from_error(CAUnavailable("down", retry_after=retry_after))) == seconds


def test_no_retry_after_without_retry_info() -> None:
    assert retry_after_seconds(status_from_error(NotFound("x"))) is None


def test_stream_error_line_is_a_google_rpc_status() -> None:
    line = MARSHALER.stream_error_line(status_from_error(NotFound("gone")))
    error = json.loads(line)["error"]
    assert error["code"] == code_pb2.NOT_FOUND and error["message"] == "gone"
    assert error["details"][0]["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"


def test_fallback_when_a_stream_error_cannot_render() -> None:
    unknown = any_pb2.Any(type_url="type.googleapis.com/nowhere.Unknown", value=b"\x08\x01")
    line = MARSHALER.stream_error_line(status_pb2.Status(code=13, message="x", details=[unknown]))
    assert line == FALLBACK_STREAM_ERROR_LINE
    json.loads(line)


def test_fallback_when_an_error_body_cannot_render() -> None:
    class Broken(JsonMarshaler):
        @staticmethod
        def error_response(status: status_pb2.Status) -> dict[str, Any]:
            raise ValueError("boom")

    assert Broken().error_body(status_pb2.Status(code=13)) == FALLBACK_ERROR_BODY
    assert json.loads(FALLBACK_ERROR_BODY)["error"]["code"] == "INTERNAL"


def test_unknown_details_are_skipped_in_error_response() -> None:
    unknown = any_pb2.Any(type_url="type.googleapis.com/nowhere.Unknown", value=b"")
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason="R"))
    assert _error(status_pb2.Status(code=5, details=[unknown, info]))["code"] == "R"


def test_response_type_option() -> None:
    assert response_type_of(common_pb2.ErrorResponse.DESCRIPTOR) == "ErrorResponse"
    assert response_type_of(common_pb2.Action.DESCRIPTOR) == ""


def test_response_type_clash_with_a_type_field() -> None:
    fdp = descriptor_pb2.FileDescriptorProto(name="resttest/clash.proto", package="resttest.clash",
                                             syntax="proto3", dependency=["cagw/v1/options.proto"])
    message = fdp.message_type.add(name="Clash")
    message.options.Extensions[options_pb2.response_type] = "ClashResponse"
    message.field.add(name="type", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                      json_name="type")
    descriptor_pool.Default().AddSerializedFile(fdp.SerializeToString())
    with pytest.raises(ValueError, match="type"):
        response_type_of(descriptor_pool.Default().FindMessageTypeByName("resttest.clash.Clash"))


def test_fields_without_a_value_are_left_out() -> None:
    response = certificates_pb2.GetCertificateResponse(certificate=certificates_pb2.Certificate(
        serial_number="ab", status="revoked",
        revocation_info=certificates_pb2.RevocationInfo(revocation_date="2026-01-02T03:04:05Z", reason="superseded")))
    certificate = json.loads(MARSHALER.body(response))["certificate"]
    assert certificate["revocationInfo"] == {"revocationDate": "2026-01-02T03:04:05Z", "reason": "superseded"}
    assert "certificateData" not in certificate and "validityPeriod" not in certificate


def test_values_that_are_values_stay() -> None:
    enrollment = enrollments_pb2.Enrollment(id="e1", properties={"note": ""})
    body = json.loads(MARSHALER.body(enrollments_pb2.EnrollResponse(enrollment=enrollment)))
    assert body["enrollment"] == {"id": "e1", "properties": {"note": ""}, "chain": []}  # map entries as given
    events = json.loads(MARSHALER.body(certificates_pb2.ListCertificateEventsResponse(
        metadata=certificates_pb2.EventsMetadata())))
    assert events["morePages"] is False and events["metadata"]["currentOffset"] == 0


def test_stream_lines_leave_out_empty_fields_too() -> None:
    line = MARSHALER.stream_line(enrollments_pb2.EnrollAndWatchResponse(event=enrollments_pb2.EnrollmentEvent(
        enrollment_id="e1", state=enrollments_pb2.ENROLLMENT_STATE_TIMED_OUT,
        enrollment=enrollments_pb2.Enrollment(id="e1", status="PENDING"))))
    event = json.loads(line)["result"]["event"]
    assert "detail" not in event and "sectigoOrderId" not in event
    assert "body" not in event["enrollment"] and "validityPeriod" not in event["enrollment"]
