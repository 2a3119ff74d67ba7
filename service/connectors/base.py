"""The connector protocol the core depends on, its typed values and the connector registry.

A connector turns the gateway's typed requests into one CA's API. Each call
takes one frozen request value and returns one frozen result holding parsed
values (DER bytes, ints, dates), never raw JSON. Failures are the
``ConnectorError`` family of :mod:`service.errors`:

- ``CAUnavailable``: retryable (5xx, 429, timeout, reset), with ``retry_after``;
- ``CARejected``: final, with ``reason`` one of the ``REASON_*`` constants below.

A "not issued yet" collect is not an error: :class:`CollectResult` says pending.
What a connector can do beyond the protocol is told by small optional protocols
(``SubjectAltNameTypes``, ``CommentLimit``, ``CertificateHold``, ``CertificateReplace``,
``OrderLookup``)
that the core checks with ``isinstance``. How a connector type is configured and
built is its plug-in's job (:mod:`service.connectors.registry`).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = [
    "REASON_AUTH_FAILED",
    "REASON_CERTIFICATE_REVOKED",
    "REASON_NOT_FOUND",
    "REASON_ORDER_FAILED",
    "REASON_REJECTED",
    "REASON_VALIDATION_FAILED",
    "CAProfile",
    "CertificateHold",
    "CertificateReplace",
    "CommentLimit",
    "CollectRequest",
    "CollectResult",
    "Connector",
    "CustomField",
    "DetailsRequest",
    "EnrollRequest",
    "EnrollResult",
    "IssuedCertificate",
    "ListRequest",
    "ListResult",
    "OrderDetails",
    "OrderLookup",
    "OrderStatus",
    "OrderSummary",
    "RenewRequest",
    "RenewResult",
    "ReplaceRequest",
    "RevokeReason",
    "RevokeRequest",
    "SleepFunction",
    "SubjectAltName",
    "SubjectAltNameTypes",
]

# CARejected reasons a connector uses, so the core can map them without CA names.
REASON_AUTH_FAILED = "CA_AUTH_FAILED"  # the gateway's own credentials toward the CA
REASON_NOT_FOUND = "CA_NOT_FOUND"  # unknown order or serial at the CA
REASON_VALIDATION_FAILED = "CA_VALIDATION_FAILED"  # CSR, term, profile, org, custom field refused
REASON_CERTIFICATE_REVOKED = "CA_CERTIFICATE_REVOKED"  # collecting a revoked certificate
REASON_ORDER_FAILED = "CA_ORDER_FAILED"  # the order was declined, rejected or became invalid
REASON_REJECTED = "CA_REJECTED"  # any other final refusal


class RevokeReason(enum.Enum):
    """RFC 5280 CRLReason names, as CAGW spells them, with their code."""

    UNSPECIFIED = ("unspecified", 0)
    KEY_COMPROMISE = ("keyCompromise", 1)
    CA_COMPROMISE = ("caCompromise", 2)
    AFFILIATION_CHANGED = ("affiliationChanged", 3)
    SUPERSEDED = ("superseded", 4)
    CESSATION_OF_OPERATION = ("cessationOfOperation", 5)
    CERTIFICATE_HOLD = ("certificateHold", 6)
    REMOVE_FROM_CRL = ("removeFromCRL", 8)
    PRIVILEGE_WITHDRAWN = ("privilegeWithdrawn", 9)
    AA_COMPROMISE = ("aACompromise", 10)

    @property
    def cagw_name(self) -> str:
        return self.value[0]

    @property
    def code(self) -> int:
        return self.value[1]

    @classmethod
    def from_name(cls, name: str) -> RevokeReason:
        for reason in cls:
            if reason.cagw_name.lower() == name.strip().lower():
                return reason
        raise ValueError(f"unknown revocation reason {name!r}")


class OrderStatus(enum.Enum):
    """A CA order's state, normalised."""

    REQUESTED = "requested"  # waiting for approval or validation
    APPLIED = "applied"  # submitted to the CA, being issued
    ISSUED = "issued"
    REVOKED = "revoked"
    EXPIRED = "expired"
    REPLACED = "replaced"
    FAILED = "failed"  # declined, rejected, invalid
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class CAProfile:
    """A profile as the CA knows it (for example one of its certificate types)."""

    id: str
    name: str
    description: str = ""
    terms: tuple[int, ...] = ()
    key_types: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # {"RSA": ("2048",), "EC": ("P-256",)}
    use_secondary_org_name: bool = False


@dataclass(frozen=True)
class CustomField:
    name: str
    mandatory: bool = False


@dataclass(frozen=True)
class SubjectAltName:
    """One validated, normalised SAN: ``type`` is CAGW's name (``dNSName``, ``iPAddress``, ``rfc822Name``,
    ``uniformResourceIdentifier``, ...), ``value`` its text form."""

    type: str
    value: str


