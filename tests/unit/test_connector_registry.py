"""The connector registry: plug-ins by type name, imported on demand, and the default connector."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

import service.config.sections as sections
from service.config import parse_config
from service.connectors import registry
from service.connectors.registry import create_connector, find_connector, installed_connectors
from service.errors import ConfigError
from tests.support.settings import CASettingsFactory, ca_entry, config_document


def test_ok_an_installed_connector_is_found_by_importing_its_package() -> None:
    plugin = find_connector("sectigo")
    assert plugin is not None and plugin.type_name == "sectigo"
    assert (plugin.connector_name, plugin.ca_type, plugin.vendor) == (
        "com.Sectigo", "Sectigo Certificate Manager", "Sectigo")
    assert installed_connectors() == ("sectigo",)


@pytest.mark.parametrize("name", ["entrust", "no such", "base", "registry", ""])
def test_fail_unknown_names_find_nothing(name: str) -> None:
    assert find_connector(name) is None


def test_fail_create_connector_of_an_unknown_type_names_the_ca(ca_settings: CASettingsFactory) -> None:
    settings = dataclasses.replace(ca_settings(), connector="entrust")
    with pytest.raises(ConfigError, match="CA sectigo-test: unknown connector 'entrust'"):
        create_connector(settings)


def _document(connector: str | None = None) -> dict[str, object]:
    return config_document(None, ca_entry(ca_id="x", connector=connector))


def test_ok_without_a_connector_key_the_one_installed_connector_is_meant(tmp_path: Path) -> None:
    (ca,) = parse_config(_document(), base_dir=tmp_path, environ={}).managed_cas
    assert ca.connector == installed_connectors()[0]


def test_fail_without_a_connector_key_several_installed_connectors_need_a_choice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sections, "installed_connectors", lambda: ("other", "sectigo"))
    with pytest.raises(ConfigError) as caught:
        parse_config(_document(), base_dir=tmp_path, environ={})
    assert caught.value.problems == [
        "managed-cas[0] (id x).connector: is required: 2 connectors are installed (other, sectigo)"]
    (ca,) = parse_config(_document(connector="sectigo"), base_dir=tmp_path, environ={}).managed_cas
    assert ca.connector == "sectigo"


def test_ok_unregister_forgets_a_plugin() -> None:
    plugin = find_connector("sectigo")
    assert plugin is not None
    copy = dataclasses.replace(plugin, type_name="copy")
    registry.register_connector(copy)
    try:
        assert find_connector("copy") is copy and "copy" in registry.known_connectors()
    finally:
        registry.unregister_connector("copy")
    assert find_connector("copy") is None and "copy" not in registry.known_connectors()


def test_fail_a_connector_refuses_settings_made_for_another(ca_settings: CASettingsFactory) -> None:
    settings = dataclasses.replace(ca_settings(), properties=object())
    with pytest.raises(ConfigError, match="CA sectigo-test: the sectigo connector needs SectigoProperties, not object"):
        create_connector(settings)
