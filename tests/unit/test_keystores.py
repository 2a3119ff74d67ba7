"""service.keystores against real keytool-made stores (tests/fixtures/keystores) and real TLS on loopback."""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import NameOID

from service.errors import ConfigError
from service.keystores import (
    ClientAuth,
    KeyAndChain,
    client_ssl_context,
    detect_store_type,
    listener_ssl_context,
    load_key_store,
    load_pem_identity,
    load_trust_store,
    server_ssl_context,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "keystores"
PASSWORD = "changeit"
KEY_PASSWORD = "keypass1"
WRONG_PASSWORD = "wrong-Pa55word"
SECRETS = (PASSWORD, KEY_PASSWORD, WRONG_PASSWORD)

ROOT_CN = "CAGW Test Root CA"
ISSUING_CN = "CAGW Test Issuing CA"
RSA = rsa.RSAPrivateKey
EC = ec.EllipticCurvePrivateKey

# A fixture file name, or a function that writes a file under tmp_path and returns it.
Source = str | Callable[[Path], Path]


def _path(source: Source, tmp_path: Path) -> Path:
    return FIXTURES / source if isinstance(source, str) else source(tmp_path)


def _write(name: str, content: bytes) -> Callable[[Path], Path]:
    def make(tmp_path: Path) -> Path:
        target = tmp_path / name
        target.write_bytes(content)
        return target

    return make


def _der_file(tmp_path: Path, pem_name: str) -> Path:
    target = tmp_path / "certificate.der"
    certificate = x509.load_pem_x509_certificate((FIXTURES / pem_name).read_bytes())
    target.write_bytes(certificate.public_bytes(serialization.Encoding.DER))
    return target


def _common_name(certificate: x509.Certificate) -> str:
    return str(certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def _spki(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _assert_no_secret(error: ConfigError, caplog: pytest.LogCaptureFixture) -> None:
    texts = [str(error), repr(error), *error.problems, caplog.text]
    for secret in SECRETS:
        for text in texts:
            assert secret not in text


@pytest.fixture(autouse=True)
def _capture_keystore_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="service.keystores")


# --- detection -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param((FIXTURES / "client.jks").read_bytes(), "JKS", id="ok-jks"),
        pytest.param((FIXTURES / "client.jceks").read_bytes(), "JCEKS", id="ok-jceks"),
        pytest.param((FIXTURES / "client.p12").read_bytes(), "PKCS12", id="ok-pkcs12"),
        pytest.param((FIXTURES / "client-pkcs12-content.jks").read_bytes(), "PKCS12", id="ok-pkcs12-named-jks"),
        pytest.param((FIXTURES / "truststore.pem").read_bytes(), "PEM", id="ok-pem"),
        pytest.param(b"# bundle\n" + (FIXTURES / "root-ca.pem").read_bytes(), "PEM", id="ok-pem-after-comment"),
        pytest.param(b"", None, id="fail-empty"),
        pytest.param(b"0123 text starting with the SEQUENCE byte", None, id="fail-text-starting-with-0"),
        pytest.param((FIXTURES / "unknown-format.bin").read_bytes(), None, id="fail-unknown"),
    ],
)
def test_detect_store_type(data: bytes, expected: str | None) -> None:
    assert detect_store_type(data) == expected


