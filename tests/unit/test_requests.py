"""Each check of an enrollment request on its own, then prepare_order composing them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from service.authorities import ManagedCA
from service.catalog import ProfileCatalog, ResolvedProfile
from service.config import ProfileOptions
from service.enrollment.orders import OrderOptions
from service.enrollment.requests import (
    EnrollmentInput,
    RenewalTarget,
    Subject,
    Violations,
    check_key,
    check_request_fields,
    order_options,
    prepare_order,
    read_csr,
    renewal_target,
    required_format,
    resolve_profile,
    subject_alt_names,
    subject_of,
    term_days,
    unsupported,
)
from service.errors import Unimplemented
from service.ledger import Ledger, OrderKind
from service.x509 import ParsedCSR, parse_csr
from tests.support.csr import build_csr, pem_of
from tests.support.settings import build_ca_settings
from tests.unit.fakes import CA_ID, FakeConnector, seed_issued

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
KEY = ec.generate_private_key(ec.SECP256R1())
WWW = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"),
                 x509.NameAttribute(NameOID.COMMON_NAME, "www.example.com")])
PROFILE = ResolvedProfile(id="ov", name="OV", ca_profile_id="101", terms=(365, 730))


def _csr(subject: x509.Name = WWW, sans: list[x509.GeneralName] | None = None) -> str:
    return pem_of(build_csr(KEY, subject=subject, sans=sans))


def _parsed(subject: x509.Name = WWW, sans: list[x509.GeneralName] | None = None) -> ParsedCSR:
    return parse_csr(_csr(subject, sans))


def _input(**fields: object) -> EnrollmentInput:
    values: dict[str, object] = {"ca_id": CA_ID, "profile_id": "101", "csr": _csr()}
    values.update(fields)
    return EnrollmentInput(**values)  # type: ignore[arg-type]


def _fields(problems: Violations) -> list[str]:
    return [v.field for v in problems.items]


class SanLimitedConnector(FakeConnector):
    """A CA that declares the SAN types it can carry (the optional SubjectAltNameTypes)."""

    @property
    def san_types(self) -> frozenset[str]:
        return frozenset({"dNSName"})


def _managed(tmp: Path, connector: FakeConnector, **profile_options: ProfileOptions) -> ManagedCA:
    settings = build_ca_settings(tmp)
    settings = dataclasses.replace(settings, gateway=dataclasses.replace(settings.gateway,
                                                                         profile_options=profile_options))
    return ManagedCA(settings=settings, connector=connector, catalog=ProfileCatalog(settings, connector))


# ------------------------------------------------------------------ format and request fields


def _keys_off(tmp: Path) -> ManagedCA:
    managed = _managed(tmp, FakeConnector())
    gateway = dataclasses.replace(managed.settings.gateway, server_side_keys=False)
    return dataclasses.replace(managed, settings=dataclasses.replace(managed.settings, gateway=gateway))


@pytest.mark.parametrize("asked", ["PKCS12", "pkcs12"])
def test_fail_pkcs12_is_unsupported_on_a_ca_without_server_side_keys_whatever_else_the_request_holds(
        asked: str, tmp_path: Path) -> None:
    refusal = unsupported(_input(required_format=asked), _keys_off(tmp_path))
    assert isinstance(refusal, Unimplemented) and refusal.reason == "SERVER_KEYGEN_NOT_OFFERED"
    assert "gateway.server-side-keys: false" in refusal.message


def test_ok_pem_and_no_format_are_supported(tmp_path: Path) -> None:
    assert unsupported(_input(required_format="PEM"), _keys_off(tmp_path)) is None
    assert unsupported(_input(), _keys_off(tmp_path)) is None
    assert unsupported(_input(required_format="PKCS12"), _managed(tmp_path, FakeConnector())) is None


@pytest.mark.parametrize(("asked", "expected", "fields"), [
    pytest.param("", "PEM", [], id="ok-absent-is-pem"),
    pytest.param("x509", "X509", [], id="ok-case-insensitive"),
    pytest.param("PKCS12", "PKCS12", [], id="ok-pkcs12"),
    pytest.param("DOCX", "PEM", ["requiredFormat.format"], id="fail-unknown"),
])
def test_required_format(asked: str, expected: str, fields: list[str]) -> None:
    problems = Violations()
    assert required_format(_input(required_format=asked), problems) == expected
    assert _fields(problems) == fields


@pytest.mark.parametrize(("fields", "expected"), [
    pytest.param({}, [], id="ok-plain"),
    pytest.param({"request_id": "abc-1.2:x~y_z"}, [], id="ok-request-id"),
    pytest.param({"encoded_private_key": True}, ["optionalCertificateRequestDetails.encodedPrivateKey"],
                 id="fail-private-key-sent"),
    pytest.param({"request_id": "has space"}, ["requestId"], id="fail-request-id-characters"),
    pytest.param({"request_id": "r" * 129}, ["requestId"], id="fail-request-id-too-long"),
    pytest.param({"properties": {f"k{i}": "v" for i in range(65)}}, ["properties"], id="fail-too-many-properties"),
    pytest.param({"properties": {"k": "v" * 1025}}, ["properties.k"], id="fail-property-value-too-long"),
])
def test_check_request_fields(fields: dict[str, object], expected: list[str]) -> None:
    problems = Violations()
    check_request_fields(_input(**fields), problems)
    assert _fields(problems) == expected


# ------------------------------------------------------------------ profile and key


@pytest.mark.parametrize(("profile_id", "found", "fields"), [
    pytest.param("101", True, [], id="ok-synced-profile"),
    pytest.param("", False, ["profileId"], id="fail-missing"),
    pytest.param("nope", False, ["profileId"], id="fail-unknown"),
])
async def test_resolve_profile(tmp_path: Path, profile_id: str, found: bool, fields: list[str]) -> None:
    problems = Violations()
    profile = await resolve_profile(_input(profile_id=profile_id), ca=_managed(tmp_path, FakeConnector()),
                                    problems=problems)
    assert (profile is not None, _fields(problems)) == (found, fields)
    if profile is not None:
        assert profile.ca_profile_id == "101"


@pytest.mark.parametrize(("key_types", "fields"), [
    pytest.param({}, [], id="ok-profile-lists-no-key-types"),
    pytest.param({"EC": ("P-256",)}, [], id="ok-listed"),
    pytest.param({"RSA": ("2048",)}, ["csr"], id="fail-not-listed"),
])
def test_check_key(key_types: dict[str, tuple[str, ...]], fields: list[str]) -> None:
    problems = Violations()
    check_key(_parsed(), dataclasses.replace(PROFILE, key_types=key_types), problems)
    assert _fields(problems) == fields


@pytest.mark.parametrize(("key", "fields"), [
    pytest.param(ec.generate_private_key(ec.SECP384R1()), [], id="ok-floor-p384"),
    pytest.param(rsa.generate_private_key(public_exponent=65537, key_size=2048), [], id="ok-floor-rsa-2048"),
    pytest.param(rsa.generate_private_key(public_exponent=65537, key_size=1024), ["csr"], id="fail-floor-rsa-1024"),
    pytest.param(ec.generate_private_key(ec.SECP521R1()), ["csr"], id="fail-floor-p521"),
])
def test_check_key_floor_when_the_profile_lists_no_key_types(key: Any, fields: list[str]) -> None:
    problems = Violations()
    check_key(parse_csr(pem_of(build_csr(key, subject=WWW))), PROFILE, problems)
    assert _fields(problems) == fields
    if fields:
        assert "profile ov lists no key types, so the gateway allows RSA 2048-8192 bits and EC P-256, P-384" in (
            problems.items[0].description)


def test_ok_check_key_without_a_csr_or_profile_checks_nothing() -> None:
    problems = Violations()
    check_key(None, dataclasses.replace(PROFILE, key_types={"RSA": ("2048",)}), problems)
    check_key(_parsed(), None, problems)
    assert not problems


# ------------------------------------------------------------------ CSR


@pytest.mark.parametrize(("fields", "parsed", "violations"), [
    pytest.param({}, True, [], id="ok-csr"),
    pytest.param({"csr": "not a csr"}, False, ["csr"], id="fail-garbage"),
    pytest.param({"csr": "  "}, False, ["csr"], id="fail-missing-for-an-enrollment"),
    pytest.param({"csr": "", "renewal": True}, False, [], id="ok-a-renewal-may-omit-it"),
])
def test_read_csr(fields: dict[str, object], parsed: bool, violations: list[str]) -> None:
    problems = Violations()
    assert (read_csr(_input(**fields), problems) is not None) is parsed
    assert _fields(problems) == violations


# ------------------------------------------------------------------ renewal target


async def test_ok_no_renewal_needs_no_target(ledger: Ledger) -> None:
    problems = Violations()
    assert await renewal_target(_input(), ca_id=CA_ID, ledger=ledger, problems=problems) is None
    assert not problems


async def test_ok_renewal_target_is_the_certificate_issued_here(ledger: Ledger) -> None:
    order, certificate = await seed_issued(ledger, FakeConnector(), "CN=old.example.com")
    problems = Violations()
    target = await renewal_target(
        _input(renewal=True, properties={"RenewalSerialNumber": certificate.serial_number.upper()}),
        ca_id=CA_ID, ledger=ledger, problems=problems)
    assert target == RenewalTarget(serial=certificate.serial_number, ca_order_id=order.ca_order_id or "",
                                   subject_dn="cn=old.example.com")
    assert not problems


@pytest.mark.parametrize("serial", [
    pytest.param("", id="fail-missing"),
    pytest.param("not hex", id="fail-not-a-serial"),
    pytest.param("5912bd91", id="fail-not-issued-here"),
])
async def test_fail_renewal_target(ledger: Ledger, serial: str) -> None:
    problems = Violations()
    properties = {"RenewalSerialNumber": serial} if serial else {}
    assert await renewal_target(_input(renewal=True, properties=properties), ca_id=CA_ID, ledger=ledger,
                                problems=problems) is None
    assert _fields(problems) == ["properties.RenewalSerialNumber"]


# ------------------------------------------------------------------ subject


def test_ok_subject_dn_equal_to_the_csr_subject_shows_what_the_certificate_carries() -> None:
    problems = Violations()
    subject = subject_of(_input(subject_dn="CN=WWW.Example.com,  O=ACME"), csr=_parsed(), renewal=None,
                         problems=problems)
    assert subject == Subject("cn=www.example.com,o=acme", "CN=www.example.com,O=Acme", "www.example.com")
    assert not problems


def test_fail_subject_dn_other_than_the_csr_subject_is_refused_precisely() -> None:
    problems = Violations()
    subject_of(_input(subject_dn="CN=Given.Example.com, O=Acme"), csr=_parsed(), renewal=None, problems=problems)
    [violation] = problems.items
    assert violation.field == "optionalCertificateRequestDetails.subjectDn"
    assert "differs from the subject the certificate will carry (CN=www.example.com,O=Acme)" in violation.description
    assert violation.value == "CN=Given.Example.com, O=Acme"


def test_fail_subject_dn_other_than_the_renewed_subject_is_refused() -> None:
    problems = Violations()
    renewal = RenewalTarget(serial="1", ca_order_id="9", subject_dn="cn=old.example.com")
    subject_of(_input(csr="", subject_dn="CN=new.example.com"), csr=None, renewal=renewal, problems=problems)
    assert _fields(problems) == ["optionalCertificateRequestDetails.subjectDn"]


def test_ok_subject_of_the_csr_then_of_the_renewed_certificate() -> None:
    problems = Violations()
    assert subject_of(_input(), csr=_parsed(), renewal=None, problems=problems) == Subject(
        "cn=www.example.com,o=acme", "CN=www.example.com,O=Acme", "www.example.com")
    renewal = RenewalTarget(serial="1", ca_order_id="9", subject_dn="cn=old.example.com")
    assert subject_of(_input(csr=""), csr=None, renewal=renewal, problems=problems) == Subject(
        "cn=old.example.com", "cn=old.example.com")
    assert not problems


@pytest.mark.parametrize(("fields", "csr_subject", "violations"), [
    pytest.param({"subject_dn": "CN"}, WWW, ["optionalCertificateRequestDetails.subjectDn"], id="fail-bad-dn"),
    pytest.param({}, x509.Name([]), ["csr"], id="fail-empty-csr-subject"),
    pytest.param({"subject_dn": "CN=a"}, x509.Name([]), ["optionalCertificateRequestDetails.subjectDn", "csr"],
                 id="fail-empty-csr-subject-with-a-subject-dn"),
    pytest.param({"subject_variables": (("CN", ""), ("O", "Acme"))}, WWW, ["subjectVariables[0]"],
                 id="fail-subject-variable-without-value"),
    pytest.param({"subject_variables": (("cn", "WWW.example.com"), ("organizationName", "acme"))}, WWW, [],
                 id="ok-subject-variables-the-certificate-carries"),
    pytest.param({"subject_variables": (("OU", "Ops"),)}, WWW, ["subjectVariables[0]"],
                 id="fail-subject-variable-not-carried"),
    pytest.param({"subject_variables": (("O", "Other"),)}, WWW, ["subjectVariables[0]"],
                 id="fail-subject-variable-other-value"),
    pytest.param({"subject_variables": (("firstname", "Ann"),)}, WWW, ["subjectVariables[0]"],
                 id="fail-template-variable"),
    pytest.param({"subject_dn": "CN=a,OU=Ops", "subject_variables": (("OU", "Ops"),)},
                 x509.Name([x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Ops"),
                            x509.NameAttribute(NameOID.COMMON_NAME, "a")]), [],
                 id="ok-subject-variable-of-the-subject-dn"),
])
def test_subject_of_problems(fields: dict[str, object], csr_subject: x509.Name, violations: list[str]) -> None:
    problems = Violations()
    subject_of(_input(**fields), csr=_parsed(csr_subject), renewal=None, problems=problems)
    assert _fields(problems) == violations


def test_fail_subject_variable_names_the_attribute() -> None:
    problems = Violations()
    subject_of(_input(subject_variables=(("OU", "Ops"), ("O", "Other"))), csr=_parsed(), renewal=None,
               problems=problems)
    assert "OU: the certificate will carry no OU attribute" in problems.items[0].description
    assert "will carry O=Acme, not O=Other" in problems.items[1].description
    assert problems.items[0].value == "OU=Ops"


# ------------------------------------------------------------------ SANs


def test_ok_sans_of_the_request_win_over_the_csr(tmp_path: Path) -> None:
    problems = Violations()
    csr = _parsed(sans=[x509.DNSName("csr.example.com")])
    sans = subject_alt_names(_input(subject_alt_names=(("dnsname", "WWW.Example.com"),)), csr=csr,
                             ca=_managed(tmp_path, FakeConnector()), problems=problems)
    assert [(s.type, s.value) for s in sans] == [("dNSName", "www.example.com")]
    assert not problems


def test_ok_without_the_capability_every_san_type_is_carried(tmp_path: Path) -> None:
    problems = Violations()
    csr = _parsed(sans=[x509.DNSName("a.example.com"), x509.RFC822Name("ops@example.com")])
    sans = subject_alt_names(_input(), csr=csr, ca=_managed(tmp_path, FakeConnector()), problems=problems)
    assert [s.type for s in sans] == ["dNSName", "rfc822Name"]
    assert not problems


@pytest.mark.parametrize(("fields", "csr_sans", "violations"), [
    pytest.param({"subject_alt_names": (("dNSName", "a.example.com"), ("iPAddress", "10.0.0.1"))}, None,
                 ["subjectAltNames[1].type"], id="fail-request-san-the-ca-cannot-carry"),
    pytest.param({}, [x509.IPAddress(ipaddress.ip_address("10.0.0.1"))], ["csr"],
                 id="fail-csr-san-the-ca-cannot-carry"),
    pytest.param({"subject_alt_names": (("dNSName", "bad..name"),)}, None, ["subjectAltNames[0].value"],
                 id="fail-bad-san-value"),
    pytest.param({}, [x509.DNSName("a.example.com,evil.example.net")], ["csr.subjectAltNames[0].value"],
                 id="fail-csr-san-with-a-comma"),
    pytest.param({}, [x509.DNSName("ok.example.com"), x509.DNSName("a.example.com evil.example.net")],
                 ["csr.subjectAltNames[1].value"], id="fail-csr-san-with-a-space"),
    pytest.param({}, [x509.DNSName("*.*.example.com")], ["csr.subjectAltNames[0].value"],
                 id="fail-csr-san-double-wildcard"),
    pytest.param({}, [x509.DNSName("www.example.com.")], ["csr.subjectAltNames[0].value"],
                 id="fail-csr-san-root-dot"),
    pytest.param({}, [x509.DNSName(f"h{i}.example.com") for i in range(101)], ["csr.subjectAltNames"],
                 id="fail-csr-sans-beyond-the-count-limit"),
])
def test_subject_alt_names_problems(tmp_path: Path, fields: dict[str, object],
                                    csr_sans: list[x509.GeneralName] | None, violations: list[str]) -> None:
    problems = Violations()
    sans = subject_alt_names(_input(**fields), csr=_parsed(sans=csr_sans), ca=_managed(tmp_path, SanLimitedConnector()),
                             problems=problems)
    assert _fields(problems) == violations
    assert all(s.type == "dNSName" for s in sans)


# ------------------------------------------------------------------ term


@pytest.mark.parametrize(("profile", "period", "term", "violations"), [
    pytest.param(PROFILE, "", 365, [], id="ok-first-term-when-none-asked"),
    # A request is never exceeded: the longest term within it, or a refusal listing the terms.
    pytest.param(PROFILE, "P400D", 365, [], id="ok-longest-term-within-the-request"),
    pytest.param(PROFILE, "P1000D", 730, [], id="ok-largest-term-when-none-covers"),
    pytest.param(PROFILE, "P1Y", 365, [], id="ok-exact-term"),
    pytest.param(PROFILE, "PT525600M", 365, [], id="ok-minutes-of-a-year"),
    pytest.param(PROFILE, "2030-01-01T00:00:00Z/2031-01-01T00:00:00Z", 365, [], id="ok-interval-of-a-term"),
    pytest.param(PROFILE, "P90D", 0, ["optionalCertificateRequestDetails.validityPeriod"], id="fail-no-term-fits"),
    pytest.param(PROFILE, "PT0M", 365, [], id="ok-zero-duration-asks-for-nothing"),
    pytest.param(PROFILE, "P0Y0M0DT0H0M", 365, [], id="ok-zero-full-duration-asks-for-nothing"),
    pytest.param(dataclasses.replace(PROFILE, default_term=730), "PT0M", 730, [], id="ok-zero-gets-the-default"),
    pytest.param(dataclasses.replace(PROFILE, terms=()), "PT1H", 0,
                 ["optionalCertificateRequestDetails.validityPeriod"], id="fail-shorter-than-a-day-without-terms"),
    pytest.param(dataclasses.replace(PROFILE, default_term=730), "", 730, [], id="ok-default-term"),
    pytest.param(dataclasses.replace(PROFILE, terms=(), default_term=90), "", 90, [], id="ok-default-without-terms"),
    pytest.param(dataclasses.replace(PROFILE, terms=()), "P10D", 10, [], id="ok-asked-without-terms"),
    pytest.param(dataclasses.replace(PROFILE, terms=()), "", 0, ["profileId"], id="fail-no-term-anywhere"),
    pytest.param(PROFILE, "soon", 365, ["optionalCertificateRequestDetails.validityPeriod"], id="fail-bad-period"),
    pytest.param(None, "soon", 0, [], id="ok-no-profile-no-term-checks"),
])
def test_term_days(profile: ResolvedProfile | None, period: str, term: int, violations: list[str]) -> None:
    problems = Violations()
    assert term_days(_input(validity_period=period), profile=profile, now=NOW, problems=problems) == term
    assert _fields(problems) == violations


def test_fail_no_term_fits_lists_the_terms() -> None:
    problems = Violations()
    term_days(_input(validity_period="P90D"), profile=PROFILE, now=NOW, problems=problems)
    assert problems.items[0].value == "P90D"
    assert "asks for 90 whole days" in problems.items[0].description
    assert "the terms profile ov offers are 365, 730 days" in problems.items[0].description


@pytest.mark.parametrize(("period", "term"), [
    pytest.param("P90D", 365, id="ok-up-to-the-shortest-covering-term"),
    pytest.param("P400D", 730, id="ok-up-to-the-next-term"),
    pytest.param("P1000D", 730, id="ok-up-never-beyond-the-longest"),
    pytest.param("PT0M", 365, id="ok-up-zero-asks-for-nothing"),
])
def test_term_days_rounding_up(period: str, term: int) -> None:
    problems = Violations()
    assert term_days(_input(validity_period=period), profile=PROFILE, now=NOW, problems=problems,
                     rounding="up") == term
    assert not problems


# ------------------------------------------------------------------ options


def test_ok_order_options_take_the_profile_configuration_and_the_request_overrides(tmp_path: Path) -> None:
    ca = _managed(tmp_path, FakeConnector(),
                  ov=ProfileOptions(custom_fields={"team": "web", "cost": "1"}, external_requester="cfg@x"))
    request = _input(include_ca=False, properties={"customField.cost": "2", "externalRequester": "me@x",
                                                   "other": "ignored"})
    options = order_options(request, required="X509", subject=Subject("cn=a", "CN=a", "a"), ca=ca,
                            profile=PROFILE, renewal=RenewalTarget(serial="1", ca_order_id="77", subject_dn="cn=a"))
    assert options == OrderOptions(required_format="X509", include_ca=False, subject_dn="CN=a",
                                   custom_fields={"team": "web", "cost": "2"}, external_requester="me@x",
                                   renewal_of_ca_order="77")


def test_ok_order_options_of_a_profile_without_configuration(tmp_path: Path) -> None:
    options = order_options(_input(), required="PEM", subject=Subject("cn=a", "CN=a", "a"),
                            ca=_managed(tmp_path, FakeConnector()), profile=PROFILE, renewal=None)
    assert options == OrderOptions(subject_dn="CN=a")


# ------------------------------------------------------------------ prepare_order


async def test_ok_prepare_order_gives_the_order_to_record(tmp_path: Path, ledger: Ledger) -> None:
    problems = Violations()
    ca = _managed(tmp_path, FakeConnector())
    csr = _csr()  # one signature: ECDSA signs differently each time
    order = await prepare_order(_input(csr=csr, request_id="r-1", caller="tester"), ca=ca, ledger=ledger, now=NOW,
                                problems=problems)
    assert not problems and order is not None
    assert (order.id, order.marker, order.ca_profile_id, order.term_days, order.kind) == ("", "", "101", 365,
                                                                                       OrderKind.ENROLL)
    assert (order.requested_dn, order.common_name, order.request_id, order.requested_by) == (
        "cn=www.example.com,o=acme", "www.example.com", "r-1", "tester")
    assert order.options == {"format": "PEM", "include_ca": "true", "subject_dn": "CN=www.example.com,O=Acme"}
    again = await prepare_order(_input(csr=csr, request_id="r-2"), ca=ca, ledger=ledger, now=NOW, problems=problems)
    longer = await prepare_order(_input(csr=csr, validity_period="P800D"), ca=ca, ledger=ledger, now=NOW,
                                 problems=problems)
    assert again is not None and longer is not None
    assert again.fingerprint == order.fingerprint != longer.fingerprint  # same CSR, CA, profile and term


async def test_fail_prepare_order_reports_every_problem_in_order(tmp_path: Path, ledger: Ledger) -> None:
    problems = Violations()
    request = _input(required_format="DOCX", request_id="bad id", csr="garbage",
                     subject_alt_names=(("dNSName", "bad..name"),), validity_period="soon")
    order = await prepare_order(request, ca=_managed(tmp_path, FakeConnector()), ledger=ledger, now=NOW,
                                problems=problems)
    assert order is None
    assert _fields(problems) == ["requiredFormat.format", "requestId", "csr", "subjectAltNames[0].value",
                                 "optionalCertificateRequestDetails.validityPeriod"]
