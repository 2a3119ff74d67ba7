"""``requiredFormat: PKCS12`` end to end: gateway + simulator on loopback, real TLS, real gRPC and REST.

The gateway makes the key, the simulator certifies the CSR it sent, and the
answer is a PKCS#12 that ``openssl pkcs12`` and Java's ``keytool`` open with
the protection password; the ledger file (and its WAL) never holds the key in
clear. REST runs over mutual TLS, as CAGW clients use it.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from cagw.v1 import enrollments_pb2, enrollments_pb2_grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from service.app import Gateway
from service.simulator import SimulatorSettings
from tests.integration.stack import CA_ID, PROFILE_ID, Stack, running_stack

PASSWORD = "Tr0ub4dor&3 with spaces"
IN_URL = PASSWORD.replace(" ", "%20").replace("&", "%26")
CA = f"/v1/certificate-authorities/{CA_ID}"
OPENSSL, KEYTOOL = shutil.which("openssl"), shutil.which("keytool")
pytestmark = pytest.mark.skipif(OPENSSL is None or KEYTOOL is None, reason="needs openssl and keytool")


def _request(**fields: Any) -> dict[str, Any]:
    """A CAGW PKCS12 enrollment as its clients send it: no CSR, a password, the subject as variables."""
    body: dict[str, Any] = {
        "profileId": PROFILE_ID,
        "requiredFormat": {"format": "PKCS12", "protection": {"type": "PasswordProtection", "password": PASSWORD}},
        "subjectVariables": [{"type": "cn", "value": "vault.example.com"}, {"type": "o", "value": "Acme"}],
        "subjectAltNames": [{"type": "dNSName", "value": "vault.example.com"}],
    }
    body.update(fields)
    return body


def _run(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=120, check=False, input=stdin)
    assert done.returncode == 0, f"{args[0]} failed: {done.stdout}\n{done.stderr}"
    return done.stdout


def _check_keystore(stack: Stack, body: str, folder: Path, *, password: str = PASSWORD, chain: bool = True) -> Any:
    """The PKCS#12 opens with openssl (certificates, key) and keytool, and its key matches its certificate."""
    assert OPENSSL is not None and KEYTOOL is not None
    p12 = folder / "f.p12"
    p12.write_bytes(base64.b64decode(body, validate=True))
    certs_pem = _run(OPENSSL, "pkcs12", "-in", str(p12), "-passin", f"pass:{password}", "-nokeys")
    key_pem = _run(OPENSSL, "pkcs12", "-in", str(p12), "-passin", f"pass:{password}", "-nocerts", "-nodes")
    certificates = x509.load_pem_x509_certificates(certs_pem.encode())
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    leaf = next(c for c in certificates if not c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert key.public_key().public_bytes(*spki) == leaf.public_key().public_bytes(*spki)
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(stack.issuing_ca_pem))
    assert len(certificates) == (2 if chain else 1)
    listing = _run(KEYTOOL, "-list", "-storetype", "PKCS12", "-keystore", str(p12), "-storepass", password)
    assert "Your keystore contains 1 entry" in listing and "PrivateKeyEntry" in listing
    return key


def _clear_forms(key: Any) -> list[bytes]:
    """Every form a leaked private key could take in the ledger file."""
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    traditional = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
                                    serialization.NoEncryption())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    secret = (key.private_numbers().private_value if isinstance(key, ec.EllipticCurvePrivateKey)
              else key.private_numbers().d)
    scalar = secret.to_bytes((secret.bit_length() + 7) // 8, "big")
    pem_body = b"".join(pem.splitlines()[1:-1])
    return [der, traditional, pem_body[:64], base64.b64encode(der)[:64], scalar, b"PRIVATE KEY"]


def _assert_ledger_holds_no_key(ledger: Path, key: Any, *, encrypted: bytes | None = None) -> None:
    """Neither the ledger file nor its WAL holds the key (in any clear form) or the password;
    ``encrypted``, when given, is there (so the search reads where the key is kept)."""
    files = [path for path in (ledger, ledger.with_name(ledger.name + "-wal")) if path.exists()]
    assert files
    content = b"".join(path.read_bytes() for path in files)
    for form in _clear_forms(key):
        assert form not in content
    assert PASSWORD.encode() not in content
    if encrypted is not None:
        assert encrypted in content


def _stub(stack: Stack) -> enrollments_pb2_grpc.EnrollmentServiceStub:
    return enrollments_pb2_grpc.EnrollmentServiceStub(stack.channel)


def _grpc_request(**fields: Any) -> enrollments_pb2.EnrollRequest:
    return enrollments_pb2.EnrollRequest(
        ca_id=CA_ID, profile_id=PROFILE_ID,
        required_format=enrollments_pb2.RequiredFormat(format="PKCS12", protection=enrollments_pb2.Protection(
            type="PasswordProtection", password=PASSWORD)),
        subject_variables=[enrollments_pb2.SubjectVariable(type="cn", value="grpc.example.com")],
        subject_alt_names=[enrollments_pb2.SubjectAltName(type="dNSName", value="grpc.example.com"),
                           enrollments_pb2.SubjectAltName(type="iPAddress", value="192.0.2.10")], **fields)


async def _rest(stack: Stack, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    assert stack.client_ssl is not None
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=stack.client_ssl)) as session:
        async with session.request(method, stack.rest_base + path, json=body) as response:
            text = await response.text()
            if response.content_type == "application/x-ndjson":
                return response.status, [json.loads(line) for line in text.splitlines()]
            return response.status, json.loads(text)


