"""Embedded Sectigo Certificate Manager (SCM) simulator: real HTTP, real TLS, real certificates.

It speaks the SCM REST API (reference/sectigo-scm-api.md §6) under ``/api``
and ``/private/api``, issues certificates from a local CA in ``ca-dir``, and
can inject faults. It is the default backend of ``cagw serve``, of the tests
and of the benchmarks.

Modules: ``settings`` (typed settings), ``local_ca`` (the CA), ``csr`` (CSR
and SAN checks), ``state`` (orders, persistence), ``manager`` (SCM
behaviour), ``views`` (details and list JSON), ``collect_formats``
(download formats), ``auth`` (credentials, OAuth2), ``faults`` (fault
injection), ``app`` (routes), ``server`` (start/stop, CLI), ``embedded`` (the
simulator and the configuration pointing the gateway at it, for ``cagw serve``
without a configuration; imported on demand).
"""

from __future__ import annotations

from .app import SimulatorStats
from .faults import FaultDecision, FaultInjector, FaultKind, FaultRule
from .local_ca import LocalCA
from .manager import SimulatedCertificateManager
from .views import format_serial, parse_serial
from .scm_errors import ScmError
from .server import (
    Simulator,
    add_simulator_arguments,
    run_simulator_command,
    settings_from_args,
    start_simulator,
)
from .settings import (
    DEFAULT_CERT_TYPES,
    DEFAULT_CUSTOM_FIELDS,
    CertType,
    CustomField,
    Department,
    SimulatorSettings,
)
from .state import Order, OrderBook, OrderStatus

COMMAND_HELP = "run the Sectigo Certificate Manager simulator"  # `cagw simulator --help`

__all__ = [
    "COMMAND_HELP",
    "DEFAULT_CERT_TYPES",
    "DEFAULT_CUSTOM_FIELDS",
    "CertType",
    "CustomField",
    "Department",
    "FaultDecision",
    "FaultInjector",
    "FaultKind",
    "FaultRule",
    "LocalCA",
    "Order",
    "OrderBook",
    "OrderStatus",
    "ScmError",
    "SimulatedCertificateManager",
    "Simulator",
    "SimulatorSettings",
    "SimulatorStats",
    "add_simulator_arguments",
    "format_serial",
    "parse_serial",
    "run_simulator_command",
    "settings_from_args",
    "start_simulator",
]
