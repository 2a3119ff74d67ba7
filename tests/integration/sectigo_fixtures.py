"""Fixtures of the Sectigo client tests: simulators on loopback, TLS files, a CONNECT proxy, helpers.

Imported by ``test_sectigo_client.py`` (kept out of ``conftest.py``, which other suites own).
Time is faked everywhere it can be: the simulator runs on a :class:`FakeClock` (issuance and token
expiry move when a test says so) and the client's back-off sleeps are recorded, not slept.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from service.config import BackoffSettings, CASettings, GatewaySettings, Secret
from service.connectors.sectigo.settings import (
    ApiKeyAuth,
    KeyStoreAuth,
    PasswordAuth,
    ProxySettings,
    SectigoProperties,
)
from service.keystores import load_key_store
from service.simulator import Simulator, SimulatorSettings, start_simulator

from tests.integration.proxy import ConnectProxy, start_connect_proxy

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "CUSTOMER_URI",
    "KEYSTORES",
    "LOGIN",
    "ORG_ID",
    "PASSWORD",
    "PROXY_PASSWORD",
    "PROXY_USER",
    "STORE_PASSWORD",
    "FakeClock",
    "FakeSleep",
    "LatencyTracker",
    "SimHandle",
    "TLSFiles",
    "approval_sim",
    "ca_settings",
    "clean_environment",
    "connect_proxy",
    "csr_pem",
    "plain_sim",
    "tls_files",
    "tls_sim",
]

KEYSTORES = Path(__file__).resolve().parent.parent / "fixtures" / "keystores"
STORE_PASSWORD = "changeit"  # the keytool fixtures' store password (make-stores.sh)
LOGIN = "gateway-admin"
PASSWORD = "login-pw-7Yq2-secret"
CUSTOMER_URI = "acme-customer"
CLIENT_ID = "gateway-api-client"
CLIENT_SECRET = "client-secret-K9s1-value"
PROXY_USER = "proxy-user"
PROXY_PASSWORD = "proxy-pw-Q3x8-secret"
ORG_ID = 1234
CERT_TYPE = "1001"


class FakeClock:
    """A settable clock for the simulator (issuance, token expiry) or the client (token cache)."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeSleep:
    """The client's back-off sleep: records each wait, optionally blocks until released."""

    waits: list[float] = field(default_factory=list)
    gate: asyncio.Event | None = None

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.gate is not None:
            await self.gate.wait()
        else:
            await asyncio.sleep(0)


class LatencyTracker:
    """The simulator's sleep for latency faults: really sleeps, and records the most concurrent sleepers."""

    def __init__(self) -> None:
        self.current = 0
        self.peak = 0

    async def __call__(self, seconds: float) -> None:
        self.current += 1
        self.peak = max(self.peak, self.current)
        try:
            await asyncio.sleep(seconds)
        finally:
            self.current -= 1


@dataclass
class SimHandle:
    sim: Simulator
    clock: FakeClock
    latency: LatencyTracker

    @property
    def url(self) -> str:
        return self.sim.url


@dataclass(frozen=True)
class TLSFiles:
    """The simulator's HTTPS identity (from the keytool-made ``server.p12``) and client CA."""

    cert: Path
    key: Path
    client_ca: Path


def _sim_settings(tmp: Path, **overrides: object) -> SimulatorSettings:
    values: dict[str, object] = dict(
        host="127.0.0.1", port=0, login=LOGIN, password=PASSWORD, customer_uri=CUSTOMER_URI,
        oauth_client_id=CLIENT_ID, oauth_client_secret=CLIENT_SECRET, org_id=ORG_ID, issue_after=3.0,
        ca_dir=tmp / "ca",
    )
    values.update(overrides)
    return SimulatorSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy or TLS setting of the machine may leak into a test."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
                 "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    folder = tmp_path_factory.mktemp("sim-tls")
    identity = load_key_store(KEYSTORES / "server.p12", alias="server", password=STORE_PASSWORD,
                              declared_type="PKCS12")
    cert = folder / "server-chain.pem"
    cert.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM)
                              for c in (identity.certificate, *identity.chain)))
    key = folder / "server-key.pem"
    key.write_bytes(identity.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    key.chmod(0o600)
    return TLSFiles(cert=cert, key=key, client_ca=KEYSTORES / "truststore.pem")


async def _start(tmp: Path, **overrides: object) -> SimHandle:
    import time

    clock = FakeClock(time.time())
    latency = LatencyTracker()
    sim = await start_simulator(_sim_settings(tmp, **overrides), clock=clock, sleep=latency)
    return SimHandle(sim=sim, clock=clock, latency=latency)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def plain_sim(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SimHandle]:
    """A plain-HTTP simulator (password and API-key modes)."""
    handle = await _start(tmp_path_factory.mktemp("plain-sim"))
    yield handle
    await handle.sim.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tls_sim(tmp_path_factory: pytest.TempPathFactory, tls_files: TLSFiles) -> AsyncIterator[SimHandle]:
    """An HTTPS simulator for 127.0.0.1 whose ``/private/api`` requires a client certificate."""
    handle = await _start(tmp_path_factory.mktemp("tls-sim"), tls_cert=tls_files.cert, tls_key=tls_files.key,
                          client_ca=tls_files.client_ca)
    yield handle
    await handle.sim.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def approval_sim(tmp_path: Path) -> AsyncIterator[SimHandle]:
    """A plain-HTTP simulator whose orders wait for approval (so they can be declined)."""
    handle = await _start(tmp_path, require_approval=True)
    yield handle
    await handle.sim.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def connect_proxy() -> AsyncIterator[ConnectProxy]:
    proxy = await start_connect_proxy(username=PROXY_USER, password=PROXY_PASSWORD)
    yield proxy
    await proxy.stop()


def ca_settings(
    *,
    url: str,
    auth: PasswordAuth | KeyStoreAuth | ApiKeyAuth | None = None,
    trust_store: Path | None = None,
    trust_type: str | None = None,
    trust_password: str | None = STORE_PASSWORD,
    proxy: ProxySettings | None = None,
    request_timeout: float = 5.0,
    max_concurrent: int = 4,
    ca_id: str = "sim-ca",
) -> CASettings:
    """One CA's settings as ``config.py`` would produce them."""
    properties = SectigoProperties(
        url=url,
        customer_uri=CUSTOMER_URI,
        org_id=ORG_ID,
        auth=auth or PasswordAuth(login=LOGIN, password=Secret(PASSWORD)),
        trust_store=trust_store,
        trust_store_password=Secret(trust_password) if trust_store is not None and trust_password else None,
        trust_store_type=trust_type,  # type: ignore[arg-type]
        backoff=BackoffSettings(),
        proxy=proxy,
    )
    gateway = GatewaySettings(request_timeout=request_timeout, connect_timeout=2.0,
                              max_concurrent_requests=max_concurrent)
    return CASettings(id=ca_id, name="Simulated Sectigo", connector="sectigo", properties=properties, gateway=gateway)


def csr_pem(common_name: str = "www.example.com", *sans: str) -> str:
    """A fresh EC P-256 CSR for ``common_name`` (plus DNS SANs)."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    )
    names = [common_name, *sans]
    builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode("ascii")


def iter_exception_texts(exc: BaseException) -> Iterator[str]:
    """``str`` and ``repr`` of an exception and of everything chained to it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        current = current.__cause__ or current.__context__
