"""The REST API end to end: real HTTP on loopback, the real servicers, the Sectigo simulator behind them.

``test_rest_shim.py`` pins the transcoder with scripted servicers; this module
checks what a CAGW client sees from the whole gateway: every route, the
connector documentation's 200 / 202 / 404 on enrollment, the 202 → subject →
certificate walk, NDJSON arriving line by line, every error class, idempotency,
revocation, the events feed, the OpenAPI document and health.

Most tests share one module-wide stack (``world``) holding a few issued
certificates. Tests that enroll names of their own use it too, through ``rest``
(its counters cleared and no fault left armed; ``mode="standard"`` gives a
second shared stack with the standard status codes). Tests that need another
simulator behaviour or schedule, or a ledger with nothing else in it, start
their own stack.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import json
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import pytest_asyncio
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from openapi_spec_validator import validate
from yarl import URL

from service.rest import OPENAPI_KEY, ROUTES_KEY
from service.simulator import SimulatorSettings
from service.simulator.faults import FaultRule
from service.simulator.state import OrderStatus
from tests.integration.stack import CA_ID, PROFILE_ID, Stack, running_stack
from tests.support.csr import build_csr, make_csr, new_key, pem_of, private_key

CA = f"/v1/certificate-authorities/{CA_ID}"
NDJSON = "application/x-ndjson"
REVOKE = {"action": {"type": "RevokeAction", "reason": "keyCompromise", "comment": "x", "issueCrl": "true"}}


@dataclass
class Answer:
    status: int
    body: Any  # parsed JSON; a list of parsed lines for NDJSON; text otherwise
    headers: Mapping[str, str]

    @property
    def error(self) -> dict[str, Any]:
        assert isinstance(self.body, dict) and self.body.get("type") == "ErrorResponse", self.body
        assert set(self.body["error"]) == {"code", "message", "target", "value", "details"}
        return self.body["error"]  # type: ignore[no-any-return]


class Rest:
    """A CAGW REST client of one stack; paths are sent exactly as written (already percent-encoded)."""

    def __init__(self, stack: Stack, session: aiohttp.ClientSession) -> None:
        self.stack = stack
        self.session = session

    def url(self, path: str) -> URL:
        return URL(self.stack.rest_base + path, encoded=True)

    async def call(self, method: str, path: str, *, json_body: Any = None, data: Any = None,
                   headers: dict[str, str] | None = None) -> Answer:
        async with self.session.request(method, self.url(path), json=json_body, data=data,
                                        headers=headers) as response:
            text = await response.text()
            content_type = response.headers.get("Content-Type", "")
        body: Any = text
        if content_type.startswith(NDJSON):
            body = [json.loads(line) for line in text.splitlines()]
        elif content_type.startswith("application/json"):
            body = json.loads(text)
        return Answer(response.status, body, response.headers)

    async def enroll(self, csr: str | None = None, *, common_name: str = "www.example.com",
                     headers: dict[str, str] | None = None, **fields: Any) -> Answer:
        body = {"profileId": PROFILE_ID, "csr": csr if csr is not None else make_csr(common_name), **fields}
        return await self.call("POST", f"{CA}/enrollments", json_body=body, headers=headers)

    async def issued(self, common_name: str) -> dict[str, Any]:
        answer = await self.enroll(common_name=common_name)
        assert answer.status == 200, answer.body
        return answer.body["enrollment"]  # type: ignore[no-any-return]


@contextlib.asynccontextmanager
async def rest_stack(tmp: Path, **options: Any) -> AsyncIterator[Rest]:
    async with running_stack(tmp, **options) as stack, aiohttp.ClientSession() as session:
        yield Rest(stack, session)


def _path_dn(dn: str) -> str:
    return quote(dn, safe="")


def _set_issue_after_polls(stack: Stack, polls: int | None) -> None:
    manager = stack.simulator.manager
    manager.settings = dataclasses.replace(manager.settings, issue_after_polls=polls)  # type: ignore[misc]


# ---------------------------------------------------------------- a shared stack with issued certificates


@dataclass
class World:
    rest: Rest
    serial: str  # issued, never revoked
    dn: str
    enrollment_id: str
    action_serial: str  # revoked by the certificate-action route
    action_dn: str  # revoked by the subject-action route

    def path(self, template: str) -> str:
        return template.format(serial=self.serial, dn=_path_dn(self.dn), enrollment=self.enrollment_id,
                               action_serial=self.action_serial, action_dn=_path_dn(self.action_dn))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(tmp_path_factory: pytest.TempPathFactory, test_ca: trustme.CA) -> AsyncIterator[World]:
    async with rest_stack(tmp_path_factory.mktemp("rest-api"), ca=test_ca) as rest:
        main = await rest.issued("world.example.com")
        action = await rest.issued("action.example.com")
        subject = await rest.issued("subject-action.example.com")
        yield World(rest=rest, serial=main["serialNumber"], dn=main["subjectName"], enrollment_id=main["id"],
                    action_serial=action["serialNumber"], action_dn=subject["subjectName"])


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def standard_rest(tmp_path_factory: pytest.TempPathFactory, test_ca: trustme.CA) -> AsyncIterator[Rest]:
    """A second shared stack, answering enrollments with the standard status table."""
    async with rest_stack(tmp_path_factory.mktemp("rest-standard"), ca=test_ca,
                          enrollment_status="standard") as shared:
        yield shared


@pytest.fixture
def rest(request: pytest.FixtureRequest, world: World) -> Iterator[Rest]:
    """A shared stack for a test that enrolls its own names: the documented status codes, or the
    standard ones when the test is parametrized with ``mode="standard"``. The simulator's request
    counters start at zero, and no fault the test armed outlives it."""
    params = getattr(request.node, "callspec", None)
    mode = params.params.get("mode", "documented") if params is not None else "documented"
    shared: Rest = world.rest if mode == "documented" else request.getfixturevalue("standard_rest")
    shared.stack.simulator.stats.reset()
    shared.stack.simulator.faults.clear()
    yield shared
    shared.stack.simulator.faults.clear()


# ---------------------------------------------------------------- every route


# (id, method, path template, body, HTTP status, CAGW type or NDJSON); "{csr}" in a body is a fresh CSR.
NDJSON_EVENTS = "ndjson-certificate-events"
ROUTE_TABLE: list[tuple[str, str, str, Any, int, str]] = [
    ("ok-list-cas", "GET", "/v1/certificate-authorities", None, 200, "CAListResponse"),
    ("ok-get-ca", "GET", CA, None, 200, "CAResponse"),
    ("ok-ca-status", "GET", f"{CA}/status", None, 200, "CAStatusResponse"),
    ("fail-ca-properties-501", "GET", f"{CA}/properties", None, 501, "ErrorResponse"),
    ("ok-list-profiles", "GET", f"{CA}/profiles", None, 200, "ProfilesResponse"),
    ("ok-get-profile", "GET", f"{CA}/profiles/{PROFILE_ID}", None, 200, "ProfileResponse"),
    ("ok-enroll", "POST", f"{CA}/enrollments", {"profileId": PROFILE_ID, "csr": "{csr}"}, 200, "EnrollmentResponse"),
    ("ok-enroll-and-watch", "POST", f"{CA}/enrollments:watch", {"profileId": PROFILE_ID, "csr": "{csr}"}, 200,
     NDJSON),
    ("ok-check-enrollment", "POST", f"{CA}/enrollments:check", {"profileId": PROFILE_ID, "csr": "{csr}"}, 200,
     "EnrollmentCheckResponse"),
    ("ok-get-enrollment", "GET", f"{CA}/enrollments/{{enrollment}}", None, 200, "EnrollmentResponse"),
    ("ok-watch-enrollment", "GET", f"{CA}/enrollments/{{enrollment}}:watch", None, 200, NDJSON),
    ("ok-get-certificate", "GET", f"{CA}/certificates/{{serial}}", None, 200, "CertificateResponse"),
    ("ok-certificate-action", "POST", f"{CA}/certificates/{{action_serial}}/actions", REVOKE, 200, "ActionResponse"),
    ("ok-certificate-events", "GET", f"{CA}/certificate-events", None, 200, "CertificateEventsResponse"),
    ("ok-get-subject", "GET", f"{CA}/subjects/{{dn}}", None, 200, "SubjectResponse"),
    ("ok-subject-action", "POST", f"{CA}/subjects/{{action_dn}}/actions", REVOKE, 200, "ActionResponse"),
    ("ok-list-certificates", "GET", f"{CA}/certificates", None, 200, "CertificateListResponse"),
    ("ok-renewal-info", "GET", f"{CA}/certificates/{{serial}}/renewal-info", None, 200, "RenewalInfoResponse"),
    ("ok-watch-certificate-events", "GET", f"{CA}/certificate-events:watch?after=0&maxEvents=1", None, 200,
     NDJSON_EVENTS),
]


def _fill(body: Any) -> Any:
    if body is None:
        return None
    return {key: make_csr("route.example.com") if value == "{csr}" else value for key, value in body.items()}


@pytest.mark.parametrize(("method", "template", "body", "http", "kind"),
                         [pytest.param(*row[1:], id=row[0]) for row in ROUTE_TABLE])
async def test_route(world: World, method: str, template: str, body: Any, http: int, kind: str) -> None:
    answer = await world.rest.call(method, world.path(template), json_body=_fill(body))
    assert answer.status == http, answer.body
    if kind == NDJSON_EVENTS:
        assert answer.headers["Content-Type"] == NDJSON
        assert [line["result"]["event"]["type"] for line in answer.body] == ["issued"]
    elif kind == NDJSON:
        assert answer.headers["Content-Type"] == NDJSON
        events = [line["result"]["event"] for line in answer.body]
        assert events[-1]["state"] == "ENROLLMENT_STATE_ISSUED"
        assert events[-1]["enrollment"]["body"].startswith("-----BEGIN CERTIFICATE-----")
    else:
        assert answer.body["type"] == kind


async def test_the_route_table_covers_every_binding(world: World) -> None:
    assert world.rest.stack.gateway.rest is not None
    table = world.rest.stack.gateway.rest.app[ROUTES_KEY]
    covered = {table.resolve(method, "/cagw" + world.path(template).partition("?")[0]).binding.spec.full_name
               for _, method, template, *_ in ROUTE_TABLE}
    assert covered == {binding.spec.full_name for binding in table.bindings}


# ---------------------------------------------------------------- enrollment: 200 / 202 / 404 against the simulator


def _verify_pem_chain(stack: Stack, pem: str) -> x509.Certificate:
    certificates = x509.load_pem_x509_certificates(pem.encode())
    assert len(certificates) >= 2  # the leaf and its chain (PEM with chain is the default)
    certificates[0].verify_directly_issued_by(x509.load_pem_x509_certificate(stack.issuing_ca_pem))
    return certificates[0]


async def test_ok_200_issued_in_time(rest: Rest) -> None:
    answer = await rest.enroll(common_name="in-time.example.com")
    assert answer.status == 200
    enrollment = answer.body["enrollment"]
    assert answer.body["type"] == "EnrollmentResponse" and enrollment["status"] == "ISSUED"
    leaf = _verify_pem_chain(rest.stack, enrollment["body"])
    assert enrollment["serialNumber"] == format(leaf.serial_number, "x")
    assert enrollment["subjectName"] == "CN=in-time.example.com" and enrollment["sectigoOrderId"]
    assert answer.body["message"] == {"code": "ISSUED", "message": f"Certificate {enrollment['serialNumber']} "
                                      "issued.", "details": []}


async def test_ok_202_when_the_attempts_run_out(tmp_path: Path) -> None:
    async with rest_stack(tmp_path, simulator=SimulatorSettings(issue_after_polls=1000), attempts=2) as rest:
        answer = await rest.enroll(common_name="late.example.com")
        assert answer.status == 202
        enrollment = answer.body["enrollment"]
        assert answer.body["type"] == "EnrollmentResponse"
        # No value, no member: a client must not write an empty certificate file.
        assert enrollment["status"] == "PENDING" and "body" not in enrollment and "serialNumber" not in enrollment
        assert "validityPeriod" not in enrollment
        message = answer.body["message"]
        assert message["code"] == "PENDING" and "not issued yet" in message["message"]
        assert f"enrollments/{enrollment['id']}" in message["message"]
        assert {d["target"]: d["value"] for d in message["details"]} == {
            "enrollment.id": enrollment["id"], "enrollment.subjectName": "CN=late.example.com",
            "enrollment.sectigoOrderId": enrollment["sectigoOrderId"]}
        assert enrollment["id"] and enrollment["sectigoOrderId"]
        assert enrollment["subjectName"] == "CN=late.example.com"
        assert enrollment["properties"]["enrollmentState"] == "TIMED_OUT"


async def test_ok_202_then_subject_then_certificate(tmp_path: Path) -> None:
    # Two foreground attempts find it pending; the first background collect (about 1 s later) issues it.
    async with rest_stack(tmp_path, simulator=SimulatorSettings(issue_after_polls=2), attempts=2) as rest:
        pending = await rest.enroll(common_name="walk.example.com")
        assert pending.status == 202
        dn = pending.body["enrollment"]["subjectName"]
        serial = ""
        deadline = time.monotonic() + 15
        while not serial:
            assert time.monotonic() < deadline, "background collection did not issue the order"
            subject = await rest.call("GET", f"{CA}/subjects/{_path_dn(dn)}")
            assert subject.status == 200 and subject.body["type"] == "SubjectResponse"
            items = subject.body["subject"]["certificates"]
            assert items[0]["enrollmentId"] == pending.body["enrollment"]["id"]
            serial = items[0].get("serialNumber", "")
            if not serial:
                assert items[0]["status"] == "PENDING"
                await asyncio.sleep(0.2)
        certificate = await rest.call("GET", f"{CA}/certificates/{serial}")
        assert certificate.status == 200
        assert certificate.body["certificate"]["serialNumber"] == serial
        assert certificate.body["certificate"]["subjectName"] == "cn=walk.example.com"
        assert certificate.body["certificate"]["status"] == "normal"
        enrollment = await rest.call("GET", f"{CA}/enrollments/{pending.body['enrollment']['id']}")
        assert enrollment.body["enrollment"]["status"] == "ISSUED"
        assert enrollment.body["enrollment"]["serialNumber"] == serial


@pytest.mark.parametrize(("mode", "fields", "fault", "http", "code", "target"), [
    pytest.param("documented", {"csr": "not a csr"}, None, 404, "INVALID_REQUEST", "csr", id="fail-404-bad-csr"),
    pytest.param("documented", {"profileId": "nope"}, None, 404, "INVALID_REQUEST", "profileId",
                 id="fail-404-unknown-profile"),
    pytest.param("documented", {"csr": "RSA1024"}, None, 404, "INVALID_REQUEST", "csr", id="fail-404-key-too-small"),
    pytest.param("documented", {}, FaultRule(route="enroll", kind="status", status=503), 404, "CA_UNAVAILABLE", "",
                 id="fail-404-sectigo-503"),
    pytest.param("standard", {"csr": "not a csr"}, None, 400, "INVALID_REQUEST", "csr", id="fail-standard-400-bad-csr"),
    pytest.param("standard", {}, FaultRule(route="enroll", kind="status", status=503), 503, "CA_UNAVAILABLE", "",
                 id="fail-standard-503-sectigo-503"),
])
async def test_enrollment_failures(rest: Rest, mode: str, fields: dict[str, Any], fault: FaultRule | None,
                                   http: int, code: str, target: str) -> None:
    if fields.get("csr") == "RSA1024":
        fields = {**fields, "csr": make_csr("weak.example.com", kind="rsa1024")}
    if fault is not None:
        rest.stack.simulator.faults.add(fault)
    answer = await rest.enroll(common_name="failing.example.com", **fields)
    assert answer.status == http
    error = answer.error
    assert (error["code"], error["target"]) == (code, target)
    assert error["message"]
    assert ("Retry-After" in answer.headers) == (http == 503)


async def test_fail_404_enroll_at_an_unknown_ca(world: World) -> None:
    answer = await world.rest.call("POST", "/v1/certificate-authorities/nope/enrollments",
                                   json_body={"profileId": PROFILE_ID, "csr": make_csr("x.example.com")})
    assert answer.status == 404 and answer.error["code"] == "CA_NOT_CONFIGURED"


# ---------------------------------------------------------------- idempotency


async def test_ok_idempotency_key_retry_returns_the_same_enrollment(rest: Rest) -> None:
    csr = make_csr("idem.example.com")
    first = await rest.enroll(csr, headers={"Idempotency-Key": "retry-1"})
    second = await rest.enroll(csr, headers={"Idempotency-Key": "retry-1"})
    assert first.status == second.status == 200
    assert first.body["enrollment"]["id"] == second.body["enrollment"]["id"]
    assert first.body["enrollment"]["serialNumber"] == second.body["enrollment"]["serialNumber"]
    assert rest.stack.simulator.stats.requests["enroll"] == 1


@pytest.mark.parametrize(("mode", "route", "http"), [
    pytest.param("documented", "enrollments", 404, id="fail-404-enroll-conflict-documented"),
    pytest.param("standard", "enrollments", 409, id="fail-409-enroll-conflict-standard"),
    pytest.param("documented", "enrollments:watch", 409, id="fail-409-watch-conflict"),
])
async def test_idempotency_key_reused_for_another_request(rest: Rest, mode: str, route: str, http: int) -> None:
    key = f"reused-{mode}-{route}"  # the stack is shared: each case reuses a key of its own
    first = await rest.enroll(common_name="one.example.com", headers={"Idempotency-Key": key})
    assert first.status == 200
    other = await rest.call("POST", f"{CA}/{route}", headers={"Idempotency-Key": key},
                            json_body={"profileId": PROFILE_ID, "csr": make_csr("two.example.com")})
    assert other.status == http
    assert other.error["code"] == "ALREADY_EXISTS"
    assert first.body["enrollment"]["id"] in other.error["message"]
    assert rest.stack.simulator.stats.requests["enroll"] == 1


# ---------------------------------------------------------------- NDJSON streams


async def _next_event(response: aiohttp.ClientResponse) -> tuple[float, dict[str, Any]]:
    """The next NDJSON line's event and when it arrived."""
    line = await asyncio.wait_for(response.content.readline(), 5)
    assert line.endswith(b"\n"), line
    return time.monotonic(), json.loads(line)["result"]["event"]


