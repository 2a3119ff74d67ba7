"""The managed CAs at run time: settings, connector, plug-in and profile catalog per CA id."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from service.catalog import ProfileCatalog
from service.config import CASettings
from service.connectors.base import Connector
from service.connectors.registry import ConnectorPlugin, find_connector
from service.errors import ConfigError, NotFound

__all__ = ["CARegistry", "ManagedCA"]


@dataclass(frozen=True)
class ManagedCA:
    settings: CASettings
    connector: Connector
    catalog: ProfileCatalog

    @property
    def id(self) -> str:
        return self.settings.id

    @property
    def plugin(self) -> ConnectorPlugin:
        """The connector type's plug-in: its display names and vendor word."""
        plugin = find_connector(self.settings.connector)
        if plugin is None:  # the loader only makes settings for known connectors
            raise ConfigError(f"CA {self.id}: unknown connector {self.settings.connector!r}")
        return plugin

    def public_properties(self) -> dict[str, str]:
        """What CAGW shows of a CA: both spellings of connector-name (CAGW clients read either)."""
        plugin = self.plugin
        return {"connector-name": plugin.connector_name, "connector_name": plugin.connector_name,
                "type": plugin.ca_type}


class CARegistry:
    def __init__(self, cas: Sequence[ManagedCA]) -> None:
        self._cas = {ca.id: ca for ca in cas}

    def __iter__(self) -> Iterator[ManagedCA]:
        return iter(self._cas.values())

    def get(self, ca_id: str) -> ManagedCA:
        ca = self._cas.get(ca_id)
        if ca is None:
            raise NotFound(f"unknown certificate authority {ca_id!r}", reason="CA_NOT_CONFIGURED",
                           metadata={"ca_id": ca_id[:64]})
        return ca
