"""OrderOptions and the ledger's JSON shape (rows written by every release read back the same), OrderView."""

from __future__ import annotations

import pytest

from service.enrollment.orders import OrderOptions, OrderView

FULL = OrderOptions(required_format="X509", include_ca=False, subject_dn="CN=a,O=Acme",
                    custom_fields={"team": "web", "cost center": "7"}, external_requester="ops@example.com",
                    renewal_of_ca_order="1234")


def test_ok_to_ledger_writes_the_shape_of_earlier_releases() -> None:
    assert FULL.to_ledger() == {
        "format": "X509", "include_ca": "false", "subject_dn": "CN=a,O=Acme", "custom-field.team": "web",
        "custom-field.cost center": "7", "external-requester": "ops@example.com", "renewal_of_ca_order": "1234"}
    assert OrderOptions().to_ledger() == {"format": "PEM", "include_ca": "true", "subject_dn": ""}


@pytest.mark.parametrize("options", [FULL, OrderOptions(), OrderOptions(subject_dn="CN=b")],
                         ids=["ok-full", "ok-defaults", "ok-subject-only"])
def test_ok_round_trip(options: OrderOptions) -> None:
    assert OrderOptions.from_ledger(options.to_ledger()) == options


@pytest.mark.parametrize(("stored", "expected"), [
    pytest.param({}, OrderOptions(), id="ok-empty-row-takes-the-defaults"),
    pytest.param({"format": "PEM", "include_ca": "true", "subject_dn": "CN=x"}, OrderOptions(subject_dn="CN=x"),
                 id="ok-row-of-a-plain-enrollment"),
    pytest.param({"include_ca": "false"}, OrderOptions(include_ca=False), id="ok-without-the-chain"),
    pytest.param({"format": "X509"}, OrderOptions(required_format="X509"), id="ok-x509"),
    pytest.param({"custom-field.a": "1", "external-requester": ""}, OrderOptions(custom_fields={"a": "1"}),
                 id="ok-empty-external-requester"),
    pytest.param({"renewal_of_ca_order": "55"}, OrderOptions(renewal_of_ca_order="55"), id="ok-renewal"),
])
def test_ok_from_ledger_reads_rows_of_earlier_releases(stored: dict[str, str], expected: OrderOptions) -> None:
    assert OrderOptions.from_ledger(stored) == expected


def test_ok_view_shows_the_subject_as_written_else_the_normalised_one() -> None:
    view = OrderView(id="o", ca_id="ca", profile_id="ov", requested_dn="cn=a,o=acme")
    assert view.subject_dn == "cn=a,o=acme"
    assert OrderView(id="o", ca_id="ca", profile_id="ov", requested_dn="cn=a,o=acme",
                     options=OrderOptions(subject_dn="CN=a,O=Acme")).subject_dn == "CN=a,O=Acme"
