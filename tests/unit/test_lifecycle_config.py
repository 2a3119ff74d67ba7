"""A CA's ``gateway.renewal`` block: its defaults, its per-profile overrides, its refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from service.config import RenewalPolicy, RenewalSettings, SyncSettings, parse_config
from service.errors import ConfigError
from tests.support.settings import ca_entry, config_document


def document(tmp: Path, renewal: Any) -> dict[str, Any]:
    return config_document(tmp, ca_entry(ca_id="ca-1", gateway={"renewal": renewal}))


def renewal_of(tmp: Path, renewal: Any) -> RenewalSettings:
    return parse_config(document(tmp, renewal), base_dir=tmp).managed_cas[0].gateway.renewal


def test_ok_default_is_the_last_third_with_ten_percent_jitter(tmp_path: Path) -> None:
    settings = renewal_of(tmp_path, None)
    assert settings == RenewalSettings() and settings.for_profile("any") == RenewalPolicy(window=1 / 3, jitter=0.1)


def test_ok_percentages_decimals_and_profile_overrides(tmp_path: Path) -> None:
    settings = renewal_of(tmp_path, {"window": "25%", "jitter": 0.05, "profiles": {"short": {"window": "50%"}}})
    assert settings.for_profile("ov-server") == RenewalPolicy(window=0.25, jitter=0.05)
    assert settings.check_interval == 3600.0
    assert settings.for_profile("short") == RenewalPolicy(window=0.5, jitter=0.05)  # jitter inherited


def test_fail_every_problem_named_by_its_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        renewal_of(tmp_path, {"window": "100%", "jitter": "third", "every": "1d",
                              "profiles": {"p": {"window": "0", "jitter": "60%"}}})
    at = "managed-cas[0] (id ca-1).gateway.renewal"
    assert caught.value.problems == [
        f"{at}.every: unknown key (allowed: automatic, check-interval, jitter, notify-before, profiles, window)",
        f"{at}.jitter: 'third' is not a share (examples: 33%, 0.33)",
        f"{at}.window: must be more than 0% and less than 100% of the lifetime",
        f"{at}.profiles.p.window: must be more than 0% and less than 100% of the lifetime",
        f"{at}.profiles.p.jitter: must be at most 50% of the renewal period",
    ]


def webhooks_of(tmp: Path, webhooks: Any) -> Any:
    return parse_config({**document(tmp, None), "webhooks": webhooks}, base_dir=tmp).webhooks


def test_ok_a_webhook_with_every_key(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    [hook] = webhooks_of(tmp_path, [{"name": "team-a", "url": "https://hooks.example.com/cagw",
                                     "secret": "0123456789abcdef", "tls-ca": "ca.pem", "owner": "team-a",
                                     "cas": ["ca-1"], "events": ["issued", "revoked"], "timeout": "5s",
                                     "retry-delay": "250ms"}])
    assert (hook.name, hook.url, hook.secret.reveal(), hook.tls_ca, hook.owner) == (
        "team-a", "https://hooks.example.com/cagw", "0123456789abcdef", tmp_path / "ca.pem", "team-a")
    assert (hook.cas, hook.events, hook.timeout, hook.retry_delay) == (
        frozenset({"ca-1"}), frozenset({"issued", "revoked"}), 5.0, 0.25)
    assert "0123456789abcdef" not in repr(hook)


def test_fail_webhook_problems_named_by_their_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        webhooks_of(tmp_path, [
            {"name": "a", "url": "http://hooks.example.com/x", "secret": "short"},
            {"name": "b b", "url": "https://u:p@hooks.example.com/", "secret": "0123456789abcdef",
             "events": ["expired"], "cas": ["nope"]},
            {"name": "c", "url": "https://ok.example.com", "secret": "0123456789abcdef"},
            {"name": "c", "url": "https://ok.example.com", "secret": "0123456789abcdef"},
        ])
    problems = caught.value.problems
    assert problems[0].startswith("webhooks[0].url: must be https://")
    assert problems[1] == ("webhooks[0].secret: must be at least 16 characters "
                           "(it keys the events' HMAC-SHA256 signature)")
    assert problems[2:5] == [
        "webhooks[1].name: must be 1-64 letters, digits, '.', '_' or '-' (it labels metrics and logs)",
        "webhooks[1].url: must not carry credentials in the URL; the receiver checks the signature instead",
        "webhooks[1].events: unknown expired (allowed: issued, issued-outside, renewed, revoked, failed, expiring, "
            "replaced)",
    ]
    assert problems[5:] == ["webhooks[3].name: duplicate webhook name 'c'"]


def test_ok_http_is_accepted_for_a_loopback_receiver(tmp_path: Path) -> None:
    [hook] = webhooks_of(tmp_path, [{"name": "local", "url": "http://127.0.0.1:8080/x",
                                     "secret": "0123456789abcdef"}])
    assert hook.url == "http://127.0.0.1:8080/x"


def test_ok_sync_is_off_by_default_and_takes_its_keys(tmp_path: Path) -> None:
    def sync_of(sync: Any) -> Any:
        entry = document(tmp_path, None)
        entry["managed-cas"][0]["gateway"] = {"sync": sync}
        return parse_config(entry, base_dir=tmp_path).managed_cas[0].gateway.sync

    assert sync_of(None) == SyncSettings(interval=0.0)
    assert sync_of({"interval": "6h", "max-pages": "5", "page-size": "100"}) == SyncSettings(
        interval=6 * 3600.0, max_pages=5, page_size=100)
    with pytest.raises(ConfigError) as caught:
        sync_of({"interval": "10s", "page-size": "500"})
    assert caught.value.problems == [
        "managed-cas[0] (id ca-1).gateway.sync.interval: must be 0 (off) or at least 1m: each pass lists the "
        "CA's certificates",
        "managed-cas[0] (id ca-1).gateway.sync.page-size: 500 is above the maximum 200"]


def test_ok_automatic_renewal_per_profile_and_its_check_interval(tmp_path: Path) -> None:
    settings = renewal_of(tmp_path, {"check-interval": "15m", "profiles": {"web": {"automatic": "yes"}}})
    assert (settings.for_profile("web").automatic, settings.for_profile("other").automatic) == (True, False)
    assert settings.check_interval == 900.0


def test_ok_expiry_thresholds_default_to_a_month_a_week_and_a_day(tmp_path: Path) -> None:
    assert renewal_of(tmp_path, None).notify_before == (30 * 86400.0, 7 * 86400.0, 86400.0)


def test_ok_expiry_thresholds_are_kept_largest_first_once_each_or_none(tmp_path: Path) -> None:
    assert renewal_of(tmp_path, {"notify-before": ["1d", "14d", "12h", "14d"]}).notify_before == (
        14 * 86400.0, 86400.0, 43200.0)
    assert renewal_of(tmp_path, {"notify-before": []}).notify_before == ()


def test_fail_expiry_thresholds_that_are_not_durations_are_named(tmp_path: Path) -> None:
    at = "managed-cas[0] (id ca-1).gateway.renewal"
    with pytest.raises(ConfigError) as caught:
        renewal_of(tmp_path, {"notify-before": ["30d", "soon", "0s"]})
    assert caught.value.problems == [
        f"{at}.notify-before[1]: 'soon' is not a duration (examples: 2, 2s, 2 sec, 500ms, 1.5s, 5m)",
        f"{at}.notify-before[2]: '0s' must be longer than zero"]
    with pytest.raises(ConfigError) as caught:
        renewal_of(tmp_path, {"notify-before": "30d"})
    assert caught.value.problems == [
        f"{at}.notify-before: must be a list of at most 10 durations (example: [30d, 7d, 1d])"]


def _hook(name: str, owner: str | None = None) -> dict[str, str]:
    hook = {"name": name, "url": f"https://hooks.example.com/{name}", "secret": "0123456789abcdef"}
    return hook | ({"owner": owner} if owner is not None else {})


def test_fail_webhooks_are_bounded_per_owner_and_in_all(tmp_path: Path) -> None:
    assert len(webhooks_of(tmp_path, [_hook(f"a{i}", "team-a") for i in range(4)] + [_hook("b", "team-b")])) == 5
    with pytest.raises(ConfigError) as caught:
        webhooks_of(tmp_path, [_hook(f"a{i}", "team-a") for i in range(5)])
    assert caught.value.problems == [
        "webhooks[4].owner: is owner 'team-a''s webhook number 5, at most 4 per owner are allowed"]
    with pytest.raises(ConfigError) as caught:
        webhooks_of(tmp_path, [_hook(f"h{i}") for i in range(33)])
    assert caught.value.problems == [
        "webhooks: has 33 webhooks, at most 32 are allowed (one webhook may take every event of several CAs: "
        "leave out `cas` and `events`)"]
