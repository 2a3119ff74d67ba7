"""Test doubles for unit tests: a ``FakeConnector`` (our MockTransport), a local CA and ledger seeding.

``FakeConnector`` implements the :class:`service.connectors.base.Connector`
protocol over an in-memory order book holding real certificates issued by a
throwaway :class:`LocalCA`. It records every call in ``calls`` and fails on
demand: ``fail("revoke", CAUnavailable(...))`` makes every later ``revoke``
raise that error until ``fail("revoke", None)``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from service.authorities import CARegistry, ManagedCA
from service.catalog import ProfileCatalog
from service.connectors.base import (
    REASON_CERTIFICATE_REVOKED,
    REASON_NOT_FOUND,
    CAProfile,
    CollectRequest,
    CollectResult,
    CustomField,
    DetailsRequest,
    EnrollRequest,
    EnrollResult,
    IssuedCertificate,
    ListRequest,
    ListResult,
    OrderDetails,
    OrderStatus,
    OrderSummary,
    RenewRequest,
    RenewResult,
    RevokeRequest,
)
from service.errors import CARejected
from service.ledger.base import CertificateRecord, Ledger, NewOrder, OrderRecord, OrderState
from service.x509 import format_serial, normalize_dn, parse_dn
from tests.support.settings import CA_ID, build_ca_settings

__all__ = ["CA_ID", "FakeConnector", "FakeOrder", "LocalCA", "make_registry", "seed_issued", "seed_order"]

UTC = dt.timezone.utc


class LocalCA:
    """A throwaway root and issuing CA (EC P-256, fast) that signs real leaf certificates."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Gateway Tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Gateway Test Issuing CA"),
        ])
        now = dt.datetime.now(UTC)
        self.certificate = (
            x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
            .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=30)).not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.der = self.certificate.public_bytes(serialization.Encoding.DER)
        self._leaf_key = ec.generate_private_key(ec.SECP256R1())  # one key for every leaf keeps tests fast

    def issue(self, subject: str, *, serial: int | None = None, not_before: dt.datetime | None = None,
              days: float = 365, public_key: Any = None) -> bytes:
        """A DER leaf for ``subject`` (an RFC 4514 string) valid from ``not_before`` for ``days``,
        for ``public_key`` (a CSR's) or else one fixed test key."""
        start = not_before or dt.datetime.now(UTC) - dt.timedelta(hours=1)
        certificate = (
            x509.CertificateBuilder().subject_name(parse_dn(subject)).issuer_name(self.name)
            .public_key(public_key or self._leaf_key.public_key()).serial_number(serial or x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days))
            .sign(self._key, hashes.SHA256())
        )
        return certificate.public_bytes(serialization.Encoding.DER)


@dataclass
class FakeOrder:
    order_id: str
    common_name: str
    status: OrderStatus = OrderStatus.ISSUED
    certificate_der: bytes | None = None
    chain_der: tuple[bytes, ...] = ()
    comments: str = ""
    revoked: dt.date | None = None
    revocations: list[RevokeRequest] = field(default_factory=list)

    @property
    def serial_number(self) -> int | None:
        if self.certificate_der is None:
            return None
        return x509.load_der_x509_certificate(self.certificate_der).serial_number


