"""PKCS12 enrollments through the engine, on virtual time: the key the gateway makes, the password, retention.

The fake CA signs the CSR the gateway made (its public key), so the PKCS#12's
key must match the certificate; the real ledger (SQLite in tmp_path) keeps the
encrypted key.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, pkcs12
from cryptography.x509.oid import NameOID

from service.config import Secret
from service.connectors.base import CAProfile, EnrollRequest, EnrollResult
from service.enrollment.engine import EnrollmentEngine, EnrollmentInput, OrderEvent, Phase
from service.errors import FailedPrecondition, InvalidRequest, Unimplemented
from service.ledger import Ledger, open_ledger
from service.x509.pbes2 import decrypt_private_key
from tests.support.clocks import FakeClock, VirtualTime
from tests.unit.fakes import CA_ID, FakeConnector, make_registry

PASSWORD = "correct horse battery staple"


class SigningConnector(FakeConnector):
    """The fake CA, keeping each order's CSR so :meth:`issue_all` certifies the CSR's own key."""

    def __init__(self) -> None:
        super().__init__()
        self.csrs: dict[str, x509.CertificateSigningRequest] = {}
        self.ca_profiles = (CAProfile(id="101", name="Fake SSL", terms=(365, 730),
                                      key_types={"EC": ("P-384", "P-256"), "RSA": ("2048", "3072")}),)

    async def enroll(self, request: EnrollRequest) -> EnrollResult:
        result = await super().enroll(request)
        self.csrs[result.order_id] = x509.load_pem_x509_csr(request.csr_pem.encode())
        return result

    def issue_all(self) -> None:
        for order_id, order in self.orders.items():
            csr = self.csrs[order_id]
            subject = csr.subject.rfc4514_string()
            order.certificate_der = self.ca.issue(subject, public_key=csr.public_key())
            order.chain_der = (self.ca.der,)


@dataclasses.dataclass
class World:
    engine: EnrollmentEngine
    connector: SigningConnector
    ledger: Ledger
    time: VirtualTime
    path: Path


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    connector = SigningConnector()
    clock = FakeClock()
    time = VirtualTime(clock)
    ledger = await open_ledger(tmp_path / "ledger.db", clock=clock)
    engine = EnrollmentEngine(ledger, make_registry(tmp_path, [connector]), clock=clock, sleep=time.sleep)
    try:
        yield World(engine, connector, ledger, time, tmp_path / "ledger.db")
    finally:
        await engine.close()
        await ledger.close()


def _input(password: str | None = PASSWORD, **fields: Any) -> EnrollmentInput:
    values: dict[str, Any] = {
        "ca_id": CA_ID, "profile_id": "101", "required_format": "PKCS12", "protection_type": "PasswordProtection",
        "password": None if password is None else Secret(password),
        "subject_variables": (("cn", "app.example.com"), ("o", "Acme")),
        "subject_alt_names": (("dNSName", "app.example.com"), ("iPAddress", "10.0.0.7"))}
    values.update(fields)
    return EnrollmentInput(**values)


def _opened(event: OrderEvent, password: str = PASSWORD) -> tuple[Any, x509.Certificate, list[x509.Certificate]]:
    assert event.keystore is not None
    key, certificate, extra = pkcs12.load_key_and_certificates(event.keystore, password.encode())
    assert key is not None and certificate is not None
    return key, certificate, extra


def _spki(key: Any) -> bytes:
    return cast(bytes, key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))


async def _settled(world: World, order_id: str) -> None:
    """Let the order's task run (virtual time) until it has ended."""
    task = world.engine._tracker._tasks.get(order_id)  # noqa: SLF001 - the order's own task
    if task is not None:
        await asyncio.wait_for(task, 10)
    await asyncio.sleep(0)  # its done callbacks
    assert world.engine.running_orders == 0


# ------------------------------------------------------------------ the answer