async def test_ok_ndjson_lines_arrive_while_the_order_is_pending(tmp_path: Path) -> None:
    # Sectigo keeps the order pending until the test releases it; 400 attempts 50 ms apart outlast the test.
    async with rest_stack(tmp_path, simulator=SimulatorSettings(issue_after_polls=100_000), timer="0.05s",
                          max_timer="0.05s", attempts=400) as rest:
        body = {"profileId": PROFILE_ID, "csr": make_csr("stream.example.com")}
        async with rest.session.post(rest.url(f"{CA}/enrollments:watch"), json=body) as response:
            assert response.status == 200 and response.headers["Content-Type"] == NDJSON
            assert response.headers["X-Accel-Buffering"] == "no"
            early = [await _next_event(response) for _ in range(7)]
            assert early[0][1]["state"] == "ENROLLMENT_STATE_RECEIVED"
            assert "ENROLLMENT_STATE_PENDING" in {event["state"] for _, event in early}
            assert [o.status for o in rest.stack.simulator.state.find(common_name="stream.example.com")] == [
                OrderStatus.APPLIED]
            enrollment_id = early[0][1]["enrollmentId"]
            # The other stream (GET …:watch) starts with the current state, also before issuance.
            async with rest.session.get(rest.url(f"{CA}/enrollments/{enrollment_id}:watch")) as watch:
                assert watch.status == 200
                _, current = await _next_event(watch)
                assert current["state"] != "ENROLLMENT_STATE_ISSUED"
                released = time.monotonic()
                _set_issue_after_polls(rest.stack, 0)  # Sectigo issues at the next collect
                later = [await _next_event(response)]
                while later[-1][1]["state"] != "ENROLLMENT_STATE_ISSUED":
                    later.append(await _next_event(response))
                assert await asyncio.wait_for(response.content.read(), 5) == b""  # ISSUED is the last line
                watched = [json.loads(line)["result"]["event"]
                           for line in (await asyncio.wait_for(watch.read(), 5)).splitlines()]
        assert all(arrived < released for arrived, _ in early)
        issued_at, issued = later[-1]
        assert issued_at > released and issued["enrollment"]["serialNumber"]
        assert watched[-1]["state"] == "ENROLLMENT_STATE_ISSUED"
        assert watched[-1]["enrollment"]["serialNumber"] == issued["enrollment"]["serialNumber"]


