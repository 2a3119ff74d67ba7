"""SubjectService: every certificate of a subject DN, and revoking them all.

A subject is looked up by its normalised DN (DESIGN decision 8), so
``CN=a, O=b`` and ``cn=A,o=B`` are the same subject; the ledger files each
order under the DN asked for and the DN issued. Certificates come newest
first with CAGW's status words (``normal``, ``revoked``, ``expired``), and an
order still being collected shows as ``PENDING`` with its enrollment id.
Revoking a subject refuses above ``gateway.subject-revoke-limit``
certificates unless ``action.force`` is set (DESIGN decision 14).
"""

from __future__ import annotations


from cryptography import x509

from cagw.v1 import common_pb2
from cagw.v1 import subjects_pb2 as pb

from service.api._convert import action_input, action_message, base64_der
from service.api.pipeline import CallContext
from service.authorities import CARegistry
from service.certificates import CertificateManager, SubjectItem, SubjectRevokeOutcome
from service.x509 import dn_strings, format_validity

__all__ = ["SubjectApi"]


def _subject_certificate(item: SubjectItem) -> pb.SubjectCertificate:
    certificate = item.certificate
    if certificate is None:
        return pb.SubjectCertificate(status=item.status, enrollment_id=item.order_id or "")
    return pb.SubjectCertificate(
        serial_number=certificate.serial_number, status=item.status,
        validity_period=format_validity(certificate.not_before, certificate.not_after),
        # The ledger keeps the normalised (case-folded) DN; show the certificate's own spelling.
        subject_name=_issued_subject(certificate.certificate_der, certificate.subject_dn),
        enrollment_id=item.order_id or "", certificate_data=base64_der(certificate.certificate_der))


def _issued_subject(der: bytes, fallback: str) -> str:
    try:
        return dn_strings(x509.load_der_x509_certificate(der).subject).cagw_lowercase
    except ValueError:
        return fallback


def _summary(outcome: SubjectRevokeOutcome) -> str:
    text = f"Revoked {len(outcome.revoked)} certificate(s) of {outcome.dn}."
    if outcome.already_revoked:
        text += f" {len(outcome.already_revoked)} already revoked."
    if outcome.pending_orders:
        text += (f" {len(outcome.pending_orders)} order(s) still pending have no certificate to revoke yet: "
                 + ", ".join(outcome.pending_orders) + ".")
    return text


class SubjectApi:
    """Servicer of ``cagw.v1.SubjectService``.

    >>> api = SubjectApi(cas, CertificateManager(ledger))
    >>> await api.GetSubject(pb.GetSubjectRequest(ca_id="ca-ov", dn="CN=web.example.com,O=Acme,C=US"), call)
    """

    def __init__(self, cas: CARegistry, certificates: CertificateManager) -> None:
        self._cas = cas
        # One manager serves both servicers, so a serial revoked through either is locked once.
        self._certificates = certificates

    async def GetSubject(self, request: pb.GetSubjectRequest, call: CallContext) -> pb.GetSubjectResponse:
        ca = await self._certificates.authorize(self._cas, request.ca_id, call.caller_object, "read")
        page = await self._certificates.subject_page(ca, request.dn, page_size=request.preferred_page_size,
                                                     page_index=request.next_page_index)
        return pb.GetSubjectResponse(
            subject=pb.Subject(dn=page.dn, certificates=[_subject_certificate(i) for i in page.items]),
            next_page_index=page.next_cursor.encode() if page.next_cursor else "", more_pages=page.next_cursor is not None)

    async def PerformSubjectAction(self, request: pb.PerformSubjectActionRequest,
                                   call: CallContext) -> pb.PerformSubjectActionResponse:
        caller = call.caller_object
        ca = await self._certificates.authorize(self._cas, request.ca_id, caller, "revoke")
        order, outcome = await self._certificates.revoke_subject(ca, request.dn, action_input(request.action),
                                                                 caller=caller)
        return pb.PerformSubjectActionResponse(action=action_message(request.action, order),
                                               serial_numbers=list(outcome.revoked),
                                               message=common_pb2.Message(message=_summary(outcome)))
