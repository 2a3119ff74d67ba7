"""A CA's ``gateway.renewal`` block: its defaults, its per-profile overrides, its refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.config import RenewalPolicy, RenewalSettings, parse_config
from service.errors import ConfigError


def document(tmp: Path, renewal: Any) -> dict[str, Any]:
    return {"ledger": {"path": str(tmp / "ledger.db")}, "managed-cas": [{
        "id": "ca-1", "connector": "sectigo", "gateway": {"renewal": renewal},
        "properties": {"url": "http://127.0.0.1:1/api", "customer-uri": "acme", "org-id": "1",
                       "login": "gateway", "login-password": "not-a-secret"}}]}


def renewal_of(tmp: Path, renewal: Any) -> RenewalSettings:
    return parse_config(document(tmp, renewal), base_dir=tmp).managed_cas[0].gateway.renewal


def test_ok_default_is_the_last_third_with_ten_percent_jitter(tmp_path: Path) -> None:
    settings = renewal_of(tmp_path, None)
    assert settings == RenewalSettings() and settings.for_profile("any") == RenewalPolicy(window=1 / 3, jitter=0.1)


def test_ok_percentages_decimals_and_profile_overrides(tmp_path: Path) -> None:
    settings = renewal_of(tmp_path, {"window": "25%", "jitter": 0.05, "profiles": {"short": {"window": "50%"}}})
    assert settings.for_profile("ov-server") == RenewalPolicy(window=0.25, jitter=0.05)
    assert settings.for_profile("short") == RenewalPolicy(window=0.5, jitter=0.05)  # jitter inherited


def test_fail_every_problem_named_by_its_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        renewal_of(tmp_path, {"window": "100%", "jitter": "third", "every": "1d",
                              "profiles": {"p": {"window": "0", "jitter": "60%"}}})
    at = "managed-cas[0] (id ca-1).gateway.renewal"
    assert caught.value.problems == [
        f"{at}.every: unknown key (allowed: jitter, profiles, window)",
        f"{at}.jitter: 'third' is not a share (examples: 33%, 0.33)",
        f"{at}.window: must be more than 0% and less than 100% of the lifetime",
        f"{at}.profiles.p.window: must be more than 0% and less than 100% of the lifetime",
        f"{at}.profiles.p.jitter: must be at most 50% of the renewal period",
    ]
