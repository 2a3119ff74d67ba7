"""The observability parts on their own: request ids, log lines, the order book, the observed ledger, config."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.config import CircuitBreakerSettings, LogSettings, TracingSettings, parse_config
from service.errors import ConfigError
from service.ledger import open_ledger
from service.ledger.base import OrderState
from service.ledger.errors import OrderChanged
from service.observability.logs import OwnDebugOnly, configure_logging, log_access
from service.observability.metrics import GatewayMetrics
from service.observability.orders import OrderBook
from service.observability.ledger import observe_ledger, unwrap_ledger
from service.observability.requestid import (
    accept_request_id,
    bound_request_id,
    current_request_id,
    request_id_of,
)
from service.observability.tracing import NO_TRACING, make_tracing

from tests.support.clocks import FakeClock
from tests.support.settings import ca_entry, config_document
from tests.unit.fakes import CA_ID, seed_order

# ------------------------------------------------------------------ request ids


@pytest.mark.parametrize("given", ["abc-123", "4f1c2d9e8a7b", "trace:1/2+3=4@x_y.z", "a" * 128],
                         ids=["ok-simple", "ok-hex", "ok-punctuation", "ok-longest"])
def test_ok_a_well_formed_request_id_is_taken(given: str) -> None:
    assert accept_request_id(given) == given
    assert request_id_of({"x-request-id": given}) == given


@pytest.mark.parametrize("given", [None, "", "a" * 129, "two words", "line\nbreak", "ünïcode", "<script>"],
                         ids=["fail-absent", "fail-empty", "fail-too-long", "fail-space", "fail-newline",
                              "fail-non-ascii", "fail-markup"])
def test_fail_a_malformed_request_id_is_replaced_by_a_new_one(given: str | None) -> None:
    made = accept_request_id(given)
    assert made != given and len(made) == 32 and accept_request_id(made) == made


def test_ok_a_bound_request_id_holds_for_its_block_only() -> None:
    assert current_request_id() == ""
    with bound_request_id("outer"):
        with bound_request_id("inner"):
            assert current_request_id() == "inner"
        assert current_request_id() == "outer"
    assert current_request_id() == ""


# ------------------------------------------------------------------ log lines


@pytest.fixture
def json_lines() -> Any:
    stream = io.StringIO()
    handler = configure_logging(LogSettings(format="json", level="debug"), stream=stream)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(logging.WARNING)


def test_ok_json_lines_carry_the_request_id_and_the_access_fields(json_lines: Any) -> None:
    with bound_request_id("req-42"):
        log_access(method="/cagw.v1.EnrollmentService/Enroll", transport="grpc", client="billing", ca="ca-1",
                   status="OK", duration=0.0123, peer="ipv4:127.0.0.1:5000")
    logging.getLogger("service.test").warning("outside any call")
    access, outside = json_lines()
    assert access["logger"] == "cagw.access" and access["level"] == "info"
    assert (access["request_id"], access["method"], access["transport"], access["client"], access["ca"],
            access["status"], access["duration_ms"]) == ("req-42", "/cagw.v1.EnrollmentService/Enroll", "grpc",
                                                          "billing", "ca-1", "OK", 12.3)
    assert dt.datetime.fromisoformat(access["time"]).tzinfo is not None
    assert outside["request_id"] == "-" and outside["message"] == "outside any call"


def test_ok_text_lines_carry_the_request_id() -> None:
    stream = io.StringIO()
    handler = configure_logging(LogSettings(format="text", level="info"), stream=stream)
    try:
        with bound_request_id("req-7"):
            logging.getLogger("service.test").info("hello")
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(logging.WARNING)
    assert "INFO service.test [req-7]: hello" in stream.getvalue()


def test_ok_the_command_line_level_wins_over_the_configured_one() -> None:
    handler = configure_logging(LogSettings(level="error"), level="debug", stream=io.StringIO())
    try:
        assert logging.getLogger().level == logging.DEBUG
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(logging.WARNING)


@pytest.mark.parametrize(("name", "level", "kept"), [
    ("service.api", logging.DEBUG, True), ("cagw.access", logging.DEBUG, True),
    ("aiosqlite", logging.DEBUG, False), ("aiohttp.client", logging.DEBUG, False),
    ("aiosqlite", logging.INFO, True), ("grpc", logging.WARNING, True), ("servicex", logging.DEBUG, False),
], ids=["ok-own-debug", "ok-access-debug", "fail-driver-debug", "fail-http-debug", "ok-driver-info",
        "ok-library-warning", "fail-lookalike-name"])
def test_debug_lines_of_libraries_are_never_written(name: str, level: int, kept: bool) -> None:
    record = logging.LogRecord(name, level, __file__, 1, "x", None, None)
    assert OwnDebugOnly().filter(record) is kept


# ------------------------------------------------------------------ the order book and the observed ledger


def scrape(metrics: GatewayMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = metrics.render()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(body.decode()) for sample in family.samples}


def orders_gauge(metrics: GatewayMetrics, state: str) -> float:
    return scrape(metrics)[("cagw_orders", (("ca", CA_ID), ("state", state)))]


async def test_ok_order_gauges_and_lines_follow_what_the_ledger_returns(tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    metrics = GatewayMetrics()
    book = OrderBook(metrics, clock=clock)
    book.add_ca(CA_ID)
    inner = await open_ledger(tmp_path / "ledger.db", clock=clock)
    ledger = observe_ledger(inner, metrics=metrics, orders=book, tracing=NO_TRACING)
    try:
        assert unwrap_ledger(ledger) is inner
        caplog.set_level(logging.INFO, logger="cagw.orders")
        order = await seed_order(ledger, "CN=www.example.com", state=OrderState.COLLECTING, ca_order_id="777")
        assert [orders_gauge(metrics, s) for s in ("RECEIVED", "SUBMITTED", "COLLECTING")] == [0, 0, 1]
        clock.advance(seconds=90)
        assert scrape(metrics)[("cagw_oldest_pending_order_age_seconds", (("ca", CA_ID),))] == 90
        await ledger.update_order(order.id, state=OrderState.COLLECTING, attempts=1, detail="not issued yet")
        await ledger.get_order(order.id)  # a read changes nothing
        await ledger.update_order(order.id, state=OrderState.FAILED, detail="declined", error_reason="CA_ORDER_FAILED")
        assert orders_gauge(metrics, "COLLECTING") == 0 and len(book) == 0
        assert scrape(metrics)[("cagw_oldest_pending_order_age_seconds", (("ca", CA_ID),))] == 0
        lines = [r for r in caplog.records if r.name == "cagw.orders"]
        assert [(r.fields["state"], r.fields["attempt"]) for r in lines] == [  # type: ignore[attr-defined]
            ("RECEIVED", 0), ("SUBMITTED", 0), ("COLLECTING", 0), ("COLLECTING", 1), ("FAILED", 1)]
        last = lines[-1].fields  # type: ignore[attr-defined]
        assert (last["enrollment_id"], last["ca_order_id"], last["outcome"]) == (
            order.id, "777", "CA_ORDER_FAILED: declined")
        transitions = scrape(metrics)
        assert transitions[("cagw_order_transitions_total", (("ca", CA_ID), ("state", "COLLECTING")))] == 1
        assert transitions[("cagw_ledger_operations_total", (("operation", "update_order"), ("outcome", "ok")))] == 4
        assert transitions[("cagw_ledger_operation_duration_seconds_count", (("operation", "get_order"),))] == 1
    finally:
        await ledger.close()


async def test_ok_the_sqlite_ledger_serves_its_statement_and_commit_counts(tmp_path: Path) -> None:
    metrics = GatewayMetrics()
    clock = FakeClock()
    ledger = observe_ledger(await open_ledger(tmp_path / "ledger.db", clock=clock), metrics=metrics,
                            orders=OrderBook(metrics, clock=clock), tracing=NO_TRACING)
    try:
        before = scrape(metrics)
        order = await seed_order(ledger, "CN=count.example.com", state=OrderState.RECEIVED)
        await ledger.get_order(order.id)
        after = scrape(metrics)
    finally:
        await ledger.close()
    statements = ("cagw_ledger_sql_statements_total", ())
    commits = ("cagw_ledger_commits_total", ())
    assert after[commits] - before[commits] == 1  # one write, on its own: one commit
    assert after[statements] - before[statements] >= 4  # BEGIN, the look-up, INSERT …, COMMIT; the read
    assert statements not in scrape(GatewayMetrics())  # a ledger that counts nothing shows nothing


async def test_ok_a_restart_takes_the_unfinished_orders_in_without_counting_them_as_changes(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    first = await open_ledger(tmp_path / "ledger.db", clock=clock)
    try:
        await seed_order(first, "CN=a.example.com", state=OrderState.SUBMITTED)
        await seed_order(first, "CN=b.example.com", state=OrderState.COLLECTING)
    finally:
        await first.close()
    metrics = GatewayMetrics()
    book = OrderBook(metrics, clock=clock)
    ledger = observe_ledger(await open_ledger(tmp_path / "ledger.db", clock=clock), metrics=metrics,
                            orders=book, tracing=NO_TRACING)
    try:
        caplog.set_level(logging.INFO, logger="cagw.orders")
        await ledger.unfinished_orders()  # what the engine's resume reads
        assert (orders_gauge(metrics, "SUBMITTED"), orders_gauge(metrics, "COLLECTING")) == (1, 1)
        assert [r for r in caplog.records if r.name == "cagw.orders"] == []
        assert ("cagw_order_transitions_total", (("ca", CA_ID), ("state", "SUBMITTED"))) not in scrape(metrics)
    finally:
        await ledger.close()


async def test_fail_a_lost_conditional_update_counts_as_a_conflict(tmp_path: Path) -> None:
    metrics = GatewayMetrics()
    book = OrderBook(metrics, clock=FakeClock())
    ledger = observe_ledger(await open_ledger(tmp_path / "ledger.db"), metrics=metrics, orders=book,
                            tracing=NO_TRACING)
    try:
        order = await seed_order(ledger, "CN=c.example.com", state=OrderState.SUBMITTED)
        with pytest.raises(OrderChanged):
            await ledger.update_order(order.id, state=OrderState.COLLECTING, expected_state=OrderState.RECEIVED)
        samples = scrape(metrics)
        assert samples[("cagw_ledger_operations_total", (("operation", "update_order"), ("outcome", "conflict")))] == 1
    finally:
        await ledger.close()


def test_ok_the_core_events_land_in_their_families() -> None:
    metrics = GatewayMetrics()
    metrics.collect_attempted(ca_id=CA_ID, lateness=0.2, outcome="pending")
    metrics.collect_attempted(ca_id=CA_ID, lateness=-1.0, outcome="something else")
    metrics.policy_refused(client="billing", reason="PROFILE_NOT_GRANTED")
    metrics.quota_refused(client="billing", reason="DAILY_ORDERS")
    samples = scrape(metrics)
    assert samples[("cagw_collect_attempts_total", (("ca", CA_ID), ("outcome", "pending")))] == 1
    assert samples[("cagw_collect_attempts_total", (("ca", CA_ID), ("outcome", "error")))] == 1
    assert samples[("cagw_collect_lateness_seconds_count", (("ca", CA_ID),))] == 2
    assert samples[("cagw_collect_lateness_seconds_sum", (("ca", CA_ID),))] == pytest.approx(0.2)
    assert samples[("cagw_policy_refusals_total", (("client", "billing"), ("reason", "PROFILE_NOT_GRANTED")))] == 1
    assert samples[("cagw_quota_refusals_total", (("client", "billing"), ("reason", "DAILY_ORDERS")))] == 1


def test_ok_tracing_off_is_the_no_op() -> None:
    assert make_tracing(TracingSettings()) is NO_TRACING


# ------------------------------------------------------------------ configuration


def document(tmp: Path, **top: Any) -> dict[str, Any]:
    return config_document(tmp, ca_entry(ca_id="ca-1", gateway=top.pop("gateway", {})), **top)


def test_ok_defaults(tmp_path: Path) -> None:
    config = parse_config(document(tmp_path), base_dir=tmp_path)
    assert config.log == LogSettings(format="text", level="info")
    assert config.tracing == TracingSettings() and not config.tracing.enabled
    assert config.managed_cas[0].gateway.circuit_breaker == CircuitBreakerSettings()


def test_ok_every_key(tmp_path: Path) -> None:
    config = parse_config(document(
        tmp_path, log={"format": "JSON", "level": "debug"},
        tracing={"otlp-endpoint": "http://127.0.0.1:4317", "service-name": "cagw-eu", "sample-ratio": "0.25"},
        gateway={"circuit-breaker": {"enabled": "yes", "failure-threshold": "3", "window": "20s",
                                     "open-for": "500ms"}}), base_dir=tmp_path)
    assert config.log == LogSettings(format="json", level="debug")
    assert config.tracing == TracingSettings(otlp_endpoint="http://127.0.0.1:4317", service_name="cagw-eu",
                                             sample_ratio=0.25)
    assert config.managed_cas[0].gateway.circuit_breaker == CircuitBreakerSettings(
        enabled=True, failure_threshold=3, window=20.0, open_for=0.5)


def test_fail_every_problem_named_by_its_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(document(
            tmp_path, log={"format": "xml", "level": "loud", "colour": "red"},
            tracing={"otlp-endpoint": "grpc://collector:4317", "sample-ratio": "2"},
            gateway={"circuit-breaker": {"failure-threshold": "0", "window": "0s", "open": "1s"}}),
            base_dir=tmp_path)
    ca = "managed-cas[0] (id ca-1).gateway.circuit-breaker"
    assert caught.value.problems == [
        "log.colour: unknown key (allowed: format, level)",
        "log.format: 'xml' must be one of text, json",
        "log.level: 'loud' must be one of debug, info, warning, error",
        "tracing.otlp-endpoint: 'grpc://collector:4317' is not an http:// or https:// URL "
        "(for example http://127.0.0.1:4317)",
        "tracing.sample-ratio: '2' is not a number between 0 and 1",
        f"{ca}.open: unknown key (allowed: enabled, failure-threshold, open-for, window)",
        f"{ca}.failure-threshold: 0 is below the minimum 1",
        f"{ca}.window: '0s' must be longer than zero",
    ]