# ---------------------------------------------------------------- error classes


BIG = b'{"profileId": "' + b"x" * (1024 * 1024 + 10) + b'"}'
JSON_TYPE = {"Content-Type": "application/json"}

# (id, method, path template, request kwargs, HTTP status, error code, target, Allow)
ERROR_TABLE: list[tuple[str, str, str, dict[str, Any], int, str, str, str | None]] = [
    ("fail-400-malformed-json-enroll", "POST", f"{CA}/enrollments", {"data": b'{"profileId": ', "headers": JSON_TYPE},
     400, "INVALID_REQUEST", "", None),
    ("fail-400-unknown-field-enroll", "POST", f"{CA}/enrollments", {"json_body": {"profileId": "p", "nope": 1}},
     400, "INVALID_REQUEST", "nope", None),
    ("fail-400-wrong-type-enroll", "POST", f"{CA}/enrollments", {"json_body": {"profileId": 5}},
     400, "INVALID_REQUEST", "profileId", None),
    ("fail-400-malformed-json-action", "POST", f"{CA}/certificates/{{serial}}/actions",
     {"data": b"{not json", "headers": JSON_TYPE}, 400, "INVALID_REQUEST", "", None),
    ("fail-400-unknown-nested-field-action", "POST", f"{CA}/certificates/{{serial}}/actions",
     {"json_body": {"action": {"kind": "RevokeAction"}}}, 400, "INVALID_REQUEST", "action.kind", None),
    ("fail-400-wrong-type-action", "POST", f"{CA}/certificates/{{serial}}/actions",
     {"json_body": {"action": {"type": 5}}}, 400, "INVALID_REQUEST", "action.type", None),
    ("fail-400-unknown-reason", "POST", f"{CA}/certificates/{{serial}}/actions",
     {"json_body": {"action": {"type": "RevokeAction", "reason": "boredom"}}}, 400, "INVALID_REQUEST",
     "action.reason", None),
    ("fail-400-query-wrong-type", "GET", f"{CA}/certificate-events?preferredPageSize=many", {}, 400,
     "INVALID_REQUEST", "preferredPageSize", None),
    ("fail-400-unknown-query-parameter", "GET", f"{CA}/certificates/{{serial}}?foo=1", {}, 400, "INVALID_REQUEST",
     "foo", None),
    ("fail-400-not-a-serial", "GET", f"{CA}/certificates/xyz", {}, 400, "INVALID_REQUEST", "serialNumber", None),
    ("fail-400-not-a-dn", "GET", f"{CA}/subjects/{quote('no equals sign', safe='')}", {}, 400, "INVALID_REQUEST",
     "dn", None),
    ("fail-404-unknown-ca", "GET", "/v1/certificate-authorities/nope", {}, 404, "CA_NOT_CONFIGURED", "", None),
    ("fail-404-unknown-serial", "GET", f"{CA}/certificates/abcdef0123", {}, 404, "CERTIFICATE_NOT_FOUND", "", None),
    ("fail-404-unknown-dn", "GET", f"{CA}/subjects/{quote('CN=nobody.example.com', safe='')}", {}, 404,
     "SUBJECT_NOT_FOUND", "", None),
    ("fail-404-unknown-enrollment", "GET", f"{CA}/enrollments/no-such-enrollment", {}, 404, "ENROLLMENT_NOT_FOUND",
     "", None),
    ("fail-404-unknown-enrollment-watch", "GET", f"{CA}/enrollments/no-such-enrollment:watch", {}, 404,
     "ENROLLMENT_NOT_FOUND", "", None),
    ("fail-404-unknown-profile", "GET", f"{CA}/profiles/nope", {}, 404, "PROFILE_NOT_FOUND", "", None),
    ("fail-404-unknown-route", "GET", "/v1/nothing", {}, 404, "ROUTE_NOT_FOUND", "", None),
    ("fail-405-delete-ca", "DELETE", CA, {}, 405, "METHOD_NOT_ALLOWED", "", "GET"),
    ("fail-405-get-enrollments", "GET", f"{CA}/enrollments", {}, 405, "METHOD_NOT_ALLOWED", "", "POST"),
    ("fail-413-body-too-large", "POST", f"{CA}/enrollments", {"data": BIG, "headers": JSON_TYPE}, 413,
     "REQUEST_TOO_LARGE", "", None),
    ("fail-415-xml-body", "POST", f"{CA}/enrollments", {"data": b"<csr/>", "headers": {"Content-Type": "text/xml"}},
     415, "UNSUPPORTED_MEDIA_TYPE", "", None),
    ("fail-501-hold", "POST", f"{CA}/certificates/{{serial}}/actions",
     {"json_body": {"action": {"type": "HoldAction", "reason": "certificateHold"}}}, 501, "NOT_SUPPORTED_BY_CA", "",
     None),
    ("fail-501-ca-properties", "GET", f"{CA}/properties", {}, 501, "NOT_SUPPORTED_BY_CA", "", None),
]


