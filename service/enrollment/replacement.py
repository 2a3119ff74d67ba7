"""Renew and reissue a certificate by its serial: CAGW's ``RenewAction`` and ``ReissueAction``.

Both become an order of the enrollment engine, recorded in the ledger before
the CA hears of it and collected on the usual schedule, so they survive a
restart and can be watched like any enrollment:

* renew: a new CA order renewing the certificate's order (``OrderKind.RENEW``,
  the CA's renew by id), same profile, key and answer format;
* reissue: the certificate's own CA order issued again for the new CSR the
  action carries (``OrderKind.REISSUE``, the CA's replace), which needs the
  connector's optional ``CertificateReplace``.

The old certificate stays in the ledger, so it is still found by its serial.
A certificate first answered as PKCS#12 (a key the gateway made) is renewed
with PEM answers: the caller already holds that key, and the gateway keeps
its encrypted copy only for a limited time.
Only certificates issued through this gateway can be renewed or reissued: the
CA acts on them by their order id, which only the ledger knows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from service import x509 as x
from service.authorities import ManagedCA
from service.connectors import base
from service.enrollment.orders import OrderOptions
from service.enrollment.requests import RENEWAL_SERIAL, EnrollmentInput
from service.errors import FieldViolation, InvalidRequest, NotFound, Unimplemented
from service.ledger.base import Ledger

__all__ = ["CertificateReplacement", "replacement_input", "with_action_fields"]

_SERIAL_FIELD = "serialNumber"
# Where the request fields of an action live in CAGW's JSON.
_ACTION_FIELDS = {"csr": "action.csr", f"properties.{RENEWAL_SERIAL}": _SERIAL_FIELD}


@dataclass(frozen=True)
class CertificateReplacement:
    """A renew (``csr`` empty) or reissue (``reissue``, with ``csr``) of one certificate."""

    ca_id: str
    serial_number: str  # as the caller wrote it
    reissue: bool = False
    csr: str = ""  # PEM or base64 DER, ReissueAction only
    comment: str = ""  # told to the CA as the reissue's reason
    caller: str = ""


async def replacement_input(request: CertificateReplacement, *, ca: ManagedCA,
                            ledger: Ledger) -> EnrollmentInput:
    """The enrollment that renews or reissues ``request``'s certificate, or the refusal: an
    unknown serial is NOT_FOUND; one not issued through this gateway, or a reissue without a
    CSR, is INVALID_ARGUMENT; a reissue on a CA without ``CertificateReplace`` is UNIMPLEMENTED."""
    serial = x.format_serial(x.parse_serial(request.serial_number, field=_SERIAL_FIELD))
    action = "ReissueAction" if request.reissue else "RenewAction"
    if request.reissue and not isinstance(ca.connector, base.CertificateReplace):
        raise Unimplemented(f"{action} is not available: CA {ca.id} cannot issue an order again for a new CSR; "
                            "enroll the new CSR instead", metadata={"action": action})
    certificate = await ledger.get_certificate(ca.id, serial)
    if certificate is None:
        raise NotFound(f"CA {ca.id} has no certificate with serial {serial} in this gateway",
                       reason="CERTIFICATE_NOT_FOUND", metadata={"ca_id": ca.id})
    order = await ledger.get_order(certificate.order_id) if certificate.order_id else None
    if order is None or not order.ca_order_id:
        raise InvalidRequest.of([FieldViolation(
            _SERIAL_FIELD, f"certificate {serial} was not issued through this gateway, so CA {ca.id} cannot be "
            f"asked to {'reissue' if request.reissue else 'renew'} it by its order; enroll a new CSR instead",
            request.serial_number[:64])])
    if request.reissue and not request.csr.strip():
        raise InvalidRequest.of([FieldViolation("action.csr", "is required with ReissueAction "
                                                "(PEM or base64 DER PKCS#10 of the new key)")])
    options = OrderOptions.from_ledger(order.options)
    return EnrollmentInput(
        ca_id=ca.id, profile_id=order.profile_id, csr=request.csr if request.reissue else "",
        required_format=options.required_format if options.required_format != "PKCS12" else "PEM",
        include_ca=options.include_ca,
        properties={RENEWAL_SERIAL: serial}, renewal=not request.reissue, reissue=request.reissue,
        reissue_reason=request.comment.strip()[:512], caller=request.caller)


def with_action_fields(error: InvalidRequest) -> InvalidRequest:
    """``error`` with its fields named where an action carries them (``csr`` → ``action.csr``)."""
    renamed = [dataclasses.replace(v, field=_ACTION_FIELDS.get(v.field, v.field)) for v in error.violations]
    return InvalidRequest.of(renamed) if renamed else error
