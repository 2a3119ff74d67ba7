"""The whole gateway on loopback for integration tests: simulator (HTTPS) + gateway (gRPC + REST).

``running_stack`` starts the embedded SCM simulator over real TLS (a trustme CA
that the gateway trusts through a PEM trust store), then the gateway with tiny
back-off timers, each on a free 127.0.0.1 port, and stops both at the end.
Pass the session's ``test_ca`` fixture as ``ca=`` to issue from it instead of a
new CA. A module whose tests can share one stack opens it in a module-scoped
fixture (see ``test_enrollment_grpc.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import trustme

from service.app import Gateway
from service.config import Config, parse_config
from service.observability.gateway import Observability
from service.simulator import Simulator, SimulatorSettings, start_simulator
from service.simulator.settings import DEMO_CUSTOMER_URI, DEMO_LOGIN, DEMO_PASSWORD

CA_ID = "sim"
PROFILE_ID = "ov-server"
CERT_TYPE = 1001  # the simulator's first cert type: RSA 2048-4096, EC P-256/P-384, terms 365/730


@dataclass
class Stack:
    simulator: Simulator
    gateway: Gateway
    config: Config
    grpc_target: str
    rest_base: str  # e.g. http://127.0.0.1:PORT/cagw
    channel: grpc.aio.Channel
    client_ssl: ssl.SSLContext | None = None  # for REST calls when the API listeners use mutual TLS
    credentials: grpc.ChannelCredentials | None = None  # for more gRPC channels, with mutual TLS

    @property
    def issuing_ca_pem(self) -> bytes:
        return self.simulator.ca_certificate_path.read_bytes()


def gateway_document(simulator_url: str, trust_store: Path, tmp: Path, *, timer: str = "50ms",
                     max_timer: str = "50ms", attempts: int = 3, extra_gateway: dict[str, Any] | None = None,
                     enrollment_status: str = "documented", extra_top: dict[str, Any] | None = None,
                     sections: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """``extra_top``: more top-level sections (e.g. ``webhooks``), or ones that replace the defaults;
    ``sections``: keys merged into the top-level sections (``{"rest": {"limits": {...}}}``)."""
    document = {
        "grpc": {"listen": "127.0.0.1:0"},
        "rest": {"listen": "127.0.0.1:0", "context-path": "/cagw", "enrollment-status": enrollment_status},
        "ops": {"listen": "127.0.0.1:0"},
        "admin": {"listen": "127.0.0.1:0"},
        "ledger": {"path": str(tmp / "ledger.db")},
        "shutdown-grace": "2s",
        "managed-cas": [{
            "id": CA_ID,
            "name": "Simulated Sectigo",
            "connector": "sectigo",
            "properties": {
                "url": f"{simulator_url}/api",
                "customer-uri": DEMO_CUSTOMER_URI,
                "org-id": "1234",
                "login": DEMO_LOGIN,
                "login-password": DEMO_PASSWORD,
                "ssl-trust-store": str(trust_store),
                "ssl-truststore-type": "PEM",
                "enroll-back-off-timer": timer,
                "enroll-max-back-off-timer": max_timer,
                "enroll-max-attempts": str(attempts),
            },
            "profiles": [{"id": PROFILE_ID, "name": "OV server", "cert-type": str(CERT_TYPE)}],
            "gateway": {"request-timeout": "5s", "connect-timeout": "2s", **(extra_gateway or {})},
        }],
    }
    document = {**document, **(extra_top or {})}
    for name, values in (sections or {}).items():
        document.setdefault(name, {}).update(values)
    return document


def tls_files(tmp: Path, ca: trustme.CA | None = None) -> tuple[Path, Path, Path]:
    """(trust store, server cert, server key) for a simulator on 127.0.0.1, from ``ca`` or a new CA."""
    ca = ca or trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    trust, cert, key = tmp / "trust.pem", tmp / "sim-cert.pem", tmp / "sim-key.pem"
    ca.cert_pem.write_to_path(str(trust))
    leaf.private_key_pem.write_to_path(str(key))
    for index, blob in enumerate(leaf.cert_chain_pems):
        blob.write_to_path(str(cert), append=index > 0)
    return trust, cert, key


def api_tls_files(tmp: Path, client_name: str, ca: trustme.CA | None = None
                  ) -> tuple[dict[str, str], bytes, bytes, bytes]:
    """Mutual TLS for the gateway's own listeners: (tls section, CA PEM, client cert chain PEM, client key PEM)."""
    ca = ca or trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert(client_name, common_name=client_name)
    folder = tmp / "api-tls"
    folder.mkdir()
    server.private_key_pem.write_to_path(str(folder / "key.pem"))
    for index, blob in enumerate(server.cert_chain_pems):
        blob.write_to_path(str(folder / "cert.pem"), append=index > 0)
    ca.cert_pem.write_to_path(str(folder / "clients-ca.pem"))
    section = {"cert": str(folder / "cert.pem"), "key": str(folder / "key.pem"),
               "client-ca": str(folder / "clients-ca.pem")}
    chain = b"".join(blob.bytes() for blob in client.cert_chain_pems)
    return section, ca.cert_pem.bytes(), chain, client.private_key_pem.bytes()