@pytest.mark.parametrize(("method", "template", "kwargs", "http", "code", "target", "allow"),
                         [pytest.param(*row[1:], id=row[0]) for row in ERROR_TABLE])
async def test_error(world: World, method: str, template: str, kwargs: dict[str, Any], http: int, code: str,
                     target: str, allow: str | None) -> None:
    answer = await world.rest.call(method, world.path(template), **kwargs)
    assert answer.status == http, answer.body
    error = answer.error
    assert (error["code"], error["target"]) == (code, target)
    assert error["message"]
    assert answer.headers.get("Allow") == allow
    if target:
        assert error["details"][0]["target"] == target


async def test_fail_503_with_retry_after_when_sectigo_throttles(tmp_path: Path) -> None:
    # An unknown serial makes GetCertificate ask Sectigo; Sectigo answers 429 Retry-After: 2.2.
    async with rest_stack(tmp_path, extra_gateway={"retry-attempts": "1"}) as rest:
        rest.stack.simulator.faults.add(FaultRule(route="list", kind="throttle", retry_after=2.2, count=None))
        answer = await rest.call("GET", f"{CA}/certificates/abcdef0123")
        assert answer.status == 503
        assert answer.headers["Retry-After"] == "3"  # RetryInfo rounded up to whole seconds
        assert answer.error["code"] == "CA_UNAVAILABLE"


