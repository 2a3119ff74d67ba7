"""The simulator's issuing CA: a self-signed EC P-256 CA kept in ``ca-dir``.

``ca-dir/ca.pem`` is the issuing CA certificate (what callers trust) and
``ca-dir/ca-key.pem`` its unencrypted PKCS#8 key (mode 0600). Both are created
on first use and reused afterwards, so certificates issued before a restart
still verify. EC keeps creation and signing fast enough for tests and
benchmarks.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from service.errors import ConfigError

__all__ = ["CA_CERT_FILE", "CA_KEY_FILE", "IssuedKey", "LocalCA"]

CA_CERT_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
_CA_LIFETIME = dt.timedelta(days=3650)

IssuedKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class LocalCA:
    """Signs leaf certificates for the simulator. Build it with :meth:`load_or_create`."""

    def __init__(self, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey, certificate_path: Path) -> None:
        self.certificate = certificate
        self.certificate_path = certificate_path
        self._key = key

    def __repr__(self) -> str:
        return f"LocalCA({self.certificate.subject.rfc4514_string()!r}, path={str(self.certificate_path)!r})"

    @classmethod
    def load_or_create(cls, ca_dir: Path, *, now: dt.datetime) -> LocalCA:
        """Reuse ``ca.pem``/``ca-key.pem`` from ``ca_dir``, or create both there."""
        cert_path, key_path = ca_dir / CA_CERT_FILE, ca_dir / CA_KEY_FILE
        if cert_path.exists() or key_path.exists():
            return cls._load(cert_path, key_path)
        ca_dir.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.COUNTRY_NAME, "GB"),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CAGW Sectigo Simulator"),
                x509.NameAttribute(NameOID.COMMON_NAME, "CAGW Simulator Issuing CA"),
            ]
        )
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + _CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # Key first: a crash in between leaves a key without a cert, which _load reports clearly.
        _write_atomically(key_path, key_pem, mode=0o600)
        _write_atomically(cert_path, certificate.public_bytes(serialization.Encoding.PEM), mode=0o644)
        return cls(certificate, key, cert_path)

    @classmethod
    def _load(cls, cert_path: Path, key_path: Path) -> LocalCA:
        for path in (cert_path, key_path):
            if not path.is_file():
                raise ConfigError(f"simulator CA: {path} is missing (delete the folder to create a new CA)")
        try:
            certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        except ValueError as exc:
            raise ConfigError(f"simulator CA: {cert_path} is not a PEM certificate") from exc
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"simulator CA: {key_path} is not an unencrypted PEM private key") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"simulator CA: {key_path} must hold an EC key")
        if key.public_key() != certificate.public_key():
            raise ConfigError(f"simulator CA: {key_path} does not belong to {cert_path}")
        return cls(certificate, key, cert_path)

    @property
    def certificate_pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def issue(
        self,
        *,
        public_key: IssuedKey,
        subject: x509.Name,
        sans: Sequence[x509.GeneralName],
        not_before: dt.datetime,
        not_after: dt.datetime,
        serial: int,
    ) -> x509.Certificate:
        """Sign a TLS server/client leaf for ``public_key``."""
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(serial)
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_leaf_key_usage(public_key), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
        )
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
        return builder.sign(self._key, hashes.SHA256())


def _leaf_key_usage(public_key: IssuedKey) -> x509.KeyUsage:
    # RSA keys transport keys (TLS 1.2 RSA key exchange); EC keys only sign.
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=isinstance(public_key, rsa.RSAPublicKey),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _write_atomically(path: Path, data: bytes, *, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)
