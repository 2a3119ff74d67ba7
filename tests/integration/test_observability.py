"""Metrics, request ids and log lines of a live gateway (gRPC + REST + ops listener, simulator over TLS)."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from cagw.v1 import certificates_pb2, certificates_pb2_grpc, enrollments_pb2, enrollments_pb2_grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from multidict import CIMultiDict

from service.simulator import SimulatorSettings
from service.simulator.settings import DEMO_PASSWORD
from tests.integration.observed import json_log_lines, scrape
from tests.integration.stack import CA_ID, PROFILE_ID, Stack, running_stack
from tests.support.csr import make_csr

ENROLLMENTS = "cagw.v1.EnrollmentService"
CERTIFICATES = "cagw.v1.CertificateService"
HEX_ID = re.compile(r"[0-9a-f]{32}")


def _stub(stack: Stack) -> enrollments_pb2_grpc.EnrollmentServiceStub:
    return enrollments_pb2_grpc.EnrollmentServiceStub(stack.channel)


def _enroll(csr: str) -> enrollments_pb2.EnrollRequest:
    return enrollments_pb2.EnrollRequest(ca_id=CA_ID, profile_id=PROFILE_ID, csr=csr)


async def _rest(stack: Stack, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any, CIMultiDict[str]]:
    async with aiohttp.ClientSession() as http:
        async with http.request(method, stack.rest_base + path, json=body, headers=headers or {}) as response:
            return response.status, await response.json(content_type=None), CIMultiDict(response.headers)


async def test_ok_a_scrape_counts_calls_of_both_transports_and_what_they_caused(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        response = await _stub(stack).Enroll(_enroll(make_csr("grpc.example.com")))
        assert response.enrollment.status == "ISSUED"
        status, body, _ = await _rest(stack, "POST", f"/v1/certificate-authorities/{CA_ID}/enrollments",
                                      {"profileId": PROFILE_ID, "csr": make_csr("rest.example.com")})
        assert status == 200, body
        status, _, _ = await _rest(stack, "GET", "/v1/certificate-authorities/nope/profiles")
        assert status == 404
        found = await scrape(stack)

    assert found.content_type.startswith("text/plain; version=")  # Prometheus' text format
    for transport in ("grpc", "rest"):
        assert found.value("cagw_calls_total", service=ENROLLMENTS, method="Enroll", transport=transport,
                           code="OK") == 1
        assert found.value("cagw_call_duration_seconds_count", service=ENROLLMENTS, method="Enroll",
                           transport=transport) == 1
    assert found.value("cagw_calls_total", method="ListProfiles", transport="rest", code="NOT_FOUND") == 1
    assert found.value("cagw_ca_calls_total", ca=CA_ID, operation="enroll", outcome="ok") == 2
    assert found.value("cagw_ca_calls_total", ca=CA_ID, operation="collect", outcome="ok") >= 2
    assert found.value("cagw_ca_call_duration_seconds_count", ca=CA_ID, operation="enroll") == 2
    assert found.value("cagw_ca_http_requests_total", ca=CA_ID, method="POST", status="2xx") == 2  # the enrolls
    assert found.total("cagw_ca_http_requests_total", ca=CA_ID, method="GET") >= 4  # two downloads per collect
    assert found.value("cagw_ca_circuit_state", ca=CA_ID) == 0
    assert found.value("cagw_ledger_operations_total", operation="create_order", outcome="ok") == 2
    assert found.value("cagw_ledger_operation_duration_seconds_count", operation="record_issued") == 2
    assert found.value("cagw_order_transitions_total", ca=CA_ID, state="ISSUED") == 2
    assert found.value("cagw_orders", ca=CA_ID, state="COLLECTING") == 0
    assert found.value("cagw_oldest_pending_order_age_seconds", ca=CA_ID) == 0
    assert found.value("cagw_build_info") == 1
    # Bounded labels: no order id, serial, DN or host name of a request ever becomes a label value.
    assert not [v for v in found.label_values() if HEX_ID.fullmatch(v) or "example.com" in v or "=" in v]


async def test_ok_open_watch_streams_are_counted_while_open(tmp_path: Path) -> None:
    async with running_stack(tmp_path, simulator=SimulatorSettings(require_approval=True, issue_after_polls=1),
                             attempts=200) as stack:
        stream = _stub(stack).EnrollAndWatch(enrollments_pb2.EnrollAndWatchRequest(
            ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr("watch.example.com")))
        order_id = ""
        async for message in stream:  # until the CA's order id is known: the stream is open
            order_id = message.event.sectigo_order_id
            if order_id:
                break
        during = await scrape(stack)
        stack.simulator.manager.approve(order_id, None)
        last = [message async for message in stream][-1]
        assert last.event.state == enrollments_pb2.ENROLLMENT_STATE_ISSUED
        after = await scrape(stack)
    labels = {"service": ENROLLMENTS, "method": "EnrollAndWatch", "transport": "grpc"}
    assert during.value("cagw_open_streams", **labels) == 1
    assert during.total("cagw_orders", ca=CA_ID) == 1  # SUBMITTED or COLLECTING: unfinished
    assert during.value("cagw_oldest_pending_order_age_seconds", ca=CA_ID) > 0
    assert after.value("cagw_open_streams", **labels) == 0
    assert after.value("cagw_calls_total", code="OK", **labels) == 1


async def test_ok_request_ids_are_taken_or_made_returned_and_in_every_line_and_error(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        with json_log_lines(level="info") as lines:
            call = _stub(stack).Enroll(_enroll(make_csr("rid.example.com")), metadata=(("x-request-id", "it-7"),))
            assert (await call).enrollment.status == "ISSUED"
            assert dict(await call.initial_metadata())["x-request-id"] == "it-7"
            made = _stub(stack).GetEnrollment(enrollments_pb2.GetEnrollmentRequest(ca_id=CA_ID, enrollment_id="x"),
                                              metadata=(("x-request-id", "not valid!"),))
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await made
            made_id = dict(await made.initial_metadata())["x-request-id"]
            status, _, headers = await _rest(stack, "GET", "/v1/certificate-authorities/nope",
                                             headers={"X-Request-Id": "rest-9"})
            _, _, route_miss = await _rest(stack, "GET", "/v1/no-such-route")
    assert HEX_ID.fullmatch(made_id)
    details = rpc_status.from_call(caught.value).details  # type: ignore[arg-type, union-attr]
    info = error_details_pb2.ErrorInfo()
    assert details[0].Unpack(info) and info.metadata["request_id"] == made_id
    assert (status, headers["X-Request-Id"]) == (404, "rest-9")
    assert HEX_ID.fullmatch(route_miss["X-Request-Id"])  # refused before any method: it has one too
    written = lines.all()
    of_call = [line for line in written if line["request_id"] == "it-7"]
    access = [line for line in of_call if line["logger"] == "cagw.access"]
    assert [(a["method"], a["transport"], a["ca"], a["status"]) for a in access] == [
        (f"/{ENROLLMENTS}/Enroll", "grpc", CA_ID, "OK")]
    assert access[0]["client"] == "anonymous" and access[0]["duration_ms"] > 0
    orders = [line for line in of_call if line["logger"] == "cagw.orders"]  # the order's task inherits the id
    assert [line["state"] for line in orders][0] == "RECEIVED" and orders[-1]["state"] == "ISSUED"
    assert orders[-1]["ca_order_id"] and orders[-1]["enrollment_id"]
    assert [line["status"] for line in written if line.get("logger") == "cagw.access"
            and line["request_id"] == "rest-9"] == ["NOT_FOUND"]


async def test_ok_no_secret_or_csr_in_any_line_of_a_whole_flow_at_debug(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    csr_grpc, csr_rest = make_csr("secret-scan.example.com"), make_csr("secret-scan-rest.example.com")
    async with running_stack(tmp_path) as stack:
        with json_log_lines(level="debug") as lines:
            issued = (await _stub(stack).Enroll(_enroll(csr_grpc))).enrollment
            status, body, _ = await _rest(stack, "POST", f"/v1/certificate-authorities/{CA_ID}/enrollments",
                                          {"profileId": PROFILE_ID, "csr": csr_rest})
            assert status == 200, body
            certificates = certificates_pb2_grpc.CertificateServiceStub(stack.channel)
            await certificates.GetCertificate(certificates_pb2.GetCertificateRequest(
                ca_id=CA_ID, serial_number=issued.serial_number))
            status, body, _ = await _rest(
                stack, "POST", f"/v1/certificate-authorities/{CA_ID}/certificates/{issued.serial_number}/actions",
                {"action": {"type": "RevokeAction", "reason": "keyCompromise", "comment": "scan"}})
            assert status == 200, body
    written = lines.text()
    assert "cagw.access" in written and "cagw.orders" in written  # the scan looked at real output
    # Every record of the gateway's own loggers, whatever the handler (third-party debug records,
    # which carry request data, are dropped by the gateway's handler: the scan of `written` holds that).
    own = [record for record in caplog.records
           if record.name.split(".")[0] in ("service", "cagw") and not record.name.startswith("service.simulator")]
    assert {"cagw.access", "cagw.orders"} <= {record.name for record in own}
    gateway_records = "\n".join(record.getMessage() for record in own)
    for text in (written, gateway_records):
        assert DEMO_PASSWORD not in text
        for csr in (csr_grpc, csr_rest):
            body_lines = [line for line in csr.splitlines() if "-----" not in line]
            assert not [line for line in body_lines if line in text]
            assert base64.b64encode(csr.encode()).decode()[:40] not in text
        assert "PRIVATE KEY" not in text