# ---------------------------------------------------------------- DNs with special characters, revocation


def _special_csr() -> tuple[str, str]:
    """A CSR whose subject is ``CN=a\\, b+OU=c d,O=Example \\"Q\\"`` (a multi-valued RDN), and that DN."""
    name = x509.Name([
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATION_NAME, 'Example "Q"')]),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, "a, b"),
                                        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "c d")]),
    ])
    return pem_of(build_csr(private_key(), subject=name)), name.rfc4514_string()


async def test_ok_dn_with_commas_spaces_plus_and_quotes_round_trips(rest: Rest) -> None:
    csr, dn = _special_csr()
    assert dn == 'CN=a\\, b+OU=c d,O=Example \\"Q\\"'
    enrollment = (await rest.enroll(csr)).body["enrollment"]
    serial = enrollment["serialNumber"]
    # The caller's own spelling and the one the gateway answered with find the same subject.
    for spelling in (dn, enrollment["subjectName"]):
        subject = await rest.call("GET", f"{CA}/subjects/{_path_dn(spelling)}")
        assert subject.status == 200, subject.body
        assert [c["serialNumber"] for c in subject.body["subject"]["certificates"]] == [serial]
    assert subject.body["subject"]["dn"] == 'cn=a\\, b+ou=c d,o=example \\"q\\"'
    revoked = await rest.call("POST", f"{CA}/subjects/{_path_dn(dn)}/actions", json_body=REVOKE)
    assert revoked.status == 200 and revoked.body["type"] == "ActionResponse"
    assert revoked.body["serialNumbers"] == [serial]
    assert revoked.body["action"]["status"] == "COMPLETED"
    certificate = await rest.call("GET", f"{CA}/certificates/{serial}")
    assert certificate.body["certificate"]["status"] == "revoked"
    assert certificate.body["certificate"]["revocationInfo"]["reason"] == "keyCompromise"


