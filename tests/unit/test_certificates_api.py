"""CertificateService: lookup by any serial form (ledger, then the CA), revocation and the events feed.

A real SQLite ledger in ``tmp_path`` and a ``FakeConnector`` holding real
certificates; the servicer methods are called directly, as the pipeline does.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from cagw.v1 import certificates_pb2 as pb
from cagw.v1 import common_pb2
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from service.api.certificates import CertificateApi
from service.api.pipeline import CallContext
from service.authorities import CARegistry
from service.certificates import CertificateManager, EventCursor
from service.connectors.base import CommentLimit, OrderStatus, RevokeReason, RevokeRequest
from service.errors import CAUnavailable, CARejected, InvalidRequest, NotFound, Unimplemented
from service.ledger.base import AuditEntry, Ledger
from service.ledger.sqlite import SQLiteLedger
from tests.support.clocks import FakeClock
from tests.unit.fakes import CA_ID, FakeConnector, make_registry, seed_issued

SERIAL = 0x5912BD91
SUBJECT = "CN=iguser iggroup device,OU=MobileIron,OU=2019 POC,O=Jupiter,C=US"
CALLER = "CN=ops-tool,O=Acme"
SERVICE = "/cagw.v1.CertificateService/"


@dataclass
class Env:
    api: CertificateApi
    ledger: Ledger
    connector: FakeConnector
    clock: FakeClock
    cas: CARegistry

    async def get(self, serial: str, fields: str = "") -> pb.GetCertificateResponse:
        return await self.api.GetCertificate(
            pb.GetCertificateRequest(ca_id=CA_ID, serial_number=serial, fields=fields), call("GetCertificate"))

    async def act(self, serial: str, **action: object) -> pb.PerformCertificateActionResponse:
        request = pb.PerformCertificateActionRequest(ca_id=CA_ID, serial_number=serial,
                                                     action=common_pb2.Action(**action))  # type: ignore[arg-type]
        return await self.api.PerformCertificateAction(request, call("PerformCertificateAction"))

    async def events(self, **fields: object) -> pb.ListCertificateEventsResponse:
        request = pb.ListCertificateEventsRequest(ca_id=CA_ID, **fields)  # type: ignore[arg-type]
        return await self.api.ListCertificateEvents(request, call("ListCertificateEvents"))

    async def audit(self) -> list[AuditEntry]:
        return list(reversed(await self.ledger.audit_entries(ca_id=CA_ID)))  # oldest first


def call(method: str) -> CallContext:
    return CallContext(method=SERVICE + method, transport="internal", caller=CALLER)


@pytest.fixture
async def env(tmp_path: Path, ledger: Ledger, clock: FakeClock) -> Env:
    connector = FakeConnector()
    cas = make_registry(tmp_path, [connector])
    return Env(api=CertificateApi(cas, CertificateManager(ledger, clock=clock)), ledger=ledger,
               connector=connector, clock=clock, cas=cas)


def b64(der: bytes) -> str:
    return base64.b64encode(der).decode("ascii")


# ---------------------------------------------------------------- GetCertificate


@pytest.mark.parametrize("serial", [
    pytest.param("5912bd91", id="ok-lowercase"),
    pytest.param("5912BD91", id="ok-uppercase"),
    pytest.param("0" * 32 + "5912bd91", id="ok-zero-padded-40"),
    pytest.param("0x5912BD91", id="ok-0x-prefix"),
    pytest.param("59:12:BD:91", id="ok-colon-bytes"),
    pytest.param("59 12 bd 91", id="ok-space-bytes"),
    pytest.param("  5912bd91 ", id="ok-outer-spaces"),
])
async def test_serial_in_every_form_finds_the_ledger_certificate(env: Env, serial: str) -> None:
    await seed_issued(env.ledger, env.connector, SUBJECT, serial=SERIAL)
    env.connector.calls.clear()
    response = await env.get(serial)
    assert response.certificate.serial_number == "5912bd91"
    assert env.connector.names() == ["details"]  # only the status check; the certificate comes from the ledger


async def test_ok_a_revocation_made_at_the_ca_shows_and_the_ca_is_asked_once_per_interval(env: Env) -> None:
    order, _ = await seed_issued(env.ledger, env.connector, SUBJECT, serial=SERIAL)
    assert (await env.get("5912bd91")).certificate.status == "normal"
    env.connector.orders[order.ca_order_id or ""].status = OrderStatus.REVOKED  # revoked in SCM directly
    env.connector.calls.clear()
    assert (await env.get("5912bd91")).certificate.status == "normal"  # within the interval: the ledger's word
    assert env.connector.names() == []
    env.clock.advance(minutes=6)
    shown = (await env.get("5912bd91")).certificate
    assert shown.status == "revoked" and shown.revocation_info.reason == "unspecified"
    assert env.connector.names() == ["details"]


async def test_ok_the_ledger_answers_when_the_ca_cannot_be_asked(env: Env) -> None:
    await seed_issued(env.ledger, env.connector, SUBJECT, serial=SERIAL)
    env.connector.fail("details", CAUnavailable("down"))
    assert (await env.get("5912bd91")).certificate.status == "normal"


@pytest.mark.parametrize("serial", [
    pytest.param("", id="fail-empty"),
    pytest.param("xyz", id="fail-not-hex"),
    pytest.param("ab" * 21, id="fail-longer-than-20-bytes"),
])
async def test_bad_serial_names_the_field(env: Env, serial: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await env.get(serial)
    assert caught.value.violations[0].field == "serialNumber"
    assert env.connector.names() == []


async def test_certificate_object_has_the_cagw_fields(env: Env) -> None:
    _, record = await seed_issued(env.ledger, env.connector, SUBJECT, serial=SERIAL)
    response = await env.get("5912bd91")
    cert = response.certificate
    parsed = x509.load_der_x509_certificate(record.certificate_der)
    spki = parsed.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    assert cert.status == "normal"
    assert cert.version_number == "3"
    assert cert.serial_number == "5912bd91"
    assert cert.signature_alg_id == "1.2.840.10045.4.3.2"
    assert cert.certificate_signature_alg == "ecdsa-with-SHA256"
    assert cert.issuer_name == "cn=Gateway Test Issuing CA,o=Gateway Tests,c=US"
    assert cert.subject_name == "cn=iguser iggroup device,ou=MobileIron,ou=2019 POC,o=Jupiter,c=US"
    assert cert.rfc2253_encoded_subject_name == "CN=iguser iggroup device, OU=MobileIron, OU=2019 POC, O=Jupiter, C=US"
    assert cert.rfc2253_escaped_subject_name == SUBJECT
    not_before = parsed.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    not_after = parsed.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert cert.validity_period == f"{not_before}/{not_after}"
    assert cert.subject_public_key_info.public_key_alg == "EC"
    assert cert.subject_public_key_info.subject_public_key == b64(spki)
    assert cert.certificate_data == b64(record.certificate_der)
    assert not cert.HasField("revocation_info")
    assert [c.certificate_data for c in response.chain] == [b64(env.connector.ca.der)]


async def test_expired_and_revoked_status(env: Env) -> None:
    _, expired = await seed_issued(env.ledger, env.connector, "CN=old.example.com", days=30)
    _, revoked = await seed_issued(env.ledger, env.connector, "CN=gone.example.com", days=30)
    await env.act(revoked.serial_number, type="RevokeAction", reason="superseded", comment="rotated")
    env.clock.advance(days=60)
    assert (await env.get(expired.serial_number)).certificate.status == "expired"
    gone = (await env.get(revoked.serial_number)).certificate
    assert gone.status == "revoked"  # revoked wins over expired
    assert gone.revocation_info.reason == "superseded"
    assert gone.revocation_info.comment == "rotated"
    assert gone.revocation_info.revocation_date.endswith("Z")


@pytest.mark.parametrize(("fields", "has_data", "has_chain", "has_spki"), [
    pytest.param("", True, True, True, id="ok-default-everything"),
    pytest.param("-certificate.certificateData", False, True, True, id="ok-minus-certificate-data"),
    pytest.param("-certificate.certificate_data", False, True, True, id="ok-proto-name"),
    pytest.param("-chain", True, False, True, id="ok-minus-chain"),
    pytest.param("chain", True, True, True, id="ok-positive-chain-is-default"),
    pytest.param("-certificate.subjectPublicKeyInfo, -chain", True, False, False, id="ok-two-exclusions"),
    pytest.param("-nothing.here,-certificate.nope,foo", True, True, True, id="ok-unknown-paths-ignored"),
])
async def test_fields_projection(env: Env, fields: str, has_data: bool, has_chain: bool, has_spki: bool) -> None:
    await seed_issued(env.ledger, env.connector, SUBJECT, serial=SERIAL)
    response = await env.get("5912bd91", fields=fields)
    assert bool(response.certificate.certificate_data) is has_data
    assert bool(response.chain) is has_chain
    assert response.certificate.HasField("subject_public_key_info") is has_spki
    assert response.certificate.serial_number == "5912bd91"


async def test_certificate_found_at_the_ca_is_stored(env: Env) -> None:
    ca_order = env.connector.add_issued("CN=portal.example.com,O=Acme,C=US", serial=0xABCDEF)
    response = await env.get("AB:CD:EF")
    assert response.certificate.serial_number == "abcdef"
    assert response.certificate.certificate_data == b64(ca_order.certificate_der or b"")
    assert env.connector.names() == ["list", "details", "collect"]
    assert env.connector.calls[0][1].serial_number == 0xABCDEF

    stored = await env.ledger.get_certificate(CA_ID, "abcdef")
    assert stored is not None and stored.order_id is None
    entries = await env.ledger.subject_entries(CA_ID, "cn=portal.example.com,o=acme,c=us")
    assert [e.certificate.serial_number for e in entries if e.certificate] == ["abcdef"]

    env.connector.calls.clear()
    await env.get("abcdef")
    assert env.connector.names() == []  # the second lookup is a ledger hit


async def test_certificate_revoked_at_the_ca_is_refused_by_the_ca(env: Env) -> None:
    env.connector.add_issued("CN=gone.example.com", serial=0x77, status=OrderStatus.REVOKED)
    with pytest.raises(CARejected) as caught:
        await env.get("77")
    assert caught.value.reason == "CA_CERTIFICATE_REVOKED"


async def test_unknown_serial_is_not_found(env: Env) -> None:
    env.connector.add_issued("CN=other.example.com", serial=0x1234)
    with pytest.raises(NotFound) as caught:
        await env.get("5912bd91")
    assert caught.value.reason == "CERTIFICATE_NOT_FOUND"
    assert "5912bd91" in caught.value.message
    assert env.connector.names() == ["list"]


async def test_unknown_ca_is_not_found(env: Env) -> None:
    with pytest.raises(NotFound) as caught:
        await env.api.GetCertificate(pb.GetCertificateRequest(ca_id="nope", serial_number="01"),
                                     call("GetCertificate"))
    assert caught.value.reason == "CA_NOT_CONFIGURED"


async def test_ca_unavailable_during_fallback_propagates(env: Env) -> None:
    env.connector.fail("list", CAUnavailable("fake CA down", retry_after=3))
    with pytest.raises(CAUnavailable):
        await env.get("5912bd91")


# ---------------------------------------------------------------- PerformCertificateAction


async def test_revoke_ok(env: Env) -> None:
    order, record = await seed_issued(env.ledger, env.connector, SUBJECT, serial=SERIAL)
    env.connector.calls.clear()
    response = await env.act("5912BD91", type="RevokeAction", reason="keyCompromise", comment="laptop stolen",
                             compromise_date="2021-04-30T19:07:07.826511Z", properties={"ticket": "SEC-1"})

    action = response.action
    assert action.type == "RevokeAction"
    assert action.status == "COMPLETED"
    assert len(action.id) == 36
    assert action.reason == "keyCompromise"
    assert action.comment == "laptop stolen"
    assert action.compromise_date == "2021-04-30T19:07:07.826511Z"
    assert action.succeed_if_already_in_requested_state is True
    assert dict(action.properties) == {"ticket": "SEC-1"}

    assert env.connector.names() == ["revoke"]
    sent = env.connector.calls[0][1]
    assert sent.order_id == order.ca_order_id  # the CA order from the ledger
    assert sent.serial_number == SERIAL
    assert sent.reason is RevokeReason.KEY_COMPROMISE
    assert sent.comment == "laptop stolen"

    stored = await env.ledger.get_certificate(CA_ID, record.serial_number)
    assert stored is not None and stored.status == "revoked"
    assert stored.revocation_reason == "keyCompromise"
    assert stored.compromise_date == dt.datetime(2021, 4, 30, 19, 7, 7, 826511, tzinfo=dt.timezone.utc)
    shown = (await env.get("5912bd91")).certificate.revocation_info
    assert shown.compromise_date.startswith("2021-04-30T19:07:07")
    [entry] = await env.audit()
    assert (entry.actor, entry.action, entry.target, entry.outcome) == (CALLER, "revoke", "5912bd91", "ok")
    assert "keyCompromise" in entry.detail


@pytest.mark.parametrize(("reason", "expected"), [
    pytest.param("", RevokeReason.UNSPECIFIED, id="ok-empty-is-unspecified"),
    pytest.param("KEYCOMPROMISE", RevokeReason.KEY_COMPROMISE, id="ok-any-case"),
    pytest.param("cessationOfOperation", RevokeReason.CESSATION_OF_OPERATION, id="ok-cessation"),
])
async def test_revoke_reason_names(env: Env, reason: str, expected: RevokeReason) -> None:
    _, record = await seed_issued(env.ledger, env.connector, SUBJECT)
    response = await env.act(record.serial_number, type="RevokeAction", reason=reason)
    assert response.action.reason == expected.cagw_name
    assert env.connector.calls[-1][1].reason is expected


async def test_revoke_already_revoked_does_not_call_the_ca(env: Env) -> None:
    _, record = await seed_issued(env.ledger, env.connector, SUBJECT)
    await env.act(record.serial_number, type="RevokeAction", reason="superseded")
    env.connector.calls.clear()
    response = await env.act(record.serial_number, type="RevokeAction", reason="keyCompromise")
    assert response.action.status == "COMPLETED"
    assert response.action.succeed_if_already_in_requested_state is True
    assert "already revoked" in response.message.message
    assert env.connector.names() == []
    assert [(e.outcome, "already revoked" in e.detail) for e in await env.audit()] == [("ok", False), ("ok", True)]


async def test_concurrent_revokes_reach_the_ca_once(env: Env) -> None:
    _, record = await seed_issued(env.ledger, env.connector, SUBJECT)
    env.connector.calls.clear()
    responses = await asyncio.gather(*(env.act(record.serial_number, type="RevokeAction") for _ in range(3)))
    assert all(r.action.status == "COMPLETED" for r in responses)
    assert env.connector.names() == ["revoke"]


async def test_revoke_a_certificate_only_the_ca_knows(env: Env) -> None:
    ca_order = env.connector.add_issued("CN=portal.example.com", serial=0xC0FFEE)
    response = await env.act("c0ffee", type="RevokeAction", reason="affiliationChanged")
    assert response.action.status == "COMPLETED"
    assert env.connector.names() == ["list", "details", "collect", "revoke"]
    assert env.connector.calls[-1][1].order_id == ca_order.order_id
    stored = await env.ledger.get_certificate(CA_ID, "c0ffee")
    assert stored is not None and stored.status == "revoked" and stored.order_id is None


async def test_revoke_a_certificate_already_revoked_at_the_ca(env: Env) -> None:
    env.connector.add_issued("CN=portal.example.com", serial=0xDEAD, status=OrderStatus.REVOKED)
    response = await env.act("dead", type="RevokeAction")
    assert response.action.status == "COMPLETED"
    assert "revoke" not in env.connector.names()
    [entry] = await env.audit()
    assert entry.outcome == "ok" and "already revoked" in entry.detail


async def test_revoke_when_the_ca_is_down(env: Env) -> None:
    _, record = await seed_issued(env.ledger, env.connector, SUBJECT)
    env.connector.fail("revoke", CAUnavailable("fake CA is down", retry_after=5))
    with pytest.raises(CAUnavailable):
        await env.act(record.serial_number, type="RevokeAction", reason="keyCompromise")
    stored = await env.ledger.get_certificate(CA_ID, record.serial_number)
    assert stored is not None and stored.status == "normal"
    [entry] = await env.audit()
    assert (entry.outcome, entry.actor) == ("failed", CALLER)
    assert "fake CA is down" in entry.detail


async def test_revoke_refused_by_the_ca(env: Env) -> None:
    _, record = await seed_issued(env.ledger, env.connector, SUBJECT)
    env.connector.fail("revoke", CARejected("fake CA says no", reason="CA_VALIDATION_FAILED"))
    with pytest.raises(CARejected):
        await env.act(record.serial_number, type="RevokeAction")
    assert [e.outcome for e in await env.audit()] == ["failed"]


@pytest.mark.parametrize("action_type", [
    pytest.param("HoldAction", id="fail-hold"),
    pytest.param("UnholdAction", id="fail-unhold"),
    pytest.param("ReactivateAction", id="fail-reactivate"),
])
async def test_hold_and_unhold_are_unimplemented(env: Env, action_type: str) -> None:
    _, record = await seed_issued(env.ledger, env.connector, SUBJECT)
    env.connector.calls.clear()
    with pytest.raises(Unimplemented) as caught:
        await env.act(record.serial_number, type=action_type, reason="unspecified")
    assert "Sectigo has no certificate hold" in caught.value.message
    assert env.connector.names() == []
    [entry] = await env.audit()
    assert entry.outcome == "refused"


@pytest.mark.parametrize(("action", "field"), [
    pytest.param({"type": "RevokeAction", "reason": "becauseISaidSo"}, "action.reason", id="fail-bad-reason"),
    pytest.param({"type": "DestroyAction"}, "action.type", id="fail-bad-type"),
    pytest.param({"type": ""}, "action.type", id="fail-missing-type"),
    pytest.param({"type": "RevokeAction", "comment": "x" * 513}, "action.comment", id="fail-comment-too-long"),
    pytest.param({"type": "RevokeAction", "compromise_date": "yesterday"}, "action.compromiseDate",
                 id="fail-bad-compromise-date"),
])
async def test_bad_action_names_the_field(env: Env, action: dict[str, str], field: str) -> None:
    _, record = await seed_issued(env.ledger, env.connector, SUBJECT)
    env.connector.calls.clear()
    with pytest.raises(InvalidRequest) as caught:
        await env.act(record.serial_number, **action)
    assert [v.field for v in caught.value.violations] == [field]
    assert env.connector.names() == []
    assert [e.outcome for e in await env.audit()] == ["refused"]


async def test_comment_of_512_characters_is_fine(env: Env) -> None:
    _, record = await seed_issued(env.ledger, env.connector, SUBJECT)
    response = await env.act(record.serial_number, type="RevokeAction", comment="x" * 512)
    assert response.action.comment == "x" * 512


async def test_revoke_unknown_serial(env: Env) -> None:
    with pytest.raises(NotFound) as caught:
        await env.act("5912bd91", type="RevokeAction")
    assert caught.value.reason == "CERTIFICATE_NOT_FOUND"
    assert [(e.outcome, e.target) for e in await env.audit()] == [("refused", "5912bd91")]


class _WithHold(FakeConnector):
    async def hold(self, request: RevokeRequest) -> None:
        self._enter("hold", request)

    async def unhold(self, request: RevokeRequest) -> None:
        self._enter("unhold", request)


async def _env_with(tmp_path: Path, connector: FakeConnector) -> tuple[CertificateApi, SQLiteLedger]:
    ledger = SQLiteLedger(tmp_path / "capability.db")
    await ledger.open()
    return CertificateApi(make_registry(tmp_path, [connector]), CertificateManager(ledger)), ledger


async def _act(api: CertificateApi, serial: str, **action: object) -> pb.PerformCertificateActionResponse:
    request = pb.PerformCertificateActionRequest(ca_id=CA_ID, serial_number=serial,
                                                 action=common_pb2.Action(**action))  # type: ignore[arg-type]
    return await api.PerformCertificateAction(request, call("PerformCertificateAction"))


async def test_ok_without_a_comment_limit_the_gateway_sets_none(tmp_path: Path) -> None:
    connector = FakeConnector(comment_limit=None)
    assert not isinstance(connector, CommentLimit)
    api, ledger = await _env_with(tmp_path, connector)
    try:
        _, record = await seed_issued(ledger, connector, SUBJECT)
        response = await _act(api, record.serial_number, type="RevokeAction", comment="x" * 2000)
        assert response.action.comment == "x" * 2000
        assert connector.orders[next(iter(connector.orders))].revocations[0].comment == "x" * 2000
    finally:
        await ledger.close()


async def test_fail_hold_with_a_capable_ca_says_the_gateway_cannot_record_it(tmp_path: Path) -> None:
    connector = _WithHold()
    api, ledger = await _env_with(tmp_path, connector)
    try:
        _, record = await seed_issued(ledger, connector, SUBJECT)
        connector.calls.clear()
        with pytest.raises(Unimplemented) as caught:
            await _act(api, record.serial_number, type="HoldAction", reason="certificateHold")
        assert "the gateway cannot record a suspended certificate yet" in caught.value.message
        assert "has no certificate hold" not in caught.value.message
        assert connector.names() == []
    finally:
        await ledger.close()


# ---------------------------------------------------------------- ListCertificateEvents


async def _seven_events(env: Env) -> list[str]:
    """Five issued certificates, two of them then revoked: seven events."""
    serials = []
    for index in range(5):
        _, record = await seed_issued(env.ledger, env.connector, f"CN=host{index}.example.com")
        serials.append(record.serial_number)
    for serial in serials[:2]:
        await env.act(serial, type="RevokeAction", reason="superseded")
    return serials


async def test_events_paged_with_a_cursor(env: Env) -> None:
    serials = await _seven_events(env)
    pages: list[pb.ListCertificateEventsResponse] = [await env.events(preferred_page_size=3)]
    while pages[-1].more_pages:
        pages.append(await env.events(next_page_index=pages[-1].next_page_index))
    assert [len(p.events) for p in pages] == [3, 3, 1]
    assert [(p.more_pages, p.has_more) for p in pages] == [(True, True), (True, True), (False, False)]
    assert [(p.metadata.current_count, p.metadata.total_count, p.metadata.current_offset,
             p.metadata.current_limit) for p in pages] == [(3, 7, 0, 3), (3, 7, 3, 3), (1, 7, 6, 3)]

    events = [e for p in pages for e in p.events]
    assert [e.event for e in events] == sorted(e.event for e in events)
    assert len({e.event for e in events}) == 7
    assert [e.action for e in events] == ["issued"] * 5 + ["revoked"] * 2
    assert [e.serial_number for e in events] == serials + serials[:2]
    assert events[-1].reason == "superseded"
    assert all(e.event_date.endswith("Z") for e in events)
    first = await env.ledger.get_certificate(CA_ID, serials[0])
    assert first is not None and events[0].certificate == b64(first.certificate_der)

    # The last page still carries a cursor: a feed reader resumes from it later.
    assert pages[-1].next_page_index
    assert len((await env.events(next_page_index=pages[-1].next_page_index)).events) == 0
    await seed_issued(env.ledger, env.connector, "CN=later.example.com")
    later = await env.events(next_page_index=pages[-1].next_page_index)
    assert [e.action for e in later.events] == ["issued"]


async def test_events_start_date_filter(env: Env) -> None:
    serials = [(await seed_issued(env.ledger, env.connector, f"CN=h{i}.example.com"))[1].serial_number
               for i in range(3)]
    env.clock.advance(days=10)  # the revocations happen ten days after the issues
    for serial in serials[:2]:
        await env.act(serial, type="RevokeAction")
    start = (env.clock.now - dt.timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    page = await env.events(start_date=start, preferred_page_size=1)
    assert [(e.action, e.serial_number) for e in page.events] == [("revoked", serials[0])]
    assert page.metadata.total_count == 2
    # The cursor keeps the start date, even when the next call repeats a different one (S2 sends both).
    rest = await env.events(next_page_index=page.next_page_index, start_date="2000-01-01T00:00:00.00Z")
    assert [(e.action, e.serial_number) for e in rest.events] == [("revoked", serials[1])]
    assert rest.more_pages is False and rest.metadata.total_count == 2


async def test_events_without_certificates(env: Env) -> None:
    await _seven_events(env)
    page = await env.events(fields="-events.certificate")
    assert len(page.events) == 7
    assert all(e.certificate == "" and e.serial_number for e in page.events)


@pytest.mark.parametrize(("size", "limit"), [
    pytest.param(0, 50, id="ok-default-50"),
    pytest.param(7, 7, id="ok-as-asked"),
    pytest.param(10_000, 500, id="ok-capped-at-500"),
])
async def test_events_page_size(env: Env, size: int, limit: int) -> None:
    page = await env.events(preferred_page_size=size)
    assert page.metadata.current_limit == limit
    assert (len(page.events), page.more_pages) == (0, False)


CURSOR = {"after_id": 3, "since": None, "offset": 3, "limit": 3}


def _token(document: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    pytest.param("not a cursor!", id="fail-not-base64"),
    pytest.param(_token([1, 2]), id="fail-not-an-object"),
    pytest.param(base64.urlsafe_b64encode(b"\xff\xfe").decode(), id="fail-not-json"),
    pytest.param(_token({**CURSOR, "after_id": -1}), id="fail-negative-id"),
    pytest.param(_token({**CURSOR, "after_id": "3"}), id="fail-id-not-int"),
    pytest.param(_token({**CURSOR, "after_id": True}), id="fail-id-bool"),
    pytest.param(_token({**CURSOR, "offset": 1.5}), id="fail-offset-float"),
    pytest.param(_token({**CURSOR, "limit": 0}), id="fail-limit-zero"),
    pytest.param(_token({**CURSOR, "limit": 501}), id="fail-limit-above-cap"),
    pytest.param(_token({**CURSOR, "since": "last week"}), id="fail-bad-since"),
    pytest.param(_token({**CURSOR, "since": "2024-01-01T00:00:00"}), id="fail-naive-since"),
    pytest.param(_token({"after_id": 3, "since": None, "offset": 0}), id="fail-missing-key"),
    pytest.param(_token({**CURSOR, "admin": True}), id="fail-extra-key"),
])
async def test_tampered_cursor_is_refused(env: Env, cursor: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await env.events(next_page_index=cursor)
    assert caught.value.violations[0].field == "nextPageIndex"


def test_cursor_round_trip() -> None:
    cursor = EventCursor(after_id=42, since=dt.datetime(2024, 3, 5, 22, 43, 23, 429157, dt.timezone.utc), offset=7,
                         limit=9)
    token = cursor.encode()
    assert "=" not in token and "+" not in token and "/" not in token
    assert EventCursor.decode(token) == cursor


@pytest.mark.parametrize(("fields", "field"), [
    pytest.param({"start_date": "the beginning"}, "startDate", id="fail-bad-start-date"),
    pytest.param({"preferred_page_size": -1}, "preferredPageSize", id="fail-negative-page-size"),
])
async def test_bad_events_request(env: Env, fields: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await env.events(**fields)
    assert caught.value.violations[0].field == field


async def test_events_of_one_ca_only(env: Env) -> None:
    await seed_issued(env.ledger, env.connector, "CN=elsewhere.example.com", ca_id=f"{CA_ID}-2")
    assert (await env.events()).metadata.total_count == 0


async def test_events_page_size_is_kept_by_the_cursor_unless_asked_again(env: Env) -> None:
    await _seven_events(env)
    first = await env.events(preferred_page_size=2)
    kept = await env.events(next_page_index=first.next_page_index)
    assert (len(kept.events), kept.metadata.current_limit) == (2, 2)
    changed = await env.events(next_page_index=kept.next_page_index, preferred_page_size=4)
    assert (len(changed.events), changed.metadata.current_offset, changed.more_pages) == (3, 4, False)
