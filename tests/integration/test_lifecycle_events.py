"""``failed``, ``expiring`` and ``replaced`` events against the live stack: told to a real HTTPS
receiver on loopback (each signature checked), once each, across a restart, and not in the CAGW
feed (which keeps to issued and revoked);
and automatic renewal chosen per order (``properties.AutomaticRenewal``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

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
from service.app import Gateway
from service.clock import utcnow
from service.lifecycle.expiry import ExpiryNotices
from service.simulator.faults import FaultRule
from tests.integration.stack import CA_ID, PROFILE_ID, Stack, running_stack
from tests.integration.test_auto_renewal import AUTOMATIC, _renewals
from tests.integration.webhook_receiver import SECRET, Receiver, https_receiver, receiver_tls
from tests.support.csr import make_csr


def _stub(stack: Stack) -> enrollments_pb2_grpc.EnrollmentServiceStub:
    return enrollments_pb2_grpc.EnrollmentServiceStub(stack.channel)


async def _enroll(stack: Stack, common_name: str, **properties: str) -> enrollments_pb2.Enrollment:
    return (await _stub(stack).Enroll(enrollments_pb2.EnrollRequest(
        ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr(common_name), properties=properties))).enrollment


async def _renew(stack: Stack, serial: str) -> certificates_pb2.PerformCertificateActionResponse:
    return await certificates_pb2_grpc.CertificateServiceStub(stack.channel).PerformCertificateAction(
        certificates_pb2.PerformCertificateActionRequest(ca_id=CA_ID, serial_number=serial,
                                                         action=common_pb2.Action(type="RenewAction")))


async def _notices(gateway: Gateway, days_later: float) -> int:
    assert gateway.ledger is not None and gateway.cas is not None
    return await ExpiryNotices(gateway.ledger, clock=lambda: utcnow() + dt.timedelta(days=days_later)).notify(
        gateway.cas.get(CA_ID))


async def _feed_actions(stack: Stack) -> list[tuple[str, str]]:
    page = await certificates_pb2_grpc.CertificateServiceStub(stack.channel).ListCertificateEvents(
        certificates_pb2.ListCertificateEventsRequest(ca_id=CA_ID))
    return [(event.action, event.serial_number) for event in page.events]


async def test_ok_failed_replaced_and_expiring_reach_a_receiver_once_each_and_signed(tmp_path: Path) -> None:
    receiver = Receiver(failures=2)
    context, receiver_ca = receiver_tls(tmp_path)
    async with https_receiver(receiver, context) as url:
        webhooks = [{"name": "team-a", "url": url, "secret": SECRET, "tls-ca": str(receiver_ca),
                     "retry-delay": "50ms"}]
        async with running_stack(tmp_path, extra_top={"webhooks": webhooks}) as stack:
            first = await _enroll(stack, "lifecycle.example.com")
            stack.simulator.faults.add(FaultRule(route="enroll", kind="status", status=400, count=1))
            with pytest.raises(grpc.aio.AioRpcError):
                await _enroll(stack, "refused.example.com")
            renewal = await _renew(stack, first.serial_number)
            new_serial = renewal.action.properties["serialNumber"]
            # A year's certificates 25 days before their end: the old one is replaced, not told.
            assert await _notices(stack.gateway, days_later=340) == 1
            assert await _notices(stack.gateway, days_later=340) == 0
            await receiver.wait_for(5)
            # The CAGW feed shows every event that names a certificate; the failed order has none.
            assert await _feed_actions(stack) == [("issued", first.serial_number), ("issued", new_serial),
                                                  ("replaced", first.serial_number), ("expiring", new_serial)]
    kinds = [(e["type"], e["serialNumber"]) for e in receiver.accepted]
    assert kinds == [("issued", first.serial_number), ("failed", ""), ("renewed", new_serial),
                     ("replaced", first.serial_number), ("expiring", new_serial)]
    failed, replaced, expiring = receiver.accepted[1], receiver.accepted[3], receiver.accepted[4]
    assert failed["enrollmentId"] and failed["reason"] and "replaces" not in failed
    assert (replaced["replacedBy"], replaced["enrollmentId"]) == (new_serial, renewal.enrollment.id)
    assert (expiring["expiresWithin"], expiring["detail"]) == ("30d", "30d")
    assert receiver.requests == 7  # two refusals, then each event once


async def test_ok_expiring_is_told_once_across_a_restart(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        issued = await _enroll(stack, "restarted.example.com")
        assert await _notices(stack.gateway, days_later=360) == 1  # the 7-day threshold, not the 30-day one
        await stack.gateway.stop()
        restarted = Gateway(stack.config)
        await restarted.start()
        try:
            assert await _notices(restarted, days_later=360) == 0
            assert await _notices(restarted, days_later=364.5) == 1  # then the last day
            assert restarted.ledger is not None
            told = [(e.event.detail, e.event.serial_number) for e in await restarted.ledger.events_after(0, limit=10)
                    if e.event.action == "expiring"]
        finally:
            await restarted.stop()
    assert told == [("7d", issued.serial_number), ("1d", issued.serial_number)]


async def test_ok_an_order_opts_in_to_automatic_renewal_and_its_renewal_stays_in(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:  # no profile renews automatically
        chosen = await _enroll(stack, "opted-in.example.com", AutomaticRenewal="true")
        alone = await _enroll(stack, "left-alone.example.com")
        inventory = inventory_pb2_grpc.CertificateInventoryServiceStub(stack.channel)
        shown = {serial: (await inventory.GetRenewalInfo(inventory_pb2.GetRenewalInfoRequest(
            ca_id=CA_ID, serial_number=serial))).certificate.automatic_renewal
            for serial in (chosen.serial_number, alone.serial_number)}
        assert shown == {chosen.serial_number: "true", alone.serial_number: ""}
        assert await _renewals(stack.gateway, days_later=300) == [chosen.serial_number]
        assert chosen.serial_number not in await _renewals(stack.gateway, days_later=301)  # never twice
        ledger = stack.gateway.ledger
        assert ledger is not None
        entry = await ledger.inventory_entry(CA_ID, chosen.serial_number)
        assert entry is not None and entry.auto_renew is True and entry.replacement_order_id
        renewal = await ledger.get_order(entry.replacement_order_id)
        assert renewal is not None and renewal.options.get("auto_renew") == "true"  # renewed in its turn
        renewing = [order.id for order in await ledger.list_orders(ca_id=CA_ID)
                    if order.renewal_of_serial == chosen.serial_number]
    assert renewing == [renewal.id]


async def test_ok_an_order_opts_out_of_its_profiles_automatic_renewal(tmp_path: Path) -> None:
    async with running_stack(tmp_path, extra_gateway=AUTOMATIC) as stack:
        await _enroll(stack, "opted-out.example.com", AutomaticRenewal="false")
        assert await _renewals(stack.gateway, days_later=200) == []
        assert stack.simulator.stats.requests["renew"] == 0


async def test_fail_an_automatic_renewal_choice_that_is_not_a_boolean_is_refused(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _enroll(stack, "unsure.example.com", AutomaticRenewal="maybe")
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "properties.AutomaticRenewal" in (caught.value.details() or "")