async def test_ok_ca_certificate_learned_from_the_first_chain_and_kept(tmp_path: Path) -> None:
    issuing = x509.load_pem_x509_certificate
    async with rest_stack(tmp_path) as rest:
        before = await rest.call("GET", "/v1/certificate-authorities")
        assert "certificate" not in before.body["caList"][0]  # nothing known yet: no value, no member
        await rest.issued("learn.example.com")
        expected = issuing(rest.stack.issuing_ca_pem).public_bytes(serialization.Encoding.DER)
        listed = await rest.call("GET", "/v1/certificate-authorities?%24fields=caList.certificate.certificateData")
        data = listed.body["caList"][0]["certificate"]["certificateData"]
        assert base64.b64decode(data) == expected
        one = await rest.call("GET", CA)
        assert base64.b64decode(one.body["ca"]["certificate"]["certificateData"]) == expected
        without = await rest.call("GET", f"{CA}?%24fields=-ca.certificate")
        assert "certificate" not in without.body["ca"] and without.body["ca"]["id"] == CA_ID
    # The ledger kept it: a gateway started on the same ledger serves it before issuing anything.
    async with rest_stack(tmp_path) as again:
        one = await again.call("GET", CA)
        assert one.body["ca"]["certificate"]["certificateData"] == data


async def test_ok_ca_certificate_from_the_configured_file(tmp_path: Path) -> None:
    chain = tmp_path / "configured-chain.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Configured Issuing CA")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(7).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
                   .sign(key, hashes.SHA256()))
    chain.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    async with rest_stack(tmp_path, extra_gateway={"ca-certificates": str(chain)}) as rest:
        await rest.issued("configured.example.com")  # a collected chain does not replace the configured one
        one = await rest.call("GET", CA)
        assert base64.b64decode(one.body["ca"]["certificate"]["certificateData"]) == certificate.public_bytes(
            serialization.Encoding.DER)
        assert one.body["ca"]["chain"] == []


