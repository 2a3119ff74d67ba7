"""Hostile and wrong input through the whole gateway: nothing unvalidated reaches the simulator.

Each refusal is checked twice: the caller gets a precise 400 naming the field,
and the simulator (the stand-in for Sectigo, over real TLS) saw no enroll call
at all, counted from its request statistics and its order book.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from service.simulator import SimulatorSettings
from service.simulator.settings import DEFAULT_CERT_TYPES
from tests.integration.stack import CA_ID, PROFILE_ID, Stack, make_csr, running_stack

ENROLL = f"/v1/certificate-authorities/{CA_ID}/enrollments"


@dataclass
class Gateway:
    stack: Stack
    session: aiohttp.ClientSession

    async def post(self, body: Any = None, *, raw: str | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else json.dumps(body)
        async with self.session.post(self.stack.rest_base + ENROLL, data=data,
                                     headers={"Content-Type": "application/json"}) as response:
            return response.status, await response.json()

    def enroll_calls(self) -> int:
        return self.stack.simulator.stats.requests["enroll"]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Gateway]:
    # "standard" status mode: a refused request is the 400 of the grpc-gateway table.
    async with running_stack(tmp_path_factory.mktemp("hostile"), enrollment_status="standard") as stack, \
            aiohttp.ClientSession() as session:
        yield Gateway(stack, session)


def _csr_with(names: list[x509.GeneralName], *, key: Any = None, common_name: str = "host.example.com") -> str:
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def _refusal(body: Any) -> tuple[str, str, str]:
    error = body["error"]
    return error["code"], error["target"], error["message"]


@pytest.mark.parametrize(("names", "target"), [
    pytest.param([x509.DNSName("a.example.com,evil.example.net")], "csr.subjectAltNames[0].value",
                 id="fail-comma-injects-a-second-name"),
    pytest.param([x509.DNSName("ok.example.com"), x509.DNSName("a.example.com evil.example.net")],
                 "csr.subjectAltNames[1].value", id="fail-space-holds-two-names"),
    pytest.param([x509.DNSName("*.*.example.com")], "csr.subjectAltNames[0].value", id="fail-double-wildcard"),
    pytest.param([x509.DNSName("www.example.com.")], "csr.subjectAltNames[0].value", id="fail-trailing-dot"),
    pytest.param([x509.RFC822Name("ops@example.com,evil@example.net")], "csr.subjectAltNames[0].value",
                 id="fail-comma-in-an-email"),
    pytest.param([x509.DNSName(f"h{i}.example.com") for i in range(101)], "csr.subjectAltNames",
                 id="fail-more-names-than-the-limit"),
])
async def test_fail_csr_sans_get_the_checks_of_request_sans(gateway: Gateway, names: list[x509.GeneralName],
                                                            target: str) -> None:
    orders, calls = len(gateway.stack.simulator.state), gateway.enroll_calls()
    status, body = await gateway.post({"profileId": PROFILE_ID, "csr": _csr_with(names)})
    assert status == 400, body
    code, field, _ = _refusal(body)
    assert (code, field) == ("INVALID_REQUEST", target)
    assert (len(gateway.stack.simulator.state), gateway.enroll_calls()) == (orders, calls)


async def test_ok_the_simulator_receives_exactly_the_validated_csr_names(gateway: Gateway) -> None:
    calls = gateway.enroll_calls()
    csr = _csr_with([x509.DNSName("Alias.Example.com"), x509.DNSName("b.example.com")], common_name="c.example.com")
    status, body = await gateway.post({"profileId": PROFILE_ID, "csr": csr})
    assert status == 200, body
    assert gateway.enroll_calls() == calls + 1
    [order] = [o for o in gateway.stack.simulator.state if o.common_name == "c.example.com"]
    # The simulator adds the CN, as Sectigo does; nothing else arrived.
    assert sorted(order.sans) == ["DNS:alias.example.com", "DNS:b.example.com", "DNS:c.example.com"]


async def test_fail_a_subject_dn_other_than_the_csr_subject_is_refused(gateway: Gateway) -> None:
    calls = gateway.enroll_calls()
    status, body = await gateway.post({"profileId": PROFILE_ID, "csr": make_csr("real.example.com"),
                                       "optionalCertificateRequestDetails": {"subjectDn": "CN=other.example.com"}})
    assert status == 400, body
    code, field, message = _refusal(body)
    assert (code, field) == ("INVALID_REQUEST", "optionalCertificateRequestDetails.subjectDn")
    assert "differs from the subject the certificate will carry (CN=real.example.com)" in message
    assert gateway.enroll_calls() == calls


async def test_ok_a_subject_dn_equal_after_normalising_answers_and_files_the_certificate_subject(
        gateway: Gateway) -> None:
    status, body = await gateway.post({"profileId": PROFILE_ID, "csr": make_csr("same.example.com"),
                                       "optionalCertificateRequestDetails": {"subjectDn": " cn=SAME.example.com "}})
    assert status == 200, body
    assert body["enrollment"]["subjectName"] == "CN=same.example.com"
    path = f"/v1/certificate-authorities/{CA_ID}/subjects/CN%3Dsame.example.com"
    async with gateway.session.get(gateway.stack.rest_base + path) as response:
        subject = await response.json()
    assert [c["serialNumber"] for c in subject["subject"]["certificates"]] == [body["enrollment"]["serialNumber"]]


@pytest.mark.parametrize(("fields", "target", "words"), [
    pytest.param({"optionalCertificateRequestDetails": {"validityPeriod": "9999-12-31T00:00:00Z/P10D"}},
                 "optionalCertificateRequestDetails.validityPeriod", "outside the years 0001-9999",
                 id="fail-validity-beyond-9999"),
    pytest.param({"optionalCertificateRequestDetails": {"validityPeriod": "P1D/0001-01-01T00:00:00Z"}},
                 "optionalCertificateRequestDetails.validityPeriod", "outside the years 0001-9999",
                 id="fail-validity-before-year-1"),
    pytest.param({"optionalCertificateRequestDetails": {"validityPeriod": "2027-02-29T00:00:00Z/P1D"}},
                 "optionalCertificateRequestDetails.validityPeriod", "is not an ISO 8601 date-time",
                 id="fail-validity-calendar-edge"),
    pytest.param({"maxWait": "315576000000s"}, "maxWait", "between 0s and 3600s", id="fail-huge-max-wait"),
    pytest.param({"maxWait": "-1s"}, "maxWait", "between 0s and 3600s", id="fail-negative-max-wait"),
    pytest.param({"maxWait": "5 minutes"}, "maxWait", 'expected a duration in seconds like "2.5s"', id="fail-max-wait-words"),
    pytest.param({"maxWait": "99999999999999999999s"}, "maxWait", 'expected a duration in seconds like "2.5s"',
                 id="fail-max-wait-beyond-a-duration"),
])
async def test_fail_wrong_values_are_400_with_a_clear_message(gateway: Gateway, fields: dict[str, Any],
                                                              target: str, words: str) -> None:
    calls = gateway.enroll_calls()
    status, answer = await gateway.post({"profileId": PROFILE_ID, "csr": make_csr("wrong.example.com"), **fields})
    assert status == 400, answer
    code, field, message = _refusal(answer)
    assert (code, field) == ("INVALID_REQUEST", target)
    assert words in message
    assert "Couldn't parse" not in message and "Traceback" not in json.dumps(answer)
    assert gateway.enroll_calls() == calls


@pytest.mark.parametrize("raw", [
    pytest.param('{"profileId": "nope", "profileId": "%s", "csr": %s}', id="fail-duplicate-top-level-key"),
    pytest.param('{"profileId": "%s", "csr": %s, "optionalCertificateRequestDetails": '
                 '{"subjectDn": "CN=a", "subjectDn": "CN=b"}}', id="fail-duplicate-nested-key"),
])
async def test_fail_duplicate_keys_in_a_json_body(gateway: Gateway, raw: str) -> None:
    calls = gateway.enroll_calls()
    text = raw.replace("%s", PROFILE_ID, 1).replace("%s", json.dumps(make_csr("dup.example.com")), 1)
    status, body = await gateway.post(raw=text)
    assert status == 400, body
    assert "duplicate key" in body["error"]["message"]
    assert gateway.enroll_calls() == calls


async def test_fail_weak_keys_on_a_profile_without_key_types(tmp_path: Path) -> None:
    # The cert type lists no key types, so the profile has none (as a static profile while Sectigo is down).
    simulator = SimulatorSettings(issue_after_polls=1,
                                  cert_types=(dataclasses.replace(DEFAULT_CERT_TYPES[0], key_types={}),))
    async with running_stack(tmp_path, enrollment_status="standard", simulator=simulator) as stack, \
            aiohttp.ClientSession() as session:
        gateway = Gateway(stack, session)
        for key, words in [(rsa.generate_private_key(public_exponent=65537, key_size=1024), "RSA 1024"),
                           (ec.generate_private_key(ec.SECP521R1()), "EC P-521")]:
            status, body = await gateway.post({"profileId": PROFILE_ID, "csr": _csr_with([], key=key)})
            assert status == 400, body
            code, field, message = _refusal(body)
            assert (code, field) == ("INVALID_REQUEST", "csr")
            assert f"{words} is not allowed: profile {PROFILE_ID} lists no key types, so the gateway allows " \
                   "RSA 2048-8192 bits and EC P-256, P-384" in message
        assert gateway.enroll_calls() == 0 and len(stack.simulator.state) == 0


async def test_ok_subject_listing_pages_over_rest(gateway: Gateway) -> None:
    serials = []
    for _ in range(3):
        status, body = await gateway.post({"profileId": PROFILE_ID, "csr": make_csr("paged.example.com")})
        assert status == 200, body
        serials.append(body["enrollment"]["serialNumber"])
    path = f"/v1/certificate-authorities/{CA_ID}/subjects/CN%3Dpaged.example.com?preferredPageSize=2"
    seen: list[str] = []
    url = gateway.stack.rest_base + path
    while True:
        async with gateway.session.get(url) as response:
            assert response.status == 200
            page = await response.json()
        seen += [c["serialNumber"] for c in page["subject"]["certificates"]]
        if not page["morePages"]:
            break
        url = gateway.stack.rest_base + path + "&nextPageIndex=" + page["nextPageIndex"]
    assert seen == list(reversed(serials))
