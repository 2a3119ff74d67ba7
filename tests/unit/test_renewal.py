"""The renewal window: where it lies in a certificate's life, how far it is spread, what moves it."""

from __future__ import annotations

import datetime as dt

import pytest

from service.config import RenewalPolicy
from service.lifecycle import renewal_advice

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
NINETY_DAYS = dt.timedelta(days=90)


def advice(serial: str = "5912bd91", *, policy: RenewalPolicy = RenewalPolicy(), revoked: bool = False,
           now: dt.datetime = T0) -> tuple[dt.datetime, dt.datetime, str]:
    given = renewal_advice(serial_number=serial, not_before=T0, not_after=T0 + NINETY_DAYS, revoked=revoked,
                           policy=policy, now=now)
    return given.start, given.end, given.explanation


def test_ok_window_lies_in_the_last_third_and_leaves_a_margin_before_expiry() -> None:
    start, end, _ = advice(policy=RenewalPolicy(window=1 / 3, jitter=0.1))
    earliest = T0 + dt.timedelta(days=60)
    assert earliest <= start <= earliest + dt.timedelta(days=3)  # jitter: at most 10% of the 30-day period
    assert end - start == dt.timedelta(days=15)  # half of the renewal period
    assert end < T0 + NINETY_DAYS


def test_ok_without_jitter_every_certificate_gets_the_same_window() -> None:
    policy = RenewalPolicy(window=0.5, jitter=0.0)
    assert advice("01", policy=policy)[:2] == advice("ff", policy=policy)[:2] == (
        T0 + dt.timedelta(days=45), T0 + dt.timedelta(days=67, hours=12))


def test_ok_jitter_spreads_a_fleet_within_its_bound_and_is_stable_per_serial() -> None:
    policy = RenewalPolicy(window=1 / 3, jitter=0.2)
    starts = {advice(f"{n:x}", policy=policy)[0] for n in range(500)}
    earliest, bound = T0 + dt.timedelta(days=60), dt.timedelta(days=6)
    assert all(earliest <= start <= earliest + bound for start in starts)
    assert len(starts) > 450  # spread, not a handful of slots
    assert max(starts) - min(starts) > bound * 0.9
    assert advice("abc", policy=policy) == advice("ABC", policy=policy)  # the serial's case does not matter


@pytest.mark.parametrize(("revoked", "now", "word"), [
    (True, T0 + dt.timedelta(days=1), "revoked"),
    (False, T0 + NINETY_DAYS + dt.timedelta(seconds=1), "expired"),
])
def test_ok_revoked_or_expired_means_replace_now(revoked: bool, now: dt.datetime, word: str) -> None:
    start, end, explanation = advice(revoked=revoked, now=now)
    assert start == end == now
    assert word in explanation


@pytest.mark.parametrize("policy", [dict(window=0.0), dict(window=1.0), dict(jitter=0.6), dict(jitter=-0.1)])
def test_fail_policy_out_of_range(policy: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be between"):
        RenewalPolicy(**policy)
