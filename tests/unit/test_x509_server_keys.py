"""Keys the gateway makes: the key choice, the encrypted PKCS#8 at rest and the PKCS#12 answer, read by openssl."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from service.errors import InvalidRequest
from service.x509 import SubjectAltNameValue
from service.x509.pbes2 import KDF_ROUNDS, WrongPassword, decrypt_private_key, encrypt_private_key
from service.x509.server_keys import (
    DEFAULT_KEY,
    KeySpec,
    build_pkcs12,
    choose_key_spec,
    generate_key,
    make_csr,
    subject_from_variables,
)

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command")
PROFILE_KEYS = {"RSA": ("2048", "4096"), "EC": ("P-256", "P-384")}


def _openssl(*args: str) -> str:
    assert OPENSSL is not None
    done = subprocess.run([OPENSSL, *args], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


@pytest.mark.parametrize(("key_types", "algorithm", "size", "expected"), [
    pytest.param(PROFILE_KEYS, "", "", KeySpec("RSA", "2048"), id="ok-profile-first"),
    pytest.param({"ECDSA": ("prime256v1",)}, "", "", KeySpec("EC", "P-256"), id="ok-spellings"),
    pytest.param(PROFILE_KEYS, "ec", "", KeySpec("EC", "P-256"), id="ok-type-first-size"),
    pytest.param(PROFILE_KEYS, "RSA", "4096", KeySpec("RSA", "4096"), id="ok-type-and-size"),
    pytest.param({}, "", "", DEFAULT_KEY, id="ok-profile-without-key-types"),
    pytest.param({}, "EC", "P-521", KeySpec("EC", "P-521"), id="ok-any-supported-when-the-profile-lists-none"),
])
def test_ok_choose_key_spec(key_types: dict[str, tuple[str, ...]], algorithm: str, size: str,
                            expected: KeySpec) -> None:
    assert choose_key_spec(key_types, algorithm=algorithm, size=size) == expected


@pytest.mark.parametrize(("key_types", "algorithm", "size", "field", "words"), [
    pytest.param(PROFILE_KEYS, "RSA", "3072", "properties.keyType", "allowed: RSA 2048, RSA 4096, EC P-256, EC P-384",
                 id="fail-size-not-allowed"),
    pytest.param(PROFILE_KEYS, "DSA", "", "properties.keyType", "not allowed", id="fail-type-not-allowed"),
    pytest.param({}, "RSA", "1024", "properties.keyType", "can generate (RSA 2048", id="fail-weak-key"),
    pytest.param({"RSA": ("1024",)}, "", "", "profileId", "no key type", id="fail-profile-only-weak-keys"),
])
def test_fail_choose_key_spec(key_types: dict[str, tuple[str, ...]], algorithm: str, size: str, field: str,
                              words: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        choose_key_spec(key_types, algorithm=algorithm, size=size)
    assert caught.value.violations[0].field == field and words in caught.value.violations[0].description


def test_ok_key_spec_round_trips_through_its_text() -> None:
    assert KeySpec.parse(str(KeySpec("EC", "P-384"))) == KeySpec("EC", "P-384")
    assert KeySpec.parse("") is None and KeySpec.parse("RSA 512") is None


def test_ok_csr_carries_the_subject_and_sans_and_is_signed_by_the_key() -> None:
    key = generate_key(KeySpec("EC", "P-256"))
    subject = subject_from_variables([("cn", "a.example.com"), ("o", "Acme, Inc.")])
    sans = [SubjectAltNameValue("dNSName", "a.example.com"), SubjectAltNameValue("rfc822Name", "ops@example.com"),
            SubjectAltNameValue("directoryName", "CN=dir,O=Acme")]
    csr = make_csr(key, subject, sans)
    assert csr.is_signature_valid and csr.subject.rfc4514_string() == r"CN=a.example.com,O=Acme\, Inc."
    assert csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Acme, Inc."
    names = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.RFC822Name) == ["ops@example.com"]
    assert len(names.get_values_for_type(x509.DirectoryName)) == 1


@needs_openssl
def test_ok_the_stored_key_is_pbes2_pbkdf2_sha256_with_600000_rounds_and_aes_256_cbc(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    blob = encrypt_private_key(key, b"s3cret")
    (tmp_path / "key.der").write_bytes(blob)
    parsed = _openssl("asn1parse", "-inform", "DER", "-in", str(tmp_path / "key.der"))
    objects = [line.split(":")[-1].strip() for line in parsed.splitlines() if "OBJECT" in line]
    assert objects == ["PBES2", "PBKDF2", "hmacWithSHA256", "aes-256-cbc"]
    integers = [line.split(":")[-1].strip() for line in parsed.splitlines() if "INTEGER" in line]
    assert integers == [f"{KDF_ROUNDS:X}".rjust(6, "0")] and KDF_ROUNDS >= 600_000
    clear = _openssl("pkcs8", "-inform", "DER", "-in", str(tmp_path / "key.der"), "-passin", "pass:s3cret")
    assert "BEGIN PRIVATE KEY" in clear


def test_ok_the_stored_key_opens_with_its_password_only() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    blob = encrypt_private_key(key, "pässword".encode(), rounds=1000)
    assert decrypt_private_key(blob, "pässword".encode()).private_numbers() == key.private_numbers()  # type: ignore[union-attr]
    with pytest.raises(WrongPassword):
        decrypt_private_key(blob, b"password")
    with pytest.raises(WrongPassword):
        decrypt_private_key(b"\x30\x03garbage", b"x")
    with pytest.raises(ValueError):
        encrypt_private_key(key, b"")


def _issued(key: ec.EllipticCurvePrivateKey) -> tuple[bytes, bytes]:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    now = dt.datetime.now(dt.UTC)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1)).sign(ca_key, hashes.SHA256()))
    from cryptography.hazmat.primitives.serialization import Encoding
    return leaf.public_bytes(Encoding.DER), ca.public_bytes(Encoding.DER)


@needs_openssl
@pytest.mark.parametrize(("encryption", "words"), [
    pytest.param("modern", ["MAC: sha256", "PBES2, PBKDF2, AES-256-CBC"], id="ok-modern"),
    pytest.param("legacy", ["MAC: sha1", "pbeWithSHA1And3-KeyTripleDES-CBC"], id="ok-legacy"),
])
def test_ok_pkcs12_encryption(tmp_path: Path, encryption: str, words: list[str]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    leaf, ca = _issued(key)
    blob = build_pkcs12(key, leaf, [ca], b"p12-pass", encryption=encryption, name="leaf")  # type: ignore[arg-type]
    opened_key, certificate, extra = pkcs12.load_key_and_certificates(blob, b"p12-pass")
    assert opened_key is not None and certificate is not None and len(extra) == 1
    (tmp_path / "f.p12").write_bytes(blob)
    info = _openssl("pkcs12", "-info", "-in", str(tmp_path / "f.p12"), "-passin", "pass:p12-pass", "-noout")
    assert all(word in info for word in words), info