# --- trust stores --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "password", "declared", "expected_cns"),
    [
        pytest.param("truststore.jks", PASSWORD, "JKS", {ROOT_CN, ISSUING_CN}, id="ok-jks"),
        pytest.param("truststore.jks", None, "JKS", {ROOT_CN, ISSUING_CN}, id="ok-jks-without-password"),
        pytest.param("truststore.p12", PASSWORD, "PKCS12", {ROOT_CN, ISSUING_CN}, id="ok-pkcs12-keytool"),
        pytest.param("truststore.pem", None, "PEM", {ROOT_CN, ISSUING_CN}, id="ok-pem"),
        pytest.param("root-ca.pem", PASSWORD, None, {ROOT_CN}, id="ok-pem-password-ignored"),
        pytest.param("truststore.jks", PASSWORD, "jks", {ROOT_CN, ISSUING_CN}, id="ok-declared-type-lowercase"),
        pytest.param("truststore.p12", PASSWORD, None, {ROOT_CN, ISSUING_CN}, id="ok-no-declared-type"),
        pytest.param("other-truststore.jks", PASSWORD, "JKS", {"Other Root CA"}, id="ok-other-ca"),
        pytest.param("combined.jks", PASSWORD, "JKS", {ROOT_CN}, id="ok-jks-key-entries-are-not-anchors"),
    ],
)
def test_load_trust_store(source: str, password: str | None, declared: str | None, expected_cns: set[str]) -> None:
    certificates = load_trust_store(FIXTURES / source, password=password, declared_type=declared)

    assert {_common_name(c) for c in certificates} == expected_cns
    assert len(certificates) == len(expected_cns)


@pytest.mark.parametrize(
    ("source", "password", "declared", "fragment"),
    [
        pytest.param("missing.jks", PASSWORD, "JKS", "file not found", id="fail-missing-file"),
        pytest.param(lambda tmp: tmp, PASSWORD, "JKS", "is a directory", id="fail-directory"),
        pytest.param(_write("empty.jks", b""), PASSWORD, "JKS", "file is empty", id="fail-empty-file"),
        pytest.param("truststore.jks", WRONG_PASSWORD, "JKS", "wrong password", id="fail-wrong-password-jks"),
        pytest.param("truststore.p12", WRONG_PASSWORD, "PKCS12", "wrong password", id="fail-wrong-password-pkcs12"),
        pytest.param("truststore.p12", None, "PKCS12", "without a password", id="fail-pkcs12-without-password"),
        pytest.param("corrupt.p12", PASSWORD, "PKCS12", "corrupt PKCS12 file", id="fail-corrupt-pkcs12"),
        pytest.param("corrupt.jks", PASSWORD, "JKS", "corrupt Java key store", id="fail-corrupt-jks"),
        pytest.param("unknown-format.bin", PASSWORD, "JKS", "unknown format", id="fail-unknown-format"),
        pytest.param("truststore.jks", PASSWORD, "BKS", "unknown store type 'BKS'", id="fail-unknown-declared-type"),
        pytest.param("client.jks", PASSWORD, "JKS", "only private keys ('client')", id="fail-jks-key-store"),
        pytest.param("client.p12", PASSWORD, "PKCS12", "holds a private key ('client')", id="fail-pkcs12-key-store"),
        pytest.param(
            lambda tmp: _der_file(tmp, "root-ca.pem"),
            PASSWORD,
            "PKCS12",
            "not PKCS12 (a single DER certificate?)",
            id="fail-der-certificate",
        ),
        pytest.param(
            _write("no-cert.pem", b"-----BEGIN NOTHING-----\nAAAA\n-----END NOTHING-----\n"),
            None,
            "PEM",
            "no readable PEM certificate",
            id="fail-pem-without-certificate",
        ),
    ],
)
def test_load_trust_store_fails(
    source: Source,
    password: str | None,
    declared: str | None,
    fragment: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = _path(source, tmp_path)

    with pytest.raises(ConfigError) as caught:
        load_trust_store(path, password=password, declared_type=declared)

    assert str(caught.value).startswith(f"trust store {path}: ")
    assert fragment in str(caught.value)
    _assert_no_secret(caught.value, caplog)


# --- key stores ----------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyCase:
    source: str
    alias: str
    declared: str | None
    key_type: type
    common_name: str
    key_password: str | None = None


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(KeyCase("client.jks", "client", "JKS", RSA, "cagw-client"), id="ok-jks-rsa"),
        pytest.param(KeyCase("client.p12", "client", "PKCS12", RSA, "cagw-client"), id="ok-pkcs12-rsa"),
        pytest.param(KeyCase("client-ec.jks", "client-ec", "JKS", EC, "cagw-client-ec"), id="ok-jks-ec"),
        pytest.param(KeyCase("client-ec.p12", "client-ec", "PKCS12", EC, "cagw-client-ec"), id="ok-pkcs12-ec"),
        pytest.param(KeyCase("two-keys.jks", "client", "JKS", RSA, "cagw-client"), id="ok-jks-alias-selects-rsa"),
        pytest.param(KeyCase("two-keys.jks", "client-ec", "JKS", EC, "cagw-client-ec"), id="ok-jks-alias-selects-ec"),
        pytest.param(KeyCase("two-keys.p12", "client", "PKCS12", RSA, "cagw-client"), id="ok-pkcs12-first-of-two-keys"),
        pytest.param(KeyCase("client.jks", "CLIENT", "JKS", RSA, "cagw-client"), id="ok-jks-alias-any-case"),
        pytest.param(KeyCase("client.p12", "Client", "PKCS12", RSA, "cagw-client"), id="ok-pkcs12-alias-any-case"),
        pytest.param(KeyCase("client.jceks", "client", None, RSA, "cagw-client"), id="ok-jceks"),
        pytest.param(KeyCase("client.p12", "client", None, RSA, "cagw-client"), id="ok-no-declared-type"),
        pytest.param(
            KeyCase("client-keypass.jks", "client", "JKS", RSA, "cagw-client", key_password=KEY_PASSWORD),
            id="ok-jks-own-key-password",
        ),
        pytest.param(KeyCase("server.p12", "server", "PKCS12", RSA, "localhost"), id="ok-server-key"),
        pytest.param(KeyCase("combined.jks", "client", "JKS", RSA, "cagw-client"), id="ok-jks-combined-store"),
    ],
)
def test_load_key_store(case: KeyCase) -> None:
    loaded = load_key_store(
        FIXTURES / case.source,
        alias=case.alias,
        password=PASSWORD,
        declared_type=case.declared,
        key_password=case.key_password,
    )

    assert isinstance(loaded.key, case.key_type)
    assert _common_name(loaded.certificate) == case.common_name
    assert [_common_name(c) for c in loaded.chain] == [ISSUING_CN, ROOT_CN]
    assert _spki(loaded.key.public_key()) == _spki(loaded.certificate.public_key())


