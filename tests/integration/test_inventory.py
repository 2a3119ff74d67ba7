"""The inventory and renewal guidance against the live gateway: gRPC and REST over real listeners."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest

from cagw.v1 import (
    certificates_pb2,
    certificates_pb2_grpc,
    common_pb2,
    enrollments_pb2,
    enrollments_pb2_grpc,
    inventory_pb2,
    inventory_pb2_grpc,
)
from tests.integration.observed import scrape
from tests.integration.stack import CA_ID, PROFILE_ID, Stack, running_stack
from tests.support.csr import make_csr


async def _enroll(stack: Stack, common_name: str, **fields: Any) -> enrollments_pb2.Enrollment:
    stub = enrollments_pb2_grpc.EnrollmentServiceStub(stack.channel)
    request = enrollments_pb2.EnrollRequest(ca_id=CA_ID, profile_id=PROFILE_ID, **fields)
    if "csr" not in fields and not fields.get("renewal"):
        request.csr = make_csr(common_name, sans=(common_name, f"www.{common_name}"))
    enrollment = (await stub.Enroll(request)).enrollment
    assert enrollment.status == "ISSUED"
    return enrollment


async def _get(stack: Stack, path: str, **params: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{stack.rest_base}{path}", params=params) as answer:
        return answer.status, await answer.json()


async def test_ok_inventory_lists_pages_and_filters_what_the_gateway_issued(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        issued = [await _enroll(stack, f"app{n}.team-a.example.com") for n in range(3)]
        other = await _enroll(stack, "billing.example.org")
        inventory = inventory_pb2_grpc.CertificateInventoryServiceStub(stack.channel)

        first = await inventory.ListCertificates(inventory_pb2.ListCertificatesRequest(ca_id=CA_ID, page_size=3))
        second = await inventory.ListCertificates(inventory_pb2.ListCertificatesRequest(
            ca_id=CA_ID, page_size=3, page_token=first.next_page_token))
        listed = [c.serial_number for c in (*first.certificates, *second.certificates)]
        assert sorted(listed) == sorted(e.serial_number for e in (*issued, other)) and len(set(listed)) == 4
        assert second.next_page_token == ""
        entry = next(c for c in (*first.certificates, *second.certificates) if c.serial_number == issued[0].serial_number)
        assert entry.names == ["app0.team-a.example.com", "www.app0.team-a.example.com"]
        assert (entry.profile_id, entry.status, entry.enrollment_id) == (PROFILE_ID, "normal", issued[0].id)
        assert 360 <= entry.days_to_expiry <= 366

        status, body = await _get(stack, f"/v1/certificate-authorities/{CA_ID}/certificates",
                                  name="*.team-a.example.com", expiringWithin="400d")
        assert status == 200, body
        assert body["type"] == "CertificateListResponse"
        assert sorted(c["serialNumber"] for c in body["certificates"]) == sorted(e.serial_number for e in issued)
        status, body = await _get(stack, f"/v1/certificate-authorities/{CA_ID}/certificates", expiringWithin="30d")
        assert (status, body.get("certificates", [])) == (200, [])


@pytest.mark.parametrize(("params", "field"), [
    ({"status": "valid"}, "status"),
    ({"name": "a,b.example.com"}, "name"),
    ({"expiringWithin": "soon"}, "expiringWithin"),
    ({"expiringBefore": "9999-12-31T23:59:59-05:00"}, "expiringBefore"),
    ({"pageToken": "not-a-token"}, "pageToken"),
    ({"pageSize": "-1"}, "pageSize"),
])
async def test_fail_bad_filters_are_400_naming_the_field(tmp_path: Path, params: dict[str, str],
                                                         field: str) -> None:
    async with running_stack(tmp_path) as stack:
        status, body = await _get(stack, f"/v1/certificate-authorities/{CA_ID}/certificates", **params)
        assert (status, body["type"]) == (400, "ErrorResponse"), body
        assert body["error"]["target"] == field, body


async def test_ok_renewal_info_suggests_a_window_and_shows_the_replacement(tmp_path: Path) -> None:
    async with running_stack(tmp_path, extra_gateway={"renewal": {"window": "50%", "jitter": "0%"}}) as stack:
        first = await _enroll(stack, "renew-me.example.com")
        path = f"/v1/certificate-authorities/{CA_ID}/certificates/{first.serial_number.upper()}/renewal-info"
        status, body = await _get(stack, path)
        assert status == 200, body
        start = dt.datetime.fromisoformat(body["suggestedWindow"]["start"])
        end = dt.datetime.fromisoformat(body["suggestedWindow"]["end"])
        not_before = dt.datetime.fromisoformat(body["certificate"]["notBefore"])
        not_after = dt.datetime.fromisoformat(body["certificate"]["notAfter"])
        assert start == not_after - (not_after - not_before) / 2  # no jitter: the middle of the lifetime
        assert end == start + (not_after - start) / 2
        assert body["retryAfterSeconds"] == 6 * 3600 and not body["certificate"].get("replacedBy")

        renewed = await _enroll(stack, "", renewal=True, properties={"RenewalSerialNumber": first.serial_number})
        status, body = await _get(stack, path)
        assert status == 200, body
        assert body["certificate"]["replacedBy"] == renewed.serial_number
        assert body["certificate"]["replacementEnrollmentId"] == renewed.id


async def test_fail_renewal_info_of_an_unknown_serial_is_not_found(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        inventory = inventory_pb2_grpc.CertificateInventoryServiceStub(stack.channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await inventory.GetRenewalInfo(inventory_pb2.GetRenewalInfoRequest(ca_id=CA_ID, serial_number="0abc"))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_ok_expiry_gauges_count_the_inventory_on_the_ops_listener(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        first = await _enroll(stack, "gauge-a.example.com")
        await _enroll(stack, "gauge-b.example.com")
        gauges = stack.gateway.certificate_gauges
        assert gauges is not None
        await gauges.refresh()
        scraped = await scrape(stack)
        assert scraped.value("cagw_certificates", ca=CA_ID, status="normal", expires_in="later") == 2

        stub = certificates_pb2_grpc.CertificateServiceStub(stack.channel)
        await stub.PerformCertificateAction(certificates_pb2.PerformCertificateActionRequest(
            ca_id=CA_ID, serial_number=first.serial_number,
            action=common_pb2.Action(type="RevokeAction", reason="superseded")))
        await gauges.refresh()
        scraped = await scrape(stack)
        assert scraped.value("cagw_certificates", ca=CA_ID, status="normal", expires_in="later") == 1
        assert scraped.value("cagw_certificates", ca=CA_ID, status="revoked", expires_in="later") == 1


async def test_ok_certificate_events_stream_live_and_resume_after_a_cursor(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        first = await _enroll(stack, "stream-a.example.com")
        inventory = inventory_pb2_grpc.CertificateInventoryServiceStub(stack.channel)
        call = inventory.WatchCertificateEvents(inventory_pb2.WatchCertificateEventsRequest(ca_id=CA_ID, after="0"),
                                                timeout=20)
        stream = call.__aiter__()
        seen = [(await stream.__anext__()).event]
        second = await _enroll(stack, "stream-b.example.com")  # while the stream is open
        await certificates_pb2_grpc.CertificateServiceStub(stack.channel).PerformCertificateAction(
            certificates_pb2.PerformCertificateActionRequest(
                ca_id=CA_ID, serial_number=first.serial_number,
                action=common_pb2.Action(type="RevokeAction", reason="superseded")))
        seen += [(await stream.__anext__()).event, (await stream.__anext__()).event]
        call.cancel()
        assert [(e.type, e.serial_number) for e in seen] == [
            ("issued", first.serial_number), ("issued", second.serial_number), ("revoked", first.serial_number)]
        assert seen[2].reason == "superseded" and seen[0].detail == "cn=stream-a.example.com"

        async with aiohttp.ClientSession() as http, http.get(
                f"{stack.rest_base}/v1/certificate-authorities/{CA_ID}/certificate-events:watch",
                params={"after": seen[0].id, "maxEvents": "2"}, timeout=aiohttp.ClientTimeout(total=20)) as answer:
            assert answer.status == 200 and answer.headers["Content-Type"] == "application/x-ndjson"
            lines = [json.loads(line) for line in (await answer.text()).splitlines()]
        assert [line["result"]["event"]["id"] for line in lines] == [seen[1].id, seen[2].id]

        status, body = await _get(stack, f"/v1/certificate-authorities/{CA_ID}/certificate-events:watch",
                                  after="last")
        assert (status, body["error"]["target"]) == (400, "after")
