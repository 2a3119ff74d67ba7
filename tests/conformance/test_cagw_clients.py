"""The request shapes of Entrust's CAGW clients, replayed against a live gateway over mutual TLS.

Each test sends what one client sends and checks the fields that client reads. The shapes come
from the CAGW contract as far as it is known (its clients' models and captured bodies): the
curl-based shell utility, the Vault plugin, the Ansible module and the Keyfactor/Windows gateway
plugin. Where the known material is silent, this suite decides, and says so here:

* ``csr`` is standard base64 of the DER without armour or line breaks (what every client sends);
  PEM is accepted too. ``requiredFormat.format`` ``X509`` answers base64 DER in ``body``, ``PEM``
  PEM text with the chain; a client that sends no ``requiredFormat`` gets PEM.
* ``validityPeriod``: the shell utility sends ``P{n}D|M|Y``, the Vault plugin ``PT{n}M`` and
  ``PT0M`` when no TTL is set, the Ansible module an interval ``start/end``. A request is never
  exceeded: the longest profile term within it is ordered (the simulator's terms are 365 and 730
  days); none fitting is refused, naming the terms.
* Serials: PKIaaS writes them zero-padded to 40 lowercase digits, the Ansible module upper case
  without padding; both find the certificate, and answers are lowercase.
* ``issueCrl`` is the string ``"true"`` (the shell utility and the Keyfactor plugin).
* Events: the Keyfactor plugin sends ``startDate`` only on the first call and ``nextPageIndex``
  alone afterwards, with ``$fields=-events.certificate``; the shell utility sends both each time.
  Both loop while ``morePages`` is true; the last page's ``nextPageIndex`` is where a later
  synchronisation resumes.
* The 202 of a slow CA is followed as the connector documentation says: subject DN → serial →
  certificate. A pending answer has no ``body`` or ``validityPeriod`` member (the shell utility
  would write an empty certificate file) and says what to do next in ``message``.
* Renew and reissue come from the shell utility's menu: ``{"action": {"type": "RenewAction"}}``
  and ``{"action": {"type": "ReissueAction", "csr": <base64 DER>}}``; the client reads
  ``action.status`` (``COMPLETED``/``ACCEPTED``) and the new enrollment.
* ``subjectVariables`` name DN attributes (``cn``, ``o``); one the certificate would not carry is
  refused naming it. ``properties`` values are JSON values (the Ansible module sends
  ``tracking.additionalEmails`` as a list, custom-field numbers as numbers).
* PKCS12 (the Vault plugin's ``issue``): no ``csr``; the subject from ``subjectDn``, SANs from the
  request, ``requiredFormat.protection`` ``PasswordProtection``; ``body`` is the base64 PKCS#12
  the gateway built around the key it made.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.conformance.conftest import CagwClient, cagw_gateway, new_csr
from tests.integration.stack import PROFILE_ID

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def _validity_days(interval: str) -> float:
    start, end = (dt.datetime.fromisoformat(part.replace("Z", "+00:00")) for part in interval.split("/"))
    return (end - start) / dt.timedelta(days=1)


def _serial_40(serial: str) -> str:
    return serial.rjust(40, "0")


async def _issue(cagw: CagwClient, common_name: str, **fields: Any) -> dict[str, Any]:
    body = {"profileId": PROFILE_ID, "csr": new_csr(common_name).base64_der, **fields}
    answer = await cagw.post("/enrollments", body)
    assert answer.status == 200, answer.body
    return answer.body["enrollment"]  # type: ignore[no-any-return]


# ---------------------------------------------------------------- the shell utility


async def test_shell_lists_cas_with_their_certificate(cagw: CagwClient) -> None:
    await _issue(cagw, "first.example.com")  # the CA's chain is learned from a collected certificate
    answer = await cagw.call("GET", "/v1/certificate-authorities?%24fields=caList.certificate.certificateData")
    assert answer.status == 200 and answer.body["type"] == "CAListResponse"
    ca = answer.body["caList"][0]
    issuing = x509.load_pem_x509_certificate(cagw.stack.issuing_ca_pem)
    assert base64.b64decode(ca["certificate"]["certificateData"]) == issuing.public_bytes(serialization.Encoding.DER)
    assert ca["id"] and ca["name"] and ca["properties"]["connector-name"]


async def test_shell_enrolls_pem_with_sans_from_the_request_and_a_duration(cagw: CagwClient) -> None:
    csr = new_csr("shell.example.com")
    answer = await cagw.post("/enrollments", {
        "profileId": PROFILE_ID, "requiredFormat": {"format": "PEM"}, "csr": csr.base64_der,
        "subjectAltNames": [{"type": "dNSName", "value": "shell.example.com"},
                            {"type": "dNSName", "value": "alt.shell.example.com"}],
        "optionalCertificateRequestDetails": {"validityPeriod": "P1Y"}})
    assert answer.status == 200, answer.body
    enrollment = answer.body["enrollment"]
    chain = x509.load_pem_x509_certificates(enrollment["body"].encode())
    leaf = chain[0]
    assert len(chain) >= 2 and format(leaf.serial_number, "x") == enrollment["serialNumber"]
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)
    assert set(names) == {"shell.example.com", "alt.shell.example.com"}
    assert round(_validity_days(enrollment["validityPeriod"])) == 365
    assert answer.body["message"]["message"]


async def test_shell_gets_a_certificate_by_its_zero_padded_serial(cagw: CagwClient) -> None:
    serial = (await _issue(cagw, "padded.example.com"))["serialNumber"]
    answer = await cagw.get(f"/certificates/{_serial_40(serial)}")
    assert answer.status == 200 and answer.body["type"] == "CertificateResponse"
    certificate = answer.body["certificate"]
    assert certificate["serialNumber"] == serial and certificate["status"] == "normal"
    assert "revocationInfo" not in certificate  # no value, no member
    assert all(value != "" for value in certificate.values())


async def test_shell_revokes_with_issue_crl_as_a_string(cagw: CagwClient) -> None:
    serial = (await _issue(cagw, "revoked.example.com"))["serialNumber"]
    answer = await cagw.post(f"/certificates/{_serial_40(serial)}/actions", {"action": {
        "type": "RevokeAction", "reason": "keyCompromise", "comment": "laptop lost", "issueCrl": "true"}})
    assert answer.status == 200 and answer.body["type"] == "ActionResponse"
    assert answer.body["action"]["status"] == "COMPLETED"
    revoked = (await cagw.get(f"/certificates/{serial}")).body["certificate"]
    assert revoked["status"] == "revoked"
    info = revoked["revocationInfo"]
    # A strictly typed client parses every date it is given: none is ever "".
    assert ISO_Z.match(info["revocationDate"]) and "compromiseDate" not in info
    assert (info["reason"], info["comment"]) == ("keyCompromise", "laptop lost")


async def test_shell_revokes_a_subject(cagw: CagwClient) -> None:
    serial = (await _issue(cagw, "gone.example.com"))["serialNumber"]
    answer = await cagw.post(f"/subjects/{quote('CN=gone.example.com', safe='')}/actions",
                             {"action": {"type": "RevokeAction", "reason": "cessationOfOperation"}})
    assert answer.status == 200 and answer.body["type"] == "ActionResponse", answer.body
    assert serial in answer.body["serialNumbers"]
    assert (await cagw.get(f"/certificates/{serial}")).body["certificate"]["status"] == "revoked"


async def test_shell_renews_from_its_menu(cagw: CagwClient) -> None:
    old = (await _issue(cagw, "renew.example.com"))["serialNumber"]
    answer = await cagw.post(f"/certificates/{_serial_40(old)}/actions", {"action": {"type": "RenewAction"}})
    assert answer.status == 200, answer.body
    assert answer.body["type"] == "ActionResponse" and answer.body["action"]["status"] == "COMPLETED"
    new = answer.body["enrollment"]["serialNumber"]
    assert new != old and answer.body["action"]["properties"]["enrollmentId"] == answer.body["enrollment"]["id"]
    assert (await cagw.get(f"/certificates/{new}")).body["certificate"]["status"] == "normal"
    assert (await cagw.get(f"/certificates/{old}")).status == 200  # the old serial still answers


async def test_shell_renewal_on_a_slow_ca_is_accepted_then_issued(cagw: CagwClient) -> None:
    old = (await _issue(cagw, "slow-renew.example.com"))["serialNumber"]
    cagw.slow(None)
    answer = await cagw.post(f"/certificates/{old}/actions", {"action": {"type": "RenewAction"}})
    assert answer.status == 202 and answer.body["action"]["status"] == "ACCEPTED", answer.body
    enrollment_id = answer.body["action"]["properties"]["enrollmentId"]
    cagw.slow(0)
    await _until_issued(cagw, enrollment_id)


async def test_shell_reissues_with_a_new_base64_csr(cagw: CagwClient) -> None:
    old = (await _issue(cagw, "reissue.example.com"))["serialNumber"]
    fresh = new_csr("reissue.example.com")
    answer = await cagw.post(f"/certificates/{old.upper()}/actions",
                             {"action": {"type": "ReissueAction", "csr": fresh.base64_der}})
    assert answer.status == 200 and answer.body["action"]["status"] == "COMPLETED", answer.body
    new = answer.body["enrollment"]["serialNumber"]
    data = (await cagw.get(f"/certificates/{new}")).body["certificate"]["certificateData"]
    issued = x509.load_der_x509_certificate(base64.b64decode(data))
    assert issued.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo) == fresh.public_key_der()
    assert (await cagw.get(f"/certificates/{old}")).status == 200


async def test_shell_hold_stays_not_implemented(cagw: CagwClient) -> None:
    serial = (await _issue(cagw, "hold.example.com"))["serialNumber"]
    answer = await cagw.post(f"/certificates/{serial}/actions", {"action": {"type": "HoldAction",
                                                                            "reason": "unspecified"}})
    assert answer.status == 501 and answer.body["type"] == "ErrorResponse" and answer.body["error"]["message"]


async def test_shell_pages_events_with_start_date_and_next_page_index(cagw: CagwClient) -> None:
    await _issue(cagw, "events-a.example.com")
    await _issue(cagw, "events-b.example.com")
    seen: list[str] = []
    query = "startDate=2000-01-01T00:00:00.00Z&preferredPageSize=1"
    for _ in range(500):
        page = (await cagw.get(f"/certificate-events?{query}")).body
        assert page["type"] == "CertificateEventsResponse"
        seen += [event["serialNumber"] for event in page["events"]]
        assert all(event["action"] in ("issued", "revoked", "expiring", "replaced") and event["serialNumber"]
                   for event in page["events"])
        if not page["morePages"]:
            break
        query = f"startDate=2000-01-01T00:00:00.00Z&preferredPageSize=1&nextPageIndex={quote(page['nextPageIndex'])}"
    else:
        raise AssertionError("the feed never ended")
    assert len(seen) >= 2 and len(seen) == page["metadata"]["totalCount"]


# ---------------------------------------------------------------- the 202 of a slow CA


async def _until_issued(cagw: CagwClient, enrollment_id: str) -> dict[str, Any]:
    for _ in range(200):
        enrollment = (await cagw.get(f"/enrollments/{enrollment_id}")).body["enrollment"]
        if enrollment["status"] == "ISSUED":
            return enrollment  # type: ignore[no-any-return]
        await _pause()
    raise AssertionError(f"enrollment {enrollment_id} was never issued")


async def _pause() -> None:
    await asyncio.sleep(0.05)  # polling a live service, as a client does; nothing waits on a timer here


async def test_slow_ca_202_then_subject_then_serial_then_certificate(cagw: CagwClient) -> None:
    cagw.slow(None)
    answer = await cagw.post("/enrollments", {"profileId": PROFILE_ID, "requiredFormat": {"format": "PEM"},
                                              "csr": new_csr("slow.example.com").base64_der})
    assert answer.status == 202, answer.body
    enrollment = answer.body["enrollment"]
    assert enrollment["status"] == "PENDING" and enrollment["id"]
    assert "body" not in enrollment and "validityPeriod" not in enrollment and "serialNumber" not in enrollment
    assert answer.body["message"]["code"] == "PENDING" and "not issued yet" in answer.body["message"]["message"]
    dn = enrollment["subjectName"]
    cagw.slow(0)
    serial = ""
    for _ in range(200):
        subject = (await cagw.get(f"/subjects/{quote(dn, safe='')}")).body
        entries = [e for e in subject["subject"]["certificates"] if e.get("enrollmentId") == enrollment["id"]]
        serial = entries[0].get("serialNumber", "") if entries else ""
        if serial:
            break
        await _pause()
    assert serial, "the background collection never issued it"
    certificate = (await cagw.get(f"/certificates/{serial}")).body["certificate"]
    assert certificate["subjectName"] == "cn=slow.example.com" and certificate["certificateData"]


# ---------------------------------------------------------------- the Vault plugin


async def test_vault_enrolls_x509_with_pt0m_and_a_subject_dn(cagw: CagwClient) -> None:
    csr = new_csr("vault.example.com")
    answer = await cagw.post("/enrollments", {
        "profileId": PROFILE_ID, "requiredFormat": {"format": "X509"}, "csr": csr.base64_der,
        "subjectAltNames": [{"type": "dNSName", "value": "vault.example.com"}],
        "optionalCertificateRequestDetails": {"subjectDn": "CN=vault.example.com", "validityPeriod": "PT0M"}})
    assert answer.status == 200, answer.body  # the plugin treats any other status as an error
    enrollment = answer.body["enrollment"]
    leaf = x509.load_der_x509_certificate(base64.b64decode(enrollment["body"]))
    assert format(leaf.serial_number, "x") == enrollment["serialNumber"]
    assert round(_validity_days(enrollment["validityPeriod"])) == 365  # no validity asked: the first term


async def test_vault_issue_gets_a_pkcs12_made_by_the_gateway(cagw: CagwClient) -> None:
    """The Vault plugin's ``issue``: no CSR, the subject and SANs in the request, PasswordProtection,
    ``PT0M``; it reads ``body`` as base64 PKCS#12 and opens it with the password."""
    password = "vault-issued-p12-password"
    answer = await cagw.post("/enrollments", {
        "profileId": PROFILE_ID,
        "requiredFormat": {"format": "PKCS12", "protection": {"type": "PasswordProtection", "password": password}},
        "subjectAltNames": [{"type": "dNSName", "value": "issued.vault.example.com"}],
        "optionalCertificateRequestDetails": {"subjectDn": "CN=issued.vault.example.com", "validityPeriod": "PT0M"}})
    assert answer.status == 200, answer.body
    enrollment = answer.body["enrollment"]
    key, leaf, chain = pkcs12.load_key_and_certificates(base64.b64decode(enrollment["body"]), password.encode())
    assert leaf is not None and key is not None and chain
    assert leaf.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) \
        == key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert format(leaf.serial_number, "x") == enrollment["serialNumber"]
    assert leaf.subject.rfc4514_string() == "CN=issued.vault.example.com"
    assert password not in json.dumps(answer.body)


