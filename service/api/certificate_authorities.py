"""CertificateAuthorityService: the configured CAs, their status and profiles.

A CA's ``certificate`` is its issuing CA certificate and ``chain`` what is above
it: from ``gateway.ca-certificates`` when configured, else the chain the CA sent
with the first certificate collected from it (kept in the ledger); absent until
one is known. ``$fields`` is honoured as on every response (see
:mod:`service.api._convert`): ``-caList.certificate`` leaves it out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from cagw.v1 import certificate_authorities_pb2 as pb
from cagw.v1 import common_pb2

from service.api._convert import FieldProjection, base64_der
from service.api.pipeline import CallContext
from service.authorities import CARegistry, ManagedCA
from service.catalog import ResolvedProfile
from service.certificates.bounds import SingleFlight
from service.connectors.base import SubjectAltNameTypes
from service.errors import CagwError, Unimplemented
from service.ledger.base import Ledger
from service.x509 import SAN_TYPES

__all__ = ["CertificateAuthorityApi"]

log = logging.getLogger(__name__)

STATUS_CHECK_TIMEOUT = 10.0


def _ca_message(ca: ManagedCA, chain: tuple[bytes, ...]) -> pb.CertificateAuthority:
    message = pb.CertificateAuthority(id=ca.id, name=ca.settings.name, properties=ca.public_properties(),
                                      chain=[common_pb2.CertificateData(certificate_data=base64_der(der))
                                             for der in chain[1:]])
    if chain:
        message.certificate.certificate_data = base64_der(chain[0])
    return message


def _san_types(ca: ManagedCA) -> list[str]:
    """The SAN types the CA's certificates can carry (its capability), else every CAGW type."""
    carried = ca.connector.san_types if isinstance(ca.connector, SubjectAltNameTypes) else frozenset(SAN_TYPES)
    return sorted(carried)


def _profile_message(ca: ManagedCA, profile: ResolvedProfile) -> pb.Profile:
    return pb.Profile(
        id=profile.id,
        name=profile.name,
        properties=profile.properties(),
        subject_alt_name_requirements=[pb.SubjectAltNameRequirement(type=t, required=False) for t in _san_types(ca)],
        subject_variable_requirements=[pb.Requirement(name="cn", description="Common name", required=False)],
        requested_properties=[
            pb.Requirement(name="RenewalSerialNumber", description="Serial of the certificate to renew "
                           "(with renewal: true)", required=False),
        ],
    )


StatusAnswer = pb.GetCertificateAuthorityStatusResponse


class CertificateAuthorityApi:
    """Servicer of ``cagw.v1.CertificateAuthorityService``. A CA's status is a real call to the CA,
    so its answer is kept for ``status_ttl`` seconds and concurrent asks share one call."""

    def __init__(self, cas: CARegistry, ledger: Ledger, *, status_ttl: float = 10.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._cas = cas
        self._ledger = ledger
        self._status_ttl = status_ttl
        self._monotonic = monotonic
        self._status: dict[str, tuple[float, StatusAnswer]] = {}
        self._status_asks: SingleFlight[StatusAnswer] = SingleFlight()

    async def _chain(self, ca: ManagedCA) -> tuple[bytes, ...]:
        return ca.settings.gateway.ca_certificates or await self._ledger.ca_chain(ca.id)

    def _ca(self, ca_id: str, call: CallContext) -> ManagedCA:
        """A CA the caller has some grant on (refused alike whether it exists or not)."""
        call.caller_object.may_see(ca_id).check()
        return self._cas.get(ca_id)

    async def ListCertificateAuthorities(self, request: pb.ListCertificateAuthoritiesRequest,
                                         call: CallContext) -> pb.ListCertificateAuthoritiesResponse:
        caller = call.caller_object
        response = pb.ListCertificateAuthoritiesResponse(
            ca_list=[_ca_message(ca, await self._chain(ca)) for ca in self._cas if caller.may_see(ca.id).allowed])
        FieldProjection.parse(request.fields).apply(response)
        return response

    async def GetCertificateAuthority(self, request: pb.GetCertificateAuthorityRequest,
                                      call: CallContext) -> pb.GetCertificateAuthorityResponse:
        ca = self._ca(request.ca_id, call)
        response = pb.GetCertificateAuthorityResponse(ca=_ca_message(ca, await self._chain(ca)))
        FieldProjection.parse(request.fields).apply(response)
        return response

    async def GetCertificateAuthorityStatus(self, request: pb.GetCertificateAuthorityStatusRequest,
                                            call: CallContext) -> pb.GetCertificateAuthorityStatusResponse:
        ca = self._ca(request.ca_id, call)
        kept = self._status.get(ca.id)
        if kept is None or self._monotonic() >= kept[0]:
            answer = await self._status_asks.run(ca.id, lambda: self._ask_status(ca))
            kept = (self._monotonic() + self._status_ttl, answer)
            self._status[ca.id] = kept
        copy = StatusAnswer()
        copy.CopyFrom(kept[1])
        return copy

    async def _ask_status(self, ca: ManagedCA) -> StatusAnswer:
        try:
            await asyncio.wait_for(ca.connector.check(), STATUS_CHECK_TIMEOUT)
        except CagwError as exc:
            log.info("CA %s is DOWN: %s", ca.id, exc.message)
            return pb.GetCertificateAuthorityStatusResponse(
                status="DOWN", message=common_pb2.Message(code=exc.reason, message=exc.caller_message))
        except TimeoutError:
            return pb.GetCertificateAuthorityStatusResponse(
                status="DOWN", message=common_pb2.Message(code="CA_TIMEOUT",
                                                          message=f"no answer within {STATUS_CHECK_TIMEOUT:g}s"))
        return pb.GetCertificateAuthorityStatusResponse(status="UP")

    async def GetCertificateAuthorityProperties(
            self, request: pb.GetCertificateAuthorityPropertiesRequest,
            call: CallContext) -> pb.GetCertificateAuthorityPropertiesResponse:
        ca = self._ca(request.ca_id, call)
        raise Unimplemented(f"CA {ca.id}: CA properties are offered by Security Manager CAs only; "
                            f"{ca.plugin.vendor} has none to show", metadata={"ca_id": ca.id})

    async def ListProfiles(self, request: pb.ListProfilesRequest, call: CallContext) -> pb.ListProfilesResponse:
        ca = self._ca(request.ca_id, call)
        profiles = await ca.catalog.list()
        return pb.ListProfilesResponse(
            profiles=[_profile_message(ca, p) for p in profiles],
            message=common_pb2.Message(message="Profiles retrieved successfully."))

    async def GetProfile(self, request: pb.GetProfileRequest, call: CallContext) -> pb.GetProfileResponse:
        ca = self._ca(request.ca_id, call)
        profile = await ca.catalog.get(request.profile_id)
        return pb.GetProfileResponse(profile=_profile_message(ca, profile))
