"""Hypothesis over the parsers of caller input: every input is parsed or refused with
``InvalidRequest`` (a field violation), never another exception.

CSRs are fuzzed as text and as valid DER with bytes flipped, cut or inserted (so cases go deep
into the ASN.1 and signature checks); DNs, SANs, serials, validity periods and JSON bodies as
text built from the characters that matter to each grammar.
"""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import example, given, seed
from hypothesis import strategies as st

from service.errors import InvalidRequest
from service.rest.refusals import Refusal
from service.rest.transcode import _parse_json
from service.x509 import SAN_TYPES, normalize_dn, parse_csr, parse_dn, parse_serial, parse_subject_alt_names
from service.x509 import parse_validity_period
from tests.fuzz.budget import SEED, fuzz_settings

NOW = dt.datetime(2030, 6, 1, tzinfo=dt.timezone.utc)
_KEY = ec.generate_private_key(ec.SECP256R1())
_BUILDER = x509.CertificateSigningRequestBuilder().subject_name(
    x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fuzz.example.com")])).add_extension(
    x509.SubjectAlternativeName([x509.DNSName("a.example.com"), x509.RFC822Name("ops@example.com")]),
    critical=False)
CSR_DER = _BUILDER.sign(_KEY, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

DN_ALPHABET = st.sampled_from(list("CNOUcnou=,+;\\\"#<> \t\n0123456789abcdefABCDEF.-_*@:/\x00é\u3002\u202e"))
SAN_ALPHABET = st.sampled_from(list("abcxyz019.-*@:/[]%, \t\n\u3002\uff0e\x00éxn--"))
SERIAL_ALPHABET = st.sampled_from(list("0123456789abcdefABCDEFxX: -\t\u0660g"))
PERIOD_ALPHABET = st.sampled_from(list("P0123456789YMWDTHS/.,-:+Z \u0661"))


def _refused_or_parsed(parse: object, *args: object, **kwargs: object) -> None:
    try:
        parse(*args, **kwargs)  # type: ignore[operator]
    except InvalidRequest as exc:
        assert exc.violations and all(v.field for v in exc.violations)


def _mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    buffer = bytearray(data)
    for kind, position, value in edits:
        if not buffer:
            break
        index = position % len(buffer)
        if kind == 0:
            buffer[index] ^= value or 1
        elif kind == 1:
            del buffer[index:]
        else:
            buffer.insert(index, value)
    return bytes(buffer)


def _pem(der: bytes) -> str:
    return "-----BEGIN CERTIFICATE REQUEST-----\n" + base64.encodebytes(der).decode() + \
        "-----END CERTIFICATE REQUEST-----\n"


_settings = fuzz_settings()
_seeded = seed(int(SEED)) if SEED else (lambda f: f)


@_seeded
@_settings
@given(edits=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 10_000), st.integers(0, 255)),
                      min_size=1, max_size=4), as_pem=st.booleans())
def test_mutated_csrs_are_parsed_or_refused(edits: list[tuple[int, int, int]], as_pem: bool) -> None:
    der = _mutate(CSR_DER, edits)
    _refused_or_parsed(parse_csr, _pem(der) if as_pem else base64.b64encode(der).decode())


@_seeded
@_settings
@given(text=st.text(max_size=300))
@example(text="-----BEGIN CERTIFICATE REQUEST-----\n-----END CERTIFICATE REQUEST-----")
@example(text="-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE-----\n")
def test_csr_text_is_parsed_or_refused(text: str) -> None:
    _refused_or_parsed(parse_csr, text)


@_seeded
@_settings
@given(text=st.text(DN_ALPHABET, max_size=120) | st.text(max_size=120))
@example(text="CN=a\\")
@example(text="#0000")
@example(text="CN=#04")
@example(text="1.2.3=#" + "0" * 7)
def test_dns_are_parsed_or_refused_and_normal_forms_are_stable(text: str) -> None:
    try:
        name = parse_dn(text, field="dn")
    except InvalidRequest as exc:
        assert exc.violations
        return
    once = normalize_dn(name)
    assert normalize_dn(once) == once  # the normal form parses back to itself


@_seeded
@_settings
@given(items=st.lists(st.tuples(st.sampled_from([*SAN_TYPES, "dnsname", "otherName", ""]),
                                st.text(SAN_ALPHABET, max_size=60) | st.text(max_size=60)), max_size=6))
@example(items=[("dNSName", "a.example.com,evil.example.net")])
@example(items=[("dNSName", "*.*.example.com")])
@example(items=[("directoryName", "CN=x,O=\\")])
def test_sans_are_parsed_or_refused_and_never_hold_two_names(items: list[tuple[str, str]]) -> None:
    try:
        sans = parse_subject_alt_names(items)
    except InvalidRequest as exc:
        assert exc.violations
        return
    for san in sans:
        if san.type in ("dNSName", "rfc822Name", "iPAddress"):
            assert not any(c in san.value for c in ", \t\n") and not san.value.endswith(".")


@_seeded
@_settings
@given(text=st.text(SERIAL_ALPHABET, max_size=70) | st.text(max_size=70))
def test_serials_are_parsed_or_refused(text: str) -> None:
    try:
        value = parse_serial(text)
    except InvalidRequest:
        return
    assert 0 <= value < 2 ** 160


@_seeded
@_settings
@given(text=st.text(PERIOD_ALPHABET, max_size=50) | st.text(max_size=50))
@example(text="9999-12-31T23:59:59-23:59/P1D")
@example(text="P999999999Y999999999M")
@example(text="0001-01-01T00:00:00+23:59/0001-01-02")
def test_validity_periods_are_parsed_or_refused(text: str) -> None:
    _refused_or_parsed(parse_validity_period, text, now=NOW)


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                           lambda children: st.lists(children, max_size=4)
                           | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=20)


@_seeded
@_settings
@given(raw=st.binary(max_size=200) | JSON_VALUES.map(lambda v: json.dumps(v).encode()),
       duplicate=st.booleans())
@example(raw=b'{"a": 1, "a": 2}', duplicate=False)
@example(raw=b"[" * 100_000, duplicate=False)
@example(raw=b'{"a": NaN}', duplicate=False)
def test_json_bodies_are_parsed_or_refused_400(raw: bytes, duplicate: bool) -> None:
    if duplicate and raw.startswith(b"{") and len(raw) > 2:
        raw = b'{"k": 1, "k": 2, ' + raw[1:]
    try:
        _parse_json(raw)
    except Refusal as refusal:
        assert refusal.http_status == 400


def test_the_suite_reaches_deep_csr_checks() -> None:
    """The unmutated seed parses: mutations start from a CSR every check accepts."""
    parsed = parse_csr(_pem(CSR_DER))
    assert parsed.common_name == "fuzz.example.com" and len(parsed.san_values) == 2
    with pytest.raises(InvalidRequest):
        parse_csr(_pem(CSR_DER[:-1]))
