"""Typed settings of the SCM simulator: server, credentials, issuance and catalogue.

Defaults follow DESIGN.md decision 11: the first certificate type accepts RSA
2048–4096 and EC P-256/P-384 with terms 365 and 730 days, and no custom field
is mandatory. The demo credentials are public on purpose (it is a simulator);
they are still kept out of ``repr``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

__all__ = [
    "DEFAULT_CERT_TYPES",
    "DEFAULT_CUSTOM_FIELDS",
    "DEMO_CUSTOMER_URI",
    "DEMO_LOGIN",
    "DEMO_OAUTH_CLIENT_ID",
    "DEMO_OAUTH_CLIENT_SECRET",
    "DEMO_PASSWORD",
    "CertType",
    "CustomField",
    "Department",
    "SimulatorSettings",
    "default_ca_dir",
]

DEMO_LOGIN = "simulator-admin"
DEMO_PASSWORD = "simulator-password"
DEMO_CUSTOMER_URI = "simulator"
DEMO_OAUTH_CLIENT_ID = "simulator-client"
DEMO_OAUTH_CLIENT_SECRET = "simulator-secret"


@dataclass(frozen=True)
class CertType:
    """One SSL certificate profile, as ``GET /ssl/v1/types`` lists it.

    ``key_types`` maps an algorithm (``RSA``, ``EC``) to the allowed sizes or
    curves, as strings, exactly like SCM's ``keyTypes``. ``validation_type``
    only shows in certificate details.
    """

    id: int
    name: str
    description: str
    terms: tuple[int, ...]
    key_types: Mapping[str, tuple[str, ...]]
    use_secondary_org_name: bool = False
    validation_type: str = "Organization Validation (OV)"

    def to_json(self) -> dict[str, object]:
        """The ``ApiCertType`` JSON object."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "terms": list(self.terms),
            "keyTypes": {alg: list(sizes) for alg, sizes in self.key_types.items()},
            "useSecondaryOrgName": self.use_secondary_org_name,
        }


@dataclass(frozen=True)
class CustomField:
    """An SSL custom field; enroll must carry every ``mandatory`` one (else -62)."""

    id: int
    name: str
    mandatory: bool = False

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "mandatory": self.mandatory}


@dataclass(frozen=True)
class Department:
    """A department of the simulated organization; its id is a valid enroll ``orgId``."""

    id: int
    name: str


DEFAULT_CERT_TYPES: tuple[CertType, ...] = (
    CertType(
        id=1001,
        name="Simulated OV SSL",
        description="Organization-validated TLS server certificate (simulator)",
        terms=(365, 730),
        key_types=MappingProxyType({"RSA": ("2048", "3072", "4096"), "EC": ("P-256", "P-384")}),
    ),
    CertType(
        id=1002,
        name="Simulated EV SSL",
        description="Extended-validation TLS server certificate, RSA only (simulator)",
        terms=(365,),
        key_types=MappingProxyType({"RSA": ("2048", "3072", "4096")}),
        validation_type="Extended Validation (EV)",
    ),
)

DEFAULT_CUSTOM_FIELDS: tuple[CustomField, ...] = (
    CustomField(id=301, name="Cost Center", mandatory=False),
)


def default_ca_dir() -> Path:
    """Per-user folder for the simulator CA, so restarts reuse the same trust anchor."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "cagw" / "simulator-ca"


@dataclass(frozen=True)
class SimulatorSettings:
    """Everything the simulator needs; every field has a working default.

    ``issue_after`` (seconds on the injected clock) decides when an ``Applied``
    order becomes ``Issued``, unless ``issue_after_polls`` is set: then the
    order is issued after that many pending collect answers (0 = the first
    collect returns the certificate).
    """

    host: str = "127.0.0.1"
    port: int = 9443
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = None

    login: str = DEMO_LOGIN
    password: str = field(default=DEMO_PASSWORD, repr=False)
    customer_uri: str = DEMO_CUSTOMER_URI
    oauth_client_id: str | None = DEMO_OAUTH_CLIENT_ID
    oauth_client_secret: str | None = field(default=DEMO_OAUTH_CLIENT_SECRET, repr=False)
    token_ttl: float = 300.0

    org_id: int = 1234
    org_name: str = "Simulated Organization"
    departments: tuple[Department, ...] = (Department(id=1235, name="Simulated Department"),)
    cert_types: tuple[CertType, ...] = DEFAULT_CERT_TYPES
    custom_fields: tuple[CustomField, ...] = DEFAULT_CUSTOM_FIELDS

    issue_after: float = 3.0
    issue_after_polls: int | None = None
    require_approval: bool = False
    pending_code: int = 0
    pending_description: str = "Being processed by Sectigo"
    copy_csr_subject: bool = True
    list_max_size: int = 200
    first_ssl_id: int | None = None

    ca_dir: Path = field(default_factory=default_ca_dir)
    state_file: Path | None = None
    access_log: bool = False
    fault_seed: int | None = None

    def org_ids(self) -> frozenset[int]:
        """Ids accepted as enroll ``orgId``: the organization and its departments."""
        return frozenset({self.org_id, *(d.id for d in self.departments)})

    def cert_type(self, type_id: int) -> CertType | None:
        return next((t for t in self.cert_types if t.id == type_id), None)
