"""Webhook events survive a SIGKILL between the change and its delivery (real processes)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import grpc
import pytest
from cagw.v1 import enrollments_pb2 as pb
from cagw.v1 import enrollments_pb2_grpc as pb_grpc

from service.ledger import open_ledger
from tests.e2e.processes import (
    CA_ID,
    PROFILE_ID,
    Processes,
    free_port,
    gateway_document,
    start_gateway,
    start_simulator,
    write_config,
)
from tests.integration.webhook_receiver import SECRET, Receiver, https_receiver, receiver_tls
from tests.support.csr import make_csr

pytestmark = pytest.mark.slow


async def test_ok_an_event_written_before_a_sigkill_is_delivered_after_the_restart(
        processes: Processes, tmp_path: Path) -> None:
    simulator = await asyncio.to_thread(start_simulator, processes, tmp_path / "sim", options=("--issue-after", "0s"))
    context, receiver_ca = receiver_tls(tmp_path)
    port = free_port()  # the receiver is down until after the crash
    document = gateway_document(simulator.api_url, tmp_path / "gw")
    document["webhooks"] = [{"name": "team-a", "url": f"https://127.0.0.1:{port}/hooks/cagw", "secret": SECRET,
                             "tls-ca": str(receiver_ca), "retry-delay": "100ms"}]
    config = write_config(tmp_path / "gw", document)
    gateway = await asyncio.to_thread(start_gateway, processes, config)

    async with grpc.aio.insecure_channel(gateway.grpc_target, options=[("grpc.enable_http_proxy", 0)]) as channel:
        issued = (await pb_grpc.EnrollmentServiceStub(channel).Enroll(pb.EnrollRequest(
            ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr("outbox.example.com")), timeout=30)).enrollment
    assert issued.status == "ISSUED"
    gateway.process.kill()
    assert gateway.process.returncode == -signal.SIGKILL
    ledger = await open_ledger(gateway.ledger_path)
    try:
        [written] = await ledger.events_after(0, limit=10)
        assert (written.event.action, written.event.serial_number) == ("issued", issued.serial_number)
        assert (await ledger.webhook_cursor("team-a") or 0) < written.event.id  # never acknowledged
    finally:
        await ledger.close()

    receiver = Receiver()
    async with https_receiver(receiver, context, port=port):
        restarted = await asyncio.to_thread(start_gateway, processes, config, name="gateway-restarted")
        await receiver.wait_for(1)
        restarted.process.stop()
    assert [(e["type"], e["serialNumber"]) for e in receiver.accepted] == [("issued", issued.serial_number)]
