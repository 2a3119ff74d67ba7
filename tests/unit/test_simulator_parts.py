"""Unit tests of the simulator's pure parts: durations, listen addresses, serials, faults, CSRs, CA, state."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from service.errors import ConfigError
from service.simulator import (
    FaultInjector,
    FaultRule,
    LocalCA,
    Order,
    OrderBook,
    OrderStatus,
    ScmError,
    SimulatorSettings,
    add_simulator_arguments,
    format_serial,
    parse_serial,
    settings_from_args,
)
from service.config import parse_listen
from service.simulator.collect_formats import canonical_format, download_filename
from service.simulator.csr import parse_csr, parse_san_values
from tests.support.csr import make_csr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9443", ("127.0.0.1", 9443)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("[::1]:8443", ("::1", 8443)),
        (":9000", ("127.0.0.1", 9000)),
        ("localhost:1", ("localhost", 1)),
    ],
    ids=["ok-ipv4", "ok-any-port", "ok-ipv6", "ok-port-only", "ok-name"],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["9443", "host:", "host:99999", "[::1]"], ids=["fail-no-host", "fail-no-port", "fail-range", "fail-v6-no-port"])
def test_parse_listen_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_listen(text)


def test_cli_flags_build_settings(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_simulator_arguments(parser)
    defaults = settings_from_args(parser.parse_args([]))
    assert (defaults.host, defaults.port, defaults.tls_cert, defaults.state_file) == ("127.0.0.1", 9443, None, None)
    assert defaults.issue_after == 3.0
    args = parser.parse_args(
        [
            "--listen", "0.0.0.0:0", "--login", "me", "--password", "pw", "--customer-uri", "acme",
            "--org-id", "77", "--issue-after", "250ms", "--ca-dir", str(tmp_path), "--state", str(tmp_path / "s.json"),
            "--issue-after-polls", "3", "--pending-code", "-1400", "--require-approval",
        ]
    )
    s = settings_from_args(args)
    assert (s.host, s.port, s.login, s.password, s.customer_uri, s.org_id) == ("0.0.0.0", 0, "me", "pw", "acme", 77)
    assert s.issue_after == pytest.approx(0.25) and s.issue_after_polls == 3 and s.pending_code == -1400
    assert s.ca_dir == tmp_path and s.state_file == tmp_path / "s.json" and s.require_approval
    with pytest.raises(SystemExit):
        parser.parse_args(["--issue-after", "soon"])


def test_settings_repr_hides_secrets() -> None:
    text = repr(SimulatorSettings(password="p@ss-123", oauth_client_secret="sec-456"))
    assert "p@ss-123" not in text and "sec-456" not in text


@pytest.mark.parametrize(
    ("serial", "text"),
    [(0x0A, "0A"), (0x7C24BE, "7C:24:BE"), (0x8000, "80:00")],
    ids=["ok-one-byte", "ok-three-bytes", "ok-high-bit"],
)
def test_serial_round_trip(serial: int, text: str) -> None:
    assert format_serial(serial) == text
    assert parse_serial(text) == serial
    assert parse_serial(text.replace(":", "").lower()) == serial


def test_parse_serial_rejects_non_hex() -> None:
    assert parse_serial("zz:01") is None and parse_serial("") is None


# -- faults ----------------------------------------------------------------------------------


def test_fault_count_consumes_and_expires() -> None:
    faults = FaultInjector(seed=1)
    faults.add(FaultRule(route="collect", status=503, count=2))
    assert faults.decide("enroll").rule is None
    assert [faults.decide("collect").rule is not None for _ in range(3)] == [True, True, False]
    assert faults.snapshot() == [] and faults.applied["collect"] == 2


def test_fault_latency_stacks_and_first_action_wins() -> None:
    faults = FaultInjector()
    faults.add(FaultRule(route="any", kind="latency", latency=0.1, count=None))
    first = faults.add(FaultRule(route="enroll", kind="status", status=500))
    faults.add(FaultRule(route="enroll", kind="drop"))
    decision = faults.decide("enroll")
    assert decision.latency == pytest.approx(0.1)
    assert decision.rule is not None and decision.rule.kind == "status"
    assert [r["kind"] for r in faults.snapshot()] == ["latency", "drop"]
    assert not faults.remove(first)
    assert faults.decide("enroll").rule is not None and faults.decide("enroll").rule is None


def test_fault_rate_is_reproducible() -> None:
    def run() -> list[bool]:
        faults = FaultInjector(seed=99)
        faults.add(FaultRule(route="details", rate=0.3, count=None))
        return [faults.decide("details").rule is not None for _ in range(200)]

    first = run()
    assert first == run()
    assert 30 < sum(first) < 90


def test_fault_clear_by_route() -> None:
    faults = FaultInjector()
    faults.add(FaultRule(route="collect"))
    faults.add(FaultRule(route="enroll"))
    faults.clear("collect")
    assert [r["route"] for r in faults.snapshot()] == ["enroll"]
    faults.clear()
    assert faults.snapshot() == []


@pytest.mark.parametrize(
    "data",
    [
        {"route": "collect", "kind": "throttle", "retryAfter": 2, "count": None, "rate": 0.5},
        {"route": "enroll", "kind": "drop_reply"},
        {"kind": "status", "status": 503, "body": {"code": -195, "description": "CA is not available now."}},
        {"kind": "latency", "latency": 0.05, "count": 3},
    ],
    ids=["ok-throttle", "ok-drop-reply", "ok-status-body", "ok-latency"],
)
def test_fault_rule_json_round_trip(data: dict[str, Any]) -> None:
    rule = FaultRule.from_json(data)
    assert FaultRule.from_json(rule.to_json()) == rule


@pytest.mark.parametrize(
    "data",
    [[], {"retryAfter": "soon"}, {"count": True}, {"route": 5}, {"unknown": 1}, {"latency": -1}],
    ids=["fail-not-object", "fail-retry-text", "fail-count-bool", "fail-route-number", "fail-unknown-field", "fail-negative"],
)
def test_fault_rule_json_rejects(data: Any) -> None:
    with pytest.raises(ValueError):
        FaultRule.from_json(data)


# -- CSR and SAN parsing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "code"),
    [(None, -7), ("  ", -7), (42, -7), ("@@@", -9), ("QUJD", -10)],
    ids=["fail-missing", "fail-blank", "fail-not-string", "fail-not-base64", "fail-not-der"],
)
def test_parse_csr_errors(value: object, code: int) -> None:
    with pytest.raises(ScmError) as info:
        parse_csr(value)
    assert info.value.code == code and info.value.status == 400


def test_parse_csr_accepts_new_certificate_request_armour() -> None:
    pem = make_csr("unit.example.com").replace("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST")
    assert parse_csr(pem).subject.rfc4514_string() == "CN=unit.example.com"


def test_parse_san_values() -> None:
    names = parse_san_values("a.example.com, *.b.example.com,2001:db8::1,ops@example.com,,", field_name="subjAltNames")
    assert [type(n).__name__ for n in names] == ["DNSName", "DNSName", "IPAddress", "RFC822Name"]
    assert parse_san_values(["x.example.com"], field_name="subjectAlternativeNames")[0].value == "x.example.com"
    for bad in ("has space.example.com", 7, ["ok.example.com", 3]):
        with pytest.raises(ScmError):
            parse_san_values(bad, field_name="subjAltNames")


def test_collect_format_names_and_filenames() -> None:
    assert canonical_format("X509co") == "x509CO" and canonical_format("PKCS12") is None
    assert download_filename("*.example.com", "x509CO") == "star_example_com_cert.cer"
    assert download_filename("", "bin") == "certificate.p7b"


# -- local CA --------------------------------------------------------------------------------


def test_local_ca_created_once_and_reused(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    first = LocalCA.load_or_create(tmp_path / "ca", now=now)
    second = LocalCA.load_or_create(tmp_path / "ca", now=now)
    assert first.certificate == second.certificate
    assert first.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert "PRIVATE" not in repr(first) and (tmp_path / "ca" / "ca-key.pem").stat().st_mode & 0o077 == 0


def test_local_ca_refuses_mismatched_or_missing_files(tmp_path: Path) -> None:
    now = dt.datetime.now(dt.UTC)
    LocalCA.load_or_create(tmp_path / "a", now=now)
    LocalCA.load_or_create(tmp_path / "b", now=now)
    (tmp_path / "a" / "ca-key.pem").write_bytes((tmp_path / "b" / "ca-key.pem").read_bytes())
    with pytest.raises(ConfigError, match="does not belong"):
        LocalCA.load_or_create(tmp_path / "a", now=now)
    (tmp_path / "b" / "ca.pem").unlink()
    with pytest.raises(ConfigError, match="missing"):
        LocalCA.load_or_create(tmp_path / "b", now=now)


# -- order book ------------------------------------------------------------------------------


def _order(ssl_id: int, **changes: Any) -> Order:
    values: dict[str, Any] = {
        "ssl_id": ssl_id,
        "renew_id": "r" * 20,
        "org_id": 1234,
        "cert_type_id": 1001,
        "term": 365,
        "csr": "-----BEGIN CERTIFICATE REQUEST-----",
        "common_name": "a.example.com",
        "sans": ["DNS:a.example.com"],
        "requester": "admin",
        "status": OrderStatus.APPLIED,
        "requested_at": 1.0,
    }
    values.update(changes)
    return Order(**values)


def test_order_book_persists_and_restores(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    book = OrderBook(first_ssl_id=10, state_file=state)
    book.add(_order(book.allocate_id(), comments="one", serial_number=2**126 + 5))
    book.add(_order(book.allocate_id(), status=OrderStatus.REVOKED))
    restored = OrderBook(first_ssl_id=1, state_file=state)
    assert [o.ssl_id for o in restored] == [10, 11]
    assert restored.get(10) == book.get(10)
    assert restored.find(comments="one")[0].serial_number == 2**126 + 5
    assert restored.by_serial(2**126 + 5) is not None
    assert restored.allocate_id() == 12


def test_order_book_appends_and_ignores_a_torn_last_line(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    book = OrderBook(first_ssl_id=1, state_file=state)
    order = _order(book.allocate_id())
    book.add(order)
    order.status = OrderStatus.ISSUED
    book.record(order)
    assert len(state.read_text().splitlines()) == 3  # header + two versions of the order
    with state.open("a") as handle:
        handle.write('{"order": {"ssl_id": 2, "renew')  # a kill in the middle of an append
    restored = OrderBook(first_ssl_id=1, state_file=state)
    assert [(o.ssl_id, o.status) for o in restored] == [(1, OrderStatus.ISSUED)]
    assert len(state.read_text().splitlines()) == 2  # compacted on load


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        json.dumps({"version": 99, "nextSslId": 1}),
        json.dumps({"version": 1}),
        json.dumps({"version": 1, "nextSslId": 1}) + '\n{"order": {"x": 1}}\n{"order": {}}',
        json.dumps({"version": 1, "nextSslId": 1}) + "\nnot json\n" + json.dumps({"order": {}}),
    ],
    ids=["fail-not-json", "fail-version", "fail-no-next-id", "fail-bad-order", "fail-garbage-in-the-middle"],
)
def test_order_book_rejects_bad_state_file(tmp_path: Path, content: str) -> None:
    state = tmp_path / "state.json"
    state.write_text(content)
    with pytest.raises(ConfigError, match="state file"):
        OrderBook(first_ssl_id=1, state_file=state)
