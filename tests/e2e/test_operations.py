"""``cagw serve`` as ``make run`` starts it, scraped: the families of docs/operations.md, and every
metric its Grafana dashboard and Prometheus alert rules use, exist in the live ``/metrics``."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.processes import GatewayProcess, Processes, free_ports, wait_until

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parents[2] / "docs"
METRIC = re.compile(r"\bcagw_[a-z0-9_]+\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


@pytest.fixture(scope="module")
def served(module_processes: Processes, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(the scrape text, the banner) of an embedded gateway on free ports."""
    grpc_port, rest_port, ops_port = free_ports(3)
    workdir = tmp_path_factory.mktemp("operations")
    process = module_processes.start("embedded", "serve", "--workdir", str(workdir), "--grpc-listen",
                                     f"127.0.0.1:{grpc_port}", "--rest-listen", f"127.0.0.1:{rest_port}",
                                     "--ops-listen", f"127.0.0.1:{ops_port}", "--admin-listen", "127.0.0.1:0")
    GatewayProcess(process=process, grpc_port=grpc_port, rest_port=rest_port, ledger_path=workdir / "ledger.db",
                   workdir=workdir).wait_ready()
    wait_until(lambda: "/metrics" in process.stdout(), what="the banner", watch=[process])
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{ops_port}/metrics", timeout=10) as response:
        yield response.read().decode(), process.stdout()


def _families(text: str) -> dict[str, str]:
    return {family.name: family.type for family in text_string_to_metric_families(text)}


def _exists(name: str, families: dict[str, str]) -> bool:
    """A metric name as a query uses it (``cagw_calls_total``, ``…_bucket``) names a served family."""
    for family, kind in families.items():
        if any(name == family + suffix for suffix in SUFFIXES.get(kind, ("",))):
            return True
    return False


def _dashboard_metrics() -> set[str]:
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text(encoding="utf-8"))
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    expressions.append(dashboard["templating"]["list"][1]["definition"])
    return {name for expr in expressions for name in METRIC.findall(expr)}


def _alert_rules() -> list[dict[str, object]]:
    document = yaml.safe_load((DOCS / "prometheus-alerts.yml").read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_ok_the_banner_names_the_metrics_address(served: tuple[str, str]) -> None:
    _, banner = served
    assert re.search(r"ops   http://127\.0\.0\.1:\d+/health, http://127\.0\.0\.1:\d+/metrics", banner)


def test_ok_every_documented_family_is_served(served: tuple[str, str]) -> None:
    text, _ = served
    families = _families(text)
    table = (DOCS / "operations.md").read_text(encoding="utf-8").split("## Metrics", 1)[1].split("## Logs", 1)[0]
    documented = re.findall(r"^\| `(cagw_[a-z0-9_]+)` \| (\w+) \|", table, re.M)
    assert len(documented) >= 19
    # A counter is documented by its sample name (…_total), a histogram by its family name.
    assert [(name, kind) for name, kind in documented if families.get(name.removesuffix("_total")) != kind
            or not _exists(name + ("_count" if kind == "histogram" else ""), families)] == []
    # The CA of the embedded backend is shown before any traffic.
    assert 'cagw_ca_circuit_state{ca="sectigo-sim"} 0.0' in text
    assert 'cagw_orders{ca="sectigo-sim",state="RECEIVED"} 0.0' in text


def test_ok_the_dashboard_uses_only_served_metrics(served: tuple[str, str]) -> None:
    families = _families(served[0])
    used = _dashboard_metrics()
    assert len(used) >= 15
    assert sorted(name for name in used if not _exists(name, families)) == []


def test_ok_the_alert_rules_use_only_served_metrics_and_cover_the_incidents(served: tuple[str, str]) -> None:
    families = _families(served[0])
    rules = _alert_rules()
    used = {name for rule in rules for name in METRIC.findall(str(rule["expr"]))}
    assert sorted(name for name in used if not _exists(name, families)) == []
    assert all(rule.get("for") and rule.get("labels") and rule.get("annotations") for rule in rules)
    names = {str(rule["alert"]) for rule in rules}
    assert {"CagwCAErrorRate", "CagwCircuitOpen", "CagwOldestPendingOrder", "CagwCollectScheduleLate",
            "CagwLedgerErrors"} <= names


def test_fail_the_check_finds_a_name_that_is_not_served(served: tuple[str, str]) -> None:
    families = _families(served[0])
    assert _exists("cagw_calls_total", families) and _exists("cagw_call_duration_seconds_bucket", families)
    assert not _exists("cagw_call_total", families) and not _exists("cagw_orders_total", families)
