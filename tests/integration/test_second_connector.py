"""A second connector, registered from a test package, serves a real Gateway over gRPC and REST.

``tests/plugins/localca`` is a plug-in that lives outside ``service/``: its own
``properties`` keys and parser, its own display names, its own capabilities (the
SAN types its certificates carry, the longest revocation comment it takes) and
its own error domain. Nothing in ``service/api/`` or ``service/rest/`` knows it;
these tests show the gateway uses every one of those parts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
import pytest_asyncio
from cagw.v1 import certificate_authorities_pb2 as ca_pb
from cagw.v1 import certificate_authorities_pb2_grpc as ca_grpc
from cagw.v1 import enrollments_pb2 as enr_pb
from cagw.v1 import enrollments_pb2_grpc as enr_grpc
from cryptography import x509
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from service.app import Gateway
from service.config import Config, parse_config
from service.connectors.guarded import unwrap
from service.connectors.registry import register_connector, unregister_connector
from service.errors import ConfigError
from tests.support.csr import make_csr
from tests.plugins.localca import ERROR_DOMAIN, PLUGIN, LocalCAConnector, LocalCAProperties

CA_ID = "local"
CA = f"/v1/certificate-authorities/{CA_ID}"
WHERE = f"managed-cas[0] (id {CA_ID}).properties"
COMMENT_LIMIT = 40


def _document(tmp: Path, **properties: str) -> dict[str, Any]:
    return {
        "grpc": {"listen": "127.0.0.1:0"},
        "rest": {"listen": "127.0.0.1:0"},
        "ops": {"listen": "127.0.0.1:0"},
        "admin": {"listen": "127.0.0.1:0"},
        "ledger": {"path": str(tmp / "ledger.db")},
        "shutdown-grace": "2s",
        "managed-cas": [{
            "id": CA_ID,
            "name": "Local test CA",
            "connector": "localca",
            "properties": {"ca-name": "LocalCA Test Root", "issue-after-collects": "1",
                           "revocation-comment-limit": str(COMMENT_LIMIT), "san-types": "dNSName, rfc822Name",
                           "collect-wait": "20ms", "collect-attempts": "4", **properties},
            "profiles": [{"id": "web", "name": "Web server", "cert-type": "tls-server", "term": "30"},
                         {"id": "unknown-at-the-ca", "cert-type": "no-such-profile", "term": "30"}],
        }],
    }


@pytest.fixture(scope="module")
def plugin() -> Any:
    register_connector(PLUGIN)
    yield PLUGIN
    unregister_connector(PLUGIN.type_name)  # later tests see only the installed connectors again


@dataclass
class Local:
    config: Config
    gateway: Gateway
    channel: grpc.aio.Channel
    session: aiohttp.ClientSession
    rest_base: str

    @property
    def connector(self) -> LocalCAConnector:
        assert self.gateway.cas is not None
        connector = unwrap(self.gateway.cas.get(CA_ID).connector)  # the plug-in's own, behind its circuit breaker
        assert isinstance(connector, LocalCAConnector)
        return connector

    async def rest(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session.request(method, self.rest_base + path, json=body) as response:
            return response.status, await response.json()

    def verify(self, pem: str) -> x509.Certificate:
        leaf, *chain = x509.load_pem_x509_certificates(pem.encode())
        leaf.verify_directly_issued_by(self.connector.certificate)
        assert chain == [self.connector.certificate]
        return leaf


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def local(plugin: Any, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Local]:
    tmp = tmp_path_factory.mktemp("localca")
    config = parse_config(_document(tmp), base_dir=tmp)
    gateway = Gateway(config)
    await gateway.start()
    try:
        assert gateway.grpc is not None and gateway.rest is not None
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.grpc.port}") as channel, \
                aiohttp.ClientSession() as session:
            yield Local(config, gateway, channel, session, f"http://127.0.0.1:{gateway.rest.port}/cagw")
    finally:
        await gateway.stop()


# ---------------------------------------------------------------- the plug-in's settings parser


def test_ok_the_plugin_parses_its_own_properties(local: Local) -> None:
    (ca,) = local.config.managed_cas
    assert ca.connector == "localca"
    assert ca.properties == LocalCAProperties(ca_name="LocalCA Test Root", issue_after_collects=1,
                                              comment_limit=COMMENT_LIMIT, san_types=frozenset({"dNSName", "rfc822Name"}))
    # The core's collect schedule, read from the plug-in's own keys.
    assert (ca.backoff.back_off_timer, ca.backoff.max_back_off_timer, ca.backoff.max_attempts) == (0.02, 0.02, 4)


def test_fail_plugin_problems_keep_their_paths_and_come_with_the_core_ones(plugin: Any, tmp_path: Path) -> None:
    document = _document(tmp_path, **{"collect-attempts": "many", "login-password": "x", "san-types": "otherName"})
    document["managed-cas"][0]["gateway"] = {"profile-sync": "maybe"}
    with pytest.raises(ConfigError) as caught:
        parse_config(document, base_dir=tmp_path)
    assert caught.value.problems == [
        f"{WHERE}.login-password: unknown key (allowed: ca-name, collect-attempts, collect-wait, "
        "issue-after-collects, revocation-comment-limit, san-types)",
        f"{WHERE}.san-types: 'otherName' must list SAN types among dNSName, rfc822Name, iPAddress, "
        "uniformResourceIdentifier, directoryName, registeredID",
        f"{WHERE}.collect-attempts: 'many' is not a whole number",
        f"managed-cas[0] (id {CA_ID}).gateway.profile-sync: 'maybe' is not a boolean (true or false)",
    ]


def test_fail_a_registered_plugin_is_among_the_supported(plugin: Any, tmp_path: Path) -> None:
    document = _document(tmp_path)
    document["managed-cas"][0]["connector"] = "entrust"
    with pytest.raises(ConfigError) as caught:
        parse_config(document, base_dir=tmp_path)
    assert caught.value.problems == [
        f"managed-cas[0] (id {CA_ID}).connector: unknown connector 'entrust' (supported: localca, sectigo)"]


# ---------------------------------------------------------------- display names and profiles


async def test_ok_cas_show_the_plugin_display_names_over_grpc_and_rest(local: Local) -> None:
    expected = {"connector-name": "org.example.LocalCA", "connector_name": "org.example.LocalCA",
                "type": "In-memory test CA"}
    listing = await ca_grpc.CertificateAuthorityServiceStub(local.channel).ListCertificateAuthorities(
        ca_pb.ListCertificateAuthoritiesRequest())
    assert [(ca.id, ca.name, dict(ca.properties)) for ca in listing.ca_list] == [(CA_ID, "Local test CA", expected)]
    status, body = await local.rest("GET", "/v1/certificate-authorities")
    assert status == 200, body
    assert [(ca["id"], ca["properties"]) for ca in body["caList"]] == [(CA_ID, expected)]


async def test_ok_profiles_come_from_the_plugin_with_its_san_types(local: Local) -> None:
    listing = await ca_grpc.CertificateAuthorityServiceStub(local.channel).ListProfiles(
        ca_pb.ListProfilesRequest(ca_id=CA_ID))
    by_id = {profile.id: profile for profile in listing.profiles}
    assert list(by_id) == ["web", "unknown-at-the-ca", "tls-server"]  # static ones, then the CA's own
    assert by_id["web"].properties["terms"] == "[30, 90]"  # from the CA profile it names
    assert [r.type for r in by_id["web"].subject_alt_name_requirements] == ["dNSName", "rfc822Name"]
    status, body = await local.rest("GET", f"{CA}/profiles/tls-server")
    assert status == 200, body
    assert body["profile"]["properties"]["key_type"] == '{"EC":["P-256"]}'
    assert [r["type"] for r in body["profile"]["subjectAltNameRequirements"]] == ["dNSName", "rfc822Name"]


# ---------------------------------------------------------------- enrollment through both transports


async def test_ok_enroll_over_grpc_issues_a_real_certificate(local: Local) -> None:
    stub = enr_grpc.EnrollmentServiceStub(local.channel)
    response = await stub.Enroll(enr_pb.EnrollRequest(ca_id=CA_ID, profile_id="web",
                                                       csr=make_csr("grpc.example.com", sans=("grpc.example.com",))))
    enrollment = response.enrollment
    assert enrollment.status == "ISSUED", enrollment
    leaf = local.verify(enrollment.body)
    assert leaf.subject.rfc4514_string() == "CN=grpc.example.com"
    assert enrollment.serial_number == format(leaf.serial_number, "x")
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days == 30  # the static profile's term
    order = local.connector.orders[enrollment.sectigo_order_id]
    assert order.collects == 2  # issue-after-collects: 1 → one pending collect, then the certificate


async def test_ok_enroll_over_rest_carries_the_san_types_the_plugin_allows(local: Local) -> None:
    status, body = await local.rest("POST", f"{CA}/enrollments", {
        "profileId": "web", "csr": make_csr("rest.example.com"),
        "subjectAltNames": [{"type": "dNSName", "value": "rest.example.com"},
                            {"type": "rfc822Name", "value": "ops@example.com"}]})
    assert status == 200, body
    enrollment = body["enrollment"]
    assert body["type"] == "EnrollmentResponse" and enrollment["status"] == "ISSUED"
    names = local.verify(enrollment["body"]).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["rest.example.com"]
    assert names.get_values_for_type(x509.RFC822Name) == ["ops@example.com"]


async def test_fail_a_san_type_the_plugin_cannot_carry_is_refused_before_the_ca_hears_of_it(local: Local) -> None:
    orders_before = len(local.connector.orders)
    status, body = await local.rest("POST", f"{CA}/enrollments", {
        "profileId": "web", "csr": make_csr("ip.example.com"),
        "subjectAltNames": [{"type": "iPAddress", "value": "192.0.2.7"}]})
    assert status == 404, body  # the documented enrollment status for a domain failure
    assert body["error"]["target"] == "subjectAltNames[0].type", body
    assert "cannot carry iPAddress" in body["error"]["details"][0]["message"]
    assert len(local.connector.orders) == orders_before


async def test_fail_a_refusal_of_the_plugin_carries_its_error_domain(local: Local) -> None:
    stub = enr_grpc.EnrollmentServiceStub(local.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Enroll(enr_pb.EnrollRequest(ca_id=CA_ID, profile_id="unknown-at-the-ca",
                                               csr=make_csr("refused.example.com")))
    status = rpc_status.from_call(caught.value)  # type: ignore[arg-type]
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert (info.reason, info.domain) == ("CA_VALIDATION_FAILED", ERROR_DOMAIN), status


# ---------------------------------------------------------------- capabilities on certificate actions


async def _issued(local: Local, common_name: str) -> str:
    status, body = await local.rest("POST", f"{CA}/enrollments", {"profileId": "web", "csr": make_csr(common_name)})
    assert status == 200, body
    return str(body["enrollment"]["serialNumber"])


async def test_comment_limit_is_the_plugins(local: Local) -> None:
    serial = await _issued(local, "revoke.example.com")
    path = f"{CA}/certificates/{serial}/actions"
    status, body = await local.rest("POST", path, {"action": {"type": "RevokeAction", "reason": "superseded",
                                                              "comment": "x" * (COMMENT_LIMIT + 1)}})
    assert status == 400, body
    assert body["error"]["target"] == "action.comment"
    assert f"at most {COMMENT_LIMIT} are allowed" in body["error"]["details"][0]["message"]
    status, body = await local.rest("POST", path, {"action": {"type": "RevokeAction", "reason": "superseded",
                                                              "comment": "y" * COMMENT_LIMIT}})
    assert status == 200, body
    (revoked,) = [o for o in local.connector.orders.values() if o.revocation is not None]
    assert revoked.revocation is not None and revoked.revocation.comment == "y" * COMMENT_LIMIT


async def test_fail_hold_and_ca_properties_name_the_plugins_vendor(local: Local) -> None:
    serial = await _issued(local, "hold.example.com")
    status, body = await local.rest("POST", f"{CA}/certificates/{serial}/actions",
                                    {"action": {"type": "HoldAction", "reason": "certificateHold"}})
    assert status == 501, body
    assert "LocalCA has no certificate hold" in body["error"]["message"]
    status, body = await local.rest("GET", f"{CA}/properties")
    assert status == 501, body
    assert "LocalCA has none to show" in body["error"]["message"]
