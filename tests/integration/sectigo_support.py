"""Helpers of the Sectigo client tests: credentials, simulator handles, typed CA settings.

The fixtures built on them (simulators on loopback, TLS files, a CONNECT proxy) are in
``tests/integration/conftest.py``. Time is faked everywhere it can be: the simulator runs on a
:class:`~tests.support.clocks.SecondsClock` (issuance and token expiry move when a test says so)
and the client's back-off sleeps are recorded, not slept.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from service.config import BackoffSettings, CASettings, GatewaySettings, Secret
from service.connectors.sectigo.settings import (
    ApiKeyAuth,
    KeyStoreAuth,
    PasswordAuth,
    ProxySettings,
    SectigoProperties,
)
from service.simulator import Simulator, SimulatorSettings, start_simulator
from tests.support.clocks import SecondsClock

__all__ = [
    "CERT_TYPE",
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
    "FakeSleep",
    "LatencyTracker",
    "SimHandle",
    "TLSFiles",
    "iter_exception_texts",
    "sectigo_settings",
    "start_sim",
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
    clock: SecondsClock
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


async def start_sim(tmp: Path, **overrides: object) -> SimHandle:
    """A simulator on a free port whose clock moves only when the test says so."""
    clock = SecondsClock(time.time())
    latency = LatencyTracker()
    sim = await start_simulator(_sim_settings(tmp, **overrides), clock=clock, sleep=latency)
    return SimHandle(sim=sim, clock=clock, latency=latency)


def sectigo_settings(
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
    """One CA's settings as the configuration loader would produce them, from typed parts
    (auth modes, trust stores and proxies are what these tests vary)."""
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


def iter_exception_texts(exc: BaseException) -> Iterator[str]:
    """``str`` and ``repr`` of an exception and of everything chained to it."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        current = current.__cause__ or current.__context__
