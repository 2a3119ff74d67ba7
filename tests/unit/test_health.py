"""The one health source: serving unless a component is down, watchers told of each change."""

from __future__ import annotations

from service.health import HealthState


def test_starts_down_until_started_then_follows_its_components() -> None:
    health = HealthState()
    seen: list[bool] = []
    health.watch(seen.append)
    assert not health.serving() and "starting" in health.reasons

    health.up("starting")
    health.down("ledger", "the ledger is unreachable")
    health.down("ledger", "the ledger is unreachable")  # no change, no second notice
    health.down("draining", "draining before a stop")
    health.up("ledger")
    assert not health.serving() and health.reasons == {"draining": "draining before a stop"}
    health.up("draining")

    assert health.serving() and health.reasons == {}
    assert seen == [True, False, True]


def test_up_of_a_component_that_was_never_down_changes_nothing() -> None:
    health = HealthState()
    health.up("starting")
    seen: list[bool] = []
    health.watch(seen.append)
    health.up("ledger")
    assert health.serving() and seen == []
