"""``LocalCAConnector``: the connector protocol over an in-memory order book and a throwaway issuing CA."""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from service.config import CASettings
from service.connectors.base import (
    REASON_CERTIFICATE_REVOKED,
    REASON_NOT_FOUND,
    REASON_VALIDATION_FAILED,
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
    SubjectAltName,
)
from service.errors import CARejected, ConfigError

from .settings import LocalCAProperties

ERROR_DOMAIN = "cagw.localca"
PROFILE = CAProfile(id="tls-server", name="LocalCA TLS server", description="EC P-256 server certificates",
                    terms=(30, 90), key_types={"EC": ("P-256",)})
UTC = dt.timezone.utc


class LocalCARejected(CARejected):
    """LocalCA's own refusals, in its own ErrorInfo domain."""

    domain = ERROR_DOMAIN


@dataclass
class LocalOrder:
    order_id: str
    request: EnrollRequest
    collects: int = 0
    certificate: x509.Certificate | None = None
    status: OrderStatus = OrderStatus.APPLIED
    revocation: RevokeRequest | None = None


@dataclass
class LocalCAConnector:
    """One LocalCA. ``san_types`` and ``max_comment_length`` are its capabilities, set from its properties."""

    ca: CASettings
    orders: dict[str, LocalOrder] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.ca.properties, LocalCAProperties):
            raise ConfigError(f"CA {self.ca.id}: the localca connector needs LocalCAProperties")
        self.properties: LocalCAProperties = self.ca.properties
        self.san_types = self.properties.san_types
        self.max_comment_length = self.properties.comment_limit
        self._ids = itertools.count(1)
        self._key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.properties.ca_name)])
        now = dt.datetime.now(UTC)
        self.certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self._key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self._key, hashes.SHA256()))

    # -- lifecycle and reads

    async def open(self) -> None:
        self.calls.append("open")

    async def close(self) -> None:
        self.calls.append("close")

    async def check(self) -> None:
        self.calls.append("check")

    async def profiles(self) -> tuple[CAProfile, ...]:
        self.calls.append("profiles")
        return (PROFILE,)

    async def custom_fields(self) -> tuple[CustomField, ...]:
        return ()

    async def details(self, request: DetailsRequest) -> OrderDetails:
        self.calls.append("details")
        order = self._order(request.order_id)
        return OrderDetails(order_id=order.order_id, status=order.status, ca_status=order.status.value,
                            common_name=order.request.common_name, comments=order.request.comments,
                            serial_number=order.certificate.serial_number if order.certificate else None)

    async def list(self, request: ListRequest) -> ListResult:
        self.calls.append("list")
        items = [OrderSummary(order_id=o.order_id, common_name=o.request.common_name,
                              serial_number=o.certificate.serial_number if o.certificate else None)
                 for o in self.orders.values()
                 if (request.serial_number is None
                     or (o.certificate is not None and o.certificate.serial_number == request.serial_number))
                 and (request.common_name is None or o.request.common_name == request.common_name)]
        return ListResult(items=tuple(items[request.position:request.position + request.size]), total=len(items))

    # -- orders

    async def enroll(self, request: EnrollRequest) -> EnrollResult:
        self.calls.append("enroll")
        if request.profile_id != PROFILE.id:
            raise LocalCARejected(f"CA {self.ca.id}: no profile {request.profile_id!r}",
                                  reason=REASON_VALIDATION_FAILED)
        order = LocalOrder(order_id=f"L-{next(self._ids)}", request=request)
        self.orders[order.order_id] = order
        return EnrollResult(order_id=order.order_id)

    async def collect(self, request: CollectRequest) -> CollectResult:
        self.calls.append("collect")
        order = self._order(request.order_id)
        if order.status is OrderStatus.REVOKED:
            raise LocalCARejected(f"CA {self.ca.id}: order {order.order_id} is revoked",
                                  reason=REASON_CERTIFICATE_REVOKED)
        order.collects += 1
        if order.certificate is None and order.collects <= self.properties.issue_after_collects:
            return CollectResult(pending_detail=f"LocalCA issues after {self.properties.issue_after_collects} "
                                                f"collects (this was {order.collects})")
        if order.certificate is None:
            order.certificate = self._issue(order.request)
            order.status = OrderStatus.ISSUED
        der = order.certificate.public_bytes(serialization.Encoding.DER)
        return CollectResult(issued=IssuedCertificate(
            certificate_der=der, chain_der=(self.certificate.public_bytes(serialization.Encoding.DER),)))

    async def revoke(self, request: RevokeRequest) -> None:
        self.calls.append("revoke")
        found = [o for o in self.orders.values() if o.order_id == request.order_id
                 or (o.certificate is not None and o.certificate.serial_number == request.serial_number)]
        if not found:
            raise LocalCARejected(f"CA {self.ca.id}: nothing to revoke", reason=REASON_NOT_FOUND)
        if found[0].status is OrderStatus.REVOKED:
            raise LocalCARejected(f"CA {self.ca.id}: already revoked", reason=REASON_CERTIFICATE_REVOKED)
        found[0].status, found[0].revocation = OrderStatus.REVOKED, request

    async def renew(self, request: RenewRequest) -> RenewResult:
        self.calls.append("renew")
        previous = self._order(request.order_id)
        renewed = await self.enroll(previous.request if request.csr_pem is None else EnrollRequest(
            csr_pem=request.csr_pem, profile_id=previous.request.profile_id, term_days=previous.request.term_days,
            common_name=previous.request.common_name))
        return RenewResult(order_id=renewed.order_id)

    # -- helpers

    def _order(self, order_id: str) -> LocalOrder:
        order = self.orders.get(order_id)
        if order is None:
            raise LocalCARejected(f"CA {self.ca.id}: unknown order {order_id}", reason=REASON_NOT_FOUND)
        return order

    def _issue(self, request: EnrollRequest) -> x509.Certificate:
        csr = x509.load_pem_x509_csr(request.csr_pem.encode())
        now = dt.datetime.now(UTC)
        builder = (
            x509.CertificateBuilder().subject_name(csr.subject).issuer_name(self.certificate.subject)
            .public_key(csr.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=request.term_days)))
        if request.subject_alt_names:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_general_name(san) for san in request.subject_alt_names]), critical=False)
        return builder.sign(self._key, hashes.SHA256())


def _general_name(san: SubjectAltName) -> x509.GeneralName:
    if san.type == "dNSName":
        return x509.DNSName(san.value)
    if san.type == "iPAddress":
        return x509.IPAddress(ipaddress.ip_address(san.value))
    if san.type == "rfc822Name":
        return x509.RFC822Name(san.value)
    if san.type == "uniformResourceIdentifier":
        return x509.UniformResourceIdentifier(san.value)
    raise LocalCARejected(f"LocalCA cannot write {san.type} names", reason=REASON_VALIDATION_FAILED)