async def test_vault_ttl_in_minutes_is_never_exceeded(cagw: CagwClient) -> None:
    enrollment = await _issue(cagw, "ttl.example.com",
                              optionalCertificateRequestDetails={"validityPeriod": "PT1051200M"})  # 730 days
    assert round(_validity_days(enrollment["validityPeriod"])) == 730
    shorter = await _issue(cagw, "ttl2.example.com",
                           optionalCertificateRequestDetails={"validityPeriod": "PT720000M"})  # 500 days
    assert round(_validity_days(shorter["validityPeriod"])) == 365


async def test_vault_ttl_shorter_than_every_term_is_refused_with_the_terms(cagw: CagwClient) -> None:
    answer = await cagw.post("/enrollments", {
        "profileId": PROFILE_ID, "requiredFormat": {"format": "X509"}, "csr": new_csr("short.example.com").base64_der,
        "optionalCertificateRequestDetails": {"validityPeriod": "PT43200M"}})
    assert answer.status == 404 and answer.body["type"] == "ErrorResponse"  # the enrollment endpoint's failure
    error = answer.body["error"]
    assert error["target"] == "optionalCertificateRequestDetails.validityPeriod"
    assert "365, 730 days" in error["message"]


async def test_vault_subject_variables(cagw: CagwClient) -> None:
    csr = new_csr("vars.example.com", organization="Acme")
    carried = await cagw.post("/enrollments", {
        "profileId": PROFILE_ID, "csr": csr.base64_der,
        "subjectVariables": [{"type": "cn", "value": "vars.example.com"}, {"type": "o", "value": "Acme"}]})
    assert carried.status == 200, carried.body
    refused = await cagw.post("/enrollments", {
        "profileId": PROFILE_ID, "csr": new_csr("vars2.example.com").base64_der,
        "subjectVariables": [{"type": "ou", "value": "Platform"}]})
    assert refused.status == 404
    assert refused.body["error"]["target"] == "subjectVariables[0]"
    assert "OU" in refused.body["error"]["message"]