async def test_ok_renew_action_issues_a_new_certificate_and_the_old_one_still_answers(tmp_path: Path) -> None:
    async with rest_stack(tmp_path) as rest:
        old = (await rest.issued("renew.example.com"))["serialNumber"]
        answer = await rest.call("POST", f"{CA}/certificates/{old.upper()}/actions",
                                 json_body={"action": {"type": "RenewAction"}})
        assert answer.status == 200, answer.body
        action, enrollment = answer.body["action"], answer.body["enrollment"]
        assert (action["type"], action["status"]) == ("RenewAction", "COMPLETED")
        assert action["properties"]["enrollmentId"] == enrollment["id"] and enrollment["status"] == "ISSUED"
        new = enrollment["serialNumber"]
        assert new != old and action["properties"]["serialNumber"] == new
        assert rest.stack.simulator.stats.requests["renew"] == 1
        renewed = await rest.call("GET", f"{CA}/certificates/{new}")
        assert renewed.body["certificate"]["subjectName"] == "cn=renew.example.com"
        still = await rest.call("GET", f"{CA}/certificates/{old}")
        assert still.status == 200 and still.body["certificate"]["serialNumber"] == old
        tracked = await rest.call("GET", f"{CA}/enrollments/{enrollment['id']}")
        assert tracked.body["enrollment"]["serialNumber"] == new


async def test_ok_renew_action_pending_is_202_and_collected_later(tmp_path: Path) -> None:
    async with rest_stack(tmp_path, simulator=SimulatorSettings(issue_after_polls=0), attempts=1) as rest:
        old = (await rest.issued("slow-renew.example.com"))["serialNumber"]
        _set_issue_after_polls(rest.stack, 3)
        answer = await rest.call("POST", f"{CA}/certificates/{old}/actions",
                                 json_body={"action": {"type": "RenewAction"}})
        assert answer.status == 202, answer.body
        assert answer.body["action"]["status"] == "ACCEPTED" and "body" not in answer.body["enrollment"]
        enrollment_id = answer.body["action"]["properties"]["enrollmentId"]
        assert f"enrollments/{enrollment_id}" in answer.body["message"]["message"]
        deadline = time.monotonic() + 15
        while True:
            tracked = (await rest.call("GET", f"{CA}/enrollments/{enrollment_id}")).body["enrollment"]
            if tracked["status"] == "ISSUED":
                break
            assert time.monotonic() < deadline, tracked
            await asyncio.sleep(0.2)
        assert tracked["serialNumber"] != old


async def test_ok_reissue_action_with_a_new_csr(tmp_path: Path) -> None:
    async with rest_stack(tmp_path) as rest:
        old = (await rest.issued("reissue.example.com"))["serialNumber"]
        key = new_key()
        csr = build_csr(key, subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reissue.example.com")]))
        der = base64.b64encode(csr.public_bytes(serialization.Encoding.DER)).decode()
        answer = await rest.call("POST", f"{CA}/certificates/{old}/actions",
                                 json_body={"action": {"type": "ReissueAction", "csr": der, "comment": "new key"}})
        assert answer.status == 200, answer.body
        assert answer.body["action"]["status"] == "COMPLETED"
        new = answer.body["enrollment"]["serialNumber"]
        assert new != old and rest.stack.simulator.stats.requests["replace"] == 1
        issued = x509.load_der_x509_certificate(base64.b64decode(
            (await rest.call("GET", f"{CA}/certificates/{new}")).body["certificate"]["certificateData"]))
        assert issued.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo) == \
            key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        assert (await rest.call("GET", f"{CA}/certificates/{old}")).status == 200
        # Revoking the old certificate revokes it alone: the CA order now holds the new one.
        revoked = await rest.call("POST", f"{CA}/certificates/{old}/actions", json_body=REVOKE)
        assert revoked.status == 200, revoked.body
        assert (await rest.call("GET", f"{CA}/certificates/{old}")).body["certificate"]["status"] == "revoked"
        assert (await rest.call("GET", f"{CA}/certificates/{new}")).body["certificate"]["status"] == "normal"
        order = rest.stack.simulator.manager.book.by_serial(int(new, 16))
        assert order is not None and order.status is OrderStatus.ISSUED and int(old, 16) in order.revoked_previous


@pytest.mark.parametrize(("action", "status", "target"), [
    pytest.param({"type": "ReissueAction"}, 400, "action.csr", id="fail-reissue-without-csr"),
    pytest.param({"type": "ReissueAction", "csr": "not a csr"}, 400, "action.csr", id="fail-reissue-bad-csr"),
    pytest.param({"type": "RevokeAction", "csr": "x"}, 400, "action.csr", id="fail-csr-on-revoke"),
    pytest.param({"type": "HoldAction"}, 501, "", id="fail-hold-stays-501"),
])
async def test_fail_certificate_actions(tmp_path: Path, action: dict[str, str], status: int, target: str) -> None:
    async with rest_stack(tmp_path) as rest:
        serial = (await rest.issued("act.example.com"))["serialNumber"]
        answer = await rest.call("POST", f"{CA}/certificates/{serial}/actions", json_body={"action": action})
        assert answer.status == status, answer.body
        assert answer.body["error"]["target"] == target and answer.body["error"]["message"]


