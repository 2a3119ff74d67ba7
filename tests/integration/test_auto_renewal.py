"""Automatic renewal against the live stack: renewed once inside the window, never twice, not after
a restart, not when two gateways on one ledger decide at the same moment."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

from cagw.v1 import enrollments_pb2, enrollments_pb2_grpc
from service.app import Gateway
from service.clock import utcnow
from service.ledger import CertificateQuery, open_ledger
from service.lifecycle.autorenew import AutoRenewal
from tests.integration.stack import CA_ID, PROFILE_ID, Stack, running_stack
from tests.support.csr import make_csr

AUTOMATIC = {"renewal": {"automatic": "true", "window": "50%", "jitter": "0%"}}


def later(days: float) -> dt.datetime:
    return utcnow() + dt.timedelta(days=days)


async def _issued(stack: Stack, common_name: str) -> enrollments_pb2.Enrollment:
    enrollment = (await enrollments_pb2_grpc.EnrollmentServiceStub(stack.channel).Enroll(
        enrollments_pb2.EnrollRequest(ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr(common_name)))).enrollment
    assert enrollment.status == "ISSUED"
    return enrollment


async def _renewals(gateway: Gateway, days_later: float) -> list[str]:
    assert gateway.ledger is not None and gateway.engine is not None and gateway.cas is not None
    done = await AutoRenewal(gateway.ledger, gateway.engine, clock=lambda: later(days_later)).renew_due(
        gateway.cas.get(CA_ID))
    return done.renewed


async def ledger_orders_renewing(tmp: Path, serial: str) -> list[str]:
    """The orders in the (closed) ledger file that renew ``serial``."""
    ledger = await open_ledger(tmp / "ledger.db")
    try:
        entries = await ledger.list_certificates(CertificateQuery(ca_id=CA_ID, now=utcnow(), limit=50))
        return [e.certificate.serial_number for e in entries
                if (order := await ledger.get_order(e.certificate.order_id or "")) is not None
                and order.renewal_of_serial == serial]
    finally:
        await ledger.close()


async def test_ok_renewed_once_inside_its_window_and_not_again_after_a_restart(tmp_path: Path) -> None:
    async with running_stack(tmp_path, extra_gateway=AUTOMATIC) as stack:
        first = await _issued(stack, "auto-renew.example.com")
        assert await _renewals(stack.gateway, days_later=100) == []  # a 365-day certificate: window at day 182
        assert await _renewals(stack.gateway, days_later=200) == [first.serial_number]
        # Renewed already (the new certificate may be due too, seen from 201 days on: it is younger by seconds).
        assert first.serial_number not in await _renewals(stack.gateway, days_later=201)

        ledger = stack.gateway.ledger
        assert ledger is not None
        async with asyncio.timeout(10):
            while (entry := await ledger.inventory_entry(CA_ID, first.serial_number)) is None or not entry.replaced_by:
                await asyncio.sleep(0.05)
        renewal = await ledger.get_order(entry.replacement_order_id or "")
        assert renewal is not None and renewal.renewal_of_serial == first.serial_number

        await stack.gateway.stop()
        restarted = Gateway(stack.config)  # the same ledger and the same CA
        await restarted.start()
        try:
            assert first.serial_number not in await _renewals(restarted, days_later=210)
        finally:
            await restarted.stop()
        renewals_of_first = await ledger_orders_renewing(tmp_path, first.serial_number)
        assert len(renewals_of_first) == 1


async def test_ok_two_gateways_deciding_at_once_place_one_renewal(tmp_path: Path) -> None:
    async with running_stack(tmp_path, extra_gateway=AUTOMATIC) as stack:
        first = await _issued(stack, "raced-renew.example.com")
        other = Gateway(stack.config)
        await other.start()
        try:
            placed = await asyncio.gather(_renewals(stack.gateway, 200), _renewals(other, 200))
        finally:
            await other.stop()
        assert sorted(placed) == [[], [first.serial_number]] or placed == [[first.serial_number]] * 2
        assert stack.simulator.stats.requests["renew"] == 1  # one order: the request id is the same


async def test_ok_profiles_without_automatic_renewal_are_left_to_their_callers(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        await _issued(stack, "manual.example.com")
        assert await _renewals(stack.gateway, days_later=300) == []
        assert stack.simulator.stats.requests["renew"] == 0
