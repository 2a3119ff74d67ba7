"""The embedded default: `cagw serve` with no configuration runs against an in-process simulator.

The simulator listens over HTTPS on a free loopback port with a server
certificate from a throwaway local TLS CA, and the gateway trusts exactly that
CA through a generated trust store, so the default run exercises the same TLS
path as production. Everything lives in one work folder (``.cagw-dev`` by
default) so restarts keep the simulator's CA, its orders and the ledger.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from service.config import Config, parse_config

from .server import Simulator, start_simulator
from .settings import DEMO_CUSTOMER_URI, DEMO_LOGIN, DEMO_PASSWORD, SimulatorSettings

__all__ = ["EMBEDDED_CA_ID", "EmbeddedBackend", "start_embedded"]

EMBEDDED_CA_ID = "sectigo-sim"
EMBEDDED_PROFILE_ID = "ov-server"
_TLS_VALIDITY = dt.timedelta(days=825)


@dataclass(frozen=True)
class _TLSFiles:
    trust_store: Path  # PEM with the local TLS CA
    server_cert: Path
    server_key: Path


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT's mode only applies to a new file
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _ensure_tls_files(folder: Path) -> _TLSFiles:
    """A local TLS CA and a server certificate for 127.0.0.1/localhost, made once and reused."""
    folder.mkdir(parents=True, exist_ok=True)
    files = _TLSFiles(folder / "truststore.pem", folder / "simulator-server.pem", folder / "simulator-server-key.pem")
    if all(p.exists() for p in (files.trust_store, files.server_cert, files.server_key)):
        cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
        if cert.not_valid_after_utc - dt.timedelta(days=30) > dt.datetime.now(dt.timezone.utc):
            return files
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cagw embedded TLS CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _TLS_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(server_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _TLS_VALIDITY)
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files.trust_store.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.server_cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(files.server_key, server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return files


@dataclass
class EmbeddedBackend:
    config: Config
    simulator: Simulator

    def banner(self) -> str:
        """The line ``cagw serve`` prints about the backend it started."""
        return (f"embedded Sectigo simulator: {self.simulator.url} (CA id {self.config.managed_cas[0].id}, "
                f"issuing CA {self.simulator.ca_certificate_path})")

    async def stop(self) -> None:
        await self.simulator.stop()


async def start_embedded(workdir: Path, *, issue_after: float = 3.0, grpc_listen: str = "127.0.0.1:50051",
                         rest_listen: str = "127.0.0.1:8444", ops_listen: str = "127.0.0.1:9464",
                         admin_listen: str = "127.0.0.1:50052") -> EmbeddedBackend:
    """Start the simulator and return the configuration that points the gateway at it."""
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    tls = _ensure_tls_files(workdir / "tls")
    simulator = await start_simulator(SimulatorSettings(
        port=0, tls_cert=tls.server_cert, tls_key=tls.server_key, issue_after=issue_after,
        ca_dir=workdir / "simulator-ca", state_file=workdir / "simulator-state.json"))
    first_type = SimulatorSettings().cert_types[0]
    document = {
        "grpc": {"listen": grpc_listen},
        "rest": {"listen": rest_listen, "context-path": "/cagw"},
        "ops": {"listen": ops_listen},
        "admin": {"listen": admin_listen},
        "ledger": {"path": str(workdir / "ledger.db")},
        "managed-cas": [{
            "id": EMBEDDED_CA_ID,
            "name": "Sectigo (embedded simulator)",
            "connector": "sectigo",
            "properties": {
                "url": f"{simulator.url}/api",
                "customer-uri": DEMO_CUSTOMER_URI,
                "org-id": str(SimulatorSettings().org_id),
                "login": DEMO_LOGIN,
                "login-password": DEMO_PASSWORD,
                "ssl-trust-store": str(tls.trust_store),
                "ssl-truststore-type": "PEM",
            },
            "profiles": [{"id": EMBEDDED_PROFILE_ID, "name": "OV server", "cert-type": str(first_type.id),
                          "term": str(first_type.terms[0])}],
        }],
    }
    try:
        config = parse_config(document, base_dir=workdir)
    except BaseException:
        await simulator.stop()
        raise
    return EmbeddedBackend(config=config, simulator=simulator)
