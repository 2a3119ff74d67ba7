"""Drift sync against the live stack: an order placed in Sectigo directly (not through the gateway)
and a revocation made there both reach the ledger, the inventory and the events feed."""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from cagw.v1 import enrollments_pb2, enrollments_pb2_grpc
from service.certificates.lookup import CertificateLookup
from service.clock import utcnow
from service.lifecycle.sync import DriftSync
from service.simulator import SimulatorSettings
from service.simulator.settings import DEMO_CUSTOMER_URI, DEMO_LOGIN, DEMO_PASSWORD
from service.x509 import format_serial
from tests.integration.stack import CA_ID, CERT_TYPE, PROFILE_ID, Stack, running_stack
from tests.support.csr import make_csr

SCM_HEADERS = {"login": DEMO_LOGIN, "password": DEMO_PASSWORD, "customerUri": DEMO_CUSTOMER_URI}


async def _scm(stack: Stack, tmp: Path, method: str, path: str, body: Any = None) -> Any:
    """A call to Sectigo's API as someone else would make it (the portal, another tool)."""
    context = ssl.create_default_context(cafile=str(tmp / "trust.pem"))
    async with aiohttp.ClientSession(headers=SCM_HEADERS) as http, http.request(
            method, f"{stack.simulator.url}/api/ssl/v1{path}", json=body, ssl=context) as answer:
        assert answer.status in (200, 204), await answer.text()
        return await answer.json() if answer.status == 200 else None


async def test_ok_a_pass_records_what_was_issued_and_revoked_at_the_ca_directly(tmp_path: Path) -> None:
    async with running_stack(tmp_path, simulator=SimulatorSettings(issue_after=0.0),
                             extra_gateway={"sync": {"page-size": "2", "max-pages": "10"}}) as stack:
        ours = (await enrollments_pb2_grpc.EnrollmentServiceStub(stack.channel).Enroll(
            enrollments_pb2.EnrollRequest(ca_id=CA_ID, profile_id=PROFILE_ID,
                                          csr=make_csr("ours.example.com")))).enrollment
        assert ours.status == "ISSUED"
        placed = await _scm(stack, tmp_path, "POST", "/enroll", {
            "orgId": 1234, "csr": make_csr("portal-made.example.com"), "certType": CERT_TYPE, "term": 365})
        await _scm(stack, tmp_path, "POST", f"/revoke/{ours.sectigo_order_id}", {"reason": "portal clean-up"})
        details = await _scm(stack, tmp_path, "GET", f"/{placed['sslId']}")
        outside = format_serial(int(details["serialNumber"].replace(":", ""), 16))

        assert stack.gateway.drift_sync is not None and stack.gateway.cas is not None
        ca = stack.gateway.cas.get(CA_ID)
        report = await stack.gateway.drift_sync.sync(ca)
        assert (report.found, report.revoked, report.complete, report.errors) == (1, 1, True, [])
        details_asked = stack.simulator.stats.requests["details"]
        again = await stack.gateway.drift_sync.sync(ca)
        assert (again.found, again.revoked, again.listed) == (0, 0, report.listed)
        assert stack.simulator.stats.requests["details"] == details_asked  # known serials cost no call

        ledger = stack.gateway.ledger
        assert ledger is not None
        found = await ledger.get_certificate(CA_ID, outside)
        assert found is not None and found.order_id is None and found.subject_dn == "cn=portal-made.example.com"
        revoked = await ledger.get_certificate(CA_ID, ours.serial_number)
        assert revoked is not None and revoked.status == "revoked"
        events = [(e.event.action, e.event.serial_number, e.ordered) for e in await ledger.events_after(0, limit=10)]
        assert events == [("issued", ours.serial_number, True), ("issued", outside, False),
                          ("revoked", ours.serial_number, True)]


async def test_ok_passes_repeat_every_interval_and_say_what_they_found(tmp_path: Path, caplog: Any) -> None:
    async with running_stack(tmp_path, simulator=SimulatorSettings(issue_after=0.0),
                             extra_gateway={"sync": {"interval": "1h"}}) as stack:
        placed = await _scm(stack, tmp_path, "POST", "/enroll", {
            "orgId": 1234, "csr": make_csr("between-passes.example.com"), "certType": CERT_TYPE, "term": 365})
        sleeps: list[float] = []

        async def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            raise asyncio.CancelledError  # one pass is enough here

        assert stack.gateway.ledger is not None and stack.gateway.cas is not None
        lookup = CertificateLookup(stack.gateway.ledger, clock=utcnow)
        with caplog.at_level(logging.INFO, logger="service.lifecycle.sync"), pytest.raises(asyncio.CancelledError):
            await DriftSync(stack.gateway.ledger, lookup, sleep=sleep).run(stack.gateway.cas.get(CA_ID))
        assert sleeps == [3600.0]
        assert "stored 1 certificate(s) issued outside the gateway" in caplog.text
        details = await _scm(stack, tmp_path, "GET", f"/{placed['sslId']}")
        serial = format_serial(int(details["serialNumber"].replace(":", ""), 16))
        assert await stack.gateway.ledger.get_certificate(CA_ID, serial) is not None