# ---------------------------------------------------------------- the Ansible module


async def test_ansible_enrolls_with_an_interval_json_properties_and_reads_back_by_upper_case_serial(
        cagw: CagwClient) -> None:
    start = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    end = start + dt.timedelta(days=400)
    csr = new_csr("ansible.example.com", sans=("ansible.example.com", "www.ansible.example.com"))
    answer = await cagw.post("/enrollments", {
        "profileId": PROFILE_ID, "requiredFormat": {"format": "X509"}, "csr": csr.base64_der,
        "optionalCertificateRequestDetails": {
            "validityPeriod": f"{start:%Y-%m-%dT%H:%M:%SZ}/{end:%Y-%m-%dT%H:%M:%SZ}"},
        "properties": {"tracking.requesterName": "Ann Admin", "tracking.requesterEmail": "ann@example.com",
                       "tracking.additionalEmails": ["ops@example.com", "pki@example.com"],
                       "customField.Cost Center": 4711},
        "includeCa": True})
    assert answer.status == 200, answer.body
    enrollment = answer.body["enrollment"]
    assert round(_validity_days(enrollment["validityPeriod"])) == 365  # within the 400 days asked for
    leaf = x509.load_der_x509_certificate(base64.b64decode(enrollment["body"]))
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName)
    assert set(names) == {"ansible.example.com", "www.ansible.example.com"}  # SANs from the CSR
    upper = "{0:X}".format(int(enrollment["serialNumber"], 16))
    answer = await cagw.get(f"/certificates/{upper}")
    assert answer.status == 200 and answer.body["certificate"]["serialNumber"] == enrollment["serialNumber"]
    assert answer.body["certificate"]["status"] == "normal"


