"""Callers and grants end to end: both API listeners with mutual TLS, real client certificates.

One gateway (two managed CAs on one simulator) serves these callers, each with a
certificate made here: ``team-a`` (matched by subject), ``team-b`` (matched by
fingerprint), an ``admin``, a ``stranger`` (validly signed, matching no client),
an ``expired`` certificate and one from ``another CA``. The matrix runs every
operation for own / other / unknown CA, allowed / refused names and own /
other's / foreign certificates over gRPC and REST, and counts the simulator's
orders to show that a refused request places none.
"""

from __future__ import annotations

import copy
import datetime as dt
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
import pytest_asyncio
import trustme
from cagw.v1 import certificates_pb2, certificates_pb2_grpc, common_pb2, enrollments_pb2, enrollments_pb2_grpc
from cagw.v1 import subjects_pb2, subjects_pb2_grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from service.api.identity import identity_of
from service.app import Gateway
from service.config import parse_config
from service.simulator import Simulator, SimulatorSettings, start_simulator
from tests.integration.stack import CA_ID, PROFILE_ID, gateway_document, make_csr, tls_files

OTHER_CA = "other"
UNKNOWN_CA = "no-such-ca"


@dataclass
class Party:
    """One caller: its gRPC channel and its REST TLS context."""

    name: str
    channel: grpc.aio.Channel
    ssl: ssl.SSLContext

    @property
    def enrollments(self) -> enrollments_pb2_grpc.EnrollmentServiceStub:
        return enrollments_pb2_grpc.EnrollmentServiceStub(self.channel)

    @property
    def certificates(self) -> certificates_pb2_grpc.CertificateServiceStub:
        return certificates_pb2_grpc.CertificateServiceStub(self.channel)

    @property
    def subjects(self) -> subjects_pb2_grpc.SubjectServiceStub:
        return subjects_pb2_grpc.SubjectServiceStub(self.channel)


@dataclass
class World:
    simulator: Simulator
    gateway: Gateway
    grpc_target: str
    rest_base: str
    folder: Path
    server_ca_pem: bytes
    parties: dict[str, Party] = field(default_factory=dict)
    http: aiohttp.ClientSession | None = None

    def orders(self) -> int:
        return len(self.simulator.state)

    async def rest(self, party: str, method: str, path: str, body: Any = None,
                   headers: dict[str, str] | None = None) -> tuple[int, Any, dict[str, str]]:
        assert self.http is not None
        async with self.http.request(method, f"{self.rest_base}/v1/certificate-authorities/{path}", json=body,
                                     ssl=self.parties[party].ssl, headers=headers) as response:
            return response.status, await response.json(), dict(response.headers)


def _leaf(ca: trustme.CA, folder: Path, name: str, cn: str = "", **options: Any) -> tuple[bytes, bytes, Path]:
    leaf = ca.issue_cert(f"{name}.callers.test", common_name=cn or name, organization_name="Example", **options)
    chain = b"".join(blob.bytes() for blob in leaf.cert_chain_pems)
    key = leaf.private_key_pem.bytes()
    both = folder / f"{name}.pem"
    both.write_bytes(chain + key)
    return chain, key, both


