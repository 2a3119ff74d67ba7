"""The ``limits`` blocks of the listeners and the ``streams`` section: defaults, values, refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trustme

from service.config import GrpcLimits, HttpLimits, LookupLimits, StreamLimits, parse_config
from service.errors import ConfigError

def _config(tmp_path: Path, **sections: Any) -> Any:
    trust = tmp_path / "trust.pem"
    trustme.CA().cert_pem.write_to_path(str(trust))
    ca = {"id": "ca1", "connector": "sectigo",
          "properties": {"url": "https://scm.example/api", "customer-uri": "c", "org-id": "1", "login": "l",
                         "login-password": "p", "ssl-trust-store": str(trust), "ssl-truststore-type": "PEM"}}
    return parse_config({"managed-cas": [ca], **sections}, base_dir=tmp_path)


def test_ok_defaults_close_idle_and_trickling_connections_within_30_seconds(tmp_path: Path) -> None:
    config = _config(tmp_path)
    for limits in (config.rest.listen.http_limits, config.ops.http_limits):
        assert max(limits.header_timeout, limits.body_timeout, limits.idle_timeout) <= 30
    assert config.rest.listen.http_limits == HttpLimits()
    assert config.ops.http_limits.max_connections == 100
    assert config.grpc.grpc_limits == GrpcLimits()
    assert config.streams == StreamLimits(max_per_caller=16, max_total=512, max_event_watches_per_client=4)


def test_ok_every_key_is_read(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        rest={"limits": {"header-timeout": "2s", "body-timeout": "250ms", "idle-timeout": "1m",
                         "max-connections": "7"}},
        ops={"limits": {"max-connections": "3"}},
        grpc={"limits": {"max-concurrent-streams": "5", "max-concurrent-rpcs": "50",
                         "keepalive-min-interval": "30s", "max-connection-idle": "10m"}},
        streams={"max-per-caller": "2", "max-total": "4", "max-event-watches-per-client": "3"},
        lookups={"unknown-serial-ttl": "5m", "ca-status-ttl": "0s", "ca-lookups-per-second": "0.5",
                 "ca-lookup-burst": "3"})
    assert config.rest.listen.http_limits == HttpLimits(2.0, 0.25, 60.0, 7)
    assert config.ops.http_limits == HttpLimits(max_connections=3)
    assert config.grpc.grpc_limits == GrpcLimits(5, 50, 30.0, 600.0)
    assert config.streams == StreamLimits(2, 4, 3)
    assert config.lookups == LookupLimits(300.0, 0.0, 0.5, 3)


@pytest.mark.parametrize(("sections", "message"), [
    pytest.param({"rest": {"limits": {"header-timeout": "0s"}}}, "rest.limits.header-timeout:",
                 id="fail-zero-timeout"),
    pytest.param({"ops": {"limits": {"max-connections": "0"}}}, "ops.limits.max-connections:",
                 id="fail-no-connections"),
    pytest.param({"grpc": {"limits": {"max-concurrent-rpcs": "many"}}}, "grpc.limits.max-concurrent-rpcs:",
                 id="fail-not-a-number"),
    pytest.param({"grpc": {"limits": {"keepalive": "1s"}}}, "grpc.limits.keepalive: unknown key",
                 id="fail-unknown-grpc-limit"),
    pytest.param({"rest": {"limits": ["10s"]}}, "rest.limits: must be a mapping", id="fail-limits-not-a-mapping"),
    pytest.param({"streams": {"max-per-caller": "10", "max-total": "5"}},
                 "streams.max-per-caller: max-per-caller (10) is larger than max-total (5)",
                 id="fail-per-caller-above-total"),
    pytest.param({"streams": {"max-event-watches-per-client": "0"}}, "streams.max-event-watches-per-client:",
                 id="fail-no-event-watches"),
    pytest.param({"lookups": {"ca-lookups-per-second": "fast"}}, "lookups.ca-lookups-per-second: 'fast' must be",
                 id="fail-rate-not-a-number"),
    pytest.param({"lookups": {"ca-lookups-per-second": "0"}}, "lookups.ca-lookups-per-second:", id="fail-zero-rate"),
])
def test_fail_limits(tmp_path: Path, sections: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, **sections)
    assert any(problem.startswith(message) or message in problem for problem in caught.value.problems), (
        caught.value.problems)
