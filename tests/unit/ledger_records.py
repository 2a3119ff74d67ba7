"""Builders shared by the ledger tests: the start time of their clocks, orders and certificates."""

from __future__ import annotations

import datetime as dt

from service.connectors.base import SubjectAltName
from service.ledger import CertificateRecord, NewOrder

__all__ = ["T0", "new_certificate", "new_order"]

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)  # where the ledger tests' FakeClock starts, so stored times are exact


def new_order(order_id: str, *, ca_id: str = "ca-1", request_id: str | None = None, fingerprint: str = "",
              requested_dn: str = "cn=host.example.com") -> NewOrder:
    return NewOrder(
        id=order_id, ca_id=ca_id, profile_id="web", ca_profile_id="101", term_days=365,
        csr_pem="-----BEGIN CERTIFICATE REQUEST-----\n...", fingerprint=fingerprint or f"fp-{order_id}",
        requested_dn=requested_dn, common_name="host.example.com",
        subject_alt_names=(SubjectAltName("dNSName", "host.example.com"), SubjectAltName("dNSName", "www.example.com")), marker=f"cagw:{order_id}",
        request_id=request_id, requested_by="client-a", options={"format": "PEM", "includeCa": "true"},
    )


def new_certificate(serial: str, *, ca_id: str = "ca-1", subject_dn: str = "cn=host.example.com",
                    issued_at: dt.datetime | None = T0) -> CertificateRecord:
    return CertificateRecord(
        serial_number=serial, ca_id=ca_id, order_id=None, certificate_der=b"\x30\x82leaf-" + serial.encode(),
        chain_der=(b"\x30\x82intermediate", b"\x30\x82root"), subject_dn=subject_dn, issuer_dn="cn=issuing ca",
        not_before=T0, not_after=T0 + dt.timedelta(days=365), issued_at=issued_at,
    )