def _clients(subjects: dict[str, str], team_b_sha256: str) -> list[dict[str, Any]]:
    every = ["read", "enroll", "renew", "revoke"]
    return [
        {"name": "team-a", "match": {"subject": [subjects["team-a"], subjects["expired"]]},
         "grants": [{"cas": [CA_ID], "profiles": [PROFILE_ID], "operations": every,
                     "names": ["*.team-a.example.com"], "ips": ["10.20.0.0/16"]}]},
        {"name": "team-b", "match": {"sha256": team_b_sha256},
         "grants": [{"cas": [CA_ID], "operations": every, "names": ["*.team-b.example.com"]}]},
        {"name": "admins", "match": {"subject": subjects["admin"]}, "admin": "true"},
    ]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    tmp = tmp_path_factory.mktemp("callers")
    trust, cert, key = tls_files(tmp)
    simulator = await start_simulator(SimulatorSettings(issue_after_polls=1, port=0, tls_cert=cert, tls_key=key,
                                                        ca_dir=tmp / "sim-ca"))
    callers_ca, stranger_ca = trustme.CA(), trustme.CA()
    server = callers_ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp / "api-tls"
    folder.mkdir()
    server.private_key_pem.write_to_path(str(folder / "key.pem"))
    server.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    callers_ca.cert_pem.write_to_path(str(folder / "clients-ca.pem"))
    section = {"cert": str(folder / "cert.pem"), "key": str(folder / "key.pem"),
               "client-ca": str(folder / "clients-ca.pem")}
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    leaves = {name: _leaf(callers_ca, folder, name) for name in ("team-a", "team-b", "admin", "stranger")}
    leaves["expired"] = _leaf(callers_ca, folder, "expired", not_before=past - dt.timedelta(days=1),
                              not_after=past)
    leaves["foreign"] = _leaf(stranger_ca, folder, "foreign", cn="team-a")  # team-a's subject, another CA
    subjects = {name: identity_of(chain).subject for name, (chain, _, _) in leaves.items()}
    document = gateway_document(simulator.url, trust, tmp, extra_gateway={"subject-revoke-limit": "1"})
    second = copy.deepcopy(document["managed-cas"][0])
    second["id"] = OTHER_CA
    document["managed-cas"].append(second)
    document["grpc"]["tls"] = document["rest"]["tls"] = section
    document["clients"] = _clients(subjects, identity_of(leaves["team-b"][0]).sha256)
    gateway = Gateway(parse_config(document, base_dir=tmp))
    await gateway.start()
    assert gateway.grpc is not None and gateway.grpc.port and gateway.rest is not None
    target = f"127.0.0.1:{gateway.grpc.port}"
    world = World(simulator, gateway, target, f"https://127.0.0.1:{gateway.rest.port}/cagw", folder,
                  callers_ca.cert_pem.bytes())
    for name, (chain, private_key, both) in leaves.items():
        credentials = grpc.ssl_channel_credentials(root_certificates=world.server_ca_pem, private_key=private_key,
                                                   certificate_chain=chain)
        context = ssl.create_default_context(cadata=world.server_ca_pem.decode())
        context.load_cert_chain(both)
        world.parties[name] = Party(name, grpc.aio.secure_channel(target, credentials), context)
    world.http = aiohttp.ClientSession()
    try:
        yield world
    finally:
        await world.http.close()
        for party in world.parties.values():
            await party.channel.close()
        await gateway.stop()
        await simulator.stop()


# ---------------------------------------------------------------- helpers


