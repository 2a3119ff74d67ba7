"""YAML configuration → validated, typed, frozen settings.

The package: ``settings`` (the frozen types), ``reader`` (YAML as strings, converters,
the problem collector), ``sections`` (one parser per section, :func:`load_config`).

The file is CAGW-style: top-level listeners and a ``managed-cas`` list whose
entries name a ``connector`` and carry its documented ``properties`` verbatim,
plus a sibling ``gateway:`` block for what this gateway adds (timeouts, bounds,
...). ``properties`` are parsed by the connector's plug-in
(:mod:`service.connectors.registry`), never here.

Every problem is collected and reported at once, each with its YAML path
(``managed-cas[0] (id ca-ov).properties.org-id: ...``), and no message
ever contains a secret value. Scalars are read as strings (YAML 1.1 would turn
``012345``, ``no`` and ``12:30:00`` into other things) and converted
explicitly. Relative paths resolve against the configuration file's folder;
secrets may be written ``${ENV_VAR}`` or ``file:PATH``.
"""

from __future__ import annotations

from service.config.limits import GrpcLimits, HttpLimits, LookupLimits, StreamLimits
from service.config.reader import parse_duration, parse_listen
from service.config.sections import load_config, parse_config
from service.config.settings import (
    BackoffSettings,
    CASettings,
    CircuitBreakerSettings,
    ClientLimits,
    CollectBudgetSettings,
    ClientMatch,
    ClientSettings,
    Config,
    GatewaySettings,
    GrantSettings,
    LedgerSettings,
    ListenSettings,
    LogSettings,
    OPERATIONS,
    Operation,
    ProfileOptions,
    RenewalPolicy,
    RenewalSettings,
    RestSettings,
    Secret,
    StaticProfile,
    SyncSettings,
    TLSListenSettings,
    TracingSettings,
    WebhookSettings,
)

__all__ = [
    "BackoffSettings",
    "CASettings",
    "CircuitBreakerSettings",
    "ClientLimits",
    "CollectBudgetSettings",
    "ClientMatch",
    "ClientSettings",
    "Config",
    "GatewaySettings",
    "GrantSettings",
    "GrpcLimits",
    "HttpLimits",
    "LedgerSettings",
    "ListenSettings",
    "LogSettings",
    "LookupLimits",
    "OPERATIONS",
    "Operation",
    "ProfileOptions",
    "RenewalPolicy",
    "RenewalSettings",
    "RestSettings",
    "Secret",
    "StaticProfile",
    "StreamLimits",
    "SyncSettings",
    "TLSListenSettings",
    "TracingSettings",
    "WebhookSettings",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_listen",
]
