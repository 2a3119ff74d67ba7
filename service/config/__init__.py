"""YAML configuration → validated, typed, frozen settings.

The package: ``settings`` (the frozen types), ``reader`` (YAML as strings, converters,
the problem collector), ``sections`` (one parser per section, :func:`load_config`).

The file is CAGW-style: top-level listeners and a ``managed-cas`` list whose
entries carry the Sectigo connector's documented ``properties`` verbatim, plus a
sibling ``gateway:`` block for what this gateway adds (timeouts, bounds, ...).

Every problem is collected and reported at once, each with its YAML path
(``managed-cas[0] (id sectigo-ov).properties.org-id: ...``), and no message
ever contains a secret value. Scalars are read as strings (YAML 1.1 would turn
``012345``, ``no`` and ``12:30:00`` into other things) and converted
explicitly. Relative paths resolve against the configuration file's folder;
secrets may be written ``${ENV_VAR}`` or ``file:PATH``.
"""

from __future__ import annotations

from service.config.reader import parse_duration, parse_listen
from service.config.sections import DEFAULT_TOKEN_URL, load_config, parse_config
from service.config.settings import (
    ApiKeyAuth,
    BackoffSettings,
    CASettings,
    Config,
    GatewaySettings,
    KeyStoreAuth,
    LedgerSettings,
    ListenSettings,
    PasswordAuth,
    ProfileOptions,
    ProxySettings,
    RestSettings,
    Secret,
    SectigoProperties,
    StaticProfile,
    TLSListenSettings,
)

__all__ = [
    "DEFAULT_TOKEN_URL",
    "ApiKeyAuth",
    "BackoffSettings",
    "CASettings",
    "Config",
    "GatewaySettings",
    "KeyStoreAuth",
    "LedgerSettings",
    "ListenSettings",
    "PasswordAuth",
    "ProfileOptions",
    "ProxySettings",
    "RestSettings",
    "Secret",
    "SectigoProperties",
    "StaticProfile",
    "TLSListenSettings",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_listen",
]