def _reason(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return ""


async def _enroll_grpc(party: Party, ca_id: str, csr: str, **fields: Any) -> tuple[str, str, Any]:
    """(gRPC code name, ErrorInfo reason, enrollment or None)."""
    try:
        answer = await party.enrollments.Enroll(
            enrollments_pb2.EnrollRequest(ca_id=ca_id, profile_id=PROFILE_ID, csr=csr, **fields), timeout=10)
    except grpc.aio.AioRpcError as error:
        return error.code().name, _reason(error), None
    return "OK", "", answer.enrollment


async def _issued(world: World, party: str, cn: str, *, ca_id: str = CA_ID, **fields: Any) -> Any:
    code, reason, enrollment = await _enroll_grpc(world.parties[party], ca_id, make_csr(cn), **fields)
    assert (code, reason) == ("OK", "") and enrollment.status == "ISSUED"
    return enrollment


async def _foreign_serial(world: World) -> str:
    """A certificate issued at the CA without the gateway (through the simulator's own API)."""
    assert world.http is not None
    headers = world.simulator.credentials_headers()
    api = world.simulator.api_url
    body = {"orgId": 1234, "certType": 1001, "term": 365, "csr": make_csr("portal.team-a.example.com")}
    async with world.http.post(f"{api}/ssl/v1/enroll", json=body, headers=headers, ssl=False) as reply:
        ssl_id = (await reply.json())["sslId"]
    for _ in range(5):  # the simulator issues at the second collect (issue_after_polls=1)
        async with world.http.get(f"{api}/ssl/v1/collect/{ssl_id}/x509CO", headers=headers, ssl=False) as reply:
            if reply.status == 200:
                from cryptography import x509

                return format(x509.load_pem_x509_certificate(await reply.read()).serial_number, "x")
    raise AssertionError("the simulator did not issue the foreign certificate")


# ---------------------------------------------------------------- who may call at all


@pytest.mark.parametrize("party", ["expired", "foreign"])
async def test_fail_expired_and_foreign_certificates_fail_the_handshake(world: World, party: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await world.parties[party].enrollments.Enroll(
            enrollments_pb2.EnrollRequest(ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr("x.team-a.example.com")),
            timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(aiohttp.ClientError):
        await world.rest(party, "GET", "")


# ---------------------------------------------------------------- enrollment matrix

ENROLL_CASES = [
    # party, CA, common name, extra SANs, expected code, reason, REST status
    ("team-a", CA_ID, "www.team-a.example.com", (), "OK", "", 200),
    ("team-a", CA_ID, "www.team-b.example.com", (), "PERMISSION_DENIED", "NAMES_NOT_GRANTED", 403),
    ("team-a", CA_ID, "api.team-a.example.com", ("evil.example.com",), "PERMISSION_DENIED", "NAMES_NOT_GRANTED", 403),
    ("team-a", OTHER_CA, "www.team-a.example.com", (), "PERMISSION_DENIED", "CA_NOT_GRANTED", 403),
    ("team-a", UNKNOWN_CA, "www.team-a.example.com", (), "PERMISSION_DENIED", "CA_NOT_GRANTED", 403),
    ("team-b", CA_ID, "www.team-b.example.com", (), "OK", "", 200),
    ("team-b", CA_ID, "www.team-a.example.com", (), "PERMISSION_DENIED", "NAMES_NOT_GRANTED", 403),
    ("admin", OTHER_CA, "anything.example.org", (), "OK", "", 200),
    ("admin", UNKNOWN_CA, "anything.example.org", (), "NOT_FOUND", "CA_NOT_FOUND", 404),
    ("stranger", CA_ID, "www.team-a.example.com", (), "PERMISSION_DENIED", "CALLER_UNKNOWN", 403),
]


@pytest.mark.parametrize("transport", ["grpc", "rest"])
@pytest.mark.parametrize("party, ca_id, cn, sans, code, reason, http_status", ENROLL_CASES,
                         ids=[f"{'ok' if c[4] == 'OK' else 'fail'}-{c[0]}-{c[1]}-{c[2]}{'+san' if c[3] else ''}"
                              for c in ENROLL_CASES])
async def test_enroll_matrix(world: World, transport: str, party: str, ca_id: str, cn: str,
                             sans: tuple[str, ...], code: str, reason: str, http_status: int) -> None:
    before = world.orders()
    csr = make_csr(cn, sans=sans)
    if transport == "grpc":
        got_code, got_reason, _ = await _enroll_grpc(world.parties[party], ca_id, csr)
        assert (got_code, got_reason) == (code, reason if code != "NOT_FOUND" else got_reason)
    else:
        status, body, _ = await world.rest(party, "POST", f"{ca_id}/enrollments",
                                           {"profileId": PROFILE_ID, "csr": csr})
        assert status == http_status
        if reason and code != "NOT_FOUND":
            assert body["error"]["code"] == reason
    assert world.orders() == before + (1 if code == "OK" else 0)  # a refusal places no order


async def test_fail_every_refused_name_is_listed_and_audited(world: World) -> None:
    csr = make_csr("a.team-a.example.com", sans=("a.team-a.example.com", "one.example.com", "two.example.net"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await world.parties["team-a"].enrollments.Enroll(
            enrollments_pb2.EnrollRequest(ca_id=CA_ID, profile_id=PROFILE_ID, csr=csr), timeout=10)
    message = caught.value.details() or ""
    assert "one.example.com" in message and "two.example.net" in message and "a.team-a" not in message
    assert world.gateway.ledger is not None
    entry = (await world.gateway.ledger.audit_entries(ca_id=CA_ID, limit=1))[0]
    assert (entry.client, entry.action, entry.outcome) == ("team-a", "enroll", "refused")
    assert "NAMES_NOT_GRANTED" in entry.detail and entry.actor.startswith("CN=team-a")
    assert world.gateway.observability is not None
    counted = world.gateway.observability.metrics.registry.get_sample_value(
        "cagw_policy_refusals_total", {"client": "team-a", "reason": "NAMES_NOT_GRANTED"})
    assert counted is not None and counted >= 1


# ---------------------------------------------------------------- the dry run


@pytest.mark.parametrize("cn, allowed", [("x.team-a.example.com", True), ("x.team-b.example.com", False)])
async def test_check_enrollment_answers_without_placing_an_order(world: World, cn: str, allowed: bool) -> None:
    before = world.orders()
    answer = await world.parties["team-a"].enrollments.CheckEnrollment(
        enrollments_pb2.CheckEnrollmentRequest(ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr(cn)), timeout=10)
    assert (answer.allowed, answer.client) == (allowed, "team-a")
    if allowed:
        assert answer.grant == "team-a.grants[0]" and not answer.refusals
    else:
        assert [(r.code, r.reason) for r in answer.refusals] == [("PERMISSION_DENIED", "NAMES_NOT_GRANTED")]
    assert [(n.type, n.value, n.source) for n in answer.names] == [("dNSName", cn, "csr CN")]
    status, body, _ = await world.rest("team-a", "POST", f"{CA_ID}/enrollments:check",
                                       {"profileId": PROFILE_ID, "csr": make_csr(cn)})
    assert (status, body["allowed"]) == (200, allowed)
    assert world.orders() == before


# ---------------------------------------------------------------- ownership: revoke, renew


async def _revoke(world: World, transport: str, party: str, serial: str, ca_id: str = CA_ID) -> str:
    if transport == "rest":
        status, body, _ = await world.rest(party, "POST", f"{ca_id}/certificates/{serial}/actions",
                                           {"action": {"type": "RevokeAction", "reason": "superseded"}})
        return "OK" if status == 200 else f"{status} {body['error']['code']}"
    try:
        await world.parties[party].certificates.PerformCertificateAction(
            certificates_pb2.PerformCertificateActionRequest(
                ca_id=ca_id, serial_number=serial, action=common_pb2.Action(type="RevokeAction", reason="superseded")),
            timeout=10)
    except grpc.aio.AioRpcError as error:
        return f"{error.code().name} {_reason(error)}"
    return "OK"


REVOKE_CASES = [
    # revoking party, whose certificate, expected over gRPC, over REST
    ("team-a", "own", "OK", "OK"),
    ("team-a", "other", "PERMISSION_DENIED NOT_OWNER", "403 NOT_OWNER"),
    ("team-a", "foreign", "PERMISSION_DENIED NOT_OWNER", "403 NOT_OWNER"),
    ("admin", "other", "OK", "OK"),
    ("admin", "foreign", "OK", "OK"),
    ("team-b", "own", "OK", "OK"),
    ("stranger", "own", "PERMISSION_DENIED CALLER_UNKNOWN", "403 CALLER_UNKNOWN"),
]


@pytest.mark.parametrize("transport", ["grpc", "rest"])
@pytest.mark.parametrize("party, whose, over_grpc, over_rest", REVOKE_CASES,
                         ids=[f"{'ok' if c[2] == 'OK' else 'fail'}-{c[0]}-revokes-{c[1]}" for c in REVOKE_CASES])
async def test_revoke_matrix(world: World, transport: str, party: str, whose: str, over_grpc: str,
                             over_rest: str) -> None:
    owner = {"own": party if party in ("team-a", "team-b") else "team-a", "other": "team-b"}.get(whose)
    if owner is None:
        serial = await _foreign_serial(world)
    else:
        serial = (await _issued(world, owner, f"r.{owner}.example.com")).serial_number
    got = await _revoke(world, transport, party, serial)
    assert got == (over_grpc if transport == "grpc" else over_rest)
    status, body, _ = await world.rest("admin", "GET", f"{CA_ID}/certificates/{serial}")
    assert status == 200 and (body["certificate"]["status"] == "revoked") is (got == "OK")


@pytest.mark.parametrize("owner, expected", [("team-a", "OK"), ("team-b", "PERMISSION_DENIED NOT_OWNER")])
async def test_renew_only_own_certificates(world: World, owner: str, expected: str) -> None:
    old = await _issued(world, owner, f"renew.{owner}.example.com")
    before = world.orders()
    code, reason, enrollment = await _enroll_grpc(
        world.parties["team-a"], CA_ID, make_csr("renew.team-a.example.com"), renewal=True,
        properties={"RenewalSerialNumber": old.serial_number})
    assert f"{code} {reason}".strip() == expected
    assert world.orders() == before + (1 if code == "OK" else 0)


# ---------------------------------------------------------------- reads


async def test_reads_follow_the_read_grant_and_enrollments_stay_private(world: World) -> None:
    theirs = await _issued(world, "team-b", "read.team-b.example.com")
    team_a = world.parties["team-a"]
    # Certificates of the CA are readable with `read`, whoever ordered them.
    answer = await team_a.certificates.GetCertificate(
        certificates_pb2.GetCertificateRequest(ca_id=CA_ID, serial_number=theirs.serial_number), timeout=10)
    assert answer.certificate.serial_number
    status, listed, _ = await world.rest("team-a", "GET", f"{CA_ID}/certificates")
    assert status == 200 and theirs.serial_number in {c["serialNumber"] for c in listed["certificates"]}
    # Another client's enrollment reads exactly like one that does not exist.
    messages = []
    for enrollment_id in (theirs.id, "00000000-0000-0000-0000-000000000000"):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await team_a.enrollments.GetEnrollment(
                enrollments_pb2.GetEnrollmentRequest(ca_id=CA_ID, enrollment_id=enrollment_id), timeout=10)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        messages.append((caught.value.details() or "").replace(enrollment_id, "ID"))
    assert messages[0] == messages[1]
    own = await world.parties["team-b"].enrollments.GetEnrollment(
        enrollments_pb2.GetEnrollmentRequest(ca_id=CA_ID, enrollment_id=theirs.id), timeout=10)
    assert own.enrollment.id == theirs.id
    # No grant on the other CA: nothing there is readable, not even the CA itself.
    for path in (OTHER_CA, f"{OTHER_CA}/certificates/{theirs.serial_number}", f"{OTHER_CA}/subjects/CN=x",
                 f"{OTHER_CA}/certificates", f"{OTHER_CA}/certificates/{theirs.serial_number}/renewal-info",
                 f"{OTHER_CA}/certificate-events", f"{OTHER_CA}/profiles"):
        status, body, _ = await world.rest("team-a", "GET", path)
        assert (status, body["error"]["code"]) == (403, "CA_NOT_GRANTED")
    assert world.http is not None
    async with world.http.get(f"{world.rest_base}/v1/certificate-authorities", ssl=world.parties["team-a"].ssl) as got:
        listed = await got.json()
    assert [ca["id"] for ca in next(v for v in listed.values() if isinstance(v, list))] == [CA_ID]


async def test_idempotency_keys_are_per_client(world: World) -> None:
    key = {"Idempotency-Key": "same-key-for-both"}
    before = world.orders()
    ids = []
    for party in ("team-a", "team-b"):
        status, body, _ = await world.rest(party, "POST", f"{CA_ID}/enrollments",
                                           {"profileId": PROFILE_ID, "csr": make_csr(f"idem.{party}.example.com")},
                                           headers=key)
        assert status == 200
        ids.append(body["enrollment"]["id"])
    assert ids[0] != ids[1] and world.orders() == before + 2


async def test_subject_revocation_revokes_only_own_and_force_is_admin_only(world: World) -> None:
    cn = "shared.team-a.example.com"
    admins = await _issued(world, "admin", cn)
    mine = [await _issued(world, "team-a", cn) for _ in range(2)]
    team_a = world.parties["team-a"]
    dn = f"CN={cn}"
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # two of its own, above the limit of one
        await team_a.subjects.PerformSubjectAction(subjects_pb2.PerformSubjectActionRequest(
            ca_id=CA_ID, dn=dn, action=common_pb2.Action(type="RevokeAction", force=True)), timeout=10)
    assert (caught.value.code(), _reason(caught.value)) == (grpc.StatusCode.PERMISSION_DENIED, "ADMIN_ONLY")
    await _revoke(world, "grpc", "team-a", mine[0].serial_number)
    answer = await team_a.subjects.PerformSubjectAction(subjects_pb2.PerformSubjectActionRequest(
        ca_id=CA_ID, dn=dn, action=common_pb2.Action(type="RevokeAction")), timeout=10)
    assert list(answer.serial_numbers) == [mine[1].serial_number]  # not the admin's
    status, body, _ = await world.rest("admin", "GET", f"{CA_ID}/certificates/{admins.serial_number}")
    assert body["certificate"]["status"] == "normal"


async def test_fail_no_certificate_where_clients_decide_is_unauthenticated(tmp_path: Path) -> None:
    from tests.integration.stack import running_stack

    admins = [{"name": "admins", "match": {"subject": "CN=pki-admin,O=Example"}, "admin": "true"}]
    async with running_stack(tmp_path, clients=admins) as stack:  # loopback, no TLS: nobody has a certificate
        before = len(stack.simulator.state)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await enrollments_pb2_grpc.EnrollmentServiceStub(stack.channel).Enroll(
                enrollments_pb2.EnrollRequest(ca_id=CA_ID, profile_id=PROFILE_ID, csr=make_csr("a.example.com")),
                timeout=10)
        assert (caught.value.code(), _reason(caught.value)) == (grpc.StatusCode.UNAUTHENTICATED,
                                                               "CALLER_UNAUTHENTICATED")
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{stack.rest_base}/v1/certificate-authorities/{CA_ID}/enrollments",
                                 json={"profileId": PROFILE_ID, "csr": make_csr("a.example.com")}) as response:
                assert response.status == 401  # kept on the enrollment endpoint, not folded into 404
        assert len(stack.simulator.state) == before
        assert stack.gateway.ledger is not None
        entries = await stack.gateway.ledger.audit_entries(ca_id=CA_ID)
        assert [(e.actor, e.outcome) for e in entries] == [("anonymous", "refused")] * 2


async def test_check_enrollment_reports_a_malformed_request_with_the_policy_refusal(world: World) -> None:
    status, body, _ = await world.rest("team-a", "POST", f"{CA_ID}/enrollments:check",
                                       {"profileId": PROFILE_ID, "csr": make_csr("x.team-b.example.com"),
                                        "requestId": "not a valid key"})
    assert status == 200 and body["allowed"] is False
    assert [(r["code"], r["reason"]) for r in body["refusals"]] == [
        ("PERMISSION_DENIED", "NAMES_NOT_GRANTED"), ("INVALID_ARGUMENT", "INVALID_REQUEST")]
    assert body["refusals"][1]["fieldViolations"][0].startswith("requestId: ")
    status, body, _ = await world.rest("team-a", "POST", f"{CA_ID}/enrollments:check", {"csr": "x"})
    assert (status, body["error"]["target"]) == (400, "profileId")


@pytest.mark.parametrize("owner, expected", [("team-a", "OK"), ("team-b", "PERMISSION_DENIED NOT_OWNER"),
                                             ("admin", "PERMISSION_DENIED NOT_OWNER")])
async def test_renew_action_only_on_own_certificates(world: World, owner: str, expected: str) -> None:
    old = await _issued(world, owner, f"action.{'team-a' if owner == 'admin' else owner}.example.com")
    before = world.orders()
    try:
        await world.parties["team-a"].certificates.PerformCertificateAction(
            certificates_pb2.PerformCertificateActionRequest(
                ca_id=CA_ID, serial_number=old.serial_number,
                action=common_pb2.Action(type="RenewAction")),  # same key and names as the renewed certificate
            timeout=10)
        got = "OK"
    except grpc.aio.AioRpcError as error:
        got = f"{error.code().name} {_reason(error)}"
    assert got == expected
    assert world.orders() == before + (1 if got == "OK" else 0)
