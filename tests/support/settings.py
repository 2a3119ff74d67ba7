"""CA settings built the way the gateway builds them: a configuration document through ``parse_config``.

``ca_entry`` is one ``managed-cas`` item (password auth over plain HTTP toward a
port nobody listens on, so nothing is reached by accident), ``config_document``
a whole document around one or more entries, and ``build_ca_settings`` the
parsed ``CASettings`` of one entry. Keyword overrides go where the
configuration file would put them: ``properties`` and ``gateway`` are merged
over the defaults, anything else replaces a key of the entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from service.config import CASettings, Config, parse_config

__all__ = ["CA_ID", "PROPERTIES", "CASettingsFactory", "build_ca_settings", "ca_entry", "config_document", "parse_document"]

CA_ID = "sectigo-test"
PROPERTIES: Mapping[str, str] = {
    "url": "http://127.0.0.1:1/api", "customer-uri": "acme", "org-id": "1234",
    "login": "gateway", "login-password": "not-a-secret",
}


class CASettingsFactory(Protocol):
    """The ``ca_settings`` fixture: ``build_ca_settings`` with the test's ``tmp_path`` bound."""

    def __call__(self, **overrides: Any) -> CASettings: ...


def ca_entry(*, ca_id: str = CA_ID, connector: str | None = "sectigo", properties: Mapping[str, Any] | None = None,
             gateway: Mapping[str, Any] | None = None, **entry: Any) -> dict[str, Any]:
    """One ``managed-cas`` item; ``connector=None`` leaves the key out (the installed one is meant)."""
    item: dict[str, Any] = {"id": ca_id, "properties": {**PROPERTIES, **(properties or {})}}
    if connector is not None:
        item["connector"] = connector
    if gateway:
        item["gateway"] = dict(gateway)
    item.update(entry)
    return item


def config_document(tmp: Path | None, *cas: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A whole configuration: a ledger under ``tmp`` (none when ``tmp`` is None), ``top`` sections
    and the given CA entries (one default entry when none is given)."""
    document: dict[str, Any] = {} if tmp is None else {"ledger": {"path": str(tmp / "ledger.db")}}
    document.update(top)
    document["managed-cas"] = list(cas) or [ca_entry()]
    return document


def parse_document(document: Mapping[str, Any], tmp: Path, environ: Mapping[str, str] | None = None) -> Config:
    """``parse_config`` with ``tmp`` as the base folder and no environment unless one is given."""
    return parse_config(document, base_dir=tmp, environ=dict(environ or {}))


def build_ca_settings(tmp: Path, **overrides: Any) -> CASettings:
    """The parsed settings of one CA entry (``ca_entry(**overrides)``) under a ledger in ``tmp``."""
    return parse_document(config_document(tmp, ca_entry(**overrides)), tmp).managed_cas[0]
