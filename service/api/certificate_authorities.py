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

from cagw.v1 import certificate_authorities_pb2 as pb
from cagw.v1 import common_pb2

from service.api._convert import FieldProjection, base64_der
from service.api.pipeline import CallContext
from service.authorities import CARegistry, ManagedCA
from service.catalog import ResolvedProfile
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


class CertificateAuthorityApi:
    def __init__(self, cas: CARegistry, ledger: Ledger) -> None:
        self._cas = cas
        self._ledger = ledger

    async def _chain(self, ca: ManagedCA) -> tuple[bytes, ...]:
        return ca.settings.gateway.ca_certificates or await self._ledger.ca_chain(ca.id)

    async def ListCertificateAuthorities(self, request: pb.ListCertificateAuthoritiesRequest,
                                         call: CallContext) -> pb.ListCertificateAuthoritiesResponse:
        response = pb.ListCertificateAuthoritiesResponse(
            ca_list=[_ca_message(ca, await self._chain(ca)) for ca in self._cas])
        FieldProjection.parse(request.fields).apply(response)
        return response

    async def GetCertificateAuthority(self, request: pb.GetCertificateAuthorityRequest,
                                      call: CallContext) -> pb.GetCertificateAuthorityResponse:
        ca = self._cas.get(request.ca_id)
        response = pb.GetCertificateAuthorityResponse(ca=_ca_message(ca, await self._chain(ca)))
        FieldProjection.parse(request.fields).apply(response)
        return response

    async def GetCertificateAuthorityStatus(self, request: pb.GetCertificateAuthorityStatusRequest,
                                            call: CallContext) -> pb.GetCertificateAuthorityStatusResponse:
        ca = self._cas.get(request.ca_id)
        try:
            await asyncio.wait_for(ca.connector.check(), STATUS_CHECK_TIMEOUT)
        except CagwError as exc:
            log.info("CA %s is DOWN: %s", ca.id, exc.message)
            return pb.GetCertificateAuthorityStatusResponse(
                status="DOWN", message=common_pb2.Message(code=exc.reason, message=exc.message))
        except TimeoutError:
            return pb.GetCertificateAuthorityStatusResponse(
                status="DOWN", message=common_pb2.Message(code="CA_TIMEOUT",
                                                          message=f"no answer within {STATUS_CHECK_TIMEOUT:g}s"))
        return pb.GetCertificateAuthorityStatusResponse(status="UP")

    async def GetCertificateAuthorityProperties(
            self, request: pb.GetCertificateAuthorityPropertiesRequest,
            call: CallContext) -> pb.GetCertificateAuthorityPropertiesResponse:
        ca = self._cas.get(request.ca_id)
        raise Unimplemented(f"CA {ca.id}: CA properties are offered by Security Manager CAs only; "
                            f"{ca.plugin.vendor} has none to show", metadata={"ca_id": ca.id})

    async def ListProfiles(self, request: pb.ListProfilesRequest, call: CallContext) -> pb.ListProfilesResponse:
        ca = self._cas.get(request.ca_id)
        profiles = await ca.catalog.list()
        return pb.ListProfilesResponse(
            profiles=[_profile_message(ca, p) for p in profiles],
            message=common_pb2.Message(message="Profiles retrieved successfully."))

    async def GetProfile(self, request: pb.GetProfileRequest, call: CallContext) -> pb.GetProfileResponse:
        ca = self._cas.get(request.ca_id)
        profile = await ca.catalog.get(request.profile_id)
        return pb.GetProfileResponse(profile=_profile_message(ca, profile))
