"""The ``clients`` policy: matching callers, grants, name rules, ownership and quotas."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import parse_config
from service.config.settings import ClientSettings
from service.errors import CallerDenied, ConfigError
from service.policy import Caller, CallerPolicy, CertificateName, PeerIdentity, dns_allowed, email_allowed
from service.policy import ip_allowed, uri_allowed
from service.x509 import normalize_dn


def _config(tmp_path: Path, clients: object) -> tuple[ClientSettings, ...]:
    document = {
        "managed-cas": [{"id": "ca-ov", "connector": "sectigo", "properties": {
            "url": "http://127.0.0.1:1/api", "customer-uri": "c", "org-id": "1", "login": "l",
            "login-password": "p"}}],
        "clients": clients,
    }
    config = parse_config(document, base_dir=tmp_path, environ={})
    assert config.clients is not None
    return config.clients


TEAM_A = {
    "name": "team-a",
    "match": {"subject": "CN=team-a,O=Example", "uri-san": "spiffe://example.org/ns/team-a/sa/deployer",
              "sha256": "9F:86:D0:81:88:4C:7D:65:9A:2F:EA:A0:C5:5A:D0:15:A3:BF:4F:1B:2B:0B:82:2C:D1:5D:6C:15:B0:F0:0A:08"},
    "grants": [{"cas": ["ca-ov"], "profiles": ["ov-server"], "operations": ["read", "enroll", "renew", "revoke"],
                "names": ["team-a.example.com", "*.team-a.example.com"], "emails": ["*@team-a.example.com"],
                "ips": ["10.20.0.0/16"], "uris": ["spiffe://example.org/ns/team-a/*"]}],
    "limits": {"max-pending": "20", "orders-per-hour": "200", "event-watches": "2"},
}
ADMIN = {"name": "pki-admins", "match": {"subject": "CN=pki-admin,O=Example"}, "admin": "true"}


@pytest.fixture
def policy(tmp_path: Path) -> CallerPolicy:
    return CallerPolicy(_config(tmp_path, [TEAM_A, ADMIN]))


def _identity(subject: str = "", uris: tuple[str, ...] = (), sha256: str = "") -> PeerIdentity:
    return PeerIdentity(subject=subject, normalized_subject=normalize_dn(subject) if subject else "",
                        uri_sans=uris, sha256=sha256)


def test_ok_the_section_parses_into_normalised_values(tmp_path: Path) -> None:
    (team, admin) = _config(tmp_path, [TEAM_A, ADMIN])
    assert team.match.subjects == ("cn=team-a,o=example",)
    assert team.match.sha256 == ("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",)
    assert team.grants[0].operations == frozenset({"read", "enroll", "renew", "revoke"})
    assert (team.limits.max_pending, team.limits.orders_per_hour, team.limits.event_watches) == (20, 200, 2)
    assert admin.admin and admin.grants == ()


@pytest.mark.parametrize("clients, expected", [
    pytest.param([{**TEAM_A, "name": "a/b"}], "clients[0] (name a/b).name: 'a/b' must be 1-64 characters",
                 id="fail-name"),
    pytest.param([{"name": "x", "match": {"subject": "CN=x"}}], "clients[0] (name x).grants: is required unless admin",
                 id="fail-no-grants"),
    pytest.param([{"name": "x", "admin": "true"}], "clients[0] (name x).match: is required", id="fail-no-match"),
    pytest.param([{"name": "x", "match": {"sha256": "abc"}, "admin": "true"}],
                 "clients[0] (name x).match.sha256: must be a SHA-256 fingerprint", id="fail-sha256"),
    pytest.param([{"name": "x", "match": {"subject": "CN=x"}, "grants": [{"cas": ["nope"], "operations": ["read"]}]}],
                 "clients[0] (name x).grants[0].cas: 'nope' is not the id of a CA in managed-cas", id="fail-unknown-ca"),
    pytest.param([{"name": "x", "match": {"subject": "CN=x"}, "grants": [{"cas": ["*"], "operations": ["delete"]}]}],
                 "clients[0] (name x).grants[0].operations: unknown operation 'delete'", id="fail-operation"),
    pytest.param([{"name": "x", "match": {"subject": "CN=x"},
                   "grants": [{"cas": ["*"], "operations": ["enroll"], "names": ["*.*.example.com"]}]}],
                 "clients[0] (name x).grants[0].names: '*.*.example.com' is not a valid pattern", id="fail-pattern"),
    pytest.param([{"name": "x", "match": {"subject": "CN=x"},
                   "grants": [{"cas": ["*"], "operations": ["enroll"], "ips": ["10.0.0.1/8"]}]}],
                 "clients[0] (name x).grants[0].ips: '10.0.0.1/8' is not a valid pattern", id="fail-network"),
    pytest.param([ADMIN, ADMIN], "clients[1] (name pki-admins): duplicate client name", id="fail-duplicate"),
])
def test_fail_bad_clients_entries_name_their_path(tmp_path: Path, clients: object, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, clients)
    assert any(problem.startswith(expected) for problem in caught.value.problems), caught.value.problems


@pytest.mark.parametrize("identity", [
    pytest.param(_identity("cn=TEAM-A, o=example"), id="ok-subject-normalised"),
    pytest.param(_identity("CN=other", uris=("spiffe://example.org/ns/team-a/sa/deployer",)), id="ok-uri-san"),
    pytest.param(_identity("CN=other", sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
                 id="ok-fingerprint"),
])
def test_ok_a_caller_is_the_client_when_any_match_entry_matches(policy: CallerPolicy, identity: PeerIdentity) -> None:
    assert policy.resolve(identity).name == "team-a"


def test_fail_deny_by_default(policy: CallerPolicy) -> None:
    with pytest.raises(CallerDenied) as unknown:
        policy.resolve(_identity("CN=stranger", sha256="00" * 32))
    assert unknown.value.authenticated and unknown.value.reason == "CALLER_UNKNOWN"
    with pytest.raises(CallerDenied) as anonymous:
        policy.resolve(None)
    assert not anonymous.value.authenticated


def test_ok_without_clients_everyone_may_do_everything() -> None:
    caller = CallerPolicy(None).resolve(None)
    assert caller.admin and caller.may("revoke", "any").allowed and caller.name == ""


@pytest.mark.parametrize("operation, ca_id, profile, reason", [
    ("enroll", "ca-ov", "ov-server", ""),
    ("enroll", "ca-ev", "ov-server", "CA_NOT_GRANTED"),
    ("enroll", "ca-ov", "ev-server", "PROFILE_NOT_GRANTED"),
])
def test_operation_ca_and_profile_decisions(policy: CallerPolicy, operation: str, ca_id: str, profile: str,
                                            reason: str) -> None:
    decision = policy.resolve(_identity("CN=team-a,O=Example")).may(operation, ca_id, profile)  # type: ignore[arg-type]
    assert (decision.allowed, decision.reason) == (not reason, reason)
    if not reason:
        assert decision.grant == "team-a.grants[0]"


def test_fail_operation_outside_the_grant_names_what_is_granted(tmp_path: Path) -> None:
    reader = {"name": "ro", "match": {"subject": "CN=ro"}, "grants": [{"cas": ["*"], "operations": ["read"]}]}
    caller = CallerPolicy(_config(tmp_path, [reader])).resolve(_identity("CN=ro"))
    decision = caller.may("revoke", "ca-ov")
    assert (decision.allowed, decision.reason) == (False, "OPERATION_NOT_GRANTED")
    assert "may not revoke on CA ca-ov (granted there: read)" in decision.message


def test_names_every_refused_name_is_listed(policy: CallerPolicy) -> None:
    caller = policy.resolve(_identity("CN=team-a,O=Example"))
    names = [CertificateName("dNSName", "www.team-a.example.com", "csr CN"),
             CertificateName("dNSName", "evil.example.com", "csr SAN"),
             CertificateName("iPAddress", "10.20.1.1", "subjectAltNames"),
             CertificateName("iPAddress", "10.99.1.1", "subjectAltNames"),
             CertificateName("directoryName", "CN=x", "csr SAN")]
    decision = caller.may_order("enroll", "ca-ov", "ov-server", names)
    assert not decision.allowed and decision.reason == "NAMES_NOT_GRANTED"
    assert [n.value for n in decision.refused_names] == ["evil.example.com", "10.99.1.1", "CN=x"]
    assert "evil.example.com" in decision.message and "10.99.1.1" in decision.message
    assert caller.may_order("enroll", "ca-ov", "ov-server", names[:1] + names[2:3]).allowed


@pytest.mark.parametrize("name, allowed", [
    ("team-a.example.com", True), ("TEAM-A.Example.com", True), ("a.team-a.example.com", True),
    ("a.b.team-a.example.com", True), ("*.team-a.example.com", True), ("xteam-a.example.com", False),
    ("example.com", False), ("team-a.example.com.", False), ("a..team-a.example.com", False), ("", False),
])
def test_dns_name_rules(name: str, allowed: bool) -> None:
    assert dns_allowed(name, ("team-a.example.com", "*.team-a.example.com")) is allowed


def test_other_name_kinds() -> None:
    assert email_allowed("Ops@Team-A.example.com", ("*@team-a.example.com",))
    assert not email_allowed("ops@example.com", ("*@team-a.example.com",))
    assert email_allowed("x@a.team-a.example.com", ("*@*.team-a.example.com",))
    assert ip_allowed("10.20.3.4", ("10.20.0.0/16",)) and not ip_allowed("10.21.0.1", ("10.20.0.0/16",))
    assert not ip_allowed("::1", ("10.20.0.0/16",))
    assert uri_allowed("spiffe://Example.org/ns/team-a/sa/x", ("spiffe://example.org/ns/team-a/*",))
    assert not uri_allowed("spiffe://example.org/ns/team-b/sa/x", ("spiffe://example.org/ns/team-a/*",))


def test_ownership_and_admin(policy: CallerPolicy) -> None:
    team = policy.resolve(_identity("CN=team-a,O=Example"))
    admin = policy.resolve(_identity("CN=pki-admin,O=Example"))
    assert team.owns("team-a", operation="revoke", ca_id="ca-ov", target="serial 1").allowed
    other = team.owns("team-b", operation="revoke", ca_id="ca-ov", target="serial 1")
    assert (other.allowed, other.reason) == (False, "NOT_OWNER")
    assert not team.owns(None, operation="revoke", ca_id="ca-ov", target="serial 1").allowed
    assert admin.owns(None, operation="revoke", ca_id="ca-ov", target="serial 1").allowed
    assert admin.may_order("enroll", "ca-ev", "any", [CertificateName("dNSName", "x.org", "csr CN")]).allowed
    assert not team.admin_only("force a subject revocation", ca_id="ca-ov").allowed


def test_caller_unrestricted_is_open() -> None:
    assert Caller.unrestricted().may("enroll", "x").grant == "open"




# ---------------------------------------------------------------- who can reach a listener


def _listeners(tmp_path: Path, *, grpc: dict[str, object], clients: object = None,
               url: str = "http://127.0.0.1:1/api") -> None:
    (tmp_path / "c.pem").write_text("placeholder")
    document: dict[str, object] = {
        "grpc": grpc,
        "managed-cas": [{"id": "ca-ov", "connector": "sectigo", "properties": {
            "url": url, "customer-uri": "c", "org-id": "1", "login": "l", "login-password": "p"}}],
    }
    if clients is not None:
        document["clients"] = clients
    parse_config(document, base_dir=tmp_path, environ={})


MUTUAL = {"cert": "c.pem", "key": "c.pem", "client-ca": "c.pem"}


@pytest.mark.parametrize("grpc, clients, expected", [
    pytest.param({"tls": MUTUAL}, None, "grpc.tls.client-ca: tls.client-ca is set, so a clients section is required",
                 id="fail-client-ca-without-clients"),
    pytest.param({"listen": "0.0.0.0:1"}, None, "grpc.listen: 0.0.0.0 is not a loopback address: without a clients",
                 id="fail-open-listener-without-clients"),
    pytest.param({"listen": "10.0.0.5:1", "tls": {"cert": "c.pem", "key": "c.pem"}}, [ADMIN],
                 "grpc.listen: 10.0.0.5 is not a loopback address: a listener open to the network needs",
                 id="fail-open-listener-without-client-ca"),
])
def test_fail_listener_rules(tmp_path: Path, grpc: dict[str, object], clients: object, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _listeners(tmp_path, grpc=grpc, clients=clients)
    assert any(problem.startswith(expected) for problem in caught.value.problems), caught.value.problems


@pytest.mark.parametrize("grpc, clients", [
    pytest.param({}, None, id="ok-loopback-without-clients"),
    pytest.param({"listen": "[::1]:1"}, None, id="ok-ipv6-loopback"),
    pytest.param({"listen": "0.0.0.0:1", "tls": MUTUAL}, [ADMIN], id="ok-mutual-tls-with-clients"),
    pytest.param({"listen": "0.0.0.0:1", "insecure": "true"}, None, id="ok-insecure-by-consent"),
])
def test_ok_listener_rules(tmp_path: Path, grpc: dict[str, object], clients: object) -> None:
    _listeners(tmp_path, grpc=grpc, clients=clients)


def test_fail_plain_http_to_a_remote_ca(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _listeners(tmp_path, grpc={}, url="http://cert-manager.example.com/api")
    assert any("is plain HTTP to a host that is not loopback" in p for p in caught.value.problems)


def test_insecure_listeners_and_open_policies_warn_at_start(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from service.app import Gateway

    document = {
        "grpc": {"listen": "0.0.0.0:1", "insecure": "true"},
        "managed-cas": [{"id": "ca-ov", "connector": "sectigo", "properties": {
            "url": "http://127.0.0.1:1/api", "customer-uri": "c", "org-id": "1", "login": "l",
            "login-password": "p"}}],
    }
    with caplog.at_level("WARNING", logger="service.app"):
        Gateway(parse_config(document, base_dir=tmp_path, environ={}))._warn_about_listeners()
    messages = [record.getMessage() for record in caplog.records]
    assert any("no clients section" in m for m in messages)
    assert any(m.startswith("grpc.listen 0.0.0.0:1 is marked insecure") for m in messages)


def test_certificate_names_counts_every_source() -> None:
    from service.connectors.base import SubjectAltName
    from service.enrollment.authorize import certificate_names
    from service.ledger.base import NewOrder
    from service.x509 import parse_csr
    from tests.integration.stack import make_csr

    csr = parse_csr(make_csr("web.team-a.example.com", sans=("web.team-a.example.com", "csr-only.example.com")))
    order = NewOrder(id="", ca_id="ca", profile_id="p", ca_profile_id="1", term_days=365, csr_pem=csr.pem,
                     fingerprint="f", requested_dn="cn=web.team-a.example.com", common_name="web.team-a.example.com",
                     subject_alt_names=(SubjectAltName("dNSName", "request.example.com"),), marker="")
    names = certificate_names(order, csr, request_sans=(("dNSName", "request.example.com"),))
    assert [(n.value, n.source) for n in names] == [
        ("web.team-a.example.com", "csr CN"), ("request.example.com", "subjectAltNames"),
        ("csr-only.example.com", "csr SAN")]


async def test_a_renewal_the_gateway_places_itself_stays_with_the_owning_client(tmp_path: Path) -> None:
    import dataclasses

    from service.enrollment.authorize import inherit_owner
    from service.ledger import open_ledger
    from tests.unit.ledger_records import new_certificate, new_order

    ledger = await open_ledger(tmp_path / "ledger.db")
    try:
        await ledger.create_order(dataclasses.replace(new_order("o-1"), client="team-a"))
        await ledger.record_issued("o-1", dataclasses.replace(new_certificate("1a"), order_id="o-1"))
        renewal = dataclasses.replace(new_order("o-2", fingerprint="other"), renewal_of_serial="1a")
        inherited = await inherit_owner(ledger, Caller.unrestricted(), renewal)
        assert inherited is not None and inherited.client == "team-a"
        team_b = Caller(identity=PeerIdentity(subject="CN=b"), client=None, enforced=True)
        assert (await inherit_owner(ledger, team_b, renewal)) is renewal  # a caller's own renewal is its own
    finally:
        await ledger.close()