async def test_fail_renew_of_an_unknown_serial(tmp_path: Path) -> None:
    async with rest_stack(tmp_path) as rest:
        answer = await rest.call("POST", f"{CA}/certificates/0abc/actions",
                                 json_body={"action": {"type": "RenewAction"}})
        assert answer.status == 404 and answer.body["error"]["code"] == "CERTIFICATE_NOT_FOUND"


async def test_ok_revoke_by_serial_with_issue_crl_as_a_string(rest: Rest) -> None:
    serial = (await rest.issued("revoke.example.com"))["serialNumber"]
    for _ in range(2):  # the second time it is already revoked: still a success, Sectigo asked once
        answer = await rest.call("POST", f"{CA}/certificates/{serial}/actions", json_body=REVOKE)
        assert answer.status == 200, answer.body
        action = answer.body["action"]
        assert (action["type"], action["status"], action["reason"], action["comment"]) == (
            "RevokeAction", "COMPLETED", "keyCompromise", "x")
    assert rest.stack.simulator.stats.requests["revoke"] == 1
    shown = (await rest.call("GET", f"{CA}/certificates/{serial.upper()}")).body["certificate"]
    assert shown["status"] == "revoked"
    assert (shown["revocationInfo"]["reason"], shown["revocationInfo"]["comment"]) == ("keyCompromise", "x")
    # No compromise date was given: none is shown (never "", which no date parser reads).
    assert "compromiseDate" not in shown["revocationInfo"] and shown["revocationInfo"]["revocationDate"]


# ---------------------------------------------------------------- certificate events


async def test_ok_certificate_events_paging(tmp_path: Path) -> None:
    async with rest_stack(tmp_path) as rest:
        serials = [(await rest.issued(f"event{i}.example.com"))["serialNumber"] for i in range(3)]
        assert (await rest.call("POST", f"{CA}/certificates/{serials[0]}/actions", json_body=REVOKE)).status == 200
        first = (await rest.call("GET", f"{CA}/certificate-events?preferredPageSize=3")).body
        assert first["type"] == "CertificateEventsResponse"
        assert [(e["action"], e["serialNumber"]) for e in first["events"]] == [("issued", s) for s in serials]
        assert first["morePages"] is True and first["hasMore"] is True and first["nextPageIndex"]
        assert first["metadata"] == {"currentCount": 3, "totalCount": 4, "currentOffset": 0, "currentLimit": 3}
        assert all(e["certificate"] for e in first["events"])
        cursor = quote(first["nextPageIndex"], safe="")
        second = (await rest.call("GET", f"{CA}/certificate-events?nextPageIndex={cursor}"
                                         "&%24fields=-events.certificate")).body
        assert [(e["action"], e["serialNumber"], e["reason"]) for e in second["events"]] == [
            ("revoked", serials[0], "keyCompromise")]
        assert second["morePages"] is False and second["metadata"]["currentOffset"] == 3
        assert "certificate" not in second["events"][0]  # left out by $fields
        assert int(second["events"][0]["event"]) > int(first["events"][-1]["event"])


# ---------------------------------------------------------------- OpenAPI and health


async def test_ok_openapi_document_is_served_and_valid(world: World) -> None:
    answer = await world.rest.call("GET", "/openapi.json")
    assert answer.status == 200
    validate(answer.body)
    assert world.rest.stack.gateway.rest is not None
    assert answer.body == world.rest.stack.gateway.rest.app[OPENAPI_KEY]
    enroll = answer.body["paths"]["/cagw/v1/certificate-authorities/{caId}/enrollments"]["post"]
    assert {"200", "202", "404"} <= set(enroll["responses"])


async def test_ok_health(world: World) -> None:
    answer = await world.rest.call("GET", "/health")
    assert (answer.status, answer.body) == (200, {"status": "UP"})


async def test_fail_csr_on_a_subject_action(tmp_path: Path) -> None:
    async with rest_stack(tmp_path) as rest:
        answer = await rest.call("POST", f"{CA}/subjects/{_path_dn('CN=x.example.com')}/actions",
                                 json_body={"action": {"type": "RevokeAction", "csr": "x"}})
        assert answer.status == 400 and answer.body["error"]["target"] == "action.csr"


async def test_ok_renew_of_a_pkcs12_certificate_answers_pem(tmp_path: Path) -> None:
    async with rest_stack(tmp_path) as rest:
        issued = await rest.call("POST", f"{CA}/enrollments", json_body={
            "profileId": PROFILE_ID,
            "requiredFormat": {"format": "PKCS12", "protection": {"type": "PasswordProtection",
                                                                  "password": "a long protection password"}},
            "subjectVariables": [{"type": "cn", "value": "p12-renew.example.com"}]})
        assert issued.status == 200, issued.body
        old = issued.body["enrollment"]["serialNumber"]
        answer = await rest.call("POST", f"{CA}/certificates/{old}/actions",
                                 json_body={"action": {"type": "RenewAction"}})
        assert answer.status == 200, answer.body
        renewed = x509.load_pem_x509_certificates(answer.body["enrollment"]["body"].encode())
        assert format(renewed[0].serial_number, "x") == answer.body["enrollment"]["serialNumber"] != old
