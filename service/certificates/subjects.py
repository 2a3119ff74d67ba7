"""Subjects: every certificate and pending order filed under a normalised DN."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from service.authorities import ManagedCA
from service.certificates.common import PENDING_STATES, STATUS_PENDING, certificate_status
from service.errors import NotFound
from service.clock import Clock
from service.ledger.base import CertificateRecord, Ledger
from service.x509 import normalize_dn


@dataclass(frozen=True)
class SubjectItem:
    """One certificate (or pending order) of a subject."""

    status: str  # normal | revoked | expired | PENDING
    order_id: str | None
    certificate: CertificateRecord | None
    created_at: dt.datetime




class SubjectIndex:
    """The certificates and pending orders of a subject DN, from the ledger."""

    def __init__(self, ledger: Ledger, *, clock: Clock) -> None:
        self._ledger = ledger
        self._clock = clock

    async def subject(self, ca: ManagedCA, dn_text: str, *, field: str = "dn") -> tuple[str, list[SubjectItem]]:
        """The normalised DN and its certificates and pending orders, newest first.

        Failed and abandoned orders are left out (they will never have a
        certificate). Raises :class:`NotFound` (``SUBJECT_NOT_FOUND``) when nothing is left.
        """
        dn = normalize_dn(dn_text, field=field)
        now = self._clock()
        items: list[SubjectItem] = []
        seen: set[tuple[str | None, str | None]] = set()
        for entry in await self._ledger.subject_entries(ca.id, dn):
            certificate = entry.certificate
            key = (entry.order_id, certificate.serial_number if certificate else None)
            if key in seen:  # filed under both the requested and the issued DN
                continue
            seen.add(key)
            if certificate is not None:
                items.append(SubjectItem(certificate_status(certificate, now), entry.order_id, certificate,
                                         entry.created_at))
            elif entry.order_state in PENDING_STATES:
                items.append(SubjectItem(STATUS_PENDING, entry.order_id, None, entry.created_at))
        if not items:
            raise NotFound(f"CA {ca.id}: no certificate or pending order for subject {dn!r}",
                           reason="SUBJECT_NOT_FOUND", metadata={"ca_id": ca.id, "dn": dn[:256]})
        items.sort(key=lambda item: item.created_at, reverse=True)  # stable: the ledger's order breaks ties
        return dn, items
