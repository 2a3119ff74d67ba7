"""SubjectService: every certificate of a DN however it is written, and revoking them all (with its limit).

A real SQLite ledger in ``tmp_path`` and a ``FakeConnector`` holding real
certificates; the servicer methods are called directly, as the pipeline does.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import pytest
from cagw.v1 import common_pb2
from cagw.v1 import subjects_pb2 as pb

from service.certificates import CertificateManager
from service.api.pipeline import CallContext
from service.api.subjects import SubjectApi
from service.errors import CAUnavailable, FailedPrecondition, InvalidRequest, NotFound, Unimplemented
from service.ledger.base import AuditEntry, Ledger, OrderState
from tests.support.clocks import FakeClock
from tests.unit.fakes import CA_ID, FakeConnector, make_registry, seed_issued, seed_order

SUBJECT = "CN=web.example.com,OU=Ops,O=Acme Corp,C=US"
NORMALIZED = "cn=web.example.com,ou=ops,o=acme corp,c=us"
CALLER = "CN=ops-tool,O=Acme"
LIMIT = 3


@dataclass
class Env:
    api: SubjectApi
    ledger: Ledger
    connector: FakeConnector
    clock: FakeClock

    async def get(self, dn: str) -> pb.Subject:
        response = await self.api.GetSubject(pb.GetSubjectRequest(ca_id=CA_ID, dn=dn),
                                             call("GetSubject"))
        return response.subject

    async def act(self, dn: str, **action: object) -> pb.PerformSubjectActionResponse:
        request = pb.PerformSubjectActionRequest(ca_id=CA_ID, dn=dn,
                                                 action=common_pb2.Action(**action))  # type: ignore[arg-type]
        return await self.api.PerformSubjectAction(request, call("PerformSubjectAction"))

    async def audit(self) -> list[AuditEntry]:
        return list(reversed(await self.ledger.audit_entries(ca_id=CA_ID)))  # oldest first

    async def issue(self, count: int, subject: str = SUBJECT) -> list[str]:
        return [(await seed_issued(self.ledger, self.connector, subject))[1].serial_number for _ in range(count)]


def call(method: str) -> CallContext:
    return CallContext(method=f"/cagw.v1.SubjectService/{method}", transport="internal", caller=CALLER)


@pytest.fixture
async def env(tmp_path: Path, ledger: Ledger, clock: FakeClock) -> Env:
    connector = FakeConnector()
    cas = make_registry(tmp_path, [connector], subject_revoke_limit=LIMIT)
    return Env(api=SubjectApi(cas, CertificateManager(ledger, clock=clock)), ledger=ledger, connector=connector,
               clock=clock)


# ---------------------------------------------------------------- GetSubject


@pytest.mark.parametrize("dn", [
    pytest.param(SUBJECT, id="ok-as-issued"),
    pytest.param("cn=web.example.com, ou=ops, o=acme corp, c=us", id="ok-lowercase-with-spaces"),
    pytest.param("CN = WEB.example.com ,OU=Ops,  O=Acme   Corp ,C=US", id="ok-spacing-and-case"),
    pytest.param("commonName=web.example.com;OU=Ops;O=Acme Corp;countryName=US", id="ok-long-types-semicolons"),
    pytest.param("CN=web.example.com,OU=Ops,O=Acme Corp,C=US ", id="ok-trailing-space"),
])
async def test_subject_found_however_the_dn_is_written(env: Env, dn: str) -> None:
    [serial] = await env.issue(1)
    subject = await env.get(dn)
    assert subject.dn == NORMALIZED
    assert [c.serial_number for c in subject.certificates] == [serial]


async def test_subject_lists_pending_issued_and_revoked_newest_first(env: Env) -> None:
    first, record_first = await seed_issued(env.ledger, env.connector, SUBJECT)
    second, record_second = await seed_issued(env.ledger, env.connector, SUBJECT)
    await env.ledger.mark_revoked(CA_ID, record_second.serial_number, reason="superseded", comment="",
                                  when=env.clock.now)
    await seed_order(env.ledger, SUBJECT, state=OrderState.FAILED)
    await seed_order(env.ledger, SUBJECT, state=OrderState.ABANDONED)
    pending = await seed_order(env.ledger, SUBJECT, state=OrderState.COLLECTING)

    subject = await env.get(SUBJECT)
    assert [(c.status, c.enrollment_id, c.serial_number) for c in subject.certificates] == [
        ("PENDING", pending.id, ""),
        ("revoked", second.id, record_second.serial_number),
        ("normal", first.id, record_first.serial_number),
    ]
    oldest = subject.certificates[2]
    assert oldest.certificate_data == base64.b64encode(record_first.certificate_der).decode()
    assert oldest.subject_name == "cn=web.example.com,ou=Ops,o=Acme Corp,c=US"
    assert oldest.validity_period.count("Z") == 2 and "/" in oldest.validity_period
    assert subject.certificates[0].validity_period == "" and subject.certificates[0].certificate_data == ""


async def test_subject_of_an_order_filed_under_the_requested_dn(env: Env) -> None:
    pending = await seed_order(env.ledger, "CN=requested.example.com,O=Acme", state=OrderState.SUBMITTED)
    subject = await env.get("cn=REQUESTED.example.com, o=acme")
    assert [(c.status, c.enrollment_id) for c in subject.certificates] == [("PENDING", pending.id)]


async def test_expired_certificate(env: Env) -> None:
    await seed_issued(env.ledger, env.connector, SUBJECT, days=10)
    env.clock.advance(days=20)
    assert [c.status for c in (await env.get(SUBJECT)).certificates] == ["expired"]


async def test_unknown_subject(env: Env) -> None:
    await env.issue(1)
    await seed_order(env.ledger, "CN=failed.example.com", state=OrderState.FAILED)
    for dn in ("CN=nobody.example.com", "CN=failed.example.com"):
        with pytest.raises(NotFound) as caught:
            await env.get(dn)
        assert caught.value.reason == "SUBJECT_NOT_FOUND"


async def test_ok_subject_pages_walk_every_entry_once_newest_first(env: Env) -> None:
    serials = [(await seed_issued(env.ledger, env.connector, SUBJECT))[1].serial_number for _ in range(5)]
    await seed_order(env.ledger, SUBJECT, state=OrderState.FAILED)  # never listed, but read
    seen: list[str] = []
    token, pages = "", 0
    while True:
        response = await env.api.GetSubject(
            pb.GetSubjectRequest(ca_id=CA_ID, dn=SUBJECT, preferred_page_size=2, next_page_index=token),
            call("GetSubject"))
        pages += 1
        assert len(response.subject.certificates) <= 2
        seen += [c.serial_number for c in response.subject.certificates]
        assert response.more_pages == bool(response.next_page_index)
        if not response.more_pages:
            break
        token = response.next_page_index
        # A new order arriving at the front while a caller pages does not shift the pages.
        await seed_order(env.ledger, SUBJECT, state=OrderState.COLLECTING)
    assert seen == list(reversed(serials)) and pages == 3


async def test_ok_subject_page_size_is_capped(env: Env) -> None:
    await env.issue(1)
    response = await env.api.GetSubject(pb.GetSubjectRequest(ca_id=CA_ID, dn=SUBJECT, preferred_page_size=10**6),
                                        call("GetSubject"))
    assert len(response.subject.certificates) == 1 and not response.more_pages


@pytest.mark.parametrize(("size", "token", "words"), [
    pytest.param(-1, "", "must not be negative", id="fail-negative-size"),
    pytest.param(0, "not-a-cursor", "does not decode", id="fail-garbage-cursor"),
    pytest.param(0, "eyJhIjoxfQ", "unexpected content", id="fail-foreign-json-cursor"),
    pytest.param(0, "OTHER", "belongs to another subject", id="fail-cursor-of-another-subject"),
])
async def test_fail_subject_paging_input(env: Env, size: int, token: str, words: str) -> None:
    await env.issue(3, subject="CN=other.example.com")
    if token == "OTHER":
        first = await env.api.GetSubject(pb.GetSubjectRequest(ca_id=CA_ID, dn="CN=other.example.com",
                                                              preferred_page_size=1), call("GetSubject"))
        token = first.next_page_index
    await env.issue(1)
    with pytest.raises(InvalidRequest) as caught:
        await env.api.GetSubject(pb.GetSubjectRequest(ca_id=CA_ID, dn=SUBJECT, preferred_page_size=size,
                                                      next_page_index=token), call("GetSubject"))
    assert words in caught.value.violations[0].description


@pytest.mark.parametrize("dn", [
    pytest.param("", id="fail-empty"),
    pytest.param("web.example.com", id="fail-no-attribute-type"),
    pytest.param("XX=web", id="fail-unknown-attribute-type"),
])
async def test_bad_dn_names_the_field(env: Env, dn: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await env.get(dn)
    assert caught.value.violations[0].field == "dn"


# ---------------------------------------------------------------- PerformSubjectAction


async def test_revoke_subject_within_the_limit(env: Env) -> None:
    serials = await env.issue(3)
    await env.ledger.mark_revoked(CA_ID, serials[0], reason="superseded", comment="", when=env.clock.now)
    await seed_order(env.ledger, SUBJECT, state=OrderState.COLLECTING)
    other = await env.issue(1, subject="CN=other.example.com")
    env.connector.calls.clear()

    response = await env.act("cn=web.example.com, ou=ops, o=acme corp, c=us", type="RevokeAction",
                             reason="cessationOfOperation", comment="decommissioned")
    assert response.action.status == "COMPLETED"
    assert response.action.reason == "cessationOfOperation"
    assert sorted(response.serial_numbers) == sorted(serials[1:])
    assert "1 already revoked" in response.message.message and "pending" in response.message.message
    assert env.connector.names() == ["revoke", "revoke"]
    assert {c[1].comment for c in env.connector.calls} == {"decommissioned"}
    statuses = [c.status for c in (await env.get(SUBJECT)).certificates]
    assert statuses.count("revoked") == 3 and statuses.count("PENDING") == 1
    kept = await env.ledger.get_certificate(CA_ID, other[0])
    assert kept is not None and kept.status == "normal"

    audit = await env.audit()
    assert [(e.action, e.outcome) for e in audit] == [("revoke", "ok"), ("revoke", "ok"), ("revoke-subject", "ok")]
    assert all(e.actor == CALLER for e in audit)
    assert audit[-1].target == NORMALIZED


async def test_revoke_subject_above_the_limit_is_refused(env: Env) -> None:
    await env.issue(LIMIT + 1)
    env.connector.calls.clear()
    with pytest.raises(FailedPrecondition) as caught:
        await env.act(SUBJECT, type="RevokeAction")
    assert caught.value.reason == "SUBJECT_REVOKE_LIMIT"
    assert "force" in caught.value.message and str(LIMIT + 1) in caught.value.message
    assert env.connector.names() == []
    assert [(e.action, e.outcome) for e in await env.audit()] == [("revoke-subject", "refused")]


async def test_revoke_subject_above_the_limit_with_force(env: Env) -> None:
    serials = await env.issue(LIMIT + 1)
    response = await env.act(SUBJECT, type="RevokeAction", force=True)
    assert sorted(response.serial_numbers) == sorted(serials)
    assert env.connector.names().count("revoke") == LIMIT + 1
    last = (await env.audit())[-1]
    assert (last.action, last.outcome) == ("revoke-subject", "ok") and "forced" in last.detail


async def test_revoke_subject_again_reaches_nothing(env: Env) -> None:
    await env.issue(2)
    await env.act(SUBJECT, type="RevokeAction")
    env.connector.calls.clear()
    response = await env.act(SUBJECT, type="RevokeAction")
    assert response.action.status == "COMPLETED"
    assert list(response.serial_numbers) == []
    assert env.connector.names() == []


async def test_revoke_subject_when_the_ca_fails_half_way(env: Env) -> None:
    serials = await env.issue(3)
    env.connector.fail("revoke", CAUnavailable("fake CA is down", retry_after=1), after=1)
    with pytest.raises(CAUnavailable):
        await env.act(SUBJECT, type="RevokeAction")
    stored = [await env.ledger.get_certificate(CA_ID, serial) for serial in serials]
    revoked = [record.serial_number for record in stored if record is not None and record.status == "revoked"]
    assert len(revoked) == 1
    audit = await env.audit()
    assert [(e.action, e.outcome) for e in audit] == [("revoke", "ok"), ("revoke", "failed"),
                                                      ("revoke-subject", "failed")]

    env.connector.fail("revoke", None)
    response = await env.act(SUBJECT, type="RevokeAction")  # repeating finishes the job
    assert sorted(response.serial_numbers) == sorted(set(serials) - set(revoked))


@pytest.mark.parametrize("action_type", [
    pytest.param("HoldAction", id="fail-hold"),
    pytest.param("UnholdAction", id="fail-unhold"),
])
async def test_subject_hold_is_unimplemented(env: Env, action_type: str) -> None:
    await env.issue(1)
    env.connector.calls.clear()
    with pytest.raises(Unimplemented):
        await env.act(SUBJECT, type=action_type)
    assert env.connector.names() == []
    assert [e.outcome for e in await env.audit()] == ["refused"]


@pytest.mark.parametrize(("action", "field"), [
    pytest.param({"type": "BurnAction"}, "action.type", id="fail-bad-type"),
    pytest.param({"type": "RevokeAction", "reason": "boredom"}, "action.reason", id="fail-bad-reason"),
])
async def test_subject_bad_action(env: Env, action: dict[str, str], field: str) -> None:
    await env.issue(1)
    with pytest.raises(InvalidRequest) as caught:
        await env.act(SUBJECT, **action)
    assert caught.value.violations[0].field == field


async def test_revoke_unknown_subject(env: Env) -> None:
    with pytest.raises(NotFound) as caught:
        await env.act("CN=nobody.example.com", type="RevokeAction")
    assert caught.value.reason == "SUBJECT_NOT_FOUND"
    assert [(e.action, e.outcome) for e in await env.audit()] == [("revoke-subject", "refused")]