async def test_ok_enroll_makes_the_key_and_answers_with_a_pkcs12_that_holds_it(world: World) -> None:
    world.time.on_sleep = lambda n: world.connector.issue_all() if n == 1 else None
    event = await asyncio.wait_for(world.engine.enroll(_input()), 10)
    assert event.phase is Phase.ISSUED
    key, certificate, chain = _opened(event)
    assert _spki(key) == _spki(certificate)
    assert [c.subject for c in chain] == [world.connector.ca.certificate.subject]
    csr = next(iter(world.connector.csrs.values()))
    assert csr.subject.rfc4514_string() == "CN=app.example.com,O=Acme"
    sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["app.example.com"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["10.0.0.7"]
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1"  # the profile's first
    assert event.order.options.server_key == "EC P-384" and event.order.subject_dn == "CN=app.example.com,O=Acme"


async def test_ok_the_ledger_keeps_the_key_only_encrypted_under_the_password(world: World) -> None:
    world.time.on_sleep = lambda n: world.connector.issue_all() if n == 1 else None
    placed_at = world.time.clock.now
    event = await world.engine.enroll(_input())
    key, _, _ = _opened(event)
    stored = await world.ledger.get_server_key(event.order_id)
    assert stored is not None
    assert _spki(decrypt_private_key(stored.encrypted_pkcs8, PASSWORD.encode())) == _spki(key)
    assert stored.expires_at == placed_at + dt.timedelta(days=7)
    order = await world.ledger.get_order(event.order_id)
    assert order is not None and "PRIVATE KEY" not in repr(order) and PASSWORD not in repr(order)


@pytest.mark.parametrize(("properties", "expected"), [
    pytest.param({"keyType": "RSA"}, ("RSA", 2048), id="ok-type-chooses-its-first-size"),
    pytest.param({"keyType": "rsa", "keySize": "3072"}, ("RSA", 3072), id="ok-type-and-size"),
    pytest.param({"keyType": "EC", "keySize": "P-256"}, ("EC", 256), id="ok-other-curve"),
])
async def test_ok_properties_choose_another_allowed_key(world: World, properties: dict[str, str],
                                                        expected: tuple[str, int]) -> None:
    world.time.on_sleep = lambda n: world.connector.issue_all() if n == 1 else None
    key, _, _ = _opened(await world.engine.enroll(_input(properties=properties)))
    kind = "RSA" if isinstance(key, rsa.RSAPrivateKey) else "EC"
    assert (kind, key.key_size) == expected


async def test_ok_subject_dn_gives_the_subject_and_the_variables_must_agree_with_it(world: World) -> None:
    world.time.on_sleep = lambda n: world.connector.issue_all() if n == 1 else None
    event = await world.engine.enroll(_input(subject_dn="CN=App.example.com,O=Acme,C=US",
                                             subject_variables=(("CN", "app.example.com"),)))
    _, certificate, _ = _opened(event)
    assert certificate.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "US"


async def test_ok_include_ca_false_leaves_the_chain_out(world: World) -> None:
    world.time.on_sleep = lambda n: world.connector.issue_all() if n == 1 else None
    _, _, chain = _opened(await world.engine.enroll(_input(include_ca=False)))
    assert chain == []


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(("fields", "violations"), [
    pytest.param({"password": None, "protection_type": ""}, ["requiredFormat.protection"], id="fail-no-protection"),
    pytest.param({"password": ""}, ["requiredFormat.protection.password"], id="fail-empty-password"),
    pytest.param({"password": None}, ["requiredFormat.protection.password"], id="fail-type-without-password"),
    pytest.param({"password": "x" * 257}, ["requiredFormat.protection.password"], id="fail-password-too-long"),
    pytest.param({"protection_type": "SmartCard"}, ["requiredFormat.protection.type"], id="fail-protection-type"),
    pytest.param({"csr": "-----BEGIN CERTIFICATE REQUEST-----"}, ["csr"], id="fail-csr-given"),
    pytest.param({"renewal": True, "properties": {"RenewalSerialNumber": "0a"}}, ["renewal",
                 "properties.RenewalSerialNumber"], id="fail-renewal"),
    pytest.param({"subject_variables": ()}, ["subjectVariables"], id="fail-no-subject"),
    pytest.param({"subject_variables": (("firstname", "Ann"),)}, ["subjectVariables"], id="fail-unknown-attribute"),
    pytest.param({"subject_dn": "CN=other.example.com"}, ["subjectVariables[0]", "subjectVariables[1]"],
                 id="fail-variables-not-in-subject-dn"),
    pytest.param({"properties": {"keyType": "RSA", "keySize": "4096"}}, ["properties.keySize"],
                 id="fail-size-not-allowed"),
    pytest.param({"properties": {"keyType": "DSA"}}, ["properties.keyType"], id="fail-type-not-allowed"),
    pytest.param({"properties": {"keySize": "2048"}}, ["properties.keyType"], id="fail-size-without-type"),
])
async def test_fail_a_pkcs12_request_is_refused_precisely_and_records_nothing(
        world: World, fields: dict[str, Any], violations: list[str]) -> None:
    password = fields.pop("password", PASSWORD)
    with pytest.raises(InvalidRequest) as caught:
        await world.engine.enroll(_input(password, **fields))
    assert [v.field for v in caught.value.violations] == violations
    assert all(PASSWORD not in v.value and PASSWORD not in v.description for v in caught.value.violations)
    assert await world.ledger.unfinished_orders() == [] and "enroll" not in world.connector.names()


async def test_fail_a_ca_without_server_side_keys_refuses_pkcs12_before_asking_anything(world: World) -> None:
    ca = world.engine._cas.get(CA_ID)  # noqa: SLF001 - the CA's settings, as a configuration would give them
    gateway = dataclasses.replace(ca.settings.gateway, server_side_keys=False)
    object.__setattr__(ca, "settings", dataclasses.replace(ca.settings, gateway=gateway))
    with pytest.raises(Unimplemented) as caught:
        await world.engine.enroll(_input())
    assert caught.value.reason == "SERVER_KEYGEN_NOT_OFFERED"
    assert world.connector.names() == []


# ------------------------------------------------------------------ after a pending answer


async def test_ok_after_a_pending_answer_watch_delivers_while_the_task_holds_the_password(world: World) -> None:
    pending = await world.engine.enroll(_input(max_wait=0))
    assert not pending.phase.settled and pending.keystore is None
    world.time.on_sleep = lambda n: world.connector.issue_all() if n == 2 else None
    events = [event async for event in world.engine.watch(CA_ID, pending.order_id)]
    assert events[-1].phase is Phase.ISSUED
    key, certificate, _ = _opened(events[-1])
    assert _spki(key) == _spki(certificate)


async def test_ok_once_the_task_ended_get_needs_the_password_again(world: World) -> None:
    pending = await world.engine.enroll(_input(max_wait=0))
    world.time.on_sleep = lambda n: world.connector.issue_all() if n == 2 else None
    await _settled(world, pending.order_id)
    with pytest.raises(InvalidRequest) as caught:
        await world.engine.get(CA_ID, pending.order_id)
    assert [v.field for v in caught.value.violations] == ["protection.password"]
    with pytest.raises(InvalidRequest) as wrong:
        await world.engine.get(CA_ID, pending.order_id, password=Secret("not it"))
    assert [v.field for v in wrong.value.violations] == ["protection.password"]
    key, certificate, _ = _opened(await world.engine.get(CA_ID, pending.order_id, password=Secret(PASSWORD)))
    assert _spki(key) == _spki(certificate)
    watched = [event async for event in world.engine.watch(CA_ID, pending.order_id)]
    assert watched[-1].phase is Phase.ISSUED and watched[-1].keystore is None
    assert "protection.password" in watched[-1].detail


async def test_ok_a_pending_pkcs12_order_answers_get_without_a_password(world: World) -> None:
    pending = await world.engine.enroll(_input(max_wait=0))
    event = await world.engine.get(CA_ID, pending.order_id)
    assert event.phase is not Phase.ISSUED and event.keystore is None


async def test_ok_a_retry_with_the_request_id_is_the_same_order(world: World) -> None:
    first = await world.engine.enroll(_input(max_wait=0, request_id="pkcs12-1"))
    again = await world.engine.enroll(_input(max_wait=0, request_id="pkcs12-1"))
    other = await world.engine.enroll(_input(max_wait=0))
    assert again.order_id == first.order_id != other.order_id
    assert len(world.connector.csrs) <= 2


# ------------------------------------------------------------------ retention


async def test_ok_the_key_is_deleted_after_its_retention_and_then_get_says_so(world: World) -> None:
    world.time.on_sleep = lambda n: world.connector.issue_all() if n == 1 else None
    clock = world.time.clock
    placed_at = clock.now
    event = await world.engine.enroll(_input())
    clock.now = placed_at + dt.timedelta(days=7, seconds=-1)
    assert await world.engine.purge_expired_keys() == 0
    assert await world.ledger.get_server_key(event.order_id) is not None
    clock.advance(seconds=1)
    assert await world.engine.purge_expired_keys() == 1
    assert await world.ledger.get_server_key(event.order_id) is None
    with pytest.raises(FailedPrecondition) as caught:
        await world.engine.get(CA_ID, event.order_id, password=Secret(PASSWORD))
    assert caught.value.reason == "SERVER_KEY_DELETED" and "certificates/" in caught.value.message


async def test_ok_the_retention_loop_purges_on_its_own_interval(world: World) -> None:
    world.time.on_sleep = lambda n: world.connector.issue_all() if n == 1 else None
    event = await world.engine.enroll(_input())
    intervals: list[float] = []
    waiting = asyncio.Event()

    async def first_interval(seconds: float) -> None:  # the loop's first wait: the first purge is done
        intervals.append(seconds)
        waiting.set()
        await asyncio.Event().wait()

    world.time.clock.advance(days=8)
    world.engine._sleep = first_interval  # noqa: SLF001 - stop the loop at its first wait
    world.engine.start_key_retention(interval=3600)
    await asyncio.wait_for(waiting.wait(), 10)
    assert intervals == [3600] and await world.ledger.get_server_key(event.order_id) is None


async def test_ok_the_retention_loop_runs_at_least_as_often_as_the_shortest_retention(world: World) -> None:
    ca = world.engine._cas.get(CA_ID)  # noqa: SLF001 - the CA's settings, as a configuration would give them
    gateway = dataclasses.replace(ca.settings.gateway, server_side_key_retention=600.0)
    object.__setattr__(ca, "settings", dataclasses.replace(ca.settings, gateway=gateway))
    intervals: list[float] = []
    waiting = asyncio.Event()

    async def first_interval(seconds: float) -> None:
        intervals.append(seconds)
        waiting.set()
        await asyncio.Event().wait()

    world.engine._sleep = first_interval  # noqa: SLF001 - stop the loop at its first wait
    world.engine.start_key_retention()
    await asyncio.wait_for(waiting.wait(), 10)
    assert intervals == [600.0]