class FakeConnector:
    """An in-memory CA speaking the connector protocol. Sectigo-like where it matters:
    a revoked certificate cannot be collected, revoking it twice is refused, a revocation
    comment takes at most 512 characters (``CommentLimit``) and there is no certificate hold.
    ``comment_limit=None`` makes a CA without the ``CommentLimit`` capability."""

    def __init__(self, ca: LocalCA | None = None, *, comment_limit: int | None = 512) -> None:
        if comment_limit is not None:
            self.max_comment_length = comment_limit
        self.ca = ca or LocalCA()
        self.orders: dict[str, FakeOrder] = {}
        self.calls: list[tuple[str, Any]] = []
        self.ca_profiles: tuple[CAProfile, ...] = (CAProfile(id="101", name="Fake SSL", terms=(365, 730)),)
        self._failures: dict[str, tuple[Exception, int]] = {}
        self._ids = itertools.count(1000)

    # -- test controls

    def fail(self, method: str, error: Exception | None, *, after: int = 0) -> None:
        """Make the calls of ``method`` raise ``error`` once ``after`` more calls have succeeded
        (``None`` stops it)."""
        if error is None:
            self._failures.pop(method, None)
        else:
            self._failures[method] = (error, after)

    def add_issued(self, subject: str, *, serial: int | None = None, status: OrderStatus = OrderStatus.ISSUED,
                   days: float = 365, not_before: dt.datetime | None = None) -> FakeOrder:
        """An issued order at the CA (one the gateway never saw), with a real certificate."""
        der = self.ca.issue(subject, serial=serial, days=days, not_before=not_before)
        order = FakeOrder(order_id=str(next(self._ids)), common_name=_common_name(subject),
                          status=status, certificate_der=der, chain_der=(self.ca.der,),
                          revoked=dt.date.today() if status is OrderStatus.REVOKED else None)
        self.orders[order.order_id] = order
        return order

    def names(self) -> list[str]:
        """The connector methods called so far, in order."""
        return [name for name, _ in self.calls]

    def _enter(self, method: str, request: Any) -> None:
        self.calls.append((method, request))
        failure = self._failures.get(method)
        if failure is not None:
            error, after = failure
            if after > 0:
                self._failures[method] = (error, after - 1)
            else:
                raise error

    def _order(self, order_id: str) -> FakeOrder:
        order = self.orders.get(order_id)
        if order is None:
            raise CARejected(f"fake CA: unknown order {order_id}", reason=REASON_NOT_FOUND)
        return order

    # -- the Connector protocol

    async def open(self) -> None:
        self.calls.append(("open", None))

    async def close(self) -> None:
        self.calls.append(("close", None))

    async def check(self) -> None:
        self._enter("check", None)

    async def profiles(self) -> tuple[CAProfile, ...]:
        self._enter("profiles", None)
        return self.ca_profiles

    async def custom_fields(self) -> tuple[CustomField, ...]:
        self._enter("custom_fields", None)
        return ()

    async def enroll(self, request: EnrollRequest) -> EnrollResult:
        self._enter("enroll", request)
        order = FakeOrder(order_id=str(next(self._ids)), common_name=request.common_name,
                          status=OrderStatus.APPLIED, comments=request.comments)
        self.orders[order.order_id] = order
        return EnrollResult(order_id=order.order_id)

    async def collect(self, request: CollectRequest) -> CollectResult:
        self._enter("collect", request)
        order = self._order(request.order_id)
        if order.status is OrderStatus.REVOKED:
            raise CARejected(f"fake CA: order {order.order_id} is revoked", reason=REASON_CERTIFICATE_REVOKED)
        if order.certificate_der is None:
            return CollectResult(pending_detail="not issued yet")
        return CollectResult(issued=IssuedCertificate(order.certificate_der, order.chain_der))

    async def details(self, request: DetailsRequest) -> OrderDetails:
        self._enter("details", request)
        order = self._order(request.order_id)
        return OrderDetails(order_id=order.order_id, status=order.status, ca_status=order.status.value,
                            common_name=order.common_name, serial_number=order.serial_number,
                            comments=order.comments, revoked=order.revoked)

    async def list(self, request: ListRequest) -> ListResult:
        self._enter("list", request)
        items = [OrderSummary(order_id=o.order_id, common_name=o.common_name, serial_number=o.serial_number)
                 for o in self.orders.values()
                 if (request.serial_number is None or o.serial_number == request.serial_number)
                 and (request.common_name is None or o.common_name == request.common_name)]
        page = items[request.position: request.position + request.size]
        return ListResult(items=tuple(page), total=len(items))

    async def revoke(self, request: RevokeRequest) -> None:
        self._enter("revoke", request)
        if request.order_id:
            order = self._order(request.order_id)
        else:
            found = [o for o in self.orders.values() if o.serial_number == request.serial_number]
            if not found:
                raise CARejected(f"fake CA: unknown serial {request.serial_number}", reason=REASON_NOT_FOUND)
            order = found[0]
        if order.status is OrderStatus.REVOKED:
            raise CARejected("fake CA: already revoked", reason="CA_REJECTED", ca_code=-159)
        order.status = OrderStatus.REVOKED
        order.revoked = dt.date.today()
        order.revocations.append(request)

    async def renew(self, request: RenewRequest) -> RenewResult:
        self._enter("renew", request)
        return RenewResult(order_id=str(next(self._ids)))