@dataclass(frozen=True)
class KeyFailure:
    source: str
    alias: str
    fragment: str
    declared: str | None = None
    password: str = PASSWORD
    key_password: str | None = None


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            KeyFailure("client.jks", "client", "wrong password", password=WRONG_PASSWORD), id="fail-wrong-password-jks"
        ),
        pytest.param(
            KeyFailure("client.p12", "client", "wrong password", password=WRONG_PASSWORD),
            id="fail-wrong-password-pkcs12",
        ),
        pytest.param(
            KeyFailure("client-keypass.jks", "client", "'client': its key password differs from the store password"),
            id="fail-key-password-differs",
        ),
        pytest.param(
            KeyFailure("client-keypass.jks", "client", "wrong key password", key_password=WRONG_PASSWORD),
            id="fail-wrong-key-password",
        ),
        pytest.param(
            KeyFailure("two-keys.jks", "nobody", "alias 'nobody'; private keys present: 'client', 'client-ec'"),
            id="fail-missing-alias-jks",
        ),
        pytest.param(
            KeyFailure("client.p12", "nobody", "alias 'nobody'; private keys present: 'client'", declared="PKCS12"),
            id="fail-missing-alias-pkcs12",
        ),
        pytest.param(
            KeyFailure("two-keys.p12", "client-ec", "is not the first private key of this PKCS12 ('client')"),
            id="fail-pkcs12-second-key",
        ),
        pytest.param(
            KeyFailure("truststore.jks", "cagw-test-root", "is a trusted certificate, not a private key"),
            id="fail-alias-is-trusted-cert",
        ),
        pytest.param(
            KeyFailure("truststore.p12", "cagw-test-root", "entries: 'cagw-test-issuing', 'cagw-test-root'"),
            id="fail-pkcs12-trust-store",
        ),
        pytest.param(KeyFailure("truststore.pem", "x", "read as trust stores only"), id="fail-pem-key-store"),
        pytest.param(KeyFailure("corrupt.p12", "client", "corrupt PKCS12 file"), id="fail-corrupt-pkcs12"),
        pytest.param(KeyFailure("corrupt.jks", "client", "corrupt Java key store"), id="fail-corrupt-jks"),
        pytest.param(KeyFailure("missing.p12", "client", "file not found"), id="fail-missing-file"),
        pytest.param(KeyFailure("unknown-format.bin", "client", "unknown format"), id="fail-unknown-format"),
        pytest.param(KeyFailure("client.p12", "client", "unknown store type 'PFX'", "PFX"), id="fail-declared-type"),
    ],
)
def test_load_key_store_fails(case: KeyFailure, caplog: pytest.LogCaptureFixture) -> None:
    path = FIXTURES / case.source

    with pytest.raises(ConfigError) as caught:
        load_key_store(
            path,
            alias=case.alias,
            password=case.password,
            declared_type=case.declared,
            key_password=case.key_password,
        )

    assert str(caught.value).startswith(f"key store {path}: ")
    assert case.fragment in str(caught.value)
    _assert_no_secret(caught.value, caplog)


