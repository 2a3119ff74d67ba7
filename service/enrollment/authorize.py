"""The caller-policy part of an enrollment's check: names of the certificate, ownership, quotas.

Called by the engine's check step (:meth:`EnrollmentEngine.check` and every
enroll), after the request is validated and before anything is written: a
refusal here costs nothing and places no order.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

from service import x509 as x
from service.errors import CagwError
from service.ledger.base import Ledger, NewOrder, OrderRecord
from service.policy import Caller, CertificateName, Decision
from service.policy.quotas import check_quotas

__all__ = ["certificate_names", "inherit_owner", "is_new_order", "policy_refusals", "quota_refusal"]


def certificate_names(order: NewOrder | None, csr: x.ParsedCSR | None, *,
                      request_sans: Sequence[tuple[str, str]]) -> tuple[CertificateName, ...]:
    """Every name the certificate could carry: the CSR's CN, the requested subject's CN, the SANs
    of the request and those of the CSR (each once, with where it was first seen)."""
    found: list[CertificateName] = []
    seen: set[tuple[str, str]] = set()

    def add(kind: str, value: str, source: str) -> None:
        key = (kind, value.strip().lower())
        if value.strip() and key not in seen:
            seen.add(key)
            found.append(CertificateName(kind, value.strip(), source))

    if csr is not None:
        add("dNSName", csr.common_name, "csr CN")
    if order is not None:
        add("dNSName", order.common_name, "subject CN")
        if request_sans:
            for san in order.subject_alt_names:
                add(san.type, san.value, "subjectAltNames")
    elif request_sans:  # not validated (the request is refused anyway): still say which names
        for kind, value in request_sans:
            add(kind, value, "subjectAltNames")
    for csr_san in csr.san_values if csr is not None else ():
        add(csr_san.type, csr_san.value, "csr SAN")
    return tuple(found)


async def policy_refusals(ledger: Ledger, caller: Caller, *, operation: str, ca_id: str, profile_id: str,
                          order: NewOrder | None, csr: x.ParsedCSR | None,
                          names: Sequence[CertificateName]) -> tuple[Decision, tuple[CertificateName, ...], list[CagwError]]:
    """The names decision (with the names it judged) and, for a renewal or reissue, the ownership
    of the renewed certificate. A renewal without a CSR keeps the old key and subject, so the names
    of the renewed order are judged: a grant narrowed since then stops its renewals too."""
    refusals: list[CagwError] = []
    renewed = await _renewed_order(ledger, ca_id, order.renewal_of_serial) if order and order.renewal_of_serial \
        else None
    judged = tuple(names)
    if renewed is not None and csr is None:
        judged += tuple(CertificateName(kind, value, "renewed certificate") for kind, value in
                        (("dNSName", renewed.common_name), *((s.type, s.value) for s in renewed.subject_alt_names))
                        if value and (kind, value.lower()) not in {(n.type, n.value.lower()) for n in names})
    if order is not None and order.renewal_of_serial:  # whose certificate first: the clearer refusal
        ownership = caller.owns(renewed.client if renewed is not None else None, operation="renew", ca_id=ca_id,
                                target=f"certificate {order.renewal_of_serial}")
        if not ownership.allowed:
            refusals.append(ownership.error())
    decision = caller.may_order("renew" if operation == "renew" else "enroll", ca_id, profile_id, judged)
    if not decision.allowed:
        refusals.append(decision.error())
    return decision, judged, refusals


async def _renewed_order(ledger: Ledger, ca_id: str, serial: str) -> OrderRecord | None:
    certificate = await ledger.get_certificate(ca_id, serial)
    return await ledger.get_order(certificate.order_id) if certificate and certificate.order_id else None


async def inherit_owner(ledger: Ledger, caller: Caller, order: NewOrder | None) -> NewOrder | None:
    """A renewal the gateway places itself (automatic renewal: an unrestricted caller) belongs to
    the client that owned the renewed certificate, so that team can still revoke and renew it."""
    if order is None or not order.renewal_of_serial or caller.enforced or order.client:
        return order
    owner = await _owner(ledger, order.ca_id, order.renewal_of_serial)
    return dataclasses.replace(order, client=owner) if owner else order


async def _owner(ledger: Ledger, ca_id: str, serial: str) -> str | None:
    order = await _renewed_order(ledger, ca_id, serial)
    return order.client if order is not None else None


async def is_new_order(ledger: Ledger, order: NewOrder) -> bool:
    """False when placing ``order`` would return an existing one (its idempotency key, or the same
    pending CSR): such a retry costs nothing and counts against no quota."""
    if order.request_id and await ledger.find_order_by_request_id(order.ca_id, order.request_id) is not None:
        return False
    return await ledger.find_unfinished_by_fingerprint(order.ca_id, order.fingerprint) is None


async def quota_refusal(ledger: Ledger, caller: Caller, order: NewOrder, *, ca_max_pending: int,
                        now: dt.datetime) -> CagwError | None:
    """The first order limit a new order would exceed (None for a retry of an existing order).
    Whether it is a retry is asked only when a limit would be exceeded: a placement under its
    limits costs no look-up for it."""
    refusal = await check_quotas(ledger, caller, ca_id=order.ca_id, ca_max_pending=ca_max_pending, now=now)
    if refusal is None or not await is_new_order(ledger, order):
        return None
    return refusal

