"""Certificates by serial number and by subject: lookup, revocation and the events feed.

The package, one job a module: ``lookup`` (by serial), ``revocation`` (actions, audit),
``subjects`` (by DN), ``events`` (the feed); ``manager`` composes them for the servicers.

This is the core behind ``CertificateService`` and ``SubjectService``; the
servicers in ``api/`` only translate protos to the values here and back.

* **Lookup.** A serial is looked up in the ledger first. A certificate the
  gateway did not order (issued through the CA's own portal, or before the
  gateway existed) is searched at the CA (``list`` by serial → ``details`` →
  ``collect``) and stored in the ledger, so the next lookup, the subject index
  and the events feed know it.
* **Revocation** is idempotent: a certificate the ledger (or the CA) already
  knows as revoked answers success without calling the CA. Every attempt — done,
  refused by the gateway, or failed at the CA — is appended to the audit trail
  with the caller's identity (DESIGN decision 14).
* **Hold, unhold, reactivate** are refused explicitly (DESIGN decision 16):
  the message says whether the CA has no certificate hold (no ``CertificateHold``
  capability) or the gateway cannot record one.
* **Events feed.** Issued and revoked events, paged with an opaque cursor
  (see :class:`EventCursor`).
"""

from __future__ import annotations

from service.certificates.common import STATUS_EXPIRED, STATUS_NORMAL, STATUS_PENDING, STATUS_REVOKED, certificate_status, parse_iso_datetime
from service.certificates.revocation import ActionInput, RevokeOrder, RevokeOutcome, SubjectRevokeOutcome, parse_revoke_action
from service.certificates.subjects import SubjectItem, SubjectPage
from service.certificates.events import DEFAULT_PAGE_SIZE, EventCursor, EventsPage, MAX_PAGE_SIZE
from service.certificates.manager import CertificateManager

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "STATUS_EXPIRED",
    "STATUS_NORMAL",
    "STATUS_PENDING",
    "STATUS_REVOKED",
    "ActionInput",
    "CertificateManager",
    "EventCursor",
    "EventsPage",
    "RevokeOrder",
    "RevokeOutcome",
    "SubjectItem",
    "SubjectPage",
    "SubjectRevokeOutcome",
    "certificate_status",
    "parse_iso_datetime",
    "parse_revoke_action",
]
