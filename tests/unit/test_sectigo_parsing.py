"""Sectigo JSON and download bodies → typed values (pure, no sockets)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from service.connectors.base import OrderStatus
from service.connectors.sectigo import parsing

EXAMPLES = Path("/work/shared/reference/sectigo-examples")


@pytest.fixture(scope="module")
def chain() -> tuple[x509.Certificate, x509.Certificate, x509.Certificate]:
    """(leaf, intermediate, root) from a throwaway CA."""
    root = trustme.CA()
    intermediate = root.create_child_ca()
    leaf = intermediate.issue_cert("www.example.com")
    load = x509.load_pem_x509_certificate
    return (load(leaf.cert_chain_pems[0].bytes()), load(intermediate.cert_pem.bytes()), load(root.cert_pem.bytes()))


@pytest.mark.parametrize(
    ("text", "date"),
    [("05/21/2025", dt.date(2025, 5, 21)), ("2025-05-21", dt.date(2025, 5, 21)),
     ("05/21/2025 13:14:15", dt.date(2025, 5, 21)), ("", None), (None, None), ("21.05.2025", None)],
)
def test_parse_date(text: str | None, date: dt.date | None) -> None:
    assert parsing.parse_date(text) == date


@pytest.mark.parametrize(
    ("text", "serial"),
    [("AB:CD:EF", 0xABCDEF), ("ab:cd", 0xABCD), ("00:0::11::2:2::33", 0x000112233), ("", None), ("XY:ZZ", None),
     (None, None)],
)
def test_parse_serial(text: str | None, serial: int | None) -> None:
    assert parsing.parse_serial(text) == serial


@pytest.mark.parametrize(("serial", "text"), [(0xABCDEF, "AB:CD:EF"), (0x1ABC, "1A:BC"), (5, "05"), (0, "00")])
def test_format_serial_round_trips(serial: int, text: str) -> None:
    assert parsing.format_serial(serial) == text
    assert parsing.parse_serial(text) == serial


def test_reference_examples_parse() -> None:
    profiles = parsing.parse_profiles(json.loads((EXAMPLES / "ssl-types.json").read_text()))
    assert profiles[0].id == "1018" and profiles[0].terms == (365,)
    assert profiles[0].key_types == {"RSA": ("1024", "2048", "4096")}

    issued = parsing.parse_details(json.loads((EXAMPLES / "ssl-details-issued.json").read_text()))
    assert issued.order_id == "54" and issued.status is OrderStatus.ISSUED and issued.ca_status == "Issued"
    assert issued.profile_id == "1009" and issued.term_days == 365 and issued.comments == "some comments"
    assert issued.requested == dt.date(2025, 5, 21) and issued.expires == dt.date(2026, 5, 21)
    assert issued.subject_alt_names == ("ccmqa.com",)

    requested = parsing.parse_details(json.loads((EXAMPLES / "ssl-details-requested.json").read_text()))
    assert requested.status is OrderStatus.REQUESTED and requested.serial_number is None

    listed = parsing.parse_order_summaries(json.loads((EXAMPLES / "ssl-list.json").read_text()))
    assert [(i.order_id, i.common_name) for i in listed] == [("58", "ccmqa.com")]


def test_details_accept_empty_strings_and_nulls() -> None:
    details = parsing.parse_details({"sslId": 7, "status": "Applied", "approved": "", "expires": None,
                                     "serialNumber": "", "comments": None, "subjectAlternativeNames": "a.b, c.d"})
    assert details.order_id == "7" and details.expires is None and details.serial_number is None
    assert details.comments == "" and details.subject_alt_names == ("a.b", "c.d")


@pytest.mark.parametrize("document", [{}, "x", [{"sslId": True}], [1]], ids=str)
def test_wrong_shapes_raise_value_error(document: object) -> None:
    with pytest.raises(ValueError):
        if isinstance(document, dict):
            parsing.parse_details(document)
        else:
            parsing.parse_order_summaries(document)


def test_custom_fields() -> None:
    fields = parsing.parse_custom_fields([{"id": 1, "name": "Cost Center", "mandatory": True},
                                          {"id": 2, "name": "Other", "mandatory": "false"}])
    assert [(f.name, f.mandatory) for f in fields] == [("Cost Center", True), ("Other", False)]


def _pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(Encoding.PEM) for c in certificates)


def test_parse_pem_bundle_in_any_order(chain: tuple[x509.Certificate, ...]) -> None:
    leaf, intermediate, root = chain
    parsed = parsing.parse_certificates(b"junk before\n" + _pem(root, leaf, intermediate, leaf))
    assert parsed == [root, leaf, intermediate]
    assert parsing.order_certificates(leaf, parsed) == (intermediate, root)


def test_parse_pkcs7_pem_and_der(chain: tuple[x509.Certificate, ...]) -> None:
    leaf, intermediate, root = chain
    for encoding in (Encoding.PEM, Encoding.DER):
        body = pkcs7.serialize_certificates([leaf, intermediate, root], encoding)
        assert set(parsing.parse_certificates(body)) == {leaf, intermediate, root}


def test_unrelated_certificates_go_last(chain: tuple[x509.Certificate, ...]) -> None:
    leaf, intermediate, root = chain
    stranger = x509.load_pem_x509_certificate(trustme.CA().cert_pem.bytes())
    assert parsing.order_certificates(leaf, [stranger, root, intermediate]) == (intermediate, root, stranger)


def test_find_leaf_in_a_bundle_of_any_order(chain: tuple[x509.Certificate, ...]) -> None:
    leaf, intermediate, root = chain
    for bundle in ([root, intermediate, leaf], [leaf, intermediate, root], [intermediate, leaf, root], [leaf]):
        assert parsing.find_leaf(bundle) is leaf
        assert parsing.order_certificates(leaf, bundle) == tuple(c for c in (intermediate, root) if c in bundle)


def test_find_leaf_refuses_to_guess(chain: tuple[x509.Certificate, ...]) -> None:
    """No leaf, two candidates, or a CA certificate alone: the caller downloads the leaf on its own."""
    leaf, intermediate, root = chain
    stranger = x509.load_pem_x509_certificate(trustme.CA().issue_cert("other.example.com").cert_chain_pems[0].bytes())
    assert parsing.find_leaf([intermediate, root]) is None
    assert parsing.find_leaf([root]) is None
    assert parsing.find_leaf([leaf, stranger, intermediate, root]) is None
    assert parsing.find_leaf([]) is None


@pytest.mark.parametrize("body", [b"", b"<html>oops</html>", b"-----BEGIN PRIVATE KEY-----\nAA\n-----END PRIVATE KEY-----"])
def test_no_certificate_is_value_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        parsing.parse_certificates(body)
