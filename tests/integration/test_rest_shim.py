"""The REST shim on a real loopback listener, in front of test-only servicers.

The servicers implement the four ``cagw.v1`` services generically from their
descriptors: each method records the request and call context it got and
answers what the test scripted (a message, an exception, or a stream). Routes
are never listed by hand except in the table that pins the URLs CAGW clients
use; the every-route test derives its URLs from the annotations.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import grpc
import pytest
import pytest_asyncio
import trustme
from google.protobuf import any_pb2, duration_pb2, json_format
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from google.rpc import error_details_pb2, status_pb2
from openapi_spec_validator import validate
from yarl import URL

from cagw.v1 import certificate_authorities_pb2, certificates_pb2, common_pb2, enrollments_pb2, subjects_pb2
from service.api.pipeline import CallContext, ServicePipeline, methods_of
from service.api.status import status_from_error
from service.config import ListenSettings, RestSettings, TLSListenSettings
from service.errors import CallerDenied, CAUnavailable, FieldViolation, InvalidRequest, NotFound
from service.rest import OPENAPI_KEY, ROUTES_KEY, RestServer

SERVICES: list[ServiceDescriptor] = [
    certificate_authorities_pb2.DESCRIPTOR.services_by_name["CertificateAuthorityService"],
    enrollments_pb2.DESCRIPTOR.services_by_name["EnrollmentService"],
    certificates_pb2.DESCRIPTOR.services_by_name["CertificateService"],
    subjects_pb2.DESCRIPTOR.services_by_name["SubjectService"],
]
CA = "/v1/certificate-authorities"
Answer = Message | BaseException | Callable[[Message, CallContext], Any]


class CodedError(Exception):
    """A test error carrying any gRPC code (the real tree only produces some)."""

    def __init__(self, code: grpc.StatusCode, retry_seconds: float | None = None) -> None:
        super().__init__(code.name)
        self.code = code
        self.retry_seconds = retry_seconds


def status_of(exc: Exception) -> status_pb2.Status:
    if not isinstance(exc, CodedError):
        return status_from_error(exc)
    status = status_pb2.Status(code=exc.code.value[0], message=f"scripted {exc.code.name}")
    if exc.retry_seconds is not None:
        detail = any_pb2.Any()
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(exc.retry_seconds * 1e9))
        detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        status.details.append(detail)
    return status


@dataclass
class Recorded:
    method: str
    request: Message
    call: CallContext


@dataclass
class FakeServicer:
    """Implements every method of ``service`` with scripted answers, recording each call."""

    service: ServiceDescriptor
    calls: list[Recorded] = field(default_factory=list)
    answers: dict[str, Answer] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        method = self.service.methods_by_name.get(name) if "service" in self.__dict__ else None
        if method is None:
            raise AttributeError(name)
        return self._stream(method) if method.server_streaming else self._unary(method)

    def _answer(self, method: MethodDescriptor, request: Message, call: CallContext) -> Any:
        self.calls.append(Recorded(method.name, request, call))
        answer = self.answers.get(method.name)
        if answer is None:
            return GetMessageClass(method.output_type)()
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, Message):
            return answer
        return answer(request, call)

    def _unary(self, method: MethodDescriptor) -> Callable[[Message, CallContext], Any]:
        async def handle(request: Message, call: CallContext) -> Message:
            result = self._answer(method, request, call)
            return await result if asyncio.iscoroutine(result) else result  # type: ignore[no-any-return]

        return handle

    def _stream(self, method: MethodDescriptor) -> Callable[[Message, CallContext], AsyncIterator[Message]]:
        async def handle(request: Message, call: CallContext) -> AsyncIterator[Message]:
            result = self._answer(method, request, call)
            if isinstance(result, Message):
                yield result
                yield result
                return
            async for item in result:
                yield item

        return handle


class Fakes:
    def __init__(self) -> None:
        self.by_service = {s.name: FakeServicer(s) for s in SERVICES}
        self.by_method = {m.name: self.by_service[s.name] for s in SERVICES for m in s.methods}

    def pipeline(self) -> ServicePipeline:
        return ServicePipeline([spec for s in SERVICES for spec in methods_of(self.by_service[s.name], s)])

    def answer(self, method: str, answer: Answer) -> None:
        self.by_method[method].answers[method] = answer

    def last(self, method: str) -> Recorded:
        calls = [c for c in self.by_method[method].calls if c.method == method]
        assert calls, f"{method} was not called"
        return calls[-1]

    def reset(self) -> None:
        for servicer in self.by_service.values():
            servicer.calls.clear()
            servicer.answers.clear()


@dataclass
class Shim:
    fakes: Fakes
    documented: RestServer
    standard: RestServer
    session: aiohttp.ClientSession
    ready: list[bool]

    async def call(self, method: str, path: str, *, standard: bool = False, body: Any = None,
                   data: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
        """(status, JSON body, headers); ``path`` is sent exactly as written (no requoting)."""
        server = self.standard if standard else self.documented
        url = URL(server.url + path, encoded=True)
        async with self.session.request(method, url, json=body, data=data, headers=headers) as response:
            text = await response.text()
            try:
                parsed = json.loads(text) if text else None
            except json.JSONDecodeError:
                parsed = text
            return response.status, parsed, response.headers


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shim() -> AsyncIterator[Shim]:
    fakes = Fakes()
    ready = [True]
    listen = ListenSettings(host="127.0.0.1", port=0)
    documented = RestServer(fakes.pipeline(), RestSettings(listen=listen, max_body_bytes=4096),
                            readiness=lambda: ready[0], status_of=status_of)
    standard = RestServer(fakes.pipeline(), RestSettings(listen=listen, enrollment_status="standard"),
                          status_of=status_of)
    await documented.start()
    await standard.start()
    session = aiohttp.ClientSession()
    try:
        yield Shim(fakes, documented, standard, session, ready)
    finally:
        await session.close()
        await documented.stop()
        await standard.stop()


@pytest.fixture(autouse=True)
def _reset(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "shim" in request.fixturenames:
        request.getfixturevalue("shim").fakes.reset()


def _error(body: Any) -> dict[str, Any]:
    assert body["type"] == "ErrorResponse", body
    assert set(body["error"]) == {"code", "message", "target", "value", "details"}
    return body["error"]  # type: ignore[no-any-return]


# ---------------------------------------------------------------- every route


@pytest.mark.parametrize(("http_method", "path", "method", "expected"), [
    pytest.param("GET", CA, "ListCertificateAuthorities", {}, id="ok-list-cas"),
    pytest.param("GET", f"{CA}/CA1", "GetCertificateAuthority", {"caId": "CA1"}, id="ok-get-ca"),
    pytest.param("GET", f"{CA}/CA1/status", "GetCertificateAuthorityStatus", {"caId": "CA1"}, id="ok-ca-status"),
    pytest.param("GET", f"{CA}/CA1/properties?fields=a,b", "GetCertificateAuthorityProperties",
                 {"caId": "CA1", "fields": "a,b"}, id="ok-ca-properties"),
    pytest.param("GET", f"{CA}/CA1/profiles", "ListProfiles", {"caId": "CA1"}, id="ok-list-profiles"),
    pytest.param("GET", f"{CA}/CA1/profiles/60515", "GetProfile", {"caId": "CA1", "profileId": "60515"},
                 id="ok-get-profile"),
    pytest.param("POST", f"{CA}/CA1/enrollments", "Enroll", {"caId": "CA1", "profileId": "p"}, id="ok-enroll"),
    pytest.param("POST", f"{CA}/CA1/enrollments:watch", "EnrollAndWatch", {"caId": "CA1", "profileId": "p"},
                 id="ok-enroll-and-watch"),
    pytest.param("GET", f"{CA}/CA1/enrollments/e1", "GetEnrollment", {"caId": "CA1", "enrollmentId": "e1"},
                 id="ok-get-enrollment"),
    pytest.param("GET", f"{CA}/CA1/enrollments/e1:watch", "WatchEnrollment",
                 {"caId": "CA1", "enrollmentId": "e1"}, id="ok-watch-enrollment"),
    pytest.param("GET", f"{CA}/CA1/certificates/5912bd91", "GetCertificate",
                 {"caId": "CA1", "serialNumber": "5912bd91"}, id="ok-get-certificate"),
    pytest.param("POST", f"{CA}/CA1/certificates/5912bd91/actions", "PerformCertificateAction",
                 {"caId": "CA1", "serialNumber": "5912bd91", "action": {"type": "RevokeAction"}},
                 id="ok-certificate-action"),
    pytest.param("GET", f"{CA}/CA1/certificate-events", "ListCertificateEvents", {"caId": "CA1"},
                 id="ok-certificate-events"),
    pytest.param("GET", f"{CA}/CA1/subjects/CN%3Dx", "GetSubject", {"caId": "CA1", "dn": "CN=x"},
                 id="ok-get-subject"),
    pytest.param("POST", f"{CA}/CA1/subjects/CN%3Dx/actions", "PerformSubjectAction",
                 {"caId": "CA1", "dn": "CN=x", "action": {"type": "RevokeAction"}}, id="ok-subject-action"),
])
async def test_contract_routes(shim: Shim, http_method: str, path: str, method: str,
                               expected: dict[str, Any]) -> None:
    body = {k: v for k, v in expected.items() if k not in ("caId", "serialNumber", "dn")} \
        if http_method == "POST" else None
    status, _, _ = await shim.call(http_method, "/" + path.lstrip("/"), body=body)
    assert status == 200
    assert json_format.MessageToDict(shim.fakes.last(method).request) == expected


def _sample_path(template_path: str, variables: dict[str, str]) -> str:
    path = template_path
    for name, value in variables.items():
        path = path.replace("{" + name + "}", value)
    return path


async def test_every_annotated_method_is_served(shim: Shim) -> None:
    """No route known by hand: each binding compiled from the descriptors answers and reaches its method."""
    table = shim.documented.app[ROUTES_KEY]
    methods = {f"/{s.full_name}/{m.name}" for s in SERVICES for m in s.methods}
    assert {b.spec.full_name for b in table.bindings} == methods
    for binding in table.bindings:
        values = {v.name: f"v{i}" for i, v in enumerate(binding.template.variables)}
        text = binding.template.text.split(":")[0] if binding.template.verb else binding.template.text
        path = _sample_path(text, values) + (f":{binding.template.verb}" if binding.template.verb else "")
        status, _, _ = await shim.call(binding.http_method, path, body={} if binding.body else None)
        assert status == 200, binding
        request = shim.fakes.last(binding.spec.descriptor.name).request
        for name, value in values.items():
            assert getattr(request, name) == value
        assert shim.fakes.last(binding.spec.descriptor.name).call.method == binding.spec.full_name


# ---------------------------------------------------------------- path parameters


@pytest.mark.parametrize(("raw", "dn"), [
    pytest.param(quote("CN=a\\,b+OU=c d,O=x", safe=""), "CN=a\\,b+OU=c d,O=x", id="ok-escaped-comma-plus-space"),
    pytest.param("CN=a\\,b+OU=c%20d,O=x", "CN=a\\,b+OU=c d,O=x", id="ok-reserved-characters-left-raw"),
    pytest.param("CN%3Da%2Fb%2CO%3Dx", "CN=a/b,O=x", id="ok-encoded-slash"),
    pytest.param("CN%3Dexample.com%2CO%3DACME%2C%20Inc.%2CC%3DUS", "CN=example.com,O=ACME, Inc.,C=US",
                 id="ok-comma-space"),
    pytest.param("CN=%C3%A9t%C3%A9%2BOU%3D%23hash%25", "CN=\u00e9t\u00e9+OU=#hash%", id="ok-utf8-hash-percent"),
    pytest.param("CN=a%253D", "CN=a%3D", id="ok-decoded-exactly-once"),
])
async def test_dn_round_trip(shim: Shim, raw: str, dn: str) -> None:
    status, _, _ = await shim.call("GET", f"{CA}/CA1/subjects/{raw}")
    assert status == 200
    assert shim.fakes.last("GetSubject").request.dn == dn  # type: ignore[attr-defined]
    status, _, _ = await shim.call("POST", f"{CA}/CA1/subjects/{raw}/actions", body={"action": {}})
    assert status == 200
    assert shim.fakes.last("PerformSubjectAction").request.dn == dn  # type: ignore[attr-defined]


@pytest.mark.parametrize(("raw", "serial"), [
    pytest.param("AB:CD:EF", "AB:CD:EF", id="ok-colons"),
    pytest.param("ab%3Acd", "ab:cd", id="ok-encoded-colons"),
    pytest.param("0000000091ca4b4b136a86b718ae01a5403ce62b", "0000000091ca4b4b136a86b718ae01a5403ce62b",
                 id="ok-padded"),
])
async def test_serial_with_colons(shim: Shim, raw: str, serial: str) -> None:
    status, _, _ = await shim.call("GET", f"{CA}/CA1/certificates/{raw}")
    assert status == 200
    assert shim.fakes.last("GetCertificate").request.serial_number == serial  # type: ignore[attr-defined]
    status, _, _ = await shim.call("POST", f"{CA}/CA1/certificates/{raw}/actions", body={"action": {}})
    assert status == 200
    assert shim.fakes.last("PerformCertificateAction").request.serial_number == serial  # type: ignore[attr-defined]


@pytest.mark.parametrize(("path", "method", "enrollment_id"), [
    pytest.param("e1:watch", "WatchEnrollment", "e1", id="ok-verb"),
    pytest.param("e1:other", "GetEnrollment", "e1:other", id="ok-colon-not-a-verb"),
    pytest.param("e1%3Awatch", "GetEnrollment", "e1:watch", id="ok-encoded-colon-not-a-verb"),
    pytest.param("a:b:watch", "WatchEnrollment", "a:b", id="ok-colons-before-verb"),
])
async def test_verb_against_colons(shim: Shim, path: str, method: str, enrollment_id: str) -> None:
    status, _, _ = await shim.call("GET", f"{CA}/CA1/enrollments/{path}")
    assert status == 200
    assert shim.fakes.last(method).request.enrollment_id == enrollment_id  # type: ignore[attr-defined]


# ---------------------------------------------------------------- query parameters


async def test_query_parameters_converted(shim: Shim) -> None:
    status, _, _ = await shim.call(
        "GET", f"{CA}/CA1/certificate-events?startDate=2000-01-01T00:00:00.00Z&preferredPageSize=50"
               "&nextPageIndex=a%2Bb&%24fields=-events.certificate")
    assert status == 200
    request = shim.fakes.last("ListCertificateEvents").request
    assert json_format.MessageToDict(request) == {
        "caId": "CA1", "startDate": "2000-01-01T00:00:00.00Z", "preferredPageSize": 50,
        "nextPageIndex": "a+b", "$fields": "-events.certificate"}
    status, _, _ = await shim.call("GET", f"{CA}/CA1/certificate-events?preferred_page_size=7&$fields=x")
    assert status == 200
    request = shim.fakes.last("ListCertificateEvents").request
    assert (request.preferred_page_size, request.fields) == (7, "x")  # type: ignore[attr-defined]


@pytest.mark.parametrize(("query", "target"), [
    pytest.param("foo=1", "foo", id="fail-unknown-parameter"),
    pytest.param("preferredPageSize=many", "preferredPageSize", id="fail-not-an-int"),
    pytest.param("preferredPageSize=1&preferredPageSize=2", "preferredPageSize", id="fail-twice"),
    pytest.param("caId=CA2", "caId", id="fail-path-bound"),
    pytest.param("startDate=%FF", "", id="fail-not-utf8"),
])
async def test_query_parameters_refused(shim: Shim, query: str, target: str) -> None:
    status, body, _ = await shim.call("GET", f"{CA}/CA1/certificate-events?{query}")
    assert status == 400
    error = _error(body)
    assert (error["code"], error["target"]) == ("INVALID_REQUEST", target)
    assert target in error["message"]


# ---------------------------------------------------------------- enrollment statuses


def _enrolled(status: str) -> enrollments_pb2.EnrollResponse:
    return enrollments_pb2.EnrollResponse(enrollment=enrollments_pb2.Enrollment(id="e1", status=status))


@pytest.mark.parametrize(("standard", "answer", "http", "code"), [
    pytest.param(False, _enrolled("ISSUED"), 200, None, id="ok-documented-issued"),
    pytest.param(False, _enrolled("PENDING"), 202, None, id="ok-documented-pending"),
    pytest.param(False, NotFound("no profile 'p'"), 404, "NOT_FOUND", id="fail-documented-not-found"),
    pytest.param(False, InvalidRequest.of([FieldViolation("csr", "bad", value="x")]), 404, "INVALID_REQUEST",
                 id="fail-documented-invalid-is-404"),
    pytest.param(False, CAUnavailable("Sectigo down", retry_after=3), 404, "CA_UNAVAILABLE",
                 id="fail-documented-unavailable-is-404"),
    pytest.param(False, RuntimeError("boom"), 404, "INTERNAL", id="fail-documented-internal-is-404"),
    pytest.param(False, CallerDenied("who?", authenticated=False), 401, "CALLER_DENIED",
                 id="fail-documented-kept-401"),
    pytest.param(False, CallerDenied("no", authenticated=True), 403, "CALLER_DENIED", id="fail-documented-kept-403"),
    pytest.param(True, _enrolled("PENDING"), 200, None, id="ok-standard-pending-is-200"),
    pytest.param(True, InvalidRequest.of([FieldViolation("csr", "bad")]), 400, "INVALID_REQUEST",
                 id="fail-standard-invalid-is-400"),
    pytest.param(True, CAUnavailable("Sectigo down", retry_after=3), 503, "CA_UNAVAILABLE",
                 id="fail-standard-unavailable-is-503"),
])
async def test_enrollment_statuses(shim: Shim, standard: bool, answer: Answer, http: int, code: str | None) -> None:
    shim.fakes.answer("Enroll", answer)
    status, body, headers = await shim.call("POST", f"{CA}/CA1/enrollments", standard=standard,
                                            body={"profileId": "p", "csr": "MIIB"})
    assert status == http
    if code is None:
        assert body["type"] == "EnrollmentResponse" and body["enrollment"]["id"] == "e1"
    else:
        assert _error(body)["code"] == code
        assert ("Retry-After" in headers) == (http == 503)


@pytest.mark.parametrize(("kwargs", "http"), [
    pytest.param({"data": b'{"profileId": ', "headers": {"Content-Type": "application/json"}}, 400,
                 id="fail-malformed-json-stays-400"),
    pytest.param({"body": {"profileId": "p", "nope": 1}}, 400, id="fail-unknown-field-stays-400"),
    pytest.param({"data": b"profileId=p", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 415,
                 id="fail-form-body-stays-415"),
    pytest.param({"data": b"{}" + b" " * 5000, "headers": {"Content-Type": "application/json"}}, 413,
                 id="fail-oversized-stays-413"),
])
async def test_enrollment_keeps_transport_refusals(shim: Shim, kwargs: dict[str, Any], http: int) -> None:
    status, body, _ = await shim.call("POST", f"{CA}/CA1/enrollments", **kwargs)
    assert status == http
    _error(body)
    assert not shim.fakes.by_method["Enroll"].calls


async def test_enrollment_wrong_method_is_405(shim: Shim) -> None:
    status, body, headers = await shim.call("GET", f"{CA}/CA1/enrollments")
    assert (status, headers["Allow"]) == (405, "POST")
    assert _error(body)["code"] == "METHOD_NOT_ALLOWED"


# ---------------------------------------------------------------- every code of the table


@pytest.mark.parametrize("code", [c for c in grpc.StatusCode if c != grpc.StatusCode.OK],
                         ids=lambda c: f"fail-{c.name}")
async def test_every_code_maps_to_its_http_status(shim: Shim, code: grpc.StatusCode) -> None:
    expected = {"CANCELLED": 408, "UNKNOWN": 500, "INVALID_ARGUMENT": 400, "DEADLINE_EXCEEDED": 504,
                "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429,
                "FAILED_PRECONDITION": 400, "ABORTED": 409, "OUT_OF_RANGE": 400, "UNIMPLEMENTED": 501,
                "INTERNAL": 500, "UNAVAILABLE": 503, "DATA_LOSS": 500, "UNAUTHENTICATED": 401}
    shim.fakes.answer("GetCertificate", CodedError(code))
    status, body, _ = await shim.call("GET", f"{CA}/CA1/certificates/01")
    assert status == expected[code.name]
    assert _error(body)["code"] == code.name


@pytest.mark.parametrize(("error", "http", "retry_after"), [
    pytest.param(CAUnavailable("throttled", retry_after=2.2), 503, "3", id="ok-503-rounded-up"),
    pytest.param(CAUnavailable("down"), 503, "5", id="ok-503-default-delay"),
    pytest.param(CodedError(grpc.StatusCode.RESOURCE_EXHAUSTED, retry_seconds=7), 429, "7", id="ok-429"),
    pytest.param(CodedError(grpc.StatusCode.RESOURCE_EXHAUSTED), 429, None, id="ok-429-without-retry-info"),
    pytest.param(NotFound("x"), 404, None, id="ok-none-on-404"),
])
async def test_retry_after(shim: Shim, error: Exception, http: int, retry_after: str | None) -> None:
    shim.fakes.answer("GetCertificateAuthorityStatus", error)
    status, _, headers = await shim.call("GET", f"{CA}/CA1/status")
    assert (status, headers.get("Retry-After")) == (http, retry_after)


# ---------------------------------------------------------------- bodies and refusals


async def test_body_transcoding_and_context(shim: Shim) -> None:
    status, _, _ = await shim.call(
        "POST", f"{CA}/CA1/enrollments", headers={"Idempotency-Key": "k-1", "X-Trace": "t1"},
        body={"profileId": "p", "requiredFormat": {"format": "PEM"}, "maxWait": "2.5s",
              "optionalCertificateRequestDetails": {"subjectDn": "CN=x", "useSANFromCSR": True},
              "properties": {"tracking.requesterName": "me"}, "includeCa": False})
    assert status == 200
    recorded = shim.fakes.last("Enroll")
    request: Any = recorded.request
    assert request.request_id == "k-1"
    assert request.max_wait.ToMilliseconds() == 2500
    assert request.optional_certificate_request_details.use_san_from_csr is True
    assert request.HasField("include_ca") and request.include_ca is False
    assert recorded.call.transport == "rest"
    assert recorded.call.method == "/cagw.v1.EnrollmentService/Enroll"
    assert recorded.call.metadata["x-trace"] == "t1"
    assert recorded.call.peer.startswith("ipv4:127.0.0.1:")


async def test_properties_with_json_values_move_to_their_struct(shim: Shim) -> None:
    status, _, _ = await shim.call(
        "POST", f"{CA}/CA1/enrollments",
        body={"profileId": "p", "properties": {"tracking.requesterName": "me", "customField.n": 3,
                                               "tracking.additionalEmails": ["a@example.com"], "flag": True}})
    assert status == 200
    request: Any = shim.fakes.last("Enroll").request
    assert dict(request.properties) == {"tracking.requesterName": "me"}
    assert json_format.MessageToDict(request.property_values) == {
        "customField.n": 3.0, "tracking.additionalEmails": ["a@example.com"], "flag": True}


async def test_empty_post_body_is_the_empty_message(shim: Shim) -> None:
    status, _, _ = await shim.call("POST", f"{CA}/CA1/certificates/01/actions")
    assert status == 200
    assert json_format.MessageToDict(shim.fakes.last("PerformCertificateAction").request) == {
        "caId": "CA1", "serialNumber": "01"}


async def test_action_issue_crl_as_string_or_bool(shim: Shim) -> None:
    for value in ("true", True):
        status, _, _ = await shim.call("POST", f"{CA}/CA1/certificates/01/actions",
                                       body={"action": {"type": "RevokeAction", "issueCrl": value}})
        assert status == 200


@pytest.mark.parametrize(("kwargs", "http", "target"), [
    pytest.param({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "",
                 id="fail-malformed-json"),
    pytest.param({"body": {"action": {"type": 5}}}, 400, "action.type", id="fail-wrong-type"),
    pytest.param({"body": {"action": {"kind": "x"}}}, 400, "action.kind", id="fail-unknown-nested-field"),
    pytest.param({"body": {"action": {}, "extra": True}}, 400, "extra", id="fail-unknown-field"),
    pytest.param({"body": {"caId": "CA2"}}, 400, "caId", id="fail-body-contradicts-path"),
    pytest.param({"data": b"<xml/>", "headers": {"Content-Type": "text/xml"}}, 415, "", id="fail-content-type"),
    pytest.param({"data": b"{}", "headers": {"Content-Type": "application/json; charset=latin-1"}}, 415, "",
                 id="fail-charset"),
    pytest.param({"data": b"{}" + b" " * 4096, "headers": {"Content-Type": "application/json"}}, 413, "",
                 id="fail-content-length-too-large"),
])
async def test_body_refusals(shim: Shim, kwargs: dict[str, Any], http: int, target: str) -> None:
    status, body, _ = await shim.call("POST", f"{CA}/CA1/certificates/01/actions", **kwargs)
    assert status == http
    error = _error(body)
    assert error["target"] == target
    if target:
        assert target in error["message"]


async def test_chunked_body_over_the_limit_is_413(shim: Shim) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"action": {"comment": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}}'

    status, body, _ = await shim.call("POST", f"{CA}/CA1/certificates/01/actions", data=chunks(),
                                      headers={"Content-Type": "application/json"})
    assert status == 413
    assert _error(body)["code"] == "REQUEST_TOO_LARGE"


async def test_json_with_suffix_and_no_content_type(shim: Shim) -> None:
    status, _, _ = await shim.call("POST", f"{CA}/CA1/certificates/01/actions", data=b'{"action": {}}',
                                   headers={"Content-Type": "application/merge-patch+json"})
    assert status == 200
    async with shim.session.post(shim.documented.url + f"{CA}/CA1/certificates/01/actions",
                                 data=b'{"action": {}}', skip_auto_headers=["Content-Type"]) as response:
        assert response.status == 200


@pytest.mark.parametrize(("method", "path", "http", "allow"), [
    pytest.param("GET", "/v1/nothing", 404, None, id="fail-unknown-path"),
    pytest.param("GET", "/v2/certificate-authorities", 404, None, id="fail-unknown-version"),
    pytest.param("DELETE", f"{CA}/CA1", 405, "GET", id="fail-delete"),
    pytest.param("PUT", f"{CA}/CA1/certificates/01/actions", 405, "POST", id="fail-put"),
    pytest.param("POST", "/health", 405, "GET", id="fail-post-health"),
])
async def test_routing_refusals(shim: Shim, method: str, path: str, http: int, allow: str | None) -> None:
    status, body, headers = await shim.call(method, path)
    assert status == http
    assert headers.get("Allow") == allow
    _error(body)


async def test_outside_the_context_path_is_404(shim: Shim) -> None:
    async with shim.session.get(URL(f"http://127.0.0.1:{shim.documented.port}{CA}", encoded=True)) as response:
        assert response.status == 404
        _error(await response.json())


async def test_unexpected_exception_is_a_clean_500(shim: Shim) -> None:
    shim.fakes.answer("GetProfile", RuntimeError("secret token abc123"))
    status, body, _ = await shim.call("GET", f"{CA}/CA1/profiles/p")
    assert status == 500
    error = _error(body)
    assert error["code"] == "INTERNAL" and "abc123" not in json.dumps(body) and "Traceback" not in json.dumps(body)


async def test_render_failure_is_a_clean_500(shim: Shim) -> None:
    response = certificates_pb2.PerformCertificateActionResponse(action=common_pb2.Action(type="RevokeAction"))
    response.action.issue_crl.number_value = float("inf")  # proto3 JSON cannot write it
    shim.fakes.answer("PerformCertificateAction", response)
    status, body, _ = await shim.call("POST", f"{CA}/CA1/certificates/01/actions", body={"action": {}})
    assert status == 500
    assert _error(body)["message"] == "failed to render the response"


async def test_success_body_shape(shim: Shim) -> None:
    shim.fakes.answer("ListCertificateEvents", certificates_pb2.ListCertificateEventsResponse(
        events=[certificates_pb2.CertificateEvent(action="issued", event=9007199254740993)]))
    status, body, headers = await shim.call("GET", f"{CA}/CA1/certificate-events")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert list(body)[0] == "type"
    assert body["type"] == "CertificateEventsResponse"
    assert body["morePages"] is False and body["hasMore"] is False and "nextPageIndex" not in body
    assert body["events"][0]["event"] == "9007199254740993"


# ---------------------------------------------------------------- NDJSON streams


def _event(state: int) -> enrollments_pb2.WatchEnrollmentResponse:
    return enrollments_pb2.WatchEnrollmentResponse(event=enrollments_pb2.EnrollmentEvent(
        enrollment_id="e1", state=state))  # type: ignore[arg-type]


async def test_stream_lines_arrive_one_by_one(shim: Shim) -> None:
    release = asyncio.Event()

    async def watch(request: Message, call: CallContext) -> AsyncIterator[Message]:
        yield _event(enrollments_pb2.ENROLLMENT_STATE_SUBMITTED)
        await release.wait()  # the second line exists only after the client read the first
        yield _event(enrollments_pb2.ENROLLMENT_STATE_ISSUED)

    shim.fakes.answer("WatchEnrollment", watch)
    async with shim.session.get(shim.documented.url + f"{CA}/CA1/enrollments/e1:watch") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/x-ndjson"
        assert response.headers["X-Accel-Buffering"] == "no"
        assert "Content-Encoding" not in response.headers
        first = await asyncio.wait_for(response.content.readline(), 5)
        assert json.loads(first)["result"]["event"]["state"] == "ENROLLMENT_STATE_SUBMITTED"
        release.set()
        second = await asyncio.wait_for(response.content.readline(), 5)
        assert json.loads(second)["result"]["event"]["state"] == "ENROLLMENT_STATE_ISSUED"
        assert await response.content.read() == b""


async def test_stream_error_after_first_line(shim: Shim) -> None:
    async def watch(request: Message, call: CallContext) -> AsyncIterator[Message]:
        yield _event(enrollments_pb2.ENROLLMENT_STATE_SUBMITTED)
        raise CAUnavailable("Sectigo went away", retry_after=1)

    shim.fakes.answer("WatchEnrollment", watch)
    async with shim.session.get(shim.documented.url + f"{CA}/CA1/enrollments/e1:watch") as response:
        assert response.status == 200
        lines = (await response.read()).splitlines()
    assert len(lines) == 2
    error = json.loads(lines[1])["error"]
    assert error["code"] == grpc.StatusCode.UNAVAILABLE.value[0]
    assert error["message"] == "Sectigo went away"
    assert {d["@type"].rsplit(".", 1)[-1] for d in error["details"]} == {"ErrorInfo", "RetryInfo"}


async def test_stream_error_before_first_line_sets_the_status(shim: Shim) -> None:
    async def watch(request: Message, call: CallContext) -> AsyncIterator[Message]:
        raise NotFound("no enrollment 'e1'")
        yield _event(0)  # pragma: no cover - makes this an async generator

    shim.fakes.answer("WatchEnrollment", watch)
    status, body, headers = await shim.call("GET", f"{CA}/CA1/enrollments/e1:watch")
    assert status == 404 and headers["Content-Type"].startswith("application/json")
    assert _error(body)["code"] == "NOT_FOUND"


async def test_empty_stream(shim: Shim) -> None:
    async def watch(request: Message, call: CallContext) -> AsyncIterator[Message]:
        return
        yield _event(0)  # pragma: no cover

    shim.fakes.answer("WatchEnrollment", watch)
    async with shim.session.get(shim.documented.url + f"{CA}/CA1/enrollments/e1:watch") as response:
        assert response.status == 200 and await response.read() == b""


async def test_enroll_and_watch_posts_a_body(shim: Shim) -> None:
    status, body, headers = await shim.call("POST", f"{CA}/CA1/enrollments:watch",
                                            body={"profileId": "p", "csr": "MIIB"})
    assert status == 200 and headers["Content-Type"] == "application/x-ndjson"
    request: Any = shim.fakes.last("EnrollAndWatch").request
    assert (request.ca_id, request.profile_id, request.csr) == ("CA1", "p", "MIIB")


async def test_client_disconnect_closes_the_stream(shim: Shim) -> None:
    closed = asyncio.Event()
    never = asyncio.Event()

    async def watch(request: Message, call: CallContext) -> AsyncIterator[Message]:
        try:
            yield _event(enrollments_pb2.ENROLLMENT_STATE_SUBMITTED)
            await never.wait()
            yield _event(enrollments_pb2.ENROLLMENT_STATE_ISSUED)  # pragma: no cover
        finally:
            closed.set()

    shim.fakes.answer("WatchEnrollment", watch)
    async with aiohttp.ClientSession() as session:
        async with session.get(shim.documented.url + f"{CA}/CA1/enrollments/e1:watch") as response:
            await asyncio.wait_for(response.content.readline(), 5)
            response.close()  # drops the connection mid-stream
    await asyncio.wait_for(closed.wait(), 5)


# ---------------------------------------------------------------- OpenAPI and health


async def test_openapi_document_validates(shim: Shim) -> None:
    async with shim.session.get(shim.documented.url + "/openapi.json") as response:
        assert response.status == 200
        document = await response.json()
    validate(document)
    assert document == shim.documented.app[OPENAPI_KEY]
    paths = document["paths"]
    enroll = paths["/cagw/v1/certificate-authorities/{caId}/enrollments"]["post"]
    assert set(enroll["responses"]) == {"200", "202", "400", "401", "403", "404", "413", "415", "default"}
    assert "caId" not in enroll["requestBody"]["content"]["application/json"]["schema"]["properties"]
    subject = paths["/cagw/v1/certificate-authorities/{caId}/subjects/{dn}"]["get"]
    assert [p["name"] for p in subject["parameters"]] == ["caId", "dn"]
    events = paths["/cagw/v1/certificate-authorities/{caId}/certificate-events"]["get"]
    assert {p["name"] for p in events["parameters"]} == {
        "caId", "startDate", "preferredPageSize", "nextPageIndex", "$fields"}
    watch = paths["/cagw/v1/certificate-authorities/{caId}/enrollments/{enrollmentId}:watch"]["get"]
    assert "application/x-ndjson" in watch["responses"]["200"]["content"]
    standard = shim.standard.app[OPENAPI_KEY]["paths"]["/cagw/v1/certificate-authorities/{caId}/enrollments"]
    assert "202" not in standard["post"]["responses"] and "503" in standard["post"]["responses"]


async def test_health_follows_readiness(shim: Shim) -> None:
    status, body, _ = await shim.call("GET", "/health")
    assert (status, body) == (200, {"status": "UP"})
    shim.ready[0] = False
    try:
        status, body, _ = await shim.call("GET", "/health")
        assert (status, body) == (503, {"status": "DOWN"})
    finally:
        shim.ready[0] = True


# ---------------------------------------------------------------- TLS listener


async def test_tls_listener(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    leaf.private_key_pem.write_to_path(str(key))
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    listen = ListenSettings(host="127.0.0.1", port=0, tls=TLSListenSettings(cert=cert, key=key))
    server = RestServer(Fakes().pipeline(), RestSettings(listen=listen))
    await server.start()
    try:
        assert server.url.startswith("https://127.0.0.1:")
        client = ssl.create_default_context()
        ca.configure_trust(client)
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + "/health", ssl=client) as response:
                assert response.status == 200
    finally:
        await server.stop()
