"""Certificates by serial number: the ledger first, the CA for certificates the gateway did not order."""

from __future__ import annotations

import datetime as dt
import logging

from cryptography import x509

from service.authorities import ManagedCA
from service.certificates.common import STATUS_REVOKED
from service.clock import Clock
from service.connectors.base import (
    REASON_CERTIFICATE_REVOKED,
    REASON_NOT_FOUND,
    CollectRequest,
    DetailsRequest,
    ListRequest,
    OrderDetails,
    OrderStatus,
    RevokeReason,
)
from service.errors import CagwError, CARejected, NotFound
from service.ledger.base import CertificateRecord, Ledger
from service.x509 import format_serial, normalize_dn, parse_serial

log = logging.getLogger(__name__)

# How often GetCertificate asks the CA whether a certificate it knows as normal was revoked there.
STATUS_CHECK_INTERVAL = dt.timedelta(minutes=5)
MAX_STATUS_CHECKS_REMEMBERED = 100_000
_CA_LIST_PAGE = 10  # a serial matches one order; a few more cover a reissued order's history


class CertificateLookup:
    """A certificate by serial: from the ledger (status kept current), else found at the CA and stored."""

    def __init__(self, ledger: Ledger, *, clock: Clock,
                 status_check_interval: dt.timedelta = STATUS_CHECK_INTERVAL) -> None:
        self._ledger = ledger
        self._clock = clock
        self._status_check_interval = status_check_interval
        self._status_checked: dict[tuple[str, str], dt.datetime] = {}

    async def find(self, ca: ManagedCA, serial_text: str, *, field: str = "serialNumber") -> CertificateRecord:
        """The certificate with this serial (any hex form), from the ledger or else from the CA.

        Raises :class:`NotFound` (reason ``CERTIFICATE_NOT_FOUND``) when neither knows it.
        """
        serial = parse_serial(serial_text, field=field)
        record = await self._ledger.get_certificate(ca.id, format_serial(serial))
        if record is not None:
            return await self._refresh_status(ca, record)
        found, _ = await self.find_at_ca(ca, serial, tolerate_revoked=False)
        assert found is not None  # tolerate_revoked=False raises instead
        return found

    async def _refresh_status(self, ca: ManagedCA, record: CertificateRecord) -> CertificateRecord:
        """Keep the status current: a certificate revoked at the CA directly (not through the
        gateway) shows as revoked. Asked at most once per interval per certificate; when the CA
        cannot answer, the ledger's word stands."""
        if record.status == STATUS_REVOKED or record.order_id is None:
            return record
        key = (ca.id, record.serial_number)
        now = self._clock()
        checked = self._status_checked.get(key)
        if checked is not None and now - checked < self._status_check_interval:
            return record
        order = await self._ledger.get_order(record.order_id)
        if order is None or not order.ca_order_id:
            return record
        try:
            details = await ca.connector.details(DetailsRequest(order_id=order.ca_order_id))
        except CagwError as exc:
            log.debug("CA %s: status of %s not refreshed: %s", ca.id, record.serial_number, exc.message)
            return record
        if len(self._status_checked) >= MAX_STATUS_CHECKS_REMEMBERED:
            self._status_checked.clear()  # a bound on memory; at worst some certificates are asked again
        self._status_checked[key] = now
        if details.status is not OrderStatus.REVOKED:
            return record
        updated = await self._mark_revoked_at_ca(ca, record.serial_number, details,
                                                 comment="revoked at the CA, outside the gateway")
        return updated or record

    async def _mark_revoked_at_ca(self, ca: ManagedCA, hex_serial: str, details: OrderDetails, *,
                                  comment: str) -> CertificateRecord | None:
        """Record a revocation the CA reports (it does not say why: ``unspecified``)."""
        when = (dt.datetime.combine(details.revoked, dt.time(), dt.timezone.utc) if details.revoked is not None
                else self._clock())
        return await self._ledger.mark_revoked(ca.id, hex_serial, reason=RevokeReason.UNSPECIFIED.cagw_name,
                                               comment=comment, when=when)

    async def find_at_ca(self, ca: ManagedCA, serial: int, *,
                            tolerate_revoked: bool) -> tuple[CertificateRecord | None, OrderDetails]:
        """Find a certificate the gateway did not order, store it, and return it with its CA order.

        With ``tolerate_revoked`` a certificate the CA reports revoked but will
        no longer hand out comes back as ``(None, details)`` instead of the CA's refusal.
        """
        hex_serial = format_serial(serial)
        listing = await ca.connector.list(ListRequest(serial_number=serial, size=_CA_LIST_PAGE))
        candidates = [item for item in listing.items if item.serial_number in (None, serial)]
        for item in candidates:
            try:
                details = await ca.connector.details(DetailsRequest(order_id=item.order_id))
            except CARejected as exc:
                if exc.reason == REASON_NOT_FOUND:
                    continue  # gone between the list and now
                raise
            if details.serial_number not in (None, serial):
                continue
            try:
                return await self._collect_and_store(ca, serial, details), details
            except NotFound:
                continue  # this order does not (or no longer) serve the serial
            except CARejected as exc:
                # A CA may refuse to hand out a revoked certificate; a revocation only needs to know it is revoked.
                if tolerate_revoked and exc.reason == REASON_CERTIFICATE_REVOKED:
                    return None, details
                raise
        raise NotFound(f"CA {ca.id}: no certificate with serial number {hex_serial} (neither in the gateway's "
                       "ledger nor at the CA)", reason="CERTIFICATE_NOT_FOUND",
                       metadata={"ca_id": ca.id, "serial_number": hex_serial})

    async def store_from_ca(self, ca: ManagedCA, details: OrderDetails) -> CertificateRecord | None:
        """Store the certificate of a CA order found without the gateway (drift sync); None when the CA
        no longer hands it out (revoked, replaced) or the order serves no certificate."""
        if details.serial_number is None:
            return None
        try:
            return await self._collect_and_store(ca, details.serial_number, details)
        except NotFound:
            return None
        except CARejected as exc:
            if exc.reason == REASON_CERTIFICATE_REVOKED:
                return None
            raise

    async def record_revoked_at_ca(self, ca: ManagedCA, hex_serial: str,
                                   details: OrderDetails) -> CertificateRecord | None:
        """A revocation made at the CA directly (drift sync)."""
        return await self._mark_revoked_at_ca(ca, hex_serial, details, comment="revoked at the CA, outside the gateway")

    async def _collect_and_store(self, ca: ManagedCA, serial: int, details: OrderDetails) -> CertificateRecord:
        hex_serial = format_serial(serial)
        result = await ca.connector.collect(CollectRequest(order_id=details.order_id))
        issued = result.issued
        certificate = x509.load_der_x509_certificate(issued.certificate_der) if issued is not None else None
        if issued is None or certificate is None or certificate.serial_number != serial:
            # The order exists but its certificate is not (or no longer) this serial.
            raise NotFound(f"CA {ca.id}: order {details.order_id} does not serve a certificate with serial number "
                           f"{hex_serial}", reason="CERTIFICATE_NOT_FOUND",
                           metadata={"ca_id": ca.id, "serial_number": hex_serial})
        subject = normalize_dn(certificate.subject)
        record = CertificateRecord(
            serial_number=hex_serial, ca_id=ca.id, order_id=None, certificate_der=issued.certificate_der,
            chain_der=issued.chain_der, subject_dn=subject, issuer_dn=normalize_dn(certificate.issuer),
            not_before=certificate.not_valid_before_utc, not_after=certificate.not_valid_after_utc,
            issued_at=certificate.not_valid_before_utc)
        await self._ledger.record_issued(None, record, subject_dns=[subject])
        log.info("CA %s: stored certificate %s found at the CA (order %s)", ca.id, hex_serial, details.order_id)
        if details.status is OrderStatus.REVOKED:
            record = await self._mark_revoked_at_ca(ca, hex_serial, details, comment="revoked at the CA") or record
        stored = await self._ledger.get_certificate(ca.id, hex_serial)
        return stored or record

    # -- revocation
