"""Profile catalog: static profiles merged with the CA's, TTL cache, stale answers when the CA is down."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.catalog import ProfileCatalog
from service.config import CASettings
from service.connectors.base import CAProfile
from service.errors import CAUnavailable, NotFound
from tests.support.clocks import SecondsClock
from tests.support.settings import build_ca_settings
from tests.unit.fakes import FakeConnector

OV = CAProfile(id="1001", name="OV SSL", terms=(365, 730), key_types={"RSA": ("2048",)})
EV = CAProfile(id="1002", name="EV SSL", terms=(365,))


def _ca(tmp_path: Path, *, static: bool = True, sync: bool = True, ttl: str = "60s") -> CASettings:
    return build_ca_settings(
        tmp_path, ca_id="ca1",
        profiles=[{"id": "ov-server", "name": "OV server", "cert-type": "1001", "term": "730"}] if static else [],
        gateway={"profile-sync": "true" if sync else "false", "profile-cache-ttl": ttl})


def _connector(*profiles: CAProfile) -> FakeConnector:
    connector = FakeConnector()
    connector.ca_profiles = tuple(profiles)
    return connector


async def test_ok_static_profiles_take_terms_from_the_ca_and_synced_ones_follow(tmp_path: Path) -> None:
    catalog = ProfileCatalog(_ca(tmp_path), _connector(OV, EV), clock=SecondsClock())
    profiles = await catalog.list()
    assert [p.id for p in profiles] == ["ov-server", "1001", "1002"]
    ov = profiles[0]
    assert (ov.ca_profile_id, ov.terms, ov.default_term, ov.static) == ("1001", (365, 730), 730, True)
    assert ov.properties()["terms"] == "[365, 730]"
    assert ov.properties()["key_type"] == '{"RSA":["2048"]}'


async def test_ok_sync_off_lists_static_profiles_only(tmp_path: Path) -> None:
    catalog = ProfileCatalog(_ca(tmp_path, sync=False), _connector(OV, EV), clock=SecondsClock())
    assert [p.id for p in await catalog.list()] == ["ov-server"]


async def test_ok_the_ca_is_asked_once_per_ttl(tmp_path: Path) -> None:
    clock = SecondsClock()
    connector = _connector(OV)
    catalog = ProfileCatalog(_ca(tmp_path, ttl="60s"), connector, clock=clock)
    await catalog.list()
    await catalog.get("ov-server")
    assert connector.names().count("profiles") == 1
    clock.now = 61
    await catalog.list()
    assert connector.names().count("profiles") == 2


async def test_ok_ca_down_serves_the_cached_list_then_the_static_profiles(tmp_path: Path) -> None:
    clock = SecondsClock()
    connector = _connector(OV)
    catalog = ProfileCatalog(_ca(tmp_path, ttl="1s"), connector, clock=clock)
    await catalog.list()
    connector.fail("profiles", CAUnavailable("down"))
    clock.now = 5
    assert [p.id for p in await catalog.list()] == ["ov-server", "1001"]
    fresh = ProfileCatalog(_ca(tmp_path), connector, clock=clock)
    assert [p.id for p in await fresh.list()] == ["ov-server"]


async def test_fail_ca_down_without_cache_or_static_profiles(tmp_path: Path) -> None:
    connector = _connector(OV)
    connector.fail("profiles", CAUnavailable("down"))
    with pytest.raises(CAUnavailable):
        await ProfileCatalog(_ca(tmp_path, static=False), connector, clock=SecondsClock()).list()


async def test_fail_unknown_profile_names_it(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no profile 'nope'"):
        await ProfileCatalog(_ca(tmp_path), _connector(OV), clock=SecondsClock()).get("nope")
