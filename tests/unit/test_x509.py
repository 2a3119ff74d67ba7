"""Unit tests of service.x509: CSRs, SANs, DNs, serials, validity periods, certificate descriptions."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from service.errors import InvalidRequest
from service.connectors.sectigo.connector import subj_alt_names_item
from service.connectors.sectigo.parsing import format_serial as format_serial_sectigo
from service.x509 import (
    ParsedCSR,
    SubjectAltNameValue,
    attribute_mismatch,
    check_key_allowed,
    choose_term,
    der_from_pem_bundle,
    describe_certificate,
    dn_strings,
    format_serial,
    format_validity,
    is_zero_duration,
    lifetime_days,
    longest_term_within,
    normalize_dn,
    parse_csr,
    parse_dn,
    parse_serial,
    parse_subject_alt_names,
    parse_validity_period,
    pem_bundle,
    whole_days_within,
)
from tests.support.csr import build_csr, pem_of, private_key

UTC = dt.timezone.utc
NOW = dt.datetime(2025, 1, 1, tzinfo=UTC)
VALIDITY = "optionalCertificateRequestDetails.validityPeriod"


def violation_fields(excinfo: pytest.ExceptionInfo[InvalidRequest]) -> list[str]:
    return [v.field for v in excinfo.value.violations]


# ---------------------------------------------------------------------------
# Keys (the shared cached ones: RSA generation is the slow part), CSRs and certificates
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Keys:
    rsa2048: rsa.RSAPrivateKey
    p256: ec.EllipticCurvePrivateKey
    p384: ec.EllipticCurvePrivateKey
    k256: ec.EllipticCurvePrivateKey
    ed: ed25519.Ed25519PrivateKey


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(
        rsa2048=private_key("rsa2048"),  # type: ignore[arg-type]
        p256=private_key("ec256"),  # type: ignore[arg-type]
        p384=private_key("ec384"),  # type: ignore[arg-type]
        k256=private_key("k256"),  # type: ignore[arg-type]
        ed=private_key("ed25519"),  # type: ignore[arg-type]
    )


SUBJECT = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme, Inc."),
        x509.NameAttribute(NameOID.COMMON_NAME, "web.example.com"),
    ]
)

# This module's CSRs are for SUBJECT unless a test names another.
make_csr = functools.partial(build_csr, subject=SUBJECT)


def b64_of(der: bytes) -> str:
    return base64.b64encode(der).decode()


def make_certificate(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    *,
    subject: x509.Name = SUBJECT,
    serial: int = 0x5912BD91,
) -> x509.Certificate:
    issuer = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"), x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(dt.datetime(2020, 1, 2, 8, 3, 49, tzinfo=UTC))
        .not_valid_after(dt.datetime(2023, 1, 2, 8, 33, 49, tzinfo=UTC))
        .sign(key, hashes.SHA256())
    )


def tampered(der: bytes) -> bytes:
    # The signature BIT STRING is the last element of the DER, so its last byte is a signature byte.
    return der[:-1] + bytes([der[-1] ^ 0x01])


# ---------------------------------------------------------------------------
# parse_csr
# ---------------------------------------------------------------------------

CSRText = Callable[[Keys], str]


def _rsa_csr(k: Keys) -> x509.CertificateSigningRequest:
    return make_csr(k.rsa2048)


def _wrapped_b64(k: Keys) -> str:
    text = b64_of(_rsa_csr(k).public_bytes(serialization.Encoding.DER))
    return "\r\n".join(text[i : i + 76] for i in range(0, len(text), 76))


OK_CSR_TEXTS: list[tuple[str, CSRText]] = [
    ("ok-pem", lambda k: pem_of(_rsa_csr(k))),
    ("ok-pem-surrounding-whitespace", lambda k: "\n\n   " + pem_of(_rsa_csr(k)) + "   \n\t"),
    ("ok-pem-crlf", lambda k: pem_of(_rsa_csr(k)).replace("\n", "\r\n")),
    ("ok-pem-new-header", lambda k: pem_of(_rsa_csr(k)).replace("CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST")),
    ("ok-pem-json-doubled-newlines", lambda k: pem_of(_rsa_csr(k)).replace("\n", "\\n")),
    ("ok-base64-der-one-line", lambda k: b64_of(_rsa_csr(k).public_bytes(serialization.Encoding.DER))),
    ("ok-base64-der-wrapped", _wrapped_b64),
]


@pytest.mark.parametrize(("make_text"), [pytest.param(f, id=i) for i, f in OK_CSR_TEXTS])
def test_parse_csr_accepts_forms(keys: Keys, make_text: CSRText) -> None:
    parsed = parse_csr(make_text(keys))
    assert parsed.key_type == "RSA"
    assert parsed.key_size == "2048"
    assert parsed.subject_dn == "CN=web.example.com,O=Acme\\, Inc.,C=US"
    assert parsed.normalized_subject == "cn=web.example.com,o=acme\\, inc.,c=us"
    assert parsed.common_name == "web.example.com"
    assert parsed.pem.startswith("-----BEGIN CERTIFICATE REQUEST-----\n")
    assert parsed.pem.endswith("-----END CERTIFICATE REQUEST-----\n")
    assert x509.load_pem_x509_csr(parsed.pem.encode()).public_bytes(serialization.Encoding.DER) == parsed.der
    assert all(len(line) <= 64 for line in parsed.pem.splitlines())


def test_parse_csr_same_request_in_every_form_is_equal(keys: Keys) -> None:
    parsed = [parse_csr(make_text(keys)) for _, make_text in OK_CSR_TEXTS]
    assert len({p.der for p in parsed}) == 1
    assert len({p.fingerprint("CA1", "60515") for p in parsed}) == 1


def test_parse_csr_ec_and_sans(keys: Keys) -> None:
    sans: list[x509.GeneralName] = [
        x509.DNSName("web.example.com"),
        x509.IPAddress(ipaddress.ip_address("192.0.2.7")),
        x509.RFC822Name("ops@example.com"),
        x509.UniformResourceIdentifier("spiffe://example.com/web"),
        x509.OtherName(x509.ObjectIdentifier("1.3.6.1.4.1.311.20.2.3"), b"\x0c\x03a@b"),
    ]
    parsed = parse_csr(pem_of(make_csr(keys.p256, sans=sans)))
    assert (parsed.key_type, parsed.key_size) == ("EC", "P-256")
    assert parsed.san_values == (
        SubjectAltNameValue("dNSName", "web.example.com"),
        SubjectAltNameValue("iPAddress", "192.0.2.7"),
        SubjectAltNameValue("rfc822Name", "ops@example.com"),
        SubjectAltNameValue("uniformResourceIdentifier", "spiffe://example.com/web"),
        SubjectAltNameValue("otherName", "1.3.6.1.4.1.311.20.2.3:#0c03614062"),
    )
    assert [subj_alt_names_item(s) for s in parsed.san_values] == ["web.example.com", "192.0.2.7", "ops@example.com", None, None]
    assert parse_csr(pem_of(make_csr(keys.p384))).key_size == "P-384"


def test_parse_csr_without_common_name(keys: Keys) -> None:
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme")])
    parsed = parse_csr(pem_of(make_csr(keys.p256, subject=subject)))
    assert parsed.common_name == ""
    assert parsed.subject_dn == "O=Acme"
    assert parsed.san_values == ()


def test_fingerprint_separates_ca_profile_and_request(keys: Keys) -> None:
    parsed = parse_csr(pem_of(make_csr(keys.p256)))
    other = parse_csr(pem_of(make_csr(keys.p384)))
    prints = {
        parsed.fingerprint("ab", "c"),
        parsed.fingerprint("a", "bc"),  # same concatenation, different ids
        parsed.fingerprint("ab", "d"),
        other.fingerprint("ab", "c"),
    }
    assert len(prints) == 4
    assert parsed.fingerprint("ab", "c") == parsed.fingerprint("ab", "c")
    assert len(parsed.fingerprint("ab", "c")) == 64


FAIL_CSR_TEXTS: list[tuple[str, CSRText, str]] = [
    ("fail-empty", lambda k: "", "empty"),
    ("fail-blank", lambda k: " \n\t ", "empty"),
    ("fail-too-large", lambda k: pem_of(_rsa_csr(k)) + " " * 20000, "at most 16384"),
    ("fail-not-base64", lambda k: "this is not a CSR!", "neither PEM nor valid base64"),
    ("fail-pem-body-not-base64", lambda k: "-----BEGIN CERTIFICATE REQUEST-----\n%%%\n-----END CERTIFICATE REQUEST-----", "not valid base64"),
    ("fail-pem-mismatched-labels", lambda k: pem_of(_rsa_csr(k)).replace("END CERTIFICATE REQUEST", "END NEW CERTIFICATE REQUEST"), "ends with"),
    ("fail-pem-two-blocks", lambda k: pem_of(_rsa_csr(k)) * 2, "malformed"),
    ("fail-pem-certificate", lambda k: make_certificate(k.p256).public_bytes(serialization.Encoding.PEM).decode(), "not a CERTIFICATE REQUEST"),
    ("fail-der-certificate", lambda k: b64_of(make_certificate(k.p256).public_bytes(serialization.Encoding.DER)), "certificate, not"),
    ("fail-not-a-csr", lambda k: b64_of(b"\x30\x03\x02\x01\x05"), "not a PKCS#10"),
    ("fail-bad-signature-rsa", lambda k: b64_of(tampered(_rsa_csr(k).public_bytes(serialization.Encoding.DER))), "signature does not verify"),
    ("fail-bad-signature-ec", lambda k: b64_of(tampered(make_csr(k.p256).public_bytes(serialization.Encoding.DER))), "signature does not verify"),
    ("fail-ed25519-key", lambda k: pem_of(make_csr(k.ed)), "Ed25519 is not supported"),
    ("fail-secp256k1-curve", lambda k: pem_of(make_csr(k.k256)), "secp256k1 is not supported"),
]


@pytest.mark.parametrize(("make_text", "message"), [pytest.param(f, m, id=i) for i, f, m in FAIL_CSR_TEXTS])
def test_parse_csr_refuses(keys: Keys, make_text: CSRText, message: str) -> None:
    with pytest.raises(InvalidRequest) as excinfo:
        parse_csr(make_text(keys), field="request.csr")
    assert violation_fields(excinfo) == ["request.csr"]
    assert message in excinfo.value.violations[0].description


def test_parse_csr_size_limit_is_configurable(keys: Keys) -> None:
    text = pem_of(_rsa_csr(keys))
    with pytest.raises(InvalidRequest) as excinfo:
        parse_csr(text, max_bytes=100)
    assert violation_fields(excinfo) == ["csr"]
    assert parse_csr(text, max_bytes=len(text)).key_type == "RSA"


# ---------------------------------------------------------------------------
# check_key_allowed
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rsa_csr(keys: Keys) -> ParsedCSR:
    return parse_csr(pem_of(_rsa_csr(keys)))


@pytest.fixture(scope="module")
def ec_csr(keys: Keys) -> ParsedCSR:
    return parse_csr(pem_of(make_csr(keys.p256)))


@pytest.mark.parametrize(
    ("which", "key_types"),
    [
        pytest.param("rsa", {}, id="ok-empty-mapping-allows-all"),
        pytest.param("ec", {}, id="ok-empty-mapping-allows-ec"),
        pytest.param("rsa", {"RSA": ["2048", "4096"]}, id="ok-rsa-listed"),
        pytest.param("rsa", {"rsa": [" 2048 "]}, id="ok-rsa-any-case"),
        pytest.param("ec", {"EC": ["P-256", "P-384"]}, id="ok-ec-listed"),
        pytest.param("ec", {"ECDSA": ["prime256v1"]}, id="ok-ec-alias-names"),
        pytest.param("ec", {"EC": ["secp256r1"]}, id="ok-ec-sec-name"),
    ],
)
def test_check_key_allowed_ok(rsa_csr: ParsedCSR, ec_csr: ParsedCSR, which: str, key_types: dict[str, list[str]]) -> None:
    check_key_allowed(rsa_csr if which == "rsa" else ec_csr, key_types)


@pytest.mark.parametrize(
    ("which", "key_types", "profile", "message"),
    [
        pytest.param(
            "rsa",
            {"RSA": ["3072", "4096"], "EC": ["P-256", "P-384"]},
            "X",
            "RSA 2048 is not allowed by profile X; allowed: RSA 3072, 4096; EC P-256, P-384",
            id="fail-rsa-size",
        ),
        pytest.param("ec", {"RSA": ["2048"]}, "", "EC P-256 is not allowed by this profile; allowed: RSA 2048", id="fail-ec-not-listed"),
        pytest.param("ec", {"EC": ["P-384"]}, "60515", "EC P-256 is not allowed by profile 60515; allowed: EC P-384", id="fail-ec-curve"),
        pytest.param("rsa", {"RSA": []}, "p", "RSA 2048 is not allowed by profile p; allowed: RSA", id="fail-rsa-no-sizes"),
    ],
)
def test_check_key_allowed_refuses(
    rsa_csr: ParsedCSR, ec_csr: ParsedCSR, which: str, key_types: dict[str, list[str]], profile: str, message: str
) -> None:
    with pytest.raises(InvalidRequest) as excinfo:
        check_key_allowed(rsa_csr if which == "rsa" else ec_csr, key_types, field="csr", profile=profile)
    assert violation_fields(excinfo) == ["csr"]
    assert excinfo.value.violations[0].description == message


# ---------------------------------------------------------------------------
# parse_subject_alt_names
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("san_type", "value", "expected"),
    [
        pytest.param("dNSName", "www.example.com", ("dNSName", "www.example.com"), id="ok-dns"),
        pytest.param("dnsname", " WWW.Example.COM ", ("dNSName", "www.example.com"), id="ok-dns-case-and-outer-space"),
        pytest.param("dNSName", "*.example.com", ("dNSName", "*.example.com"), id="ok-dns-wildcard"),
        pytest.param("dNSName", "bücher.example", ("dNSName", "xn--bcher-kva.example"), id="ok-dns-idna"),
        pytest.param("dNSName", "*.Bücher。example", ("dNSName", "*.xn--bcher-kva.example"), id="ok-dns-idna-wildcard-ideographic-dot"),
        pytest.param("dNSName", "xn--bcher-kva.example", ("dNSName", "xn--bcher-kva.example"), id="ok-dns-a-label"),
        pytest.param("dNSName", "a" * 63 + ".example", ("dNSName", "a" * 63 + ".example"), id="ok-dns-63-label"),
        pytest.param("dNSName", ".".join(["a" * 61] * 4), ("dNSName", ".".join(["a" * 61] * 4)), id="ok-dns-247-chars"),
        pytest.param("dNSName", "localhost", ("dNSName", "localhost"), id="ok-dns-single-label"),
        pytest.param("rfc822Name", "Ops.Team+tls@Example.COM", ("rfc822Name", "Ops.Team+tls@example.com"), id="ok-email-domain-lowered"),
        pytest.param("RFC822NAME", "ops@bücher.example", ("rfc822Name", "ops@xn--bcher-kva.example"), id="ok-email-idna-domain"),
        pytest.param("iPAddress", "192.0.2.1", ("iPAddress", "192.0.2.1"), id="ok-ipv4"),
        pytest.param("ipaddress", "2001:DB8:0:0::1", ("iPAddress", "2001:db8::1"), id="ok-ipv6-canonical"),
        pytest.param("uniformResourceIdentifier", "https://example.com/a?b=c", ("uniformResourceIdentifier", "https://example.com/a?b=c"), id="ok-uri"),
        pytest.param("uniformresourceidentifier", "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6", ("uniformResourceIdentifier", "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"), id="ok-uri-urn"),
        pytest.param("directoryName", "cn = Device 1 , o=Acme\\, Inc.", ("directoryName", "CN=Device 1,O=Acme\\, Inc."), id="ok-directory-name"),
        pytest.param("registeredID", "1.3.6.1.4.1.311", ("registeredID", "1.3.6.1.4.1.311"), id="ok-registered-id"),
    ],
)
def test_parse_subject_alt_names_ok(san_type: str, value: str, expected: tuple[str, str]) -> None:
    assert parse_subject_alt_names([(san_type, value)]) == (SubjectAltNameValue(*expected),)


@pytest.mark.parametrize(
    ("san_type", "value", "message"),
    [
        pytest.param("dNSName", "", "empty", id="fail-dns-empty"),
        pytest.param("dNSName", "a..example.com", "empty label", id="fail-dns-empty-label"),
        pytest.param("dNSName", "www.*.example.com", "only allowed as the whole first label", id="fail-dns-inner-wildcard"),
        pytest.param("dNSName", "w*.example.com", "only allowed as the whole first label", id="fail-dns-partial-wildcard"),
        pytest.param("dNSName", "*", "needs a domain", id="fail-dns-bare-wildcard"),
        pytest.param("dNSName", "a" * 64 + ".example", "at most 63", id="fail-dns-label-64"),
        pytest.param("dNSName", ".".join(["a" * 63] * 4), "at most 253", id="fail-dns-255-chars"),
        pytest.param("dNSName", "under_score.example", "letters, digits", id="fail-dns-underscore"),
        pytest.param("dNSName", "-lead.example", "inner hyphens", id="fail-dns-leading-hyphen"),
        pytest.param("dNSName", "has space.example", "letters, digits", id="fail-dns-space"),
        pytest.param("dNSName", "www.example.com.", "trailing root dot", id="fail-dns-root-dot"),
        pytest.param("dNSName", "www.example.com\u3002", "trailing root dot", id="fail-dns-ideographic-root-dot"),
        pytest.param("dNSName", "a.example.com,evil.example.net", "letters, digits", id="fail-dns-comma"),
        pytest.param("dNSName", "a.example.com evil.example.net", "letters, digits", id="fail-dns-two-names"),
        pytest.param("dNSName", "*.*.example.com", "only allowed as the whole first label", id="fail-dns-double-wildcard"),
        pytest.param("rfc822Name", "ops@example.com.", "trailing root dot", id="fail-email-root-dot"),
        pytest.param("dNSName", "xn--ab-c.example", "punycode", id="fail-dns-bad-a-label"),
        pytest.param("dNSName", "192.0.2.1", "use type iPAddress", id="fail-dns-is-ip"),
        pytest.param("rfc822Name", "no-at.example.com", "name@example.com", id="fail-email-no-at"),
        pytest.param("rfc822Name", "a..b@example.com", "dot-atom", id="fail-email-double-dot"),
        pytest.param("rfc822Name", "a,b@example.com", "dot-atom", id="fail-email-comma"),
        pytest.param("rfc822Name", "jörg@example.com", "must be ASCII", id="fail-email-utf8-local"),
        pytest.param("rfc822Name", "ops@*.example.com", "not allowed", id="fail-email-wildcard-domain"),
        pytest.param("iPAddress", "192.0.2.256", "not an IPv4 or IPv6", id="fail-ip-octet"),
        pytest.param("iPAddress", "10.0.0.0/8", "single address", id="fail-ip-network"),
        pytest.param("iPAddress", "fe80::1%eth0", "single address", id="fail-ip-zone"),
        pytest.param("uniformResourceIdentifier", "example.com/path", "needs a scheme", id="fail-uri-no-scheme"),
        pytest.param("uniformResourceIdentifier", "https://exa mple.com", "without spaces", id="fail-uri-space"),
        pytest.param("uniformResourceIdentifier", "https:///path", "without a host", id="fail-uri-empty-host"),
        pytest.param("uniformResourceIdentifier", "https://[::1", "does not parse", id="fail-uri-bad-bracket"),
        pytest.param("registeredID", "3.1", "dotted OID", id="fail-oid-first-arc"),
        pytest.param("registeredID", "1.2.abc", "dotted OID", id="fail-oid-letters"),
        pytest.param("registeredID", "1.50", "not a valid OID", id="fail-oid-second-arc"),
        pytest.param("directoryName", "CN=a,", "nothing after", id="fail-directory-name"),
    ],
)
def test_parse_subject_alt_names_refuses_value(san_type: str, value: str, message: str) -> None:
    items = [("dNSName", "ok.example.com"), (san_type, value)]
    with pytest.raises(InvalidRequest) as excinfo:
        parse_subject_alt_names(items)
    assert violation_fields(excinfo) == ["subjectAltNames[1].value"]
    assert message in excinfo.value.violations[0].description


def test_parse_subject_alt_names_reports_every_problem() -> None:
    items = [("dNSName", "a..b"), ("DNS", "x.example"), ("iPAddress", "1.2.3"), ("dNSName", "fine.example")]
    with pytest.raises(InvalidRequest) as excinfo:
        parse_subject_alt_names(items, field="request.subjectAltNames")
    assert violation_fields(excinfo) == [
        "request.subjectAltNames[0].value",
        "request.subjectAltNames[1].type",
        "request.subjectAltNames[2].value",
    ]
    assert "expected one of dNSName" in excinfo.value.violations[1].description


def test_parse_subject_alt_names_count_limit() -> None:
    items = [("dNSName", f"h{i}.example.com") for i in range(4)]
    assert len(parse_subject_alt_names(items, max_count=4)) == 4
    with pytest.raises(InvalidRequest) as excinfo:
        parse_subject_alt_names(items, max_count=3)
    assert violation_fields(excinfo) == ["subjectAltNames"]


def test_parse_subject_alt_names_drops_duplicates_after_normalising() -> None:
    items = [("dNSName", "A.example.com"), ("dnsname", " a.example.com"), ("iPAddress", "::1"), ("iPAddress", "0::1")]
    assert parse_subject_alt_names(items) == (
        SubjectAltNameValue("dNSName", "a.example.com"),
        SubjectAltNameValue("iPAddress", "::1"),
    )


# ---------------------------------------------------------------------------
# parse_dn, normalize_dn, dn_strings
# ---------------------------------------------------------------------------


def der_order(name: x509.Name) -> list[tuple[str, str | bytes]]:
    """The Name as the certificate encodes it: (dotted OID, value) in RDN sequence order."""
    return [(a.oid.dotted_string, a.value) for a in name]


CN, O, OU, C = "2.5.4.3", "2.5.4.10", "2.5.4.11", "2.5.4.6"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("CN=a,O=b,C=US", [(C, "US"), (O, "b"), (CN, "a")], id="ok-order-reversed-into-der"),
        pytest.param("  cn = a ,  o =b , c= US  ", [(C, "US"), (O, "b"), (CN, "a")], id="ok-spaces-and-type-case"),
        pytest.param("CN=a;O=b;C=US", [(C, "US"), (O, "b"), (CN, "a")], id="ok-rfc2253-semicolons"),
        pytest.param("CN=Acme\\, Inc.", [(CN, "Acme, Inc.")], id="ok-escaped-comma"),
        pytest.param("CN=a\\+b\\\"c\\\\d\\;e\\<f\\>g\\=h", [(CN, 'a+b"c\\d;e<f>g=h')], id="ok-escaped-specials"),
        pytest.param("CN=\\#1", [(CN, "#1")], id="ok-escaped-leading-hash"),
        pytest.param("CN=a\\2Cb", [(CN, "a,b")], id="ok-hex-escape"),
        pytest.param("CN=caf\\C3\\A9", [(CN, "café")], id="ok-hex-utf8"),
        pytest.param("CN=\\ a\\ ", [(CN, " a ")], id="ok-escaped-outer-spaces-kept"),
        pytest.param("CN=a b  ", [(CN, "a b")], id="ok-trailing-spaces-dropped"),
        pytest.param("CN=a=b", [(CN, "a=b")], id="ok-unescaped-equals"),
        pytest.param('O="Acme, Inc.";C=US', [(C, "US"), (O, "Acme, Inc.")], id="ok-quoted-value"),
        pytest.param("CN=#0C03616263", [(CN, "abc")], id="ok-hex-ber-utf8string"),
        pytest.param("CN=#130161", [(CN, "a")], id="ok-hex-ber-printablestring"),
        pytest.param("CN=a+UID=x,O=b", [(O, "b"), (CN, "a"), ("0.9.2342.19200300.100.1.1", "x")], id="ok-multi-valued"),
        pytest.param("2.5.4.3=a,OID.2.5.4.10=b", [(O, "b"), (CN, "a")], id="ok-dotted-oids"),
        pytest.param(
            "E=a@example.com,emailAddress=b@example.com,serialNumber=123,STREET=s,DC=ex,L=l,ST=st,OU=u",
            [
                (OU, "u"),
                ("2.5.4.8", "st"),
                ("2.5.4.7", "l"),
                ("0.9.2342.19200300.100.1.25", "ex"),
                ("2.5.4.9", "s"),
                ("2.5.4.5", "123"),
                ("1.2.840.113549.1.9.1", "b@example.com"),
                ("1.2.840.113549.1.9.1", "a@example.com"),
            ],
            id="ok-short-names",
        ),
        pytest.param("O=", [(O, "")], id="ok-empty-value"),
    ],
)
def test_parse_dn_ok(text: str, expected: list[tuple[str, str]]) -> None:
    assert der_order(parse_dn(text)) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("", "empty", id="fail-empty"),
        pytest.param("   ", "empty", id="fail-blank"),
        pytest.param("CN", "expected '='", id="fail-no-equals"),
        pytest.param("=a", "expected an attribute type", id="fail-no-type"),
        pytest.param("FOO=a", "unknown attribute type 'FOO'", id="fail-unknown-type"),
        pytest.param("CN=a,", "nothing after ','", id="fail-trailing-comma"),
        pytest.param("CN=a+", "nothing after '+'", id="fail-trailing-plus"),
        pytest.param("CN=a\\", "backslash ends", id="fail-dangling-backslash"),
        pytest.param("CN=a\\q", "invalid escape", id="fail-bad-escape"),
        pytest.param("CN=\\C3\\28", "UTF-8", id="fail-bad-utf8"),
        pytest.param('CN="abc', "unterminated", id="fail-unterminated-quote"),
        pytest.param('CN="abc"d', "unexpected 'd'", id="fail-text-after-quote"),
        pytest.param("CN=#0C0261", "BER length", id="fail-hex-length"),
        pytest.param("CN=#0C026", "even number", id="fail-hex-odd"),
        pytest.param("CN=#020101", "not a string type", id="fail-hex-integer"),
        pytest.param("C=USA", "C:", id="fail-country-length"),
        pytest.param("CN=", "CN:", id="fail-empty-cn"),
        pytest.param("CN=" + "a" * 65, "CN:", id="fail-cn-too-long"),
        pytest.param("CN=a+CN=a", "duplicate", id="fail-duplicate-in-rdn"),
        pytest.param("1.50=a", "not a valid OID", id="fail-bad-oid"),
        pytest.param("CN=" + "a,O=" * 2000, "longer than", id="fail-too-long"),
    ],
)
def test_parse_dn_refuses(text: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as excinfo:
        parse_dn(text, field="optionalCertificateRequestDetails.subjectDn")
    assert violation_fields(excinfo) == ["optionalCertificateRequestDetails.subjectDn"]
    assert message in excinfo.value.violations[0].description


def test_parse_dn_default_field_is_dn() -> None:
    with pytest.raises(InvalidRequest) as excinfo:
        parse_dn("nonsense")
    assert violation_fields(excinfo) == ["dn"]


def test_rfc4514_string_order_is_reversed_and_parse_dn_undoes_it() -> None:
    # The certificate encodes C first; RFC 4514 strings (and CAGW) list CN first.
    assert SUBJECT.rfc4514_string() == "CN=web.example.com,O=Acme\\, Inc.,C=US"
    assert parse_dn(SUBJECT.rfc4514_string()) == SUBJECT
    assert normalize_dn(SUBJECT) == normalize_dn("CN=web.example.com,O=Acme\\, Inc.,C=US")
    # Order is significant: the same attributes written the other way round are another DN.
    assert normalize_dn("C=US,O=Acme\\, Inc.,CN=web.example.com") != normalize_dn(SUBJECT)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param("CN=Web Server,O=Acme,C=US", "cn = web   server , o=ACME , c=us", id="ok-case-and-spacing"),
        pytest.param("CN=a,O=b", "CN=a;O=b", id="ok-semicolon"),
        pytest.param("CN=a+OU=x,O=b", "OU=x+CN=a,O=b", id="ok-multi-valued-order"),
        pytest.param("CN=a,O=b", "2.5.4.3=a,OID.2.5.4.10=b", id="ok-dotted-oids"),
        pytest.param("E=a@b.example", "emailAddress=A@B.example", id="ok-email-aliases"),
        pytest.param("CN=a\\,b", 'CN="a,b"', id="ok-escape-vs-quote"),
        pytest.param("CN=abc", "CN=#0C03616263", id="ok-hex-ber"),
        pytest.param("CN=Ä", "CN=A\u0308", id="ok-unicode-nfkc"),
        pytest.param("CN=a\tb", "CN=a b", id="ok-tab-is-space"),
    ],
)
def test_normalize_dn_equal(a: str, b: str) -> None:
    assert normalize_dn(a) == normalize_dn(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param("CN=a,O=b", "O=b,CN=a", id="fail-rdn-order"),
        pytest.param("CN=a+O=b", "CN=a,O=b", id="fail-multi-valued-vs-two-rdns"),
        pytest.param("CN=a\\,O=b", "CN=a,O=b", id="fail-escaped-comma"),
        pytest.param("CN=ab", "CN=a b", id="fail-inner-space"),
    ],
)
def test_normalize_dn_different(a: str, b: str) -> None:
    assert normalize_dn(a) != normalize_dn(b)


def test_normalize_dn_form() -> None:
    assert normalize_dn("CN = Web  Server , O=ACME+OU=Ops, c=us") == "cn=web server,o=acme+ou=ops,c=us"
    assert normalize_dn("E=Ops@Example.com,serialNumber=AB1") == "emailaddress=ops@example.com,serialnumber=ab1"
    assert normalize_dn("CN=\\ a \\ ") == "cn=a"


def test_normalize_dn_is_stable_where_casefold_decomposes() -> None:
    normal = normalize_dn("CN=\u00df\u0301")  # casefold turns ß into ss, and NFKC must then recompose s + U+0301
    assert normal == "cn=s\u015b"
    assert normalize_dn(normal) == normal


def test_normalize_dn_skips_attribute_length_rules() -> None:
    # A non-conforming certificate (CN over 64 bytes, three-letter C) must still be found by subject.
    long_cn = "a" * 70
    assert normalize_dn(f"CN={long_cn},C=USA") == f"cn={long_cn},c=usa"
    with pytest.raises(InvalidRequest):
        parse_dn(f"CN={long_cn},C=USA")


def test_normalize_dn_names_the_field() -> None:
    with pytest.raises(InvalidRequest) as excinfo:
        normalize_dn("CN=a,", field="dn")
    assert violation_fields(excinfo) == ["dn"]


def test_dn_strings_match_cagw_sample() -> None:
    # Subject of reference/cagw-samples/CertificateResponse.keyfactor-test.json, in its DER order.
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Jupiter"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "2019 POC"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "MobileIron"),
            x509.NameAttribute(NameOID.COMMON_NAME, "iguser iggroup device"),
        ]
    )
    forms = dn_strings(name)
    assert forms.cagw_lowercase == "cn=iguser iggroup device,ou=MobileIron,ou=2019 POC,o=Jupiter,c=US"
    assert forms.rfc2253_encoded == "CN=iguser iggroup device, OU=MobileIron, OU=2019 POC, O=Jupiter, C=US"
    assert forms.rfc2253_escaped == "CN=iguser iggroup device,OU=MobileIron,OU=2019 POC,O=Jupiter,C=US"
    assert forms.normalized == "cn=iguser iggroup device,ou=mobileiron,ou=2019 poc,o=jupiter,c=us"
    for text in (forms.cagw_lowercase, forms.rfc2253_encoded, forms.rfc2253_escaped):
        assert parse_dn(text) == name


def test_dn_strings_escape_and_multi_valued() -> None:
    name = x509.Name(
        [
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "#Acme, Inc. ")]),
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(NameOID.COMMON_NAME, "a+b"), x509.NameAttribute(NameOID.USER_ID, "u\x01")]
            ),
        ]
    )
    forms = dn_strings(name)
    assert forms.rfc2253_escaped == "CN=a\\+b+UID=u\\01,O=\\#Acme\\, Inc.\\ "
    assert forms.cagw_lowercase == "cn=a\\+b+uid=u\\01,o=\\#Acme\\, Inc.\\ "
    assert parse_dn(forms.rfc2253_escaped) == name


# Values built from the characters RFC 4514 treats specially, plus a little Unicode.
DN_VALUE_ALPHABET = st.sampled_from(list('abcXYZ019 ,+=";<>#\\\'.-_é日ßÅ'))
DN_VALUES = st.text(DN_VALUE_ALPHABET, min_size=1, max_size=16)
DN_TYPES = [
    NameOID.COMMON_NAME,
    NameOID.ORGANIZATION_NAME,
    NameOID.ORGANIZATIONAL_UNIT_NAME,
    NameOID.LOCALITY_NAME,
    NameOID.EMAIL_ADDRESS,
    NameOID.USER_ID,
    NameOID.TITLE,
    x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"),
]


@st.composite
def names(draw: st.DrawFn) -> x509.Name:
    rdns = []
    for _ in range(draw(st.integers(1, 4))):
        oids = draw(st.lists(st.sampled_from(DN_TYPES), min_size=1, max_size=2, unique=True))
        rdns.append(x509.RelativeDistinguishedName([x509.NameAttribute(oid, draw(DN_VALUES)) for oid in oids]))
    return x509.Name(rdns)


@st.composite
def respaced(draw: st.DrawFn, name: x509.Name) -> str:
    """``name`` in RFC 4514 form with random spaces around separators and random attribute-type case."""
    space = st.sampled_from(["", " ", "  "])
    rdn_texts = []
    for rdn in reversed(name.rdns):
        avas = []
        for attr in rdn:
            type_name, _, value = attr.rfc4514_string().partition("=")
            cased = "".join(c.upper() if draw(st.booleans()) else c.lower() for c in type_name)
            avas.append(f"{draw(space)}{cased}{draw(space)}={draw(space)}{value}{draw(space)}")
        rdn_texts.append("+".join(avas))
    return draw(st.sampled_from([",", ";"])).join(rdn_texts)


@settings(max_examples=200, deadline=None)
@given(names())
def test_dn_round_trips_exactly(name: x509.Name) -> None:
    assert parse_dn(name.rfc4514_string()) == name
    forms = dn_strings(name)
    for text in (forms.rfc2253_escaped, forms.rfc2253_encoded, forms.cagw_lowercase):
        parsed = parse_dn(text)
        assert parsed == name
        assert der_order(parsed) == der_order(name)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_dn_normal_form_ignores_spacing_and_type_case(data: st.DataObject) -> None:
    name = data.draw(names())
    text = data.draw(respaced(name))
    assert normalize_dn(text) == normalize_dn(name) == dn_strings(name).normalized


@settings(max_examples=200, deadline=None)
@given(names())
def test_dn_normal_form_is_idempotent(name: x509.Name) -> None:
    normal = normalize_dn(name)
    assert normalize_dn(normal) == normal


# ---------------------------------------------------------------------------
# Serial numbers
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("5912bd91", 0x5912BD91, id="ok-lower"),
        pytest.param("5912BD91", 0x5912BD91, id="ok-upper"),
        pytest.param("0000000091ca4b4b136a86b718ae01a5403ce62b", 0x91CA4B4B136A86B718AE01A5403CE62B, id="ok-zero-padded-40"),
        pytest.param("0x5912bd91", 0x5912BD91, id="ok-0x"),
        pytest.param("0X5912BD91", 0x5912BD91, id="ok-0X"),
        pytest.param("59:12:BD:91", 0x5912BD91, id="ok-colons"),
        pytest.param("59 12 bd 91", 0x5912BD91, id="ok-spaces"),
        pytest.param("59 : 12:bd : 91", 0x5912BD91, id="ok-colons-with-spaces"),
        pytest.param("0:a", 0x000A, id="ok-single-digit-bytes"),
        pytest.param("  0  ", 0, id="ok-zero"),
        pytest.param("f" * 40, 2**160 - 1, id="ok-20-bytes"),
        pytest.param("00" * 30 + "01", 1, id="ok-long-zero-padding"),
    ],
)
def test_parse_serial_ok(text: str, expected: int) -> None:
    assert parse_serial(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("", "empty", id="fail-empty"),
        pytest.param("  ", "empty", id="fail-blank"),
        pytest.param("xyz", "hexadecimal", id="fail-not-hex"),
        pytest.param("-1", "hexadecimal", id="fail-negative"),
        pytest.param("0x", "hexadecimal", id="fail-only-prefix"),
        pytest.param("12:345", "1-2 hex digits", id="fail-long-group"),
        pytest.param("ab::cd", "1-2 hex digits", id="fail-empty-group"),
        pytest.param("ab:", "1-2 hex digits", id="fail-trailing-colon"),
        pytest.param("01" + "00" * 20, "20 bytes", id="fail-21-bytes"),
        pytest.param("0" * 201, "longer than 200", id="fail-text-too-long"),
    ],
)
def test_parse_serial_refuses(text: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as excinfo:
        parse_serial(text, field="properties.RenewalSerialNumber")
    assert violation_fields(excinfo) == ["properties.RenewalSerialNumber"]
    assert message in excinfo.value.violations[0].description


def test_parse_serial_default_field() -> None:
    with pytest.raises(InvalidRequest) as excinfo:
        parse_serial("zz")
    assert violation_fields(excinfo) == ["serialNumber"]


@pytest.mark.parametrize(
    ("serial", "canonical", "sectigo"),
    [
        pytest.param(0, "0", "00", id="ok-zero"),
        pytest.param(0xA, "a", "0A", id="ok-one-digit"),
        pytest.param(0xA1B, "a1b", "0A:1B", id="ok-odd-digits"),
        pytest.param(0x5912BD91, "5912bd91", "59:12:BD:91", id="ok-even-digits"),
    ],
)
def test_format_serial(serial: int, canonical: str, sectigo: str) -> None:
    assert format_serial(serial) == canonical
    assert format_serial_sectigo(serial) == sectigo


def test_format_serial_refuses_negative() -> None:
    with pytest.raises(ValueError):
        format_serial(-1)


@st.composite
def serial_spellings(draw: st.DrawFn) -> tuple[int, str]:
    serial = draw(st.integers(min_value=0, max_value=2**160 - 1))
    digits = f"{serial:x}".zfill(draw(st.integers(0, 44)))
    if draw(st.booleans()):  # byte-separated spelling
        if len(digits) % 2:
            digits = "0" + digits
        text = draw(st.sampled_from([":", " ", " : "])).join(digits[i : i + 2] for i in range(0, len(digits), 2))
    else:
        text = draw(st.sampled_from(["", "0x", "0X"])) + digits
    text = "".join(c.upper() if draw(st.booleans()) else c for c in text)
    return serial, text


@settings(max_examples=300, deadline=None)
@given(serial_spellings())
def test_serial_parse_format_round_trip(spelling: tuple[int, str]) -> None:
    serial, text = spelling
    assert parse_serial(text) == serial
    assert parse_serial(format_serial(serial)) == serial
    assert parse_serial(format_serial_sectigo(serial)) == serial
    assert format_serial(parse_serial(text)) == f"{serial:x}"


# ---------------------------------------------------------------------------
# Validity periods and terms
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", None, id="ok-empty-is-none"),
        pytest.param("  ", None, id="ok-blank-is-none"),
        pytest.param("P90D", dt.timedelta(days=90), id="ok-days"),
        pytest.param("PT43200M", dt.timedelta(days=30), id="ok-minutes"),
        pytest.param("P1Y3M10DT0H0M", dt.timedelta(days=365 + 90 + 10), id="ok-full-duration"),
        pytest.param("P1Y", dt.timedelta(days=365), id="ok-year-is-365-days"),
        pytest.param("P2M", dt.timedelta(days=60), id="ok-month-is-30-days"),
        pytest.param("P2W", dt.timedelta(days=14), id="ok-weeks"),
        pytest.param("P1DT12H", dt.timedelta(days=1, hours=12), id="ok-days-and-hours"),
        pytest.param("P0.5Y", dt.timedelta(days=182.5), id="ok-decimal"),
        pytest.param("p90d", dt.timedelta(days=90), id="ok-lower-case"),
        pytest.param("2025-01-01T00:00:00Z/2026-01-01T00:00:00Z", dt.timedelta(days=365), id="ok-start-end"),
        pytest.param("2025-01-01T00:00:00Z/P1Y", dt.timedelta(days=365), id="ok-start-duration"),
        pytest.param("P1Y3M0DT0H0M/2026-04-01T00:00:00Z", dt.timedelta(days=455), id="ok-duration-end"),
        pytest.param("2024-01-01T00:00:00Z/2025-07-01T00:00:00Z", dt.timedelta(days=181), id="ok-past-start-counts-from-now"),
        pytest.param("2025-02-01T00:00:00Z/2025-03-01T00:00:00Z", dt.timedelta(days=28), id="ok-future-start-keeps-length"),
        pytest.param("2025-01-01T02:00:00+02:00/2025-01-31T00:00:00Z", dt.timedelta(days=30), id="ok-offsets"),
        pytest.param("2025-01-01/2025-01-11", dt.timedelta(days=10), id="ok-dates-are-utc"),
        pytest.param("2024-03-05T22:43:23.429157524Z/2025-03-05T00:00:00Z", dt.timedelta(days=63), id="ok-nanoseconds"),
    ],
)
def test_parse_validity_period_ok(text: str, expected: dt.timedelta | None) -> None:
    assert parse_validity_period(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("90", "expected an ISO 8601", id="fail-number"),
        pytest.param("P", "not an ISO 8601 duration", id="fail-bare-p"),
        pytest.param("PT", "not an ISO 8601 duration", id="fail-bare-pt"),
        pytest.param("P1H", "not an ISO 8601 duration", id="fail-hours-without-t"),
        pytest.param("P1D2Y", "not an ISO 8601 duration", id="fail-wrong-order"),
        pytest.param("P0D", "must be positive", id="fail-zero"),
        pytest.param("P1Y/P2Y", "not two durations", id="fail-two-durations"),
        pytest.param("yesterday/P1Y", "not an ISO 8601 date-time", id="fail-bad-start"),
        pytest.param("2025-01-01T00:00:00Z/2025-13-01", "not an ISO 8601 date-time", id="fail-bad-end"),
        pytest.param("2026-01-01T00:00:00Z/2025-06-01T00:00:00Z", "ends before it starts", id="fail-reversed"),
        pytest.param("2020-01-01T00:00:00Z/2021-01-01T00:00:00Z", "in the past", id="fail-past"),
        pytest.param("P999999999Y", "too long", id="fail-overflow"),
    ],
)
def test_parse_validity_period_refuses(text: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as excinfo:
        parse_validity_period(text, now=NOW)
    assert violation_fields(excinfo) == [VALIDITY]
    assert message in excinfo.value.violations[0].description


def test_parse_validity_period_needs_aware_now() -> None:
    with pytest.raises(ValueError):
        parse_validity_period("P1D", now=dt.datetime(2025, 1, 1))


@pytest.mark.parametrize(
    ("lifetime", "days"),
    [
        pytest.param(dt.timedelta(days=90), 90, id="ok-whole"),
        pytest.param(dt.timedelta(days=89, hours=23, seconds=59), 90, id="ok-rounds-up"),
        pytest.param(dt.timedelta(days=90, microseconds=1), 91, id="ok-rounds-up-microsecond"),
    ],
)
def test_lifetime_days(lifetime: dt.timedelta, days: int) -> None:
    assert lifetime_days(lifetime) == days


@pytest.mark.parametrize(
    ("requested", "terms", "expected"),
    [
        pytest.param(None, [365, 730], 365, id="ok-none-is-first"),
        pytest.param(None, [730, 365], 730, id="ok-none-is-first-as-listed"),
        pytest.param(90, [47, 200, 365, 397], 200, id="ok-smallest-long-enough"),
        pytest.param(200, [47, 200, 365, 397], 200, id="ok-exact"),
        pytest.param(30, [397, 47, 200], 47, id="ok-unsorted"),
        pytest.param(1000, [47, 200, 365, 397], 397, id="ok-too-long-gets-largest"),
    ],
)
def test_choose_term(requested: int | None, terms: list[int], expected: int) -> None:
    assert choose_term(requested, terms) == expected


def test_choose_term_needs_terms() -> None:
    with pytest.raises(ValueError):
        choose_term(None, [])


@pytest.mark.parametrize(
    ("not_before", "not_after", "expected"),
    [
        pytest.param(
            dt.datetime(2020, 1, 2, 8, 3, 49, tzinfo=UTC),
            dt.datetime(2023, 1, 2, 8, 33, 49, tzinfo=UTC),
            "2020-01-02T08:03:49Z/2023-01-02T08:33:49Z",
            id="ok-utc",
        ),
        pytest.param(
            dt.datetime(2020, 1, 2, 10, 3, 49, 999999, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            dt.datetime(2023, 1, 2, 8, 33, 49),
            "2020-01-02T08:03:49Z/2023-01-02T08:33:49Z",
            id="ok-offset-naive-and-microseconds",
        ),
    ],
)
def test_format_validity(not_before: dt.datetime, not_after: dt.datetime, expected: str) -> None:
    assert format_validity(not_before, not_after) == expected


# ---------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------


def test_describe_certificate_rsa(keys: Keys) -> None:
    certificate = make_certificate(keys.rsa2048)
    der = certificate.public_bytes(serialization.Encoding.DER)
    info = describe_certificate(der)
    assert info.serial_number == 0x5912BD91
    assert info.serial_hex == "5912bd91"
    assert info.version == "3"
    assert info.signature_algorithm_oid == "1.2.840.113549.1.1.11"
    assert info.signature_algorithm_name == "sha256WithRSAEncryption"
    assert info.public_key_algorithm == "RSA"
    assert base64.b64decode(info.subject_public_key) == keys.rsa2048.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert base64.b64decode(info.certificate_data) == der == info.der
    assert info.not_before == dt.datetime(2020, 1, 2, 8, 3, 49, tzinfo=UTC)
    assert info.not_after.tzinfo is not None and info.not_after.utcoffset() == dt.timedelta(0)
    assert info.validity_period == "2020-01-02T08:03:49Z/2023-01-02T08:33:49Z"
    assert info.subject.cagw_lowercase == "cn=web.example.com,o=Acme\\, Inc.,c=US"
    assert info.issuer.rfc2253_encoded == "CN=Test CA, C=US"


def test_describe_certificate_ec(keys: Keys) -> None:
    info = describe_certificate(make_certificate(keys.p256).public_bytes(serialization.Encoding.DER))
    assert info.signature_algorithm_oid == "1.2.840.10045.4.3.2"
    assert info.signature_algorithm_name == "ecdsa-with-SHA256"
    assert info.public_key_algorithm == "EC"


def test_describe_certificate_refuses_garbage() -> None:
    with pytest.raises(ValueError):
        describe_certificate(b"\x30\x00")


def test_pem_bundle_round_trip(keys: Keys) -> None:
    ders = [make_certificate(k).public_bytes(serialization.Encoding.DER) for k in (keys.p256, keys.p384)]
    bundle = pem_bundle(ders)
    assert bundle.count("-----BEGIN CERTIFICATE-----\n") == 2
    assert bundle.endswith("-----END CERTIFICATE-----\n")
    assert all(len(line) <= 64 for line in bundle.splitlines())
    assert der_from_pem_bundle(bundle) == ders
    key_pem = keys.p256.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    noisy = "subject=CN=x\r\n" + bundle.replace("\n", "\r\n") + key_pem + "trailing text\n"
    assert der_from_pem_bundle(noisy) == ders
    assert der_from_pem_bundle("") == []


def test_der_from_pem_bundle_refuses_bad_base64() -> None:
    with pytest.raises(ValueError):
        der_from_pem_bundle("-----BEGIN CERTIFICATE-----\n%%%%\n-----END CERTIFICATE-----\n")


@pytest.mark.parametrize(("text", "zero"), [
    pytest.param("PT0M", True, id="ok-vault-plugin-zero"),
    pytest.param("P0D", True, id="ok-zero-days"),
    pytest.param("p0y0m0dt0h0m", True, id="ok-zero-full-lower-case"),
    pytest.param(" PT0.0S ", True, id="ok-zero-decimal"),
    pytest.param("PT1M", False, id="ok-one-minute-is-not-zero"),
    pytest.param("P90D", False, id="ok-days"),
    pytest.param("2025-01-01T00:00:00Z/PT0M", False, id="ok-an-interval-is-not-a-bare-duration"),
    pytest.param("", False, id="ok-blank"),
    pytest.param("soon", False, id="ok-garbage"),
])
def test_is_zero_duration(text: str, zero: bool) -> None:
    assert is_zero_duration(text) is zero


@pytest.mark.parametrize(("lifetime", "days"), [
    pytest.param(dt.timedelta(days=365), 365, id="ok-whole"),
    pytest.param(dt.timedelta(days=364, hours=23, minutes=58), 365, id="ok-moments-short-of-a-day-count"),
    pytest.param(dt.timedelta(days=364, hours=20), 364, id="ok-hours-short-do-not"),
    pytest.param(dt.timedelta(hours=3), 0, id="ok-under-a-day"),
])
def test_whole_days_within(lifetime: dt.timedelta, days: int) -> None:
    assert whole_days_within(lifetime) == days


@pytest.mark.parametrize(("requested", "terms", "expected"), [
    pytest.param(400, [365, 730], 365, id="ok-longest-within"),
    pytest.param(730, [730, 365], 730, id="ok-exact"),
    pytest.param(90, [365, 730], None, id="ok-none-fits"),
])
def test_longest_term_within(requested: int, terms: list[int], expected: int | None) -> None:
    assert longest_term_within(requested, terms) == expected


@pytest.mark.parametrize(("attribute", "value", "problem"), [
    pytest.param("cn", "WWW.Example.COM", None, id="ok-case-insensitive"),
    pytest.param("commonName", "www.example.com", None, id="ok-long-name"),
    pytest.param("2.5.4.10", "Acme", None, id="ok-dotted-oid"),
    pytest.param("OU", "x", "will carry no OU attribute", id="fail-not-carried"),
    pytest.param("O", "Other", "will carry O=Acme, not O=Other", id="fail-other-value"),
    pytest.param("firstname", "Ann", "is not a subject attribute type", id="fail-template-variable"),
])
def test_attribute_mismatch(attribute: str, value: str, problem: str | None) -> None:
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "www.example.com")])
    found = attribute_mismatch(name, attribute, value)
    assert (found is None) if problem is None else (problem in (found or ""))