# ------------------------------------------------------------------ gRPC


async def test_ok_grpc_enroll_answers_with_a_pkcs12_openssl_and_keytool_open(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        answer = await _stub(stack).Enroll(_grpc_request())
        enrollment = answer.enrollment
        assert enrollment.status == "ISSUED" and enrollment.serial_number
        key = _check_keystore(stack, enrollment.body, tmp_path)
        assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048  # the profile's first key type
        _, certificate, _ = pkcs12.load_key_and_certificates(base64.b64decode(enrollment.body), PASSWORD.encode())
        assert certificate is not None and certificate.subject.rfc4514_string() == "CN=grpc.example.com"
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sans.get_values_for_type(x509.DNSName) == ["grpc.example.com"]
        assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["192.0.2.10"]
        assert [base64.b64decode(c) for c in enrollment.chain] == [
            x509.load_pem_x509_certificate(stack.issuing_ca_pem).public_bytes(serialization.Encoding.DER)]
        assert stack.gateway.ledger is not None
        stored = await stack.gateway.ledger.get_server_key(enrollment.id)
        assert stored is not None
        _assert_ledger_holds_no_key(tmp_path / "ledger.db", key, encrypted=stored.encrypted_pkcs8)
    _assert_ledger_holds_no_key(tmp_path / "ledger.db", key)  # after the checkpoint at close too


async def test_ok_grpc_pending_then_watch_then_get_with_the_password(tmp_path: Path) -> None:
    settings = SimulatorSettings(issue_after_polls=1000)
    async with running_stack(tmp_path, simulator=settings, attempts=1) as stack:
        pending = (await _stub(stack).Enroll(_grpc_request())).enrollment
        assert pending.status == "PENDING" and not pending.body
        manager = stack.simulator.manager
        manager.settings = dataclasses.replace(manager.settings, issue_after_polls=0)  # type: ignore[misc]
        watch = _stub(stack).WatchEnrollment(enrollments_pb2.WatchEnrollmentRequest(ca_id=CA_ID,
                                                                                   enrollment_id=pending.id))
        events = [message.event async for message in watch]
        assert events[-1].state == enrollments_pb2.ENROLLMENT_STATE_ISSUED
        key = _check_keystore(stack, events[-1].enrollment.body, tmp_path)
        get = enrollments_pb2.GetEnrollmentRequest(ca_id=CA_ID, enrollment_id=pending.id)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _stub(stack).GetEnrollment(get)
        assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "protection.password" in (caught.value.details() or "")
        get.protection.CopyFrom(enrollments_pb2.Protection(type="PasswordProtection", password=PASSWORD))
        again = await _stub(stack).GetEnrollment(get)
        assert _check_keystore(stack, again.enrollment.body, tmp_path).private_numbers() == key.private_numbers()


async def test_ok_legacy_encryption_for_old_readers(tmp_path: Path) -> None:
    async with running_stack(tmp_path, extra_gateway={"pkcs12-encryption": "legacy"}) as stack:
        answer = await _stub(stack).Enroll(_grpc_request(properties={"keyType": "EC", "keySize": "P-384"}))
        key = _check_keystore(stack, answer.enrollment.body, tmp_path)
        assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1"
        assert OPENSSL is not None
        info = subprocess.run([OPENSSL, "pkcs12", "-info", "-noout", "-in", str(tmp_path / "f.p12"), "-passin",
                               f"pass:{PASSWORD}"], capture_output=True, text=True, check=True, timeout=60)
        assert "pbeWithSHA1And3-KeyTripleDES-CBC" in info.stderr and "MAC: sha1" in info.stderr


async def test_fail_grpc_pkcs12_refusals(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        request = _grpc_request()
        request.required_format.protection.password = ""
        with pytest.raises(grpc.aio.AioRpcError) as empty:
            await _stub(stack).Enroll(request)
        assert empty.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "requiredFormat.protection.password" in (empty.value.details() or "")
        request.required_format.ClearField("protection")
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await _stub(stack).Enroll(request)
        assert "requiredFormat.protection" in (missing.value.details() or "")
        assert stack.simulator.stats.requests.get("enroll", 0) == 0


async def test_fail_a_ca_with_server_side_keys_off_refuses_as_before(tmp_path: Path) -> None:
    async with running_stack(tmp_path, extra_gateway={"server-side-keys": "false"}, client_name="ops") as stack:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await _stub(stack).Enroll(_grpc_request())
        assert caught.value.code() is grpc.StatusCode.UNIMPLEMENTED
        status, body = await _rest(stack, "POST", f"{CA}/enrollments", _request())
        assert status == 404 and "gateway.server-side-keys: false" in body["error"]["message"]
        assert stack.simulator.stats.requests.get("enroll", 0) == 0


# ------------------------------------------------------------------ REST, pending, restart


async def test_ok_rest_pkcs12_after_a_202_then_get_and_watch_and_after_a_restart(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = SimulatorSettings(issue_after_polls=1000)
    async with running_stack(tmp_path, simulator=settings, attempts=1, client_name="vault") as stack:
        status, body = await _rest(stack, "POST", f"{CA}/enrollments", _request())
        assert status == 202, body
        enrollment_id = body["enrollment"]["id"]
        assert PASSWORD not in json.dumps(body)
        manager = stack.simulator.manager
        manager.settings = dataclasses.replace(manager.settings, issue_after_polls=0)  # type: ignore[misc]
        status, lines = await asyncio.wait_for(_rest(stack, "GET", f"{CA}/enrollments/{enrollment_id}:watch"), 30)
        last = lines[-1]["result"]["event"]
        assert status == 200 and last["state"] == "ENROLLMENT_STATE_ISSUED", lines
        key = _check_keystore(stack, last["enrollment"]["body"], tmp_path)
        # The stream ended with the order's task, which forgot the password: now it must be given again.
        status, refused = await _rest(stack, "GET", f"{CA}/enrollments/{enrollment_id}")
        assert status == 400 and refused["error"]["details"][0]["target"] == "protection.password", refused
        status, wrong = await _rest(stack, "POST", f"{CA}/enrollments/{enrollment_id}",
                                    {"protection": {"type": "PasswordProtection", "password": "guess"}})
        assert status == 400 and "does not open" in json.dumps(wrong)
        _assert_ledger_holds_no_key(tmp_path / "ledger.db", key)
        await stack.gateway.stop()
        restarted = Gateway(stack.config)
        await restarted.start()
        try:
            assert restarted.rest is not None
            stack.rest_base = f"https://127.0.0.1:{restarted.rest.port}/cagw"
            status, again = await _rest(stack, "POST", f"{CA}/enrollments/{enrollment_id}",
                                        {"protection": {"type": "PasswordProtection", "password": PASSWORD}})
            assert status == 200 and again["enrollment"]["status"] == "ISSUED", again
            assert _check_keystore(stack, again["enrollment"]["body"], tmp_path).private_numbers() == \
                key.private_numbers()
            query = f"?protection.password={IN_URL}"
            status, by_query = await _rest(stack, "GET", f"{CA}/enrollments/{enrollment_id}{query}")
            assert status == 200 and by_query["enrollment"]["body"], by_query
        finally:
            await restarted.stop()
        _assert_ledger_holds_no_key(tmp_path / "ledger.db", key)
    assert "GetEnrollment" in caplog.text  # the calls were logged ...
    assert PASSWORD not in caplog.text and IN_URL not in caplog.text  # ... never the password


async def test_fail_rest_missing_or_empty_password_names_the_field(tmp_path: Path) -> None:
    async with running_stack(tmp_path, client_name="vault") as stack:
        empty = _request(requiredFormat={"format": "PKCS12", "protection": {"type": "PasswordProtection",
                                                                           "password": ""}})
        status, body = await _rest(stack, "POST", f"{CA}/enrollments", empty)
        assert status == 404 and [d["target"] for d in body["error"]["details"]] == [
            "requiredFormat.protection.password"], body
        status, body = await _rest(stack, "POST", f"{CA}/enrollments", _request(requiredFormat={"format": "PKCS12"}))
        assert status == 404 and [d["target"] for d in body["error"]["details"]] == ["requiredFormat.protection"]
        with_csr = _request(csr="MIIB")
        status, body = await _rest(stack, "POST", f"{CA}/enrollments", with_csr)
        assert status == 404 and "csr" in [d["target"] for d in body["error"]["details"]]
        assert stack.simulator.stats.requests.get("enroll", 0) == 0
