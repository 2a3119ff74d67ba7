"""The SCM simulator over real loopback sockets: routes, auth, issuance, errors, faults, persistence.

Every test talks to a simulator on port 0 with a plain ``aiohttp.ClientSession``;
HTTPS and client-certificate cases use throwaway ``trustme`` CAs. Time is a
fake clock and issuance is counted in collect polls, so nothing sleeps.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from aiohttp.test_utils import make_mocked_request
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.verification import PolicyBuilder, Store
from multidict import CIMultiDictProxy

from service.simulator import (
    CertType,
    CustomField,
    FaultRule,
    Simulator,
    SimulatorSettings,
    start_simulator,
)
from service.simulator.app import SimulatorStats, build_app
from service.simulator.auth import Authenticator
from tests.support.clocks import SecondsClock
from tests.support.csr import make_csr

ROOT = Path(__file__).resolve().parents[2]
ORG = 1234
DEPARTMENT = 1235
OV = 1001
EV = 1002
DATE = re.compile(r"\d\d/\d\d/\d{4}")
SERIAL = re.compile(r"[0-9A-F]{2}(:[0-9A-F]{2})+")


# -- helpers ---------------------------------------------------------------------------------


def csr_der_b64(pem: str) -> str:
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))


def tampered_csr() -> str:
    der = bytearray(base64.b64decode(csr_der_b64(make_csr(kind="rsa2048"))))
    der[-1] ^= 0x01  # the last byte belongs to the RSA signature
    return base64.b64encode(bytes(der)).decode("ascii")


@dataclass
class Reply:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


_UNSET: Any = object()


class Scm:
    """A minimal SCM caller bound to one base URL and one set of headers."""

    def __init__(self, http: aiohttp.ClientSession, base: str, headers: dict[str, str], *, ssl_context: Any = None):
        self.http = http
        self.base = base
        self.headers = headers
        self.ssl = ssl_context

    async def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = _UNSET,
        data: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        kwargs: dict[str, Any] = {"headers": headers if headers is not None else self.headers, "params": params}
        if json_body is not _UNSET:
            kwargs["json"] = json_body
        if data is not None:
            kwargs["data"] = data
        if self.ssl is not None:
            kwargs["ssl"] = self.ssl
        async with self.http.request(method, self.base + path, **kwargs) as resp:
            return Reply(resp.status, resp.headers, await resp.read())

    async def enroll(self, csr: str | None = None, **fields: Any) -> int:
        body = {"orgId": ORG, "certType": OV, "term": 365, "csr": csr or make_csr(), **fields}
        reply = await self.call("POST", "/ssl/v1/enroll", json_body=body)
        assert reply.status == 200, reply.body
        return int(reply.json()["sslId"])

    async def collect(self, ssl_id: int, fmt: str = "x509CO") -> Reply:
        return await self.call("GET", f"/ssl/v1/collect/{ssl_id}", params={"format": fmt})

    async def issued(self, csr: str | None = None, **fields: Any) -> tuple[int, x509.Certificate]:
        """Enroll and collect once (the test simulators issue on the first collect)."""
        ssl_id = await self.enroll(csr, **fields)
        reply = await self.collect(ssl_id)
        assert reply.status == 200, reply.body
        return ssl_id, x509.load_pem_x509_certificate(reply.body)

    async def details(self, ssl_id: int) -> dict[str, Any]:
        reply = await self.call("GET", f"/ssl/v1/{ssl_id}")
        assert reply.status == 200, reply.body
        result: dict[str, Any] = reply.json()
        return result


def assert_scm_error(reply: Reply, status: int, code: int) -> None:
    assert reply.status == status, (reply.status, reply.body)
    assert reply.headers["Content-Type"] == "application/json;charset=UTF-8"
    body = reply.json()
    assert body["code"] == code, body
    assert isinstance(body["description"], str) and body["description"]


StartSimulator = Callable[..., Awaitable[Simulator]]


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("simulator-ca")


@pytest.fixture
async def start(ca_dir: Path) -> AsyncIterator[StartSimulator]:
    """Factory: start a simulator on port 0 (issue on first collect, fake clock); stopped afterwards."""
    started: list[Simulator] = []

    async def factory(*, clock: Callable[[], float] | None = None, sleep: Any = None, **overrides: Any) -> Simulator:
        values: dict[str, Any] = {"port": 0, "ca_dir": ca_dir, "issue_after_polls": 0, "fault_seed": 7}
        values.update(overrides)
        kwargs: dict[str, Any] = {"clock": clock or SecondsClock(time.time())}
        if sleep is not None:
            kwargs["sleep"] = sleep
        sim = await start_simulator(SimulatorSettings(**values), **kwargs)
        started.append(sim)
        return sim

    yield factory
    for sim in started:
        await sim.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def sim(start: StartSimulator) -> Simulator:
    return await start()


@pytest.fixture
def scm(sim: Simulator, http: aiohttp.ClientSession) -> Scm:
    return Scm(http, sim.api_url, sim.credentials_headers())


@pytest.fixture(scope="module")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("tls")
    server_ca, client_ca, stranger_ca = trustme.CA(), trustme.CA(), trustme.CA()
    server = server_ca.issue_cert("127.0.0.1", "localhost")
    server.private_key_and_cert_chain_pem.write_to_path(str(folder / "server.pem"))
    client_ca.cert_pem.write_to_path(str(folder / "client-ca.pem"))
    return {
        "server_pem": folder / "server.pem",
        "client_ca_pem": folder / "client-ca.pem",
        "server_ca": server_ca,
        "client": client_ca.issue_cert("scm-admin@example.com"),
        "stranger": stranger_ca.issue_cert("intruder@example.com"),
    }


def client_context(tls: dict[str, Any], cert: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    tls["server_ca"].configure_trust(context)
    if cert is not None:
        tls[cert].configure_cert(context)
    return context


# -- catalogue routes ------------------------------------------------------------------------


async def test_types_lists_decision_11_defaults(scm: Scm) -> None:
    reply = await scm.call("GET", "/ssl/v1/types")
    assert reply.status == 200
    assert reply.headers["Content-Type"] == "application/json;charset=UTF-8"
    types = reply.json()
    assert types[0] == {
        "id": OV,
        "name": types[0]["name"],
        "description": types[0]["description"],
        "terms": [365, 730],
        "keyTypes": {"RSA": ["2048", "3072", "4096"], "EC": ["P-256", "P-384"]},
        "useSecondaryOrgName": False,
    }
    assert types[1]["id"] == EV and types[1]["terms"] == [365] and "EC" not in types[1]["keyTypes"]


@pytest.mark.parametrize(
    ("org", "status"),
    [("1234", 200), ("1235", 200), ("99", 400), ("abc", 400)],
    ids=["ok-org", "ok-department", "fail-unknown-org", "fail-not-a-number"],
)
async def test_types_by_organization(scm: Scm, org: str, status: int) -> None:
    reply = await scm.call("GET", "/ssl/v1/types", params={"organizationId": org})
    assert reply.status == status
    if status == 400:
        assert reply.json()["code"] in (-1023, -1601)


async def test_custom_fields_send_mandatory_false(scm: Scm) -> None:
    reply = await scm.call("GET", "/ssl/v1/customFields")
    assert reply.status == 200
    assert reply.json() == [{"id": 301, "name": "Cost Center", "mandatory": False}]


async def test_organizations(scm: Scm) -> None:
    listing = await scm.call("GET", "/organization/v1")
    assert listing.status == 200 and listing.headers["Content-Type"] == "application/json"
    [org] = listing.json()
    assert org["id"] == ORG and org["certTypes"] == ["SSL"]
    assert org["departments"] == [{"id": DEPARTMENT, "name": "Simulated Department", "parentName": org["name"]}]
    details = (await scm.call("GET", f"/organization/v1/{ORG}")).json()
    assert details["sslCertsApiEnabled"] is True and details["departments"]
    department = (await scm.call("GET", f"/organization/v1/{DEPARTMENT}")).json()
    assert department["id"] == DEPARTMENT and department["certTypes"] == ["SSL"]
    assert_scm_error(await scm.call("GET", "/organization/v1/4242"), 404, -1023)


# -- enroll, issuance, collect ---------------------------------------------------------------


async def test_enroll_answers_ssl_id_and_renew_id(scm: Scm, sim: Simulator) -> None:
    reply = await scm.call(
        "POST", "/ssl/v1/enroll", json_body={"orgId": ORG, "certType": OV, "term": 365, "csr": make_csr()}
    )
    assert reply.status == 200
    body = reply.json()
    assert set(body) == {"sslId", "renewId"}
    assert isinstance(body["sslId"], int) and re.fullmatch(r"[A-Za-z0-9]{20}", body["renewId"])
    assert sim.state.get(body["sslId"]) is not None


async def test_issued_certificate_verifies_and_carries_request(scm: Scm, sim: Simulator) -> None:
    csr = make_csr("app.example.com", kind="rsa2048", sans=("csr-san.example.com",), organization="Example Ltd")
    ssl_id, leaf = await scm.issued(csr, term=730, subjAltNames="alt.example.com, 192.0.2.7", comments="order-42")
    ca = x509.load_pem_x509_certificate(sim.ca_certificate_path.read_bytes())
    assert sim.ca_certificate_path.name == "ca.pem"
    leaf.verify_directly_issued_by(ca)
    verifier = (
        PolicyBuilder()
        .store(Store([ca]))
        .time(leaf.not_valid_before_utc + dt.timedelta(hours=1))
        .build_server_verifier(x509.DNSName("alt.example.com"))
    )
    verifier.verify(leaf, [])
    assert leaf.subject.rfc4514_string() == "CN=app.example.com,O=Example Ltd"
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["app.example.com", "alt.example.com", "csr-san.example.com"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["192.0.2.7"]
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == dt.timedelta(days=730)
    details = await scm.details(ssl_id)
    assert details["serialNumber"] == ":".join(f"{b:02X}" for b in leaf.serial_number.to_bytes(16, "big"))
    assert details["subjectAlternativeNames"] == ["app.example.com", "alt.example.com", "192.0.2.7", "csr-san.example.com"]


async def test_issuance_after_poll_count(start: StartSimulator, http: aiohttp.ClientSession) -> None:
    sim = await start(issue_after_polls=2)
    scm = Scm(http, sim.api_url, sim.credentials_headers())
    ssl_id = await scm.enroll()
    for _ in range(2):
        pending = await scm.collect(ssl_id)
        assert_scm_error(pending, 400, 0)
        assert pending.json() == {"code": 0, "description": "Being processed by Sectigo"}
    assert (await scm.details(ssl_id))["status"] == "Applied"
    assert (await scm.collect(ssl_id)).status == 200
    assert (await scm.details(ssl_id))["status"] == "Issued"


async def test_issuance_after_time_on_fake_clock(start: StartSimulator, http: aiohttp.ClientSession) -> None:
    clock = SecondsClock(time.time())
    sim = await start(clock=clock, issue_after_polls=None, issue_after=10.0)
    scm = Scm(http, sim.api_url, sim.credentials_headers())
    ssl_id = await scm.enroll()
    clock.advance(9.9)
    assert_scm_error(await scm.collect(ssl_id), 400, 0)
    assert (await scm.details(ssl_id))["status"] == "Applied"
    clock.advance(0.1)
    assert (await scm.details(ssl_id))["status"] == "Issued"
    assert (await scm.collect(ssl_id)).status == 200
    clock.advance(366 * 86400)
    details = await scm.details(ssl_id)
    assert details["status"] == "Expired"
    assert (await scm.collect(ssl_id)).status == 200


@pytest.mark.parametrize(
    ("code", "description"),
    [(-1400, "The request is being processed by Sectigo."), (-183, "Certificate is not collectable.")],
    ids=["ok-pending-1400", "ok-pending-183"],
)
async def test_pending_answer_is_configurable(
    start: StartSimulator, http: aiohttp.ClientSession, code: int, description: str
) -> None:
    sim = await start(issue_after_polls=1, pending_code=code, pending_description=description)
    scm = Scm(http, sim.api_url, sim.credentials_headers())
    reply = await scm.collect(await scm.enroll())
    assert reply.status == 400 and reply.json() == {"code": code, "description": description}


def _pems(body: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(body)


@pytest.mark.parametrize(
    ("fmt", "shape"),
    [
        ("x509", "ca,leaf"),
        ("x509CO", "leaf"),
        ("base64", "p7pem"),
        ("bin", "p7der"),
        ("x509IO", "ca"),
        ("x509IOR", "ca"),
        ("pem", "leaf,ca"),
        ("pemco", "leaf"),
        ("pemia", "leaf,ca"),
        ("x509R", "leaf,ca"),
    ],
    ids=["ok-x509", "ok-x509CO", "ok-base64", "ok-bin", "ok-x509IO", "ok-x509IOR", "ok-pem", "ok-pemco", "ok-pemia", "ok-x509R"],
)
async def test_collect_formats(scm: Scm, sim: Simulator, fmt: str, shape: str) -> None:
    ssl_id, leaf = await scm.issued()
    ca = x509.load_pem_x509_certificate(sim.ca_certificate_path.read_bytes())
    for reply in (await scm.collect(ssl_id, fmt), await scm.call("GET", f"/ssl/v1/collect/{ssl_id}/{fmt}")):
        assert reply.status == 200
        assert reply.headers["Content-Type"] == "application/octet-stream;charset=UTF-8"
        assert re.fullmatch(r'attachment; filename="[\w.-]+"', reply.headers["Content-Disposition"])
        assert reply.body
        if shape == "p7pem":
            assert reply.body.startswith(b"-----BEGIN PKCS7-----")
            # PKCS#7 holds a SET OF certificates: DER sorts it, so only membership is meaningful.
            assert set(pkcs7.load_pem_pkcs7_certificates(reply.body)) == {leaf, ca}
        elif shape == "p7der":
            assert set(pkcs7.load_der_pkcs7_certificates(reply.body)) == {leaf, ca}
        else:
            expected = [{"leaf": leaf, "ca": ca}[part] for part in shape.split(",")]
            assert _pems(reply.body) == expected


async def test_collect_defaults_to_base64_and_rejects_unknown_format(scm: Scm) -> None:
    ssl_id, leaf = await scm.issued()
    default = await scm.call("GET", f"/ssl/v1/collect/{ssl_id}")
    assert default.status == 200 and leaf in pkcs7.load_pem_pkcs7_certificates(default.body)
    assert_scm_error(await scm.collect(ssl_id, "pkcs12"), 400, -126)
    assert_scm_error(await scm.call("GET", f"/ssl/v1/collect/{ssl_id}/zip"), 400, -126)


@pytest.mark.parametrize(
    "csr_form",
    ["pem", "pem-one-line", "pem-crlf", "base64-der", "base64-der-wrapped", "pem-escaped-newlines"],
    ids=lambda v: f"ok-{v}",
)
async def test_enroll_accepts_csr_encodings(scm: Scm, csr_form: str) -> None:
    pem = make_csr("forms.example.com")
    der_b64 = csr_der_b64(pem)
    csr = {
        "pem": pem,
        "pem-one-line": pem.replace("\n", ""),
        "pem-crlf": pem.replace("\n", "\r\n"),
        "base64-der": der_b64,
        "base64-der-wrapped": "\n".join(der_b64[i : i + 64] for i in range(0, len(der_b64), 64)),
        "pem-escaped-newlines": pem.replace("\n", "\\n"),
    }[csr_form]
    _, leaf = await scm.issued(csr)
    assert leaf.subject.rfc4514_string() == "CN=forms.example.com"


@pytest.mark.parametrize(
    ("kind", "cert_type"),
    [("rsa2048", OV), ("rsa3072", OV), ("ec256", OV), ("ec384", OV), ("rsa2048", EV)],
    ids=["ok-rsa2048", "ok-rsa3072", "ok-p256", "ok-p384", "ok-ev-rsa2048"],
)
async def test_enroll_accepts_allowed_keys(scm: Scm, kind: str, cert_type: int) -> None:
    ssl_id, _ = await scm.issued(make_csr(kind=kind), certType=cert_type)
    details = await scm.details(ssl_id)
    assert details["keyAlgorithm"] == ("RSA" if kind.startswith("rsa") else "EC")
    assert details["keyType"] in ("RSA - 2048", "RSA - 3072", "EC - P-256", "EC - P-384")


async def test_enroll_defaults_term_and_accepts_department(scm: Scm) -> None:
    ssl_id = await scm.enroll(orgId=DEPARTMENT, term=None, numberServers=1, serverType=-1, dcvMode="CNAME")
    details = await scm.details(ssl_id)
    assert details["term"] == 365 and details["orgId"] == DEPARTMENT


def _enroll_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"orgId": ORG, "certType": OV, "term": 365, "csr": make_csr()}
    for key, value in changes.items():
        if value is _UNSET:
            body.pop(key)
        else:
            body[key] = value
    return body


ENROLL_FAILURES = [
    ("fail-missing-orgId", lambda: _enroll_body(orgId=_UNSET), -7),
    ("fail-unknown-orgId", lambda: _enroll_body(orgId=99), -639),
    ("fail-missing-certType", lambda: _enroll_body(certType=_UNSET), -7),
    ("fail-unknown-certType", lambda: _enroll_body(certType=4242), -39),
    ("fail-term-not-in-profile", lambda: _enroll_body(term=500), -36),
    ("fail-ev-term-730", lambda: _enroll_body(certType=EV, term=730, csr=make_csr(kind="rsa2048")), -36),
    ("fail-missing-csr", lambda: _enroll_body(csr=_UNSET), -7),
    ("fail-csr-not-base64", lambda: _enroll_body(csr="not a csr at all!"), -9),
    ("fail-csr-not-a-csr", lambda: _enroll_body(csr=base64.b64encode(b"hello, world").decode()), -10),
    ("fail-csr-bad-signature", lambda: _enroll_body(csr=tampered_csr()), -138),
    ("fail-rsa-1024-too-small", lambda: _enroll_body(csr=make_csr(kind="rsa1024")), -141),
    ("fail-rsa-2560-unsupported-size", lambda: _enroll_body(csr=make_csr(kind="rsa2560")), -13),
    ("fail-p521-unsupported-curve", lambda: _enroll_body(csr=make_csr(kind="ec521")), -13),
    ("fail-ec-on-rsa-only-profile", lambda: _enroll_body(certType=EV, csr=make_csr(kind="ec256")), -170),
    ("fail-ed25519-unsupported-algorithm", lambda: _enroll_body(csr=make_csr(kind="ed25519")), -11),
    ("fail-bad-subjAltNames", lambda: _enroll_body(subjAltNames="ok.example.com,not a name"), -1601),
    ("fail-orgId-not-a-number", lambda: _enroll_body(orgId="abc"), -1601),
    ("fail-no-common-name-no-san", lambda: _enroll_body(csr=make_csr(None)), -7),
]


@pytest.mark.parametrize(("make_body", "code"), [c[1:] for c in ENROLL_FAILURES], ids=[c[0] for c in ENROLL_FAILURES])
async def test_enroll_errors(scm: Scm, sim: Simulator, make_body: Callable[[], Any], code: int) -> None:
    reply = await scm.call("POST", "/ssl/v1/enroll", json_body=make_body())
    assert_scm_error(reply, 400, code)
    assert len(sim.state) == 0


async def test_enroll_malformed_json(scm: Scm) -> None:
    reply = await scm.call("POST", "/ssl/v1/enroll", data=b"{not json", headers={**scm.headers, "Content-Type": "application/json"})
    assert_scm_error(reply, 400, -1)


async def test_mandatory_custom_field(start: StartSimulator, http: aiohttp.ClientSession) -> None:
    sim = await start(custom_fields=(CustomField(id=9, name="Ticket", mandatory=True),))
    scm = Scm(http, sim.api_url, sim.credentials_headers())
    assert (await scm.call("GET", "/ssl/v1/customFields")).json() == [{"id": 9, "name": "Ticket", "mandatory": True}]
    assert_scm_error(await scm.call("POST", "/ssl/v1/enroll", json_body=_enroll_body()), 400, -62)
    missing_value = _enroll_body(customFields=[{"name": "Ticket", "value": ""}])
    assert_scm_error(await scm.call("POST", "/ssl/v1/enroll", json_body=missing_value), 400, -62)
    ssl_id = await scm.enroll(customFields=[{"name": "Ticket", "value": "CHG-1"}])
    assert (await scm.details(ssl_id))["customFields"] == [{"name": "Ticket", "value": "CHG-1"}]


async def test_custom_cert_types(start: StartSimulator, http: aiohttp.ClientSession) -> None:
    only = CertType(id=77, name="Only", description="d", terms=(90,), key_types={"EC": ("P-384",)})
    sim = await start(cert_types=(only,))
    scm = Scm(http, sim.api_url, sim.credentials_headers())
    assert [t["id"] for t in (await scm.call("GET", "/ssl/v1/types")).json()] == [77]
    _, leaf = await scm.issued(make_csr(kind="ec384"), certType=77, term=90)
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == dt.timedelta(days=90)
    assert_scm_error(await scm.call("POST", "/ssl/v1/enroll", json_body=_enroll_body(certType=77, term=90)), 400, -13)


# -- details and list ------------------------------------------------------------------------


async def test_details_before_and_after_issuance(start: StartSimulator, http: aiohttp.ClientSession) -> None:
    sim = await start(issue_after_polls=1)
    scm = Scm(http, sim.api_url, sim.credentials_headers())
    ssl_id = await scm.enroll(
        make_csr("details.example.com", kind="rsa2048"),
        comments="gw-order-7",
        externalRequester="ops@example.com",
        customFields=[{"name": "Cost Center", "value": "42"}],
    )
    pending = await scm.details(ssl_id)
    assert pending["status"] == "Applied"
    assert "serialNumber" not in pending and "issued" not in pending
    assert pending["comments"] == "gw-order-7" and pending["externalRequester"] == "ops@example.com"
    assert DATE.fullmatch(pending["requested"]) and DATE.fullmatch(pending["expires"])
    await scm.collect(ssl_id)
    await scm.collect(ssl_id)
    issued = await scm.details(ssl_id)
    example = json.loads((ROOT.parent / "shared/reference/sectigo-examples/ssl-details-issued.json").read_text()) if (
        ROOT.parent / "shared/reference/sectigo-examples/ssl-details-issued.json"
    ).exists() else None
    expected_keys = {
        "commonName", "sslId", "id", "orgId", "status", "orderNumber", "backendCertId", "vendor", "certType",
        "validationType", "term", "requester", "requestedVia", "comments", "requested", "expires", "renewed",
        "serialNumber", "keyAlgorithm", "keySize", "keyType", "subjectAlternativeNames", "customFields",
        "certificateDetails", "autoInstallDetails", "autoRenewDetails", "suspendNotifications",
    }
    assert expected_keys <= set(issued)
    if example is not None:
        # Every key of the real example except the owner fields (no approver in the simulator) and subType ("").
        assert set(example) - {"owner", "ownerId", "subType"} <= set(issued)
    assert issued["status"] == "Issued" and issued["id"] == issued["sslId"] == ssl_id
    assert issued["certType"]["id"] == OV and issued["keyType"] == "RSA - 2048" and issued["keySize"] == 2048
    assert SERIAL.fullmatch(issued["serialNumber"])
    assert DATE.fullmatch(issued["issued"]) and issued["renewed"] is False
    assert issued["customFields"] == [{"name": "Cost Center", "value": "42"}]
    assert issued["certificateDetails"]["subject"] == "CN=details.example.com"
    assert all(v not in (None, "", [], {}) for v in issued.values())


@pytest.mark.parametrize("ssl_id", ["999999", "abc"], ids=["fail-unknown-id", "fail-not-a-number"])
async def test_unknown_ssl_id_is_404_124(scm: Scm, ssl_id: str) -> None:
    for method, path in (
        ("GET", f"/ssl/v1/{ssl_id}"),
        ("GET", f"/ssl/v1/collect/{ssl_id}"),
        ("GET", f"/ssl/v1/collect/{ssl_id}/x509CO"),
        ("POST", f"/ssl/v1/revoke/{ssl_id}"),
        ("POST", f"/ssl/v1/renewById/{ssl_id}"),
        ("POST", f"/ssl/v1/replace/{ssl_id}"),
        ("POST", f"/ssl/v1/approve/{ssl_id}"),
        ("POST", f"/ssl/v1/decline/{ssl_id}"),
    ):
        assert_scm_error(await scm.call(method, path, json_body={"reason": "x"}), 404, -124)


async def test_list_paging_filters_and_count(scm: Scm, sim: Simulator) -> None:
    ids = [await scm.enroll(make_csr(f"host{i}.example.com"), subjAltNames=f"alias{i}.example.com") for i in range(5)]
    issued_id, leaf = await scm.issued(make_csr("host9.example.com", kind="rsa2048"), certType=EV, orgId=DEPARTMENT)
    page = await scm.call("GET", "/ssl/v1", params={"size": "2", "position": "1"})
    assert page.status == 200 and page.headers["X-Total-Count"] == "6"
    assert [item["sslId"] for item in page.json()] == ids[1:3]
    assert page.json()[0] == {
        "sslId": ids[1],
        "commonName": "host1.example.com",
        "subjectAlternativeNames": ["host1.example.com", "alias1.example.com"],
    }
    serial_colon = ":".join(f"{b:02X}" for b in leaf.serial_number.to_bytes(16, "big"))
    filters = {
        "ok-commonName": ({"commonName": "HOST3.example.com"}, [ids[3]]),
        "ok-subjectAlternativeName": ({"subjectAlternativeName": "alias4.example.com"}, [ids[4]]),
        "ok-serial-colons": ({"serialNumber": serial_colon}, [issued_id]),
        "ok-serial-plain-lower": ({"serialNumber": f"{leaf.serial_number:x}"}, [issued_id]),
        "ok-status-issued": ({"status": "Issued"}, [issued_id]),
        "ok-status-applied": ({"status": "Applied"}, ids),
        "ok-orgId": ({"orgId": str(DEPARTMENT)}, [issued_id]),
        "ok-sslTypeId": ({"sslTypeId": str(OV)}, ids),
        "ok-no-match": ({"commonName": "nobody.example.com"}, []),
    }
    for case, (params, expected) in filters.items():
        reply = await scm.call("GET", "/ssl/v1", params=params)
        assert [item["sslId"] for item in reply.json()] == expected, case
        assert reply.headers["X-Total-Count"] == str(len(expected)), case
        head = await scm.call("HEAD", "/ssl/v1", params=params)
        assert head.status == 200 and head.body == b"" and head.headers["X-Total-Count"] == str(len(expected)), case
    issued_item = (await scm.call("GET", "/ssl/v1", params={"status": "Issued"})).json()[0]
    assert issued_item["serialNumber"] == serial_colon
    for bad in ({"size": "-1"}, {"position": "x"}, {"orgId": "x"}, {"serialNumber": "zz"}):
        assert_scm_error(await scm.call("GET", "/ssl/v1", params=bad), 400, -1601)


# -- revoke ----------------------------------------------------------------------------------


async def test_revoke_by_id_then_collect_and_revoke_again(scm: Scm) -> None:
    ssl_id, _ = await scm.issued()
    reply = await scm.call("POST", f"/ssl/v1/revoke/{ssl_id}", json_body={"reasonCode": 1, "reason": "key compromise"})
    assert reply.status == 204 and reply.body == b""
    details = await scm.details(ssl_id)
    assert details["status"] == "Revoked" and details["reasonCode"] == 1 and DATE.fullmatch(details["revoked"])
    assert_scm_error(await scm.collect(ssl_id), 400, -110)
    again = await scm.call("POST", f"/ssl/v1/revoke/{ssl_id}", json_body={"reason": "again"})
    assert_scm_error(again, 400, -159)


async def test_revoke_by_serial(scm: Scm) -> None:
    ssl_id, leaf = await scm.issued()
    serial = ":".join(f"{b:02X}" for b in leaf.serial_number.to_bytes(16, "big"))
    reply = await scm.call("POST", f"/ssl/v1/revoke/serial/{serial}", json_body={"reasonCode": "4", "reason": "superseded"})
    assert reply.status == 204
    assert (await scm.details(ssl_id))["status"] == "Revoked"
    assert_scm_error(await scm.call("POST", "/ssl/v1/revoke/serial/0A:0B", json_body={"reason": "x"}), 404, -5101)


@pytest.mark.parametrize(
    ("body", "issued", "code"),
    [
        ({"reason": "not yet"}, False, -102),
        ({}, True, -7),
        (None, True, -7),
        ({"reason": "x", "reasonCode": 2}, True, -1601),
        ({"reason": "x", "reasonCode": "seven"}, True, -1601),
    ],
    ids=["fail-not-issued", "fail-no-reason", "fail-no-body", "fail-reason-code-2", "fail-reason-code-text"],
)
async def test_revoke_errors(start: StartSimulator, http: aiohttp.ClientSession, body: Any, issued: bool, code: int) -> None:
    sim = await start(issue_after_polls=0 if issued else 5)
    scm = Scm(http, sim.api_url, sim.credentials_headers())
    ssl_id = await scm.enroll()
    if issued:
        assert (await scm.collect(ssl_id)).status == 200
    reply = await scm.call("POST", f"/ssl/v1/revoke/{ssl_id}", json_body=body) if body is not None else await scm.call(
        "POST", f"/ssl/v1/revoke/{ssl_id}"
    )
    assert_scm_error(reply, 400, code)


# -- renew, replace, approve, decline --------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    ["no-body", '""', "{}", "csr"],
    ids=["ok-no-body", "ok-empty-json-string", "ok-empty-object", "ok-new-csr"],
)
async def test_renew_by_id(scm: Scm, sim: Simulator, body: str) -> None:
    old_id, old_leaf = await scm.issued(make_csr("renew.example.com"), comments="renew-me")
    path = f"/ssl/v1/renewById/{old_id}"
    headers = {**scm.headers, "Content-Type": "application/json"}
    if body == "no-body":
        reply = await scm.call("POST", path)
    elif body == "csr":
        reply = await scm.call("POST", path, json_body={"csr": make_csr("renew.example.com", fresh_key=True)})
    else:
        reply = await scm.call("POST", path, data=body.encode(), headers=headers)
    assert reply.status == 200, reply.body
    new_id = reply.json()["sslId"]
    assert set(reply.json()) == {"sslId"} and new_id != old_id
    assert (await scm.details(old_id))["renewed"] is True
    new_leaf = x509.load_pem_x509_certificate((await scm.collect(new_id)).body)
    assert new_leaf.serial_number != old_leaf.serial_number
    assert new_leaf.subject == old_leaf.subject
    same_key = new_leaf.public_key() == old_leaf.public_key()
    assert same_key is (body != "csr")
    assert sim.state.find(comments="renew-me")[-1].ssl_id == new_id


async def test_renew_errors(start: StartSimulator, http: aiohttp.ClientSession) -> None:
    sim = await start(issue_after_polls=3)
    scm = Scm(http, sim.api_url, sim.credentials_headers())
    ssl_id = await scm.enroll()
    assert_scm_error(await scm.call("POST", f"/ssl/v1/renewById/{ssl_id}"), 400, -105)
    assert_scm_error(await scm.call("POST", "/ssl/v1/renew/unknownRenewId000000"), 404, -5101)


async def test_renew_by_renew_id(scm: Scm, sim: Simulator) -> None:
    reply = await scm.call("POST", "/ssl/v1/enroll", json_body=_enroll_body())
    ssl_id, renew_id = reply.json()["sslId"], reply.json()["renewId"]
    await scm.collect(ssl_id)
    renewed = await scm.call("POST", f"/ssl/v1/renew/{renew_id}", json_body={"csr": make_csr(fresh_key=True)})
    assert renewed.status == 204 and renewed.body == b""
    assert len(sim.state) == 2
    new = max(sim.state, key=lambda o: o.ssl_id)
    assert new.renewed_from == ssl_id


async def test_replace_keeps_ssl_id_and_issues_new_certificate(start: StartSimulator, http: aiohttp.ClientSession) -> None:
    sim = await start(issue_after_polls=1)
    scm = Scm(http, sim.api_url, sim.credentials_headers())
    ssl_id = await scm.enroll(make_csr("replace.example.com"))
    await scm.collect(ssl_id)
    old = x509.load_pem_x509_certificate((await scm.collect(ssl_id)).body)
    body = {
        "csr": make_csr("replace.example.com", fresh_key=True),
        "reason": "key rotation",
        "commonName": "replace.example.com",
        "subjectAlternativeNames": ["extra.example.com"],
    }
    reply = await scm.call("POST", f"/ssl/v1/replace/{ssl_id}", json_body=body)
    assert reply.status == 204 and reply.body == b""
    assert_scm_error(await scm.collect(ssl_id), 400, 0)
    new = x509.load_pem_x509_certificate((await scm.collect(ssl_id)).body)
    assert new.serial_number != old.serial_number and new.public_key() != old.public_key()
    sans = new.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["replace.example.com", "extra.example.com"]
    details = await scm.details(ssl_id)
    assert details["status"] == "Issued" and DATE.fullmatch(details["replaced"]) and len(sim.state) == 1


async def test_replace_errors(start: StartSimulator, http: aiohttp.ClientSession) -> None:
    sim = await start(issue_after_polls=1)
    scm = Scm(http, sim.api_url, sim.credentials_headers())
    ssl_id = await scm.enroll()
    body = {"csr": make_csr(fresh_key=True), "reason": "rotate"}
    assert_scm_error(await scm.call("POST", f"/ssl/v1/replace/{ssl_id}", json_body=body), 400, -130)
    assert_scm_error(await scm.call("POST", f"/ssl/v1/replace/{ssl_id}", json_body={"reason": "r"}), 400, -7)
    assert_scm_error(await scm.call("POST", f"/ssl/v1/replace/{ssl_id}", json_body={"csr": body["csr"]}), 400, -7)


async def test_approve_and_decline(start: StartSimulator, http: aiohttp.ClientSession) -> None:
    sim = await start(require_approval=True)
    scm = Scm(http, sim.api_url, sim.credentials_headers())
    first, second = await scm.enroll(), await scm.enroll()
    assert (await scm.details(first))["status"] == "Requested"
    assert_scm_error(await scm.collect(first), 400, 0)
    approved = await scm.call("POST", f"/ssl/v1/approve/{first}", json_body={"message": "ok"})
    assert approved.status == 204
    assert (await scm.details(first))["status"] == "Applied"
    assert (await scm.collect(first)).status == 200
    assert_scm_error(await scm.call("POST", f"/ssl/v1/approve/{first}", json_body={"message": "again"}), 400, -1112)
    declined = await scm.call("POST", f"/ssl/v1/decline/{second}", json_body={"message": "no"})
    assert declined.status == 204
    assert (await scm.details(second))["status"] == "Declined"
    assert_scm_error(await scm.collect(second), 400, -130)
    assert_scm_error(await scm.call("POST", f"/ssl/v1/decline/{second}"), 400, -1112)


# -- authentication --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"login": "simulator-admin", "customerUri": "simulator"},
        {"login": "simulator-admin", "password": "wrong", "customerUri": "simulator"},
        {"login": "someone", "password": "simulator-password", "customerUri": "simulator"},
        {"login": "simulator-admin", "password": "simulator-password", "customerUri": "other"},
        {"Authorization": "Bearer not-a-token"},
    ],
    ids=["fail-no-headers", "fail-no-password", "fail-wrong-password", "fail-wrong-login", "fail-wrong-customer", "fail-unknown-token"],
)
async def test_api_rejects_bad_credentials(scm: Scm, headers: dict[str, str]) -> None:
    for method, path in (("GET", "/ssl/v1/types"), ("POST", "/ssl/v1/enroll"), ("GET", "/ssl/v1/1")):
        reply = await scm.call(method, path, headers=headers, json_body=_enroll_body())
        assert_scm_error(reply, 401, -16)
        assert reply.json() == {"code": -16, "description": "Unknown user"}


async def test_private_api_without_client_ca_needs_login_and_customer_uri(sim: Simulator, http: aiohttp.ClientSession) -> None:
    private = Scm(http, sim.private_api_url, {"login": "simulator-admin", "customerUri": "simulator"})
    ssl_id, _ = await private.issued()
    assert (await private.details(ssl_id))["sslId"] == ssl_id
    assert_scm_error(await private.call("GET", "/ssl/v1/types", headers={"login": "x", "customerUri": "simulator"}), 401, -16)


async def test_mutual_tls_on_private_api(start: StartSimulator, http: aiohttp.ClientSession, tls_material: dict[str, Any]) -> None:
    sim = await start(tls_cert=tls_material["server_pem"], client_ca=tls_material["client_ca_pem"])
    assert sim.url.startswith("https://127.0.0.1:")
    password_headers = sim.credentials_headers()
    cert_headers = {"login": sim.settings.login, "customerUri": sim.settings.customer_uri}
    no_cert = client_context(tls_material)
    with_cert = client_context(tls_material, "client")

    # ok-password-on-api: the optional TLS client certificate does not lock out password callers.
    api = Scm(http, sim.api_url, password_headers, ssl_context=no_cert)
    assert (await api.call("GET", "/ssl/v1/types")).status == 200
    # fail-private-without-cert: a password alone never gets in.
    refused = Scm(http, sim.private_api_url, password_headers, ssl_context=no_cert)
    assert_scm_error(await refused.call("GET", "/ssl/v1/types"), 401, -16)
    # ok-private-with-cert
    private = Scm(http, sim.private_api_url, cert_headers, ssl_context=with_cert)
    ssl_id, _ = await private.issued()
    assert (await private.details(ssl_id))["status"] == "Issued"
    # fail-private-cert-wrong-login
    wrong = await private.call("GET", "/ssl/v1/types", headers={"login": "other", "customerUri": "simulator"})
    assert_scm_error(wrong, 401, -16)
    # fail-cert-from-unknown-ca: refused at the TLS layer.
    async with aiohttp.ClientSession() as fresh:
        stranger = Scm(fresh, sim.private_api_url, cert_headers, ssl_context=client_context(tls_material, "stranger"))
        with pytest.raises(aiohttp.ClientError):
            await stranger.call("GET", "/ssl/v1/types")


async def test_port_in_use_is_a_config_error(start: StartSimulator, sim: Simulator) -> None:
    from service.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot listen"):
        await start(port=sim.port)


async def test_client_ca_requires_https(start: StartSimulator, tls_material: dict[str, Any]) -> None:
    from service.errors import ConfigError

    with pytest.raises(ConfigError):
        await start(client_ca=tls_material["client_ca_pem"])


async def test_oauth_token_flow(start: StartSimulator, http: aiohttp.ClientSession) -> None:
    clock = SecondsClock(time.time())
    sim = await start(clock=clock, token_ttl=60.0)
    form = {"grant_type": "client_credentials", "client_id": "simulator-client", "client_secret": "simulator-secret"}
    async with http.post(f"{sim.url}/oauth/token", data=form) as resp:
        assert resp.status == 200
        grant = await resp.json()
    assert grant["token_type"] == "Bearer" and grant["expires_in"] == 60 and grant["access_token"]
    assert sim.tokens_issued == 1
    bearer = Scm(http, sim.api_url, {"Authorization": f"Bearer {grant['access_token']}"})
    assert (await bearer.call("GET", "/ssl/v1/types")).status == 200
    ssl_id, _ = await bearer.issued()
    assert (await bearer.details(ssl_id))["sslId"] == ssl_id
    # ok-basic-auth on the Keycloak-style path
    basic = base64.b64encode(b"simulator-client:simulator-secret").decode()
    async with http.post(
        f"{sim.url}/auth/realms/apiclients/protocol/openid-connect/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    ) as resp:
        assert resp.status == 200
    assert sim.tokens_issued == 2
    # fail-expired-token
    clock.advance(60)
    expired = await bearer.call("GET", "/ssl/v1/types")
    assert_scm_error(expired, 401, -16)
    assert "invalid_token" in expired.headers["WWW-Authenticate"]
    # fail-bad-secret, fail-bad-grant
    async with http.post(f"{sim.url}/oauth/token", data={**form, "client_secret": "nope"}) as resp:
        assert resp.status == 401 and (await resp.json())["error"] == "invalid_client"
    async with http.post(f"{sim.url}/oauth/token", data={**form, "grant_type": "password"}) as resp:
        assert resp.status == 400 and (await resp.json())["error"] == "unsupported_grant_type"
    assert sim.tokens_issued == 2


# -- faults ----------------------------------------------------------------------------------


async def test_fault_status_for_next_n_requests(scm: Scm, sim: Simulator) -> None:
    ssl_id, _ = await scm.issued()
    sim.faults.add(FaultRule(route="collect", kind="status", status=503, count=2))
    for _ in range(2):
        reply = await scm.collect(ssl_id)
        assert reply.status == 503 and reply.json()["code"] == -14
    assert (await scm.collect(ssl_id)).status == 200
    assert (await scm.details(ssl_id))["status"] == "Issued"
    sim.faults.add(FaultRule(route="details", status=500, body="<html>oops</html>"))
    text = await scm.call("GET", f"/ssl/v1/{ssl_id}")
    assert text.status == 500 and text.body == b"<html>oops</html>" and text.headers["Content-Type"].startswith("text/plain")


async def test_fault_throttle_sets_retry_after(scm: Scm, sim: Simulator) -> None:
    sim.faults.add(FaultRule(route="types", kind="throttle", retry_after=2.5))
    reply = await scm.call("GET", "/ssl/v1/types")
    assert reply.status == 429 and reply.headers["Retry-After"] == "3"
    assert (await scm.call("GET", "/ssl/v1/types")).status == 200


async def test_fault_latency_uses_injected_sleep(start: StartSimulator, http: aiohttp.ClientSession) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    sim = await start(sleep=fake_sleep)
    scm = Scm(http, sim.api_url, sim.credentials_headers())
    sim.faults.add(FaultRule(route="any", kind="latency", latency=0.25, count=None))
    sim.faults.add(FaultRule(route="types", kind="status", status=502, latency=0.5))
    assert (await scm.call("GET", "/ssl/v1/types")).status == 502
    assert (await scm.call("GET", "/ssl/v1/types")).status == 200
    assert slept == [0.75, 0.25]


async def test_fault_drop_closes_without_answer(scm: Scm, sim: Simulator) -> None:
    sim.faults.add(FaultRule(route="enroll", kind="drop"))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await scm.call("POST", "/ssl/v1/enroll", json_body=_enroll_body(comments="dropped"))
    assert sim.state.find(comments="dropped") == []
    assert await scm.enroll(comments="next") > 0


async def test_fault_drop_reply_keeps_the_order(scm: Scm, sim: Simulator) -> None:
    sim.faults.add(FaultRule(route="enroll", kind="drop_reply"))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await scm.call("POST", "/ssl/v1/enroll", json_body=_enroll_body(comments="lost-reply-1"))
    [order] = sim.state.find(comments="lost-reply-1")
    # The gateway's recovery path: search by common name, match the marker in the details.
    found = await scm.call("GET", "/ssl/v1", params={"commonName": order.common_name})
    assert order.ssl_id in [item["sslId"] for item in found.json()]
    assert (await scm.details(order.ssl_id))["comments"] == "lost-reply-1"


async def test_fault_rate_is_seeded(start: StartSimulator, http: aiohttp.ClientSession) -> None:
    outcomes = []
    for _ in range(2):
        sim = await start(fault_seed=1234)
        scm = Scm(http, sim.api_url, sim.credentials_headers())
        sim.faults.add(FaultRule(route="types", kind="status", status=500, rate=0.5, count=None))
        outcomes.append([(await scm.call("GET", "/ssl/v1/types")).status for _ in range(20)])
    assert outcomes[0] == outcomes[1]
    assert 0 < outcomes[0].count(500) < 20


async def test_fault_rule_validation() -> None:
    for bad in ({"route": "nowhere"}, {"kind": "explode"}, {"count": 0}, {"rate": 2.0}, {"status": 42}):
        with pytest.raises(ValueError):
            FaultRule(**bad)


async def test_admin_fault_endpoint_and_stats(scm: Scm, sim: Simulator, http: aiohttp.ClientSession) -> None:
    admin = f"{sim.url}/__simulator/faults"
    rule = {"route": "collect", "kind": "throttle", "retryAfter": 4, "count": 2}
    async with http.post(admin, json=rule) as resp:
        assert resp.status == 201
        [added] = (await resp.json())["rules"]
    assert added["remaining"] == 2 and added["retryAfter"] == 4
    ssl_id = await scm.enroll()
    reply = await scm.collect(ssl_id)
    assert reply.status == 429 and reply.headers["Retry-After"] == "4"
    async with http.get(admin) as resp:
        assert [r["remaining"] for r in (await resp.json())["rules"]] == [1]
    async with http.delete(admin) as resp:
        assert resp.status == 204
    assert (await scm.collect(ssl_id)).status == 200
    async with http.post(admin, json={"rules": [{"route": "list", "status": 503}, {"route": "types", "kind": "drop"}]}) as resp:
        ids = [r["id"] for r in (await resp.json())["rules"]]
    async with http.delete(f"{admin}/{ids[0]}") as resp:
        assert resp.status == 204
    async with http.delete(f"{admin}/{ids[0]}") as resp:
        assert resp.status == 404
    async with http.delete(admin, params={"route": "types"}) as resp:
        assert resp.status == 204
    assert sim.faults.snapshot() == []
    for bad in ({"route": "nowhere"}, {"kind": "drop", "surprise": 1}, {"count": "two"}):
        async with http.post(admin, json=bad) as resp:
            assert resp.status == 400, bad
    async with http.get(f"{sim.url}/__simulator/stats") as resp:
        stats = await resp.json()
    assert stats["requests"]["enroll"] == 1 and stats["requests"]["collect"] == 2
    assert stats["faultsApplied"]["collect"] == 1
    assert stats["orders"]["total"] == 1 and stats["orders"]["byStatus"]["Issued"] == 1
    assert sim.stats.requests["collect"] == 2
    async with http.delete(f"{sim.url}/__simulator/stats") as resp:
        assert resp.status == 204
    assert sim.stats.requests == {}
    async with http.get(f"{sim.url}/__simulator/ca.pem") as resp:
        assert (await resp.read()) == sim.ca_certificate_path.read_bytes()


async def test_call_log_records_each_scm_call_with_time_and_order(start: StartSimulator,
                                                                   http: aiohttp.ClientSession) -> None:
    clock = SecondsClock(time.time())
    sim = await start(clock=clock)
    scm = Scm(http, sim.api_url, sim.credentials_headers())
    ssl_id = await scm.enroll()
    clock.advance(2.5)
    await scm.collect(ssl_id)
    await scm.call("GET", "/ssl/v1/types")
    async with http.get(f"{sim.url}/__simulator/calls") as resp:
        assert resp.status == 200
        log = await resp.json()
    assert [(c["route"], c["sslId"]) for c in log["calls"]] == [("enroll", ssl_id), ("collect", ssl_id), ("types", None)]
    assert log["calls"][1]["time"] - log["calls"][0]["time"] == pytest.approx(2.5)
    assert log["dropped"] == 0
    async with http.delete(f"{sim.url}/__simulator/calls") as resp:
        assert resp.status == 204
    async with http.get(f"{sim.url}/__simulator/calls") as resp:
        assert (await resp.json())["calls"] == []
    assert sim.stats.requests["collect"] == 1  # clearing the log keeps the counters


async def test_issue_on_demand_issues_the_named_pending_orders_at_once(start: StartSimulator,
                                                                      http: aiohttp.ClientSession) -> None:
    clock = SecondsClock(time.time())
    sim = await start(clock=clock, issue_after=3600.0, issue_after_polls=None)
    scm = Scm(http, sim.api_url, sim.credentials_headers())
    first, second = await scm.enroll(), await scm.enroll()
    async with http.post(f"{sim.url}/__simulator/issue", json={"sslIds": [first, 999999]}) as resp:
        assert resp.status == 200 and (await resp.json()) == {"issued": 1}
    issued = (await scm.call("GET", "/ssl/v1", params={"status": "Issued"})).json()
    assert [item["sslId"] for item in issued] == [first]
    assert (await scm.call("GET", f"/ssl/v1/collect/{second}", params={"format": "x509CO"})).status == 400
    async with http.post(f"{sim.url}/__simulator/issue", json={"sslIds": "all"}) as resp:
        assert resp.status == 400 and "sslIds" in (await resp.json())["description"]


class _RemoteTransport:
    """The peer address a request from another host would carry."""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("10.1.2.3", 40000) if name == "peername" else default

    def is_closing(self) -> bool:
        return False


@pytest.mark.parametrize("method", [pytest.param("GET", id="fail-read"), pytest.param("DELETE", id="fail-clear")])
async def test_call_log_refuses_callers_off_loopback(sim: Simulator, method: str) -> None:
    app = build_app(sim.manager, auth=Authenticator(sim.settings, clock=time.time), faults=sim.faults,
                    stats=sim.stats, sleep=asyncio.sleep)
    request = make_mocked_request(method, "/__simulator/calls", app=app, transport=_RemoteTransport())
    match = await app.router.resolve(request)
    response = await match.handler(request)
    assert response.status == 403
    assert json.loads(response.body)["description"] == "the call log answers loopback callers only"


async def test_call_log_keeps_the_newest_calls_and_counts_the_dropped() -> None:
    stats = SimulatorStats(calls=deque(maxlen=2))
    for second in range(3):
        stats.record("collect", at=float(second), ssl_id=7)
    assert [entry.at for entry in stats.calls] == [1.0, 2.0] and stats.calls_dropped == 1
    assert stats.requests["collect"] == 3
    stats.reset()
    assert not stats.calls and stats.calls_dropped == 0 and not stats.requests


async def test_unknown_route_answers_scm_shaped_404(scm: Scm) -> None:
    assert_scm_error(await scm.call("GET", "/ssl/v9/whatever"), 404, -1)
    reply = await scm.call("DELETE", "/ssl/v1/enroll")
    assert reply.status == 405 and reply.json()["code"] == -1


# -- persistence and lifecycle ---------------------------------------------------------------


async def test_state_file_survives_restart(start: StartSimulator, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    first = await start(state_file=state, issue_after_polls=1)
    scm = Scm(http, first.api_url, first.credentials_headers())
    issued_id = await scm.enroll(comments="kept")
    await scm.collect(issued_id)
    leaf = (await scm.collect(issued_id)).body
    pending_id = await scm.enroll(comments="still-pending")
    assert_scm_error(await scm.collect(pending_id), 400, 0)
    revoked_id = await scm.enroll(comments="revoked")
    await scm.collect(revoked_id)
    await scm.collect(revoked_id)
    await scm.call("POST", f"/ssl/v1/revoke/{revoked_id}", json_body={"reason": "test"})
    await first.stop()

    second = await start(state_file=state, issue_after_polls=1)
    scm = Scm(http, second.api_url, second.credentials_headers())
    assert len(second.state) == 3
    assert (await scm.collect(issued_id)).body == leaf
    assert (await scm.details(issued_id))["comments"] == "kept"
    assert (await scm.details(revoked_id))["status"] == "Revoked"
    assert (await scm.details(pending_id))["status"] == "Applied"
    assert (await scm.collect(pending_id)).status == 200  # its one pending poll happened before the restart
    assert await scm.enroll() > max(issued_id, pending_id, revoked_id)


async def test_state_file_survives_a_crash(start: StartSimulator, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    """Every change is appended at once, so a simulator that never stopped cleanly loses nothing."""
    state = tmp_path / "state.json"
    crashed = await start(state_file=state)
    scm = Scm(http, crashed.api_url, crashed.credentials_headers())
    ssl_id, leaf = await scm.issued(comments="before-crash")
    revoked_id, _ = await scm.issued()
    await scm.call("POST", f"/ssl/v1/revoke/{revoked_id}", json_body={"reason": "crash test"})
    recovered = await start(state_file=state)  # the first one is never stopped before this reads the file
    assert [o.comments for o in recovered.state.find(status="Issued")] == ["before-crash"]
    restored = recovered.state.get(ssl_id)
    assert restored is not None and restored.serial_number == leaf.serial_number
    assert recovered.state.get(revoked_id) is not None and recovered.state.get(revoked_id).status == "Revoked"  # type: ignore[union-attr]


async def test_ca_is_reused_across_restarts(start: StartSimulator, ca_dir: Path) -> None:
    first = await start()
    pem = first.ca_certificate_path.read_bytes()
    await first.stop()
    second = await start()
    assert second.ca_certificate_path == ca_dir / "ca.pem" and second.ca_certificate_path.read_bytes() == pem
    assert (ca_dir / "ca-key.pem").stat().st_mode & 0o077 == 0


def test_command_line_runs_until_sigterm(tmp_path: Path) -> None:
    """``python -m service.simulator`` prints URL, credentials and CA path, then stops on SIGTERM."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable, "-m", "service.simulator", "--listen", "127.0.0.1:0", "--ca-dir", str(tmp_path / "ca"),
        "--issue-after", "500ms", "--password", "s3cret-from-flag",
    ]
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            banner = "".join(proc.stdout.readline() for _ in range(8))
            assert re.search(r"listening on http://127\.0\.0\.1:\d+", banner), banner
            assert "simulator-admin" in banner and str(tmp_path / "ca" / "ca.pem") in banner
            assert "s3cret-from-flag" not in banner
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=10)
            assert proc.returncode == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


async def test_concurrent_enrolls_get_distinct_ids(scm: Scm, sim: Simulator) -> None:
    ids = await asyncio.gather(*(scm.enroll(make_csr(f"c{i}.example.com")) for i in range(20)))
    assert len(set(ids)) == 20 and len(sim.state) == 20