@contextlib.asynccontextmanager
async def running_stack(tmp: Path, *, simulator: SimulatorSettings | None = None, client_name: str | None = None,
                        observability: Observability | None = None, clients: list[dict[str, Any]] | None = None,
                        ca: trustme.CA | None = None, **options: Any) -> AsyncIterator[Stack]:
    """``client_name``: the API listeners demand client certificates, and the stack's channel
    and ``client_ssl`` present one issued to that name; ``clients`` is the configuration's section
    then (by default one admin client, ``tests``, matching that certificate's fingerprint; an entry
    without ``match`` is given that fingerprint).
    ``observability``: the gateway's (e.g. with an in-memory span exporter) instead of the one its
    configuration makes. ``ca``: the session's test CA for the TLS files, instead of a new one."""
    trust, cert, key = tls_files(tmp, ca)
    base = simulator or SimulatorSettings(issue_after_polls=1)
    sim = await start_simulator(dataclasses.replace(base, port=0, tls_cert=cert, tls_key=key,
                                                    ca_dir=tmp / "sim-ca"))
    gateway: Gateway | None = None
    try:
        document = gateway_document(sim.url, trust, tmp, **options)
        credentials = client_ssl = None
        if client_name is not None:
            section, ca_pem, chain, client_key = api_tls_files(tmp, client_name, ca)
            document["grpc"]["tls"] = document["rest"]["tls"] = section
            mine = {"sha256": leaf_sha256(chain)}
            document["clients"] = [{"match": mine, **entry} for entry in clients] if clients is not None else [
                {"name": "tests", "match": mine, "admin": "true"}]
            credentials = grpc.ssl_channel_credentials(root_certificates=ca_pem, private_key=client_key,
                                                       certificate_chain=chain)
            client_ssl = ssl.create_default_context(cadata=ca_pem.decode())
            (tmp / "client.pem").write_bytes(chain + client_key)
            client_ssl.load_cert_chain(tmp / "client.pem")
        if client_name is None and clients is not None:  # callers without certificates meet a clients section
            document["clients"] = clients
        config = parse_config(document, base_dir=tmp)
        gateway = Gateway(config, observability=observability)
        await gateway.start()
        assert gateway.grpc is not None and gateway.grpc.port and gateway.rest is not None
        target = f"127.0.0.1:{gateway.grpc.port}"
        channel = (grpc.aio.insecure_channel(target) if credentials is None
                   else grpc.aio.secure_channel(target, credentials))
        scheme = "http" if client_ssl is None else "https"
        async with channel:
            yield Stack(simulator=sim, gateway=gateway, config=config, grpc_target=target,
                        rest_base=f"{scheme}://127.0.0.1:{gateway.rest.port}/cagw", channel=channel,
                        client_ssl=client_ssl, credentials=credentials)
    finally:
        if gateway is not None:
            await gateway.stop()
        await sim.stop()


def leaf_sha256(chain_pem: bytes) -> str:
    """The SHA-256 fingerprint of the first certificate of a PEM chain (what ``match.sha256`` takes)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    return x509.load_pem_x509_certificate(chain_pem).fingerprint(hashes.SHA256()).hex()


def make_csr(common_name: str, *, sans: tuple[str, ...] = (), key_type: str = "ec",
             extra_subject: tuple[tuple[Any, str], ...] = ()) -> str:
    """A PEM CSR with a fresh key (EC P-256 by default, or RSA 2048 / 1024)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    key: Any = (ec.generate_private_key(ec.SECP256R1()) if key_type == "ec"
                else rsa.generate_private_key(public_exponent=65537, key_size=int(key_type.removeprefix("rsa"))))
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                  *(x509.NameAttribute(oid, value) for oid, value in extra_subject)]
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