async def test_ansible_bad_property_value_names_the_key(cagw: CagwClient) -> None:
    answer = await cagw.post("/enrollments", {
        "profileId": PROFILE_ID, "csr": new_csr("props.example.com").base64_der,
        "properties": {"tracking.additionalEmails": ["ops@example.com", 7]}})
    assert answer.status == 404
    assert answer.body["error"]["target"] == "properties.tracking.additionalEmails[1]"
    assert "float" not in answer.body["error"]["message"] and "int" not in answer.body["error"]["message"]


# ---------------------------------------------------------------- the Keyfactor / Windows gateway plugin


async def test_keyfactor_syncs_events_without_certificates(cagw: CagwClient) -> None:
    await _issue(cagw, "sync.example.com")
    page = (await cagw.get("/certificate-events?startDate=2000-01-01T00:00:00.00Z&preferredPageSize=2"
                           "&%24fields=-events.certificate")).body
    events = list(page["events"])
    while page["morePages"]:
        page = (await cagw.get(f"/certificate-events?nextPageIndex={quote(page['nextPageIndex'])}"
                               "&%24fields=-events.certificate")).body
        events += page["events"]
    assert events and all("certificate" not in event for event in events)
    assert all(ISO_Z.match(event["eventDate"]) for event in events)


async def test_keyfactor_reads_the_ca_and_a_pem_certificate_with_its_chain(cagw: CagwClient) -> None:
    enrollment = await _issue(cagw, "keyfactor.example.com", csr=new_csr("keyfactor.example.com").pem,
                              includeCa=True)
    assert len(x509.load_pem_x509_certificates(enrollment["body"].encode())) >= 2  # PEM with the chain
    answer = await cagw.get("")
    assert answer.status == 200 and answer.body["ca"]["certificate"]["certificateData"]
    no_ca = await _issue(cagw, "keyfactor2.example.com", includeCa=False)
    assert len(x509.load_pem_x509_certificates(no_ca["body"].encode())) == 1 and no_ca["chain"] == []


# ---------------------------------------------------------------- a CA that opted into rounding up


async def test_rounding_up_is_opt_in_and_the_answer_shows_the_real_validity(tmp_path: Path) -> None:
    async with cagw_gateway(tmp_path, extra_gateway={"validity-rounding": "up"}) as rounding:
        enrollment = await _issue(rounding, "rounded.example.com",
                                  optionalCertificateRequestDetails={"validityPeriod": "P90D"})
        assert round(_validity_days(enrollment["validityPeriod"])) == 365