@dataclass(frozen=True)
class EnrollRequest:
    csr_pem: str
    profile_id: str  # the CA's own profile id
    term_days: int
    common_name: str  # recorded before sending, to find an order whose reply was lost
    subject_alt_names: tuple[SubjectAltName, ...] = ()  # only types the connector said it can carry
    comments: str = ""  # carries the gateway's order marker
    external_requester: str = ""
    custom_fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class EnrollResult:
    order_id: str
    renew_id: str = ""


@dataclass(frozen=True)
class CollectRequest:
    order_id: str


@dataclass(frozen=True)
class IssuedCertificate:
    certificate_der: bytes
    chain_der: tuple[bytes, ...] = ()  # issuer first, up to (and including) the root when the CA sends it


@dataclass(frozen=True)
class CollectResult:
    """Either ``issued`` is set, or the order is pending and ``pending_detail`` says what the CA said."""

    issued: IssuedCertificate | None = None
    pending_detail: str = ""
    pending_code: int | None = None

    @property
    def is_pending(self) -> bool:
        return self.issued is None


@dataclass(frozen=True)
class DetailsRequest:
    order_id: str


@dataclass(frozen=True)
class OrderDetails:
    order_id: str
    status: OrderStatus
    ca_status: str  # the CA's own word, for messages
    common_name: str = ""
    serial_number: int | None = None
    comments: str = ""
    profile_id: str = ""
    term_days: int | None = None
    subject_alt_names: tuple[str, ...] = ()
    requested: dt.date | None = None
    expires: dt.date | None = None
    revoked: dt.date | None = None


@dataclass(frozen=True)
class ListRequest:
    common_name: str | None = None
    serial_number: int | None = None
    status: OrderStatus | None = None
    position: int = 0
    size: int = 50


@dataclass(frozen=True)
class OrderSummary:
    order_id: str
    common_name: str = ""
    serial_number: int | None = None
    subject_alt_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class ListResult:
    items: tuple[OrderSummary, ...]
    total: int


@dataclass(frozen=True)
class RevokeRequest:
    """Revoke by ``order_id`` or, when it is empty, by ``serial_number``."""

    reason: RevokeReason
    comment: str
    order_id: str = ""
    serial_number: int | None = None


@dataclass(frozen=True)
class RenewRequest:
    order_id: str
    csr_pem: str | None = None


@dataclass(frozen=True)
class RenewResult:
    order_id: str


@dataclass(frozen=True)
class ReplaceRequest:
    """Re-issue an order's certificate for a new CSR, keeping the order id (reissue)."""

    order_id: str
    csr_pem: str
    reason: str
    common_name: str = ""
    subject_alt_names: tuple[str, ...] = ()


@runtime_checkable
class Connector(Protocol):
    """What the core needs from a CA. Implementations are async context managers."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def check(self) -> None:
        """Raise unless the CA answers with the configured credentials."""

    async def profiles(self) -> tuple[CAProfile, ...]: ...

    async def custom_fields(self) -> tuple[CustomField, ...]: ...

    async def enroll(self, request: EnrollRequest) -> EnrollResult: ...

    async def collect(self, request: CollectRequest) -> CollectResult: ...

    async def details(self, request: DetailsRequest) -> OrderDetails: ...

    async def list(self, request: ListRequest) -> ListResult: ...

    async def revoke(self, request: RevokeRequest) -> None: ...

    async def renew(self, request: RenewRequest) -> RenewResult: ...


@runtime_checkable
class OrderLookup(Protocol):
    """Optional: find the CA order that carries a marker in its comments. Without it a connector
    cannot resolve an enroll whose reply was lost, and such an order fails instead of guessing."""

    async def find_order_by_marker(self, common_name: str, marker: str) -> OrderDetails | None: ...


@runtime_checkable
class SubjectAltNameTypes(Protocol):
    """Optional: the SAN types this CA can put in a certificate. Without it every CAGW SAN type is
    accepted; with it, a request naming another type is refused (never silently dropped)."""

    @property
    def san_types(self) -> frozenset[str]: ...


@runtime_checkable
class CommentLimit(Protocol):
    """Optional: the longest revocation comment the CA takes; a longer one is refused up front."""

    @property
    def max_comment_length(self) -> int: ...


@runtime_checkable
class CertificateReplace(Protocol):
    """Optional: re-issue the certificate of an existing order for a new CSR; the order keeps its id
    and is collected again. Without it, ``ReissueAction`` answers UNIMPLEMENTED."""

    async def replace(self, request: ReplaceRequest) -> None: ...


@runtime_checkable
class CertificateHold(Protocol):
    """Optional: suspend and reinstate a certificate (CRL reason certificateHold). Without it,
    ``HoldAction`` and ``UnholdAction`` answer UNIMPLEMENTED."""

    async def hold(self, request: RevokeRequest) -> None: ...

    async def unhold(self, request: RevokeRequest) -> None: ...


# Used by the core to type injected sleep functions next to the connector.
SleepFunction = Callable[[float], Awaitable[None]]
