"""The OpenAPI 3 document of the contract's REST surface, built from the descriptors."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate

from cagw.v1 import certificate_authorities_pb2, certificates_pb2, enrollments_pb2, subjects_pb2
from service.api.pipeline import methods_of
from service.rest.openapi import build_openapi
from service.rest.routes import RouteTable
from service.rest.status_table import StatusPolicy

SERVICES = [
    certificate_authorities_pb2.DESCRIPTOR.services_by_name["CertificateAuthorityService"],
    enrollments_pb2.DESCRIPTOR.services_by_name["EnrollmentService"],
    certificates_pb2.DESCRIPTOR.services_by_name["CertificateService"],
    subjects_pb2.DESCRIPTOR.services_by_name["SubjectService"],
]


class _Anything:
    def __getattr__(self, name: str) -> Any:
        return lambda request, call: None


def _document(mode: str = "documented") -> dict[str, Any]:
    specs = [spec for service in SERVICES for spec in methods_of(_Anything(), service)]
    table = RouteTable.from_methods(specs, context_path="/cagw")
    rules = {s.full_name: StatusPolicy(s.descriptor, mode).rule for s in specs}  # type: ignore[arg-type]
    return build_openapi(table.bindings, context_path="/cagw", rules=rules, health_path="/cagw/health")


DOCUMENT = _document()
SCHEMAS = DOCUMENT["components"]["schemas"]


@pytest.mark.parametrize("mode", ["documented", "standard"], ids=lambda m: f"ok-{m}")
def test_document_validates(mode: str) -> None:
    validate(_document(mode))


def test_every_route_is_documented() -> None:
    operations = {(method, path) for path, item in DOCUMENT["paths"].items() for method in item}
    ca = "/cagw/v1/certificate-authorities"
    assert operations == {
        ("get", ca), ("get", f"{ca}/{{caId}}"), ("get", f"{ca}/{{caId}}/status"),
        ("get", f"{ca}/{{caId}}/properties"), ("get", f"{ca}/{{caId}}/profiles"),
        ("get", f"{ca}/{{caId}}/profiles/{{profileId}}"), ("post", f"{ca}/{{caId}}/enrollments"),
        ("post", f"{ca}/{{caId}}/enrollments:watch"), ("get", f"{ca}/{{caId}}/enrollments/{{enrollmentId}}"),
        ("post", f"{ca}/{{caId}}/enrollments/{{enrollmentId}}"),
        ("get", f"{ca}/{{caId}}/enrollments/{{enrollmentId}}:watch"),
        ("get", f"{ca}/{{caId}}/certificates/{{serialNumber}}"),
        ("post", f"{ca}/{{caId}}/certificates/{{serialNumber}}/actions"), ("get", f"{ca}/{{caId}}/certificate-events"),
        ("get", f"{ca}/{{caId}}/subjects/{{dn}}"), ("post", f"{ca}/{{caId}}/subjects/{{dn}}/actions"),
        ("get", "/cagw/health"),
    }


@pytest.mark.parametrize(("schema", "property_name", "expected"), [
    pytest.param("cagw.v1.CertificateEvent", "event", {"type": "string", "format": "int64",
                                                      "pattern": "^-?[0-9]+$"}, id="ok-int64-as-string"),
    pytest.param("cagw.v1.EnrollmentEvent", "state", {"$ref": "#/components/schemas/cagw.v1.EnrollmentState"},
                 id="ok-enum-ref"),
    pytest.param("cagw.v1.CertificateAuthority", "properties",
                 {"type": "object", "additionalProperties": {"type": "string"}}, id="ok-map"),
    pytest.param("cagw.v1.Enrollment", "chain", {"type": "array", "items": {"type": "string"}}, id="ok-repeated"),
    pytest.param("cagw.v1.EnrollmentEvent", "time", {"type": "string", "format": "date-time"}, id="ok-timestamp"),
    pytest.param("cagw.v1.Action", "issueCrl", {"description": "any JSON value"}, id="ok-value"),
    pytest.param("cagw.v1.EnrollmentEvent", "error", {"$ref": "#/components/schemas/google.rpc.Status"},
                 id="ok-rpc-status"),
    # Answer-only strings are never empty (the shim leaves out a field without a value).
    pytest.param("cagw.v1.Certificate", "signatureAlgID", {"type": "string", "minLength": 1}, id="ok-json-name"),
    pytest.param("cagw.v1.RevocationInfo", "compromiseDate", {"type": "string", "minLength": 1},
                 id="ok-answer-date-never-empty"),
    pytest.param("cagw.v1.Action", "comment", {"type": "string"}, id="ok-request-string-may-be-empty"),
    pytest.param("cagw.v1.SubjectAltName", "der", {"type": "string", "format": "byte"}, id="ok-bytes"),
    pytest.param("cagw.v1.OptionalCertificateRequestDetails", "privateKeyUsagePercentage",
                 {"type": "integer", "format": "int32"}, id="ok-int32"),
])
def test_schemas(schema: str, property_name: str, expected: dict[str, Any]) -> None:
    assert SCHEMAS[schema]["properties"][property_name] == expected


def test_well_known_and_discriminator_schemas() -> None:
    assert SCHEMAS["cagw.v1.EnrollmentState"]["enum"][0] == "ENROLLMENT_STATE_UNSPECIFIED"
    assert SCHEMAS["google.rpc.Status"]["properties"]["details"]["items"]["properties"]["@type"] == {"type": "string"}
    enroll = DOCUMENT["paths"]["/cagw/v1/certificate-authorities/{caId}/enrollments"]["post"]
    enroll_body = enroll["requestBody"]["content"]["application/json"]["schema"]
    assert enroll_body["properties"]["maxWait"]["type"] == "string"
    assert enroll_body["additionalProperties"] is False
    assert SCHEMAS["cagw.v1.EnrollResponse"]["properties"]["type"]["enum"] == ["EnrollmentResponse"]
    assert list(SCHEMAS["cagw.v1.EnrollResponse"]["properties"])[0] == "type"
    assert SCHEMAS["ErrorResponse"]["properties"]["type"]["enum"] == ["ErrorResponse"]
    assert SCHEMAS["cagw.v1.Action"]["additionalProperties"] is False


def test_enrollment_statuses_are_documented() -> None:
    enroll = DOCUMENT["paths"]["/cagw/v1/certificate-authorities/{caId}/enrollments"]["post"]
    assert set(enroll["responses"]) == {"200", "202", "400", "401", "403", "404", "413", "415", "default"}
    plain = DOCUMENT["paths"]["/cagw/v1/certificate-authorities/{caId}/status"]["get"]["responses"]
    assert {"400", "401", "403", "404", "408", "409", "429", "500", "501", "503", "504"} <= set(plain)
    assert "Retry-After" in plain["503"]["headers"] and "Retry-After" in plain["429"]["headers"]
    assert "413" not in plain  # no body on a GET


def test_parameters() -> None:
    paths = DOCUMENT["paths"]
    subject = paths["/cagw/v1/certificate-authorities/{caId}/subjects/{dn}/actions"]["post"]
    assert [(p["name"], p["in"], p["required"]) for p in subject["parameters"]] == [
        ("caId", "path", True), ("dn", "path", True)]
    enroll = paths["/cagw/v1/certificate-authorities/{caId}/enrollments"]["post"]
    assert [(p["name"], p["in"]) for p in enroll["parameters"]] == [("caId", "path"), ("Idempotency-Key", "header")]
    body = subject["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"action"}  # path-bound caId and dn are not body members
    listing = paths["/cagw/v1/certificate-authorities"]["get"]
    assert [p["name"] for p in listing["parameters"]] == ["$fields"]
    events = paths["/cagw/v1/certificate-authorities/{caId}/certificate-events"]["get"]
    size = next(p for p in events["parameters"] if p["name"] == "preferredPageSize")
    assert size["schema"] == {"type": "integer", "format": "int32"}


def test_fields_the_contract_marks_required_are_required_in_the_document() -> None:
    paths = _document()["paths"]

    def body(path: str) -> dict[str, Any]:
        schema: dict[str, Any] = paths["/cagw" + path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        return schema

    assert body("/v1/certificate-authorities/{caId}/enrollments")["required"] == ["profileId"]
    assert body("/v1/certificate-authorities/{caId}/certificates/{serialNumber}/actions")["required"] == ["action"]
    assert body("/v1/certificate-authorities/{caId}/subjects/{dn}/actions")["required"] == ["action"]


def test_enrollment_properties_take_json_values() -> None:
    body = DOCUMENT["paths"]["/cagw/v1/certificate-authorities/{caId}/enrollments"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    values = schema["properties"]["properties"]["additionalProperties"]["anyOf"]
    assert {"type": "string"} in values and {"type": "number"} in values and {"type": "boolean"} in values
    assert {"type": "array", "items": {"type": "string"}} in values
    # Other string maps keep string values.
    assert SCHEMAS["cagw.v1.Action"]["properties"]["properties"] == {
        "type": "object", "additionalProperties": {"type": "string"}}
