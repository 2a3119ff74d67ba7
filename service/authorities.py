"""The managed CAs at run time: settings, connector and profile catalog per CA id."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from service.catalog import ProfileCatalog
from service.config import CASettings
from service.connectors.base import Connector
from service.errors import NotFound

__all__ = ["CARegistry", "ManagedCA"]

CONNECTOR_NAMES = {"sectigo": "com.Sectigo"}
CONNECTOR_TYPES = {"sectigo": "Sectigo Certificate Manager"}


@dataclass(frozen=True)
class ManagedCA:
    settings: CASettings
    connector: Connector
    catalog: ProfileCatalog

    @property
    def id(self) -> str:
        return self.settings.id

    def public_properties(self) -> dict[str, str]:
        """What CAGW shows of a CA: both spellings of connector-name (CAGW clients read either)."""
        name = CONNECTOR_NAMES.get(self.settings.connector, self.settings.connector)
        return {
            "connector-name": name,
            "connector_name": name,
            "type": CONNECTOR_TYPES.get(self.settings.connector, self.settings.connector),
        }


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