def test_key_and_chain_repr_hides_the_key() -> None:
    loaded = load_key_store(FIXTURES / "client.jks", alias="client", password=PASSWORD, declared_type="JKS")
    assert isinstance(loaded.key, rsa.RSAPrivateKey)

    text = repr(loaded)

    assert "cagw-client" in text
    assert str(loaded.key.private_numbers().d) not in text
    assert str(loaded.key.private_numbers().p) not in text
    assert "PRIVATE KEY" not in text


# --- declared type vs content --------------------------------------------------------------


@pytest.mark.parametrize(
    ("load", "source", "declared", "detected"),
    [
        pytest.param("trust", "truststore-pkcs12-content.jks", "JKS", "PKCS12", id="ok-trust-pkcs12-named-jks"),
        pytest.param("key", "client-pkcs12-content.jks", "JKS", "PKCS12", id="ok-key-pkcs12-named-jks"),
        pytest.param("key", "client.jks", "PKCS12", "JKS", id="ok-key-jks-declared-pkcs12"),
        pytest.param("key", "client.jceks", "JKS", "JCEKS", id="ok-key-jceks-declared-jks"),
        pytest.param("trust", "truststore.pem", "JKS", "PEM", id="ok-trust-pem-declared-jks"),
    ],
)
def test_declared_type_mismatch_loads_and_warns(
    load: str, source: str, declared: str, detected: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = FIXTURES / source
    if load == "trust":
        assert load_trust_store(path, password=PASSWORD, declared_type=declared)
    else:
        assert load_key_store(path, alias="client", password=PASSWORD, declared_type=declared).certificate

    warnings = [r for r in caplog.records if r.name == "service.keystores" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert str(path) in message
    assert f"declared {declared}" in message
    assert f"content is {detected}" in message
    assert PASSWORD not in caplog.text


def test_matching_declared_type_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    load_trust_store(FIXTURES / "truststore.jks", password=PASSWORD, declared_type="JKS")
    load_key_store(FIXTURES / "client.p12", alias="client", password=PASSWORD, declared_type="PKCS12")

    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


# --- TLS contexts --------------------------------------------------------------------------


def _trust(source: str) -> list[x509.Certificate]:
    return load_trust_store(FIXTURES / source, password=PASSWORD, declared_type=None)


def _identity(source: str, alias: str) -> KeyAndChain:
    return load_key_store(FIXTURES / source, alias=alias, password=PASSWORD, declared_type=None)


def test_client_context_trusts_only_the_trust_store() -> None:
    context = client_ssl_context(trusted=_trust("truststore.jks"))

    assert context.check_hostname is True
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    names = sorted(_common_name(x509.load_der_x509_certificate(der)) for der in context.get_ca_certs(binary_form=True))
    assert names == [ISSUING_CN, ROOT_CN]


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        pytest.param(lambda: client_ssl_context(trusted=[]), "no trusted certificate", id="fail-empty-trust"),
        pytest.param(
            lambda: client_ssl_context(
                trusted=_trust("root-ca.pem"),
                client=KeyAndChain(
                    key=_identity("client-ec.p12", "client-ec").key,
                    certificate=_identity("client.p12", "client").certificate,
                ),
            ),
            "rejected by OpenSSL",
            id="fail-key-does-not-match-certificate",
        ),
    ],
)
def test_context_fails(build: Callable[[], ssl.SSLContext], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        build()


@asynccontextmanager
async def _tls_server(context: ssl.SSLContext) -> AsyncIterator[int]:
    """A TLS server on 127.0.0.1 answering one line with the client certificate's CN."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readline()
            peer = writer.get_extra_info("peercert") or {}
            subject = dict(rdn[0] for rdn in peer.get("subject", ()))
            writer.write(f"hello {subject.get('commonName', 'anonymous')}\n".encode())
            await writer.drain()
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def _ask(port: int, context: ssl.SSLContext, *, server_hostname: str = "localhost") -> bytes:
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname=server_hostname), timeout=10
    )
    try:
        writer.write(b"hi\n")
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), timeout=10)
    finally:
        writer.close()


def _server_context(client_auth: ClientAuth = "required") -> ssl.SSLContext:
    identity = _identity("server.p12", "server")
    return server_ssl_context(identity, client_cas=_trust("root-ca.pem"), client_auth=client_auth)


@pytest.mark.parametrize(
    ("trust_store", "key_store", "alias", "server_hostname", "memfd"),
    [
        pytest.param("truststore.jks", "client.jks", "client", "localhost", True, id="ok-jks-stores"),
        pytest.param("truststore.p12", "client-ec.p12", "client-ec", "127.0.0.1", True, id="ok-pkcs12-ec-by-ip"),
        pytest.param("truststore.jks", "client.jks", "client", "localhost", False, id="ok-temp-file-fallback"),
    ],
)
async def test_tls_round_trip_with_client_certificate(
    trust_store: str,
    key_store: str,
    alias: str,
    server_hostname: str,
    memfd: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Key material must never land in the temp folder: the memfd path writes none, the
    # fallback removes its file before returning.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    if not memfd:
        monkeypatch.delattr(os, "memfd_create", raising=False)
    client = client_ssl_context(trusted=_trust(trust_store), client=_identity(key_store, alias))
    assert list(tmp_path.iterdir()) == []

    async with _tls_server(_server_context()) as port:
        assert await _ask(port, client, server_hostname=server_hostname) == f"hello cagw-{alias}\n".encode()


async def test_tls_trust_anchor_may_be_an_intermediate() -> None:
    issuing_only = [c for c in _trust("truststore.jks") if _common_name(c) == ISSUING_CN]
    client = client_ssl_context(trusted=issuing_only, client=_identity("client.jks", "client"))

    async with _tls_server(_server_context()) as port:
        assert await _ask(port, client) == b"hello cagw-client\n"


@pytest.mark.parametrize(
    ("trusted", "server_hostname"),
    [
        pytest.param(lambda: _trust("other-truststore.jks"), "localhost", id="fail-wrong-trust-store"),
        pytest.param(
            lambda: [x509.load_pem_x509_certificate(trustme.CA().cert_pem.bytes())], "localhost", id="fail-throwaway-ca"
        ),
        pytest.param(lambda: _trust("truststore.jks"), "sectigo.example.com", id="fail-wrong-hostname"),
    ],
)
async def test_tls_server_verification_fails(
    trusted: Callable[[], list[x509.Certificate]], server_hostname: str
) -> None:
    client = client_ssl_context(trusted=trusted(), client=_identity("client.jks", "client"))

    async with _tls_server(_server_context()) as port:
        with pytest.raises(ssl.SSLCertVerificationError):
            await _ask(port, client, server_hostname=server_hostname)


async def test_tls_server_requires_a_client_certificate() -> None:
    anonymous = client_ssl_context(trusted=_trust("truststore.jks"))

    async with _tls_server(_server_context()) as port:
        # TLS 1.3 finishes the client's handshake before the server checks; the refusal
        # arrives as an alert or a closed connection on the first read.
        try:
            answer = await _ask(port, anonymous)
        except ssl.SSLCertVerificationError:
            raise
        except (ssl.SSLError, ConnectionError):
            answer = b""
        assert answer == b""


async def test_tls_server_with_optional_client_certificate() -> None:
    trusted = _trust("truststore.jks")

    async with _tls_server(_server_context("optional")) as port:
        assert await _ask(port, client_ssl_context(trusted=trusted)) == b"hello anonymous\n"
        with_cert = client_ssl_context(trusted=trusted, client=_identity("client-ec.jks", "client-ec"))
        assert await _ask(port, with_cert) == b"hello cagw-client-ec\n"


# --- listener contexts from PEM files ------------------------------------------------------


def _pem_listener_files(tmp_path: Path) -> tuple[trustme.CA, Path, Path, Path]:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    cert, key, client_ca = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "client-ca.pem"
    for index, blob in enumerate(leaf.cert_chain_pems):
        blob.write_to_path(str(cert), append=index > 0)
    leaf.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(client_ca))
    return ca, cert, key, client_ca


async def test_listener_context_from_pem_files_demands_a_client_certificate(tmp_path: Path) -> None:
    ca, cert, key, client_ca = _pem_listener_files(tmp_path)
    context = listener_ssl_context(cert, key, client_ca=client_ca)
    trusted = [x509.load_pem_x509_certificate(ca.cert_pem.bytes())]
    client_cert = ca.issue_cert("caller", common_name="caller")
    identity = KeyAndChain(
        key=serialization.load_pem_private_key(client_cert.private_key_pem.bytes(), password=None),
        certificate=x509.load_pem_x509_certificate(client_cert.cert_chain_pems[0].bytes()))

    async with _tls_server(context) as port:
        assert await _ask(port, client_ssl_context(trusted=trusted, client=identity)) == b"hello caller\n"
        try:
            answer = await _ask(port, client_ssl_context(trusted=trusted))
        except (ssl.SSLError, ConnectionError):
            answer = b""
        assert answer == b""


def test_pem_identity_reads_key_and_chain_from_one_file(tmp_path: Path) -> None:
    _, cert, key, _ = _pem_listener_files(tmp_path)
    combined = tmp_path / "combined.pem"
    combined.write_bytes(cert.read_bytes() + key.read_bytes())
    identity = load_pem_identity(combined)
    assert identity.key.public_key().public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == _spki(
        identity.certificate.public_key())


@pytest.mark.parametrize(
    ("damage", "fragment"),
    [
        pytest.param(lambda cert, key, other: (cert.with_name("missing.pem"), key), "cannot be read",
                     id="fail-missing-certificate"),
        pytest.param(lambda cert, key, other: (cert, cert), "no readable unencrypted PEM private key",
                     id="fail-no-key"),
        pytest.param(lambda cert, key, other: (cert, other), "does not match", id="fail-other-key"),
        pytest.param(lambda cert, key, other: (key, key), "no readable PEM certificate", id="fail-key-as-certificate"),
    ],
)
def test_pem_identity_fails(tmp_path: Path, damage: Callable[[Path, Path, Path], tuple[Path, Path]],
                            fragment: str) -> None:
    _, cert, key, _ = _pem_listener_files(tmp_path)
    other = tmp_path / "other-key.pem"
    other.write_bytes(trustme.CA().issue_cert("x").private_key_pem.bytes())
    cert_path, key_path = damage(cert, key, other)
    with pytest.raises(ConfigError, match=fragment):
        load_pem_identity(cert_path, key_path)
