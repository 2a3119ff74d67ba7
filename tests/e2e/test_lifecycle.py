"""Whole processes over their lifetime: config mode, ledger backup, SIGTERM and SIGKILL + restart.

``cagw serve --config`` runs against a separate ``cagw simulator`` process over
plain HTTP. The shutdown and crash tests talk to the gateway with an in-process
gRPC client (to see exact status codes) and read the ledger file afterwards
with :func:`service.ledger.open_ledger`.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from cagw.v1 import enrollments_pb2 as pb
from cagw.v1 import enrollments_pb2_grpc as pb_grpc
from cryptography import x509
from google.protobuf.any_pb2 import Any as AnyMessage
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from service.ledger import OrderState, open_ledger
from tests.e2e.processes import (
    CA_ID,
    PROFILE_ID,
    GatewayProcess,
    Processes,
    SimulatorProcess,
    gateway_document,
    run_cagw,
    start_gateway,
    start_simulator,
    wait_until,
    write_config,
)
from tests.support.csr import make_csr

pytestmark = pytest.mark.slow

BACKGROUND_CA = "sim-background"  # one foreground attempt, then background collection every second
NO_PROXY = [("grpc.enable_http_proxy", 0)]


def _channel(gateway: GatewayProcess) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(gateway.grpc_target, options=NO_PROXY)


def _enroll_request(common_name: str, *, ca_id: str = CA_ID) -> pb.EnrollRequest:
    return pb.EnrollRequest(ca_id=ca_id, profile_id=PROFILE_ID, csr=make_csr(common_name))


# ---------------------------------------------------------------------------- config mode


@dataclass
class ConfigStack:
    simulator: SimulatorProcess
    gateway: GatewayProcess
    config: Path


@pytest.fixture(scope="module")
def stack(module_processes: Processes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConfigStack]:
    """Simulator issuing on the third collect; CA ``sim`` collects three times 50 ms apart (issued in
    time), CA ``sim-background`` once (then the attempts are used up and the background takes over)."""
    folder = tmp_path_factory.mktemp("config-mode")
    simulator = start_simulator(module_processes, folder / "sim", options=("--issue-after-polls", "2"))
    document = gateway_document(simulator.api_url, folder, extra_cas=[(BACKGROUND_CA, {"enroll-max-attempts": "1"})])
    config = write_config(folder, document)
    yield ConfigStack(simulator, start_gateway(module_processes, config), config)


def _csr_file(folder: Path, common_name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    key, csr = folder / f"{common_name}.key", folder / f"{common_name}.csr"
    result = run_cagw("csr", "--cn", common_name, "--key-out", str(key), "--csr-out", str(csr))
    assert result.returncode == 0, result.stderr
    return csr


def test_ok_config_mode_lists_both_cas(stack: ConfigStack) -> None:
    result = run_cagw("cas", "--server", stack.gateway.grpc_target, "--timeout", "10")
    assert result.returncode == 0, result.stderr
    assert [ca["id"] for ca in json.loads(result.stdout)["caList"]] == [CA_ID, BACKGROUND_CA]


def test_ok_config_mode_unary_enroll_writes_the_certificate(stack: ConfigStack, tmp_path: Path) -> None:
    csr, out = _csr_file(tmp_path, "config.example.com"), tmp_path / "cert.pem"
    result = run_cagw("enroll", "--server", stack.gateway.grpc_target, "--timeout", "30", "--ca", CA_ID,
                      "--profile", PROFILE_ID, "--csr", str(csr), "--out", str(out))
    assert result.returncode == 0, result.stderr
    leaf = x509.load_pem_x509_certificates(out.read_bytes())[0]
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(stack.simulator.ca_pem.read_bytes()))
    assert leaf.subject.rfc4514_string() == "CN=config.example.com"
    assert f"(serial {format(leaf.serial_number, 'x')})" in result.stderr


def test_ok_attempts_used_up_then_the_subject_finds_the_certificate(stack: ConfigStack, tmp_path: Path) -> None:
    """The 202 path: the watch ends TIMED_OUT with the DN to use; background collection issues it later."""
    csr = _csr_file(tmp_path, "later.example.com")
    result = run_cagw("enroll", "--server", stack.gateway.grpc_target, "--timeout", "30", "--ca", BACKGROUND_CA,
                      "--profile", PROFILE_ID, "--csr", str(csr), "--watch")
    assert result.returncode == 0, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("TIMED_OUT: not issued yet; the gateway keeps collecting."), result.stderr
    assert "cagw subject --ca ... --dn 'cn=later.example.com'" in last.lower()

    def issued() -> list[dict[str, str]]:
        found = run_cagw("subject", "--server", stack.gateway.grpc_target, "--timeout", "10", "--ca", BACKGROUND_CA,
                         "--dn", "CN=later.example.com")
        assert found.returncode == 0, found.stderr
        certificates = list(json.loads(found.stdout)["subject"]["certificates"])
        assert len(certificates) == 1, certificates  # the order, pending first, then its certificate
        return [] if certificates[0]["status"] == "PENDING" else certificates

    certificates = wait_until(issued, what="background collection to issue the certificate", timeout=20,
                              interval=0.3, watch=[stack.gateway.process])
    assert certificates[0]["status"] == "normal" and certificates[0]["serialNumber"]


async def test_ok_ledger_backup_while_the_gateway_runs(stack: ConfigStack, tmp_path: Path) -> None:
    csr = _csr_file(tmp_path, "backup.example.com")
    enrolled = await asyncio.to_thread(
        run_cagw, "enroll", "--server", stack.gateway.grpc_target, "--timeout", "30", "--ca", CA_ID,
        "--profile", PROFILE_ID, "--csr", str(csr), "--watch", "--out", str(tmp_path / "cert.pem"))
    assert enrolled.returncode == 0, enrolled.stderr
    enrollment_id = re.search(r"^RECEIVED\s*:\s*(\S+)", enrolled.stderr, re.MULTILINE).group(1)  # type: ignore[union-attr]

    copies = {"--config": tmp_path / "by-config.db", "--ledger": tmp_path / "by-file.db"}
    for option, copy in copies.items():
        source = stack.config if option == "--config" else stack.gateway.ledger_path
        result = await asyncio.to_thread(run_cagw, "ledger", "backup", option, str(source), str(copy))
        assert result.returncode == 0, result.stderr
        assert f"copied to {copy}" in result.stderr

    for copy in copies.values():
        ledger = await open_ledger(copy)
        try:
            order = await ledger.get_order(enrollment_id)
            assert order is not None and order.state is OrderState.ISSUED and order.serial_number
            certificate = await ledger.get_certificate(CA_ID, order.serial_number)
            assert certificate is not None and certificate.order_id == enrollment_id
        finally:
            await ledger.close()

    again = await asyncio.to_thread(run_cagw, "ledger", "backup", "--config", str(stack.config),
                                    str(copies["--config"]))
    assert again.returncode == 1
    assert "already exists; refusing to overwrite it" in again.stderr
    assert stack.gateway.process.returncode is None and stack.gateway.healthy()


# ---------------------------------------------------------------------------- SIGTERM


def _slow_gateway(processes: Processes, folder: Path, simulator: SimulatorProcess, *, grace: str = "5s"
                  ) -> GatewayProcess:
    """Collect once a second for 100 attempts: every order stays in flight for the whole test."""
    document = gateway_document(simulator.api_url, folder, timer="1s", max_timer="1s", attempts=100, grace=grace)
    return start_gateway(processes, write_config(folder, document))


def _error_info(detail: AnyMessage) -> error_details_pb2.ErrorInfo:
    info = error_details_pb2.ErrorInfo()
    detail.Unpack(info)
    return info


async def _stream_until_waiting(call: grpc.aio.UnaryStreamCall) -> tuple[str, str]:
    async for message in call:
        if message.event.state == pb.ENROLLMENT_STATE_WAITING:
            return message.event.enrollment_id, message.event.sectigo_order_id
    raise AssertionError("the stream ended before the order was waiting to collect")


async def _rest_of_stream(call: grpc.aio.UnaryStreamCall) -> tuple[list[int], grpc.aio.AioRpcError | None]:
    states: list[int] = []
    try:
        async for message in call:
            states.append(message.event.state)
    except grpc.aio.AioRpcError as error:
        return states, error
    return states, None


async def test_sigterm_answers_in_flight_calls_and_keeps_the_ledger(processes: Processes, tmp_path: Path) -> None:
    simulator = await asyncio.to_thread(start_simulator, processes, tmp_path / "sim",
                                        options=("--issue-after", "30s"))
    gateway = await asyncio.to_thread(_slow_gateway, processes, tmp_path / "gw", simulator, grace="5s")
    async with _channel(gateway) as channel:
        stub = pb_grpc.EnrollmentServiceStub(channel)
        unary = [asyncio.ensure_future(stub.Enroll(_enroll_request(f"unary-{i}.example.com"), timeout=60))
                 for i in range(3)]
        streams = [stub.EnrollAndWatch(pb.EnrollAndWatchRequest(ca_id=CA_ID, profile_id=PROFILE_ID,
                                                                csr=make_csr(f"stream-{i}.example.com")), timeout=60)
                   for i in range(2)]
        stream_orders = await asyncio.gather(*(_stream_until_waiting(call) for call in streams))
        # Every order is at the CA and has been collected at least once: mid-collection for sure.
        await asyncio.to_thread(
            wait_until, lambda: simulator.stats()["requests"].get("collect", 0) >= 5 and simulator.enrolls() == 5,
            what="five orders submitted and collected once", timeout=20, watch=[gateway.process])
        assert not any(call.done() for call in unary)

        started = time.monotonic()
        gateway.process.send(signal.SIGTERM)
        answers = await asyncio.gather(*unary, return_exceptions=True)
        endings = await asyncio.gather(*(_rest_of_stream(call) for call in streams))
        exit_code = await asyncio.to_thread(gateway.process.wait, 15)
        stopped_in = time.monotonic() - started

    # The process exits cleanly, well within the 5 s grace period.
    assert exit_code == 0, gateway.process.describe()
    assert stopped_in < 5.0, f"took {stopped_in:.1f}s\n{gateway.process.describe()}"
    log = gateway.process.stderr()
    assert "signal received: stopping (grace 5s)" in log and "gateway stopped" in log

    # In-flight unary Enroll calls get an answer: the pending enrollment with its ids.
    unary_orders = []
    for answer in answers:
        assert isinstance(answer, pb.EnrollResponse), f"{answer!r}\n{gateway.process.describe()}"
        assert answer.enrollment.status == "PENDING"
        assert answer.enrollment.id and answer.enrollment.sectigo_order_id
        unary_orders.append((answer.enrollment.id, answer.enrollment.sectigo_order_id))

    # Open EnrollAndWatch streams end with UNAVAILABLE "shutting down" (retry elsewhere / watch again).
    for states, error in endings:
        assert set(states) <= {pb.ENROLLMENT_STATE_PENDING, pb.ENROLLMENT_STATE_WAITING}, states
        assert error is not None, "the stream ended without a status"
        assert error.code() == grpc.StatusCode.UNAVAILABLE, error
        assert "the gateway is shutting down; watch the enrollment again" in (error.details() or ""), error
        status = rpc_status.from_call(error)
        reasons = [_error_info(detail).reason for detail in (status.details if status else ())
                   if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
        assert reasons == ["GATEWAY_SHUTTING_DOWN"], status

    # The ledger holds every order a client got an id for, still unfinished, with its CA order id.
    expected = dict(unary_orders + list(stream_orders))
    assert len(expected) == 5
    ledger = await open_ledger(gateway.ledger_path)
    try:
        for order_id, ca_order_id in expected.items():
            order = await ledger.get_order(order_id)
            assert order is not None, order_id
            assert order.state in (OrderState.SUBMITTED, OrderState.COLLECTING), order
            assert order.ca_order_id == ca_order_id
        assert {o.id for o in await ledger.unfinished_orders()} == set(expected)
    finally:
        await ledger.close()
    assert simulator.stats()["orders"]["total"] == 5


# ---------------------------------------------------------------------------- SIGKILL and restart


async def _watch_until_issued(gateway: GatewayProcess, order_id: str) -> pb.EnrollmentEvent:
    async with _channel(gateway) as channel:
        call = pb_grpc.EnrollmentServiceStub(channel).WatchEnrollment(
            pb.WatchEnrollmentRequest(ca_id=CA_ID, enrollment_id=order_id), timeout=30)
        last = None
        async for message in call:
            last = message.event
        assert last is not None
        return last


async def test_sigkill_then_restart_completes_every_order_once(processes: Processes, tmp_path: Path) -> None:
    # Issued 5 s after ordering: the gateway is killed about 3 s after the first orders, and its
    # collects (every second, on schedule) must not find them issued before that.
    simulator = await asyncio.to_thread(start_simulator, processes, tmp_path / "sim", options=("--issue-after", "5s"))
    gateway = await asyncio.to_thread(_slow_gateway, processes, tmp_path / "gw", simulator)
    async with _channel(gateway) as channel:
        stub = pb_grpc.EnrollmentServiceStub(channel)
        # Two orders accepted by the CA; the 2.5 s deadline makes Enroll answer "pending" at about 2 s.
        collecting = await asyncio.gather(*(stub.Enroll(_enroll_request(f"crash-{i}.example.com"), timeout=2.5)
                                            for i in range(2)))
        # A third whose enroll reply is lost (the CA creates the order, the connection drops), and
        # whose search by marker hangs at the CA: the gateway dies before it knows the CA order.
        simulator.add_fault(route="enroll", kind="drop_reply", count=1)
        simulator.add_fault(route="list", kind="latency", latency=5.0, count=1)
        lost = (await stub.Enroll(_enroll_request("crash-lost.example.com"), timeout=1.5)).enrollment

    for answer in collecting:
        assert answer.enrollment.status == "PENDING" and answer.enrollment.sectigo_order_id
    assert lost.status == "PENDING" and lost.id and not lost.sectigo_order_id  # the CA's answer never came
    await asyncio.to_thread(
        wait_until, lambda: simulator.stats()["requests"].get("list", 0) == 1,
        what="the gateway to look for the lost order by its marker", timeout=10, watch=[gateway.process])
    assert simulator.stats()["orders"]["total"] == 3

    gateway.process.kill()  # SIGKILL: two orders mid-collection, one between "recorded" and "submitted"
    assert gateway.process.returncode == -signal.SIGKILL
    ledger = await open_ledger(gateway.ledger_path)
    try:
        before = {o.id: o for o in await ledger.unfinished_orders()}
    finally:
        await ledger.close()
    assert before[lost.id].state is OrderState.RECEIVED and before[lost.id].ca_order_id is None
    for answer in collecting:
        assert before[answer.enrollment.id].state is OrderState.COLLECTING

    assert gateway.config_path is not None
    restarted = await asyncio.to_thread(start_gateway, processes, gateway.config_path, name="gateway-restarted")
    ids = [a.enrollment.id for a in collecting] + [lost.id]
    finals = await asyncio.gather(*(_watch_until_issued(restarted, order_id) for order_id in ids))
    for event in finals:
        assert event.state == pb.ENROLLMENT_STATE_ISSUED, event
        assert event.enrollment.serial_number
    assert "resumed 3 unfinished order(s)" in restarted.process.stderr()

    stats = simulator.stats()
    assert stats["requests"]["enroll"] == 3, stats  # one per order: the lost one was found by its marker
    assert stats["requests"]["list"] == 2, stats
    assert stats["orders"]["total"] == 3
    assert stats["orders"]["byStatus"]["Issued"] == 3, stats

    restarted.process.stop()
    ledger = await open_ledger(restarted.ledger_path)
    try:
        for order_id, event in zip(ids, finals):
            order = await ledger.get_order(order_id)
            assert order is not None and order.state is OrderState.ISSUED
            assert order.ca_order_id == event.sectigo_order_id
        for answer in collecting:  # the CA order ids from before the crash were kept
            assert (await ledger.get_order(answer.enrollment.id)).ca_order_id == answer.enrollment.sectigo_order_id  # type: ignore[union-attr]
        assert await ledger.unfinished_orders() == []
    finally:
        await ledger.close()
