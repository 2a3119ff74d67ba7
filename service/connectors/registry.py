"""The connector registry: each connector type is a plug-in that owns its settings, factory and names.

A connector package registers one :class:`ConnectorPlugin` under its type name
(the ``connector:`` value of a managed CA) when it is imported. The core never
names a connector: the configuration loader looks the plug-in up by that value,
importing ``service.connectors.<type>`` on demand, hands it the CA's
``properties`` to parse, and the gateway builds each CA's connector with the
plug-in's factory. Like a step-ca CA backend decoding its own options, the
plug-in alone knows its property keys, their defaults and their checks.

A plug-in from outside ``service/connectors/`` (a test's, a site's own) is
registered by calling :func:`register_connector` before the configuration is
read.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from service.connectors.base import Connector

if TYPE_CHECKING:
    from service.config.reader import Reader
    from service.config.settings import BackoffSettings, CASettings

__all__ = [
    "ConnectorFactory",
    "ConnectorPlugin",
    "ParsedProperties",
    "PropertiesParser",
    "create_connector",
    "find_connector",
    "installed_connectors",
    "known_connectors",
    "register_connector",
    "unregister_connector",
]

_PACKAGE = "service.connectors"


@dataclass(frozen=True)
class ParsedProperties:
    """What a plug-in makes of a CA's ``properties``: its own frozen settings (``CASettings.properties``,
    which only the plug-in's connector reads) and the CA's collect schedule, which the core runs."""

    settings: object
    backoff: BackoffSettings


# Called inside the CA's ``properties`` block of the Reader: every problem goes to ``reader.problem``
# (so it carries its YAML path and all are reported at once); ``None`` when there was any.
PropertiesParser = Callable[["Reader", Mapping[str, Any]], "ParsedProperties | None"]
ConnectorFactory = Callable[["CASettings"], Connector]


@dataclass(frozen=True)
class ConnectorPlugin:
    """A connector type: how its settings are read, how its connector is built, how the CA is named."""

    type_name: str  # the ``connector:`` value
    parse_properties: PropertiesParser
    create: ConnectorFactory
    connector_name: str  # CAGW ``connector-name`` of its CAs
    ca_type: str  # CAGW ``type`` of its CAs
    vendor: str  # the CA product as messages name it ("<vendor> has no certificate hold")


_PLUGINS: dict[str, ConnectorPlugin] = {}


def register_connector(plugin: ConnectorPlugin) -> None:
    """Make ``connector: <plugin.type_name>`` use ``plugin``; a second registration replaces the first."""
    _PLUGINS[plugin.type_name] = plugin


def unregister_connector(type_name: str) -> None:
    """Forget a registered plug-in (a test's, when the test ends); unknown names are ignored."""
    _PLUGINS.pop(type_name, None)


def find_connector(type_name: str) -> ConnectorPlugin | None:
    """The plug-in for ``type_name``, importing ``service.connectors.<type_name>`` first if needed."""
    if type_name not in _PLUGINS and type_name.isidentifier():
        package = f"{_PACKAGE}.{type_name}"
        try:
            importlib.import_module(package)
        except ModuleNotFoundError as exc:
            if exc.name != package:
                raise  # the package exists but lacks a dependency: say that, not "unknown connector"
    return _PLUGINS.get(type_name)


def installed_connectors() -> tuple[str, ...]:
    """The connector packages shipped in ``service/connectors/`` (one sub-package each), sorted."""
    package = importlib.import_module(_PACKAGE)
    return tuple(sorted(module.name for module in pkgutil.iter_modules(package.__path__) if module.ispkg))


def known_connectors() -> tuple[str, ...]:
    """Every type name a configuration may use: the installed packages and the registered plug-ins."""
    return tuple(sorted({*installed_connectors(), *_PLUGINS}))


def create_connector(ca: CASettings) -> Connector:
    """Build the connector of a CA; raises ConfigError naming the CA for bad settings."""
    from service.errors import ConfigError

    plugin = find_connector(ca.connector)
    if plugin is None:
        raise ConfigError(f"CA {ca.id}: unknown connector {ca.connector!r}")
    return plugin.create(ca)