def make_registry(tmp: Path, connectors: Sequence[FakeConnector], *, subject_revoke_limit: int = 10) -> CARegistry:
    """A registry with one CA per connector: ``CA_ID``, then ``CA_ID-2``…"""
    managed = []
    for index, connector in enumerate(connectors):
        ca_id = CA_ID if index == 0 else f"{CA_ID}-{index + 1}"
        settings = build_ca_settings(tmp, ca_id=ca_id, gateway={"subject-revoke-limit": str(subject_revoke_limit)})
        managed.append(ManagedCA(settings=settings, connector=connector, catalog=ProfileCatalog(settings, connector)))
    return CARegistry(managed)


# ---------------------------------------------------------------- ledger seeding


def _common_name(subject: str) -> str:
    values = parse_dn(subject).get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


async def seed_order(ledger: Ledger, subject: str, *, state: OrderState = OrderState.COLLECTING,
                     ca_order_id: str | None = None, ca_id: str = CA_ID) -> OrderRecord:
    """An order as the enrollment tracker records it, left in ``state``."""
    order_id = str(uuid.uuid4())
    order, _ = await ledger.create_order(NewOrder(
        id=order_id, ca_id=ca_id, profile_id="ssl", ca_profile_id="101", term_days=365,
        csr_pem="-----BEGIN CERTIFICATE REQUEST-----\n(test)\n-----END CERTIFICATE REQUEST-----\n",
        fingerprint=uuid.uuid4().hex, requested_dn=normalize_dn(subject), common_name=_common_name(subject),
        subject_alt_names=(), marker=f"cagw-order:{order_id}", requested_by="tests"))
    if state is not OrderState.RECEIVED:
        order = await ledger.update_order(order.id, state=OrderState.SUBMITTED, ca_order_id=ca_order_id or "999999")
    if state not in (OrderState.RECEIVED, OrderState.SUBMITTED):
        order = await ledger.update_order(order.id, state=state, detail="test")
    return order


async def seed_issued(ledger: Ledger, connector: FakeConnector, subject: str, *, serial: int | None = None,
                      days: float = 365, not_before: dt.datetime | None = None,
                      ca_id: str = CA_ID) -> tuple[OrderRecord, CertificateRecord]:
    """A certificate the gateway ordered and collected: an order at the fake CA and in the ledger."""
    ca_order = connector.add_issued(subject, serial=serial, days=days, not_before=not_before)
    order = await seed_order(ledger, subject, state=OrderState.COLLECTING, ca_order_id=ca_order.order_id,
                             ca_id=ca_id)
    assert ca_order.certificate_der is not None
    certificate = x509.load_der_x509_certificate(ca_order.certificate_der)
    record = CertificateRecord(
        serial_number=format_serial(certificate.serial_number), ca_id=ca_id, order_id=order.id,
        certificate_der=ca_order.certificate_der, chain_der=ca_order.chain_der,
        subject_dn=normalize_dn(certificate.subject), issuer_dn=normalize_dn(certificate.issuer),
        not_before=certificate.not_valid_before_utc, not_after=certificate.not_valid_after_utc,
        issued_at=dt.datetime.now(UTC))
    updated = await ledger.record_issued(order.id, record, subject_dns=[record.subject_dn])
    stored = await ledger.get_certificate(ca_id, record.serial_number)
    assert stored is not None
    return updated or order, stored
