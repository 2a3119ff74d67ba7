"""A live gateway for the conformance suite: the embedded simulator behind the real Sectigo
connector, REST over mutual TLS (the only authentication CAGW clients know), one stack per module.

:class:`CagwClient` sends requests the way the CAGW clients do: the path exactly as written
(already percent-encoded, ``%24fields``), a JSON body, the client certificate on every call.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from yarl import URL

from service.simulator import SimulatorSettings
from tests.integration.stack import CA_ID, Stack, running_stack
from tests.support.csr import build_csr, new_key

CLIENT = "cagw-client.example.com"
CA_PATH = f"/v1/certificate-authorities/{CA_ID}"


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any


@dataclass(frozen=True)
class KeyAndCsr:
    """A fresh key's CSR in the forms CAGW clients send."""

    key: ec.EllipticCurvePrivateKey
    csr: x509.CertificateSigningRequest

    @property
    def pem(self) -> str:
        return self.csr.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def base64_der(self) -> str:
        """Standard base64 of the DER, no armour, no line breaks (Vault plugin, Ansible, shell utility)."""
        return base64.b64encode(self.csr.public_bytes(serialization.Encoding.DER)).decode()

    def public_key_der(self) -> bytes:
        return self.key.public_key().public_bytes(serialization.Encoding.DER,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo)


def new_csr(common_name: str, *, sans: tuple[str, ...] = (), organization: str = "") -> KeyAndCsr:
    key = new_key()  # a key of its own: tests compare the issued certificate's key with it
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return KeyAndCsr(key, build_csr(key, subject=x509.Name(attributes), sans=[x509.DNSName(s) for s in sans]))


class CagwClient:
    """REST calls as a CAGW client makes them, over mutual TLS."""

    def __init__(self, stack: Stack, session: aiohttp.ClientSession) -> None:
        self.stack = stack
        self.session = session

    async def call(self, method: str, path: str, body: Any = None) -> Answer:
        url = URL(self.stack.rest_base + path, encoded=True)
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body)
        async with self.session.request(method, url, data=data, headers=headers,
                                        ssl=self.stack.client_ssl) as response:
            text = await response.text()
        return Answer(response.status, json.loads(text) if text else None)

    async def get(self, path: str) -> Answer:
        return await self.call("GET", CA_PATH + path)

    async def post(self, path: str, body: Any) -> Answer:
        return await self.call("POST", CA_PATH + path, body)

    def slow(self, polls: int | None) -> None:
        """Make the simulated CA issue only after ``polls`` collects (None: never)."""
        manager = self.stack.simulator.manager
        manager.settings = dataclasses.replace(manager.settings, issue_after_polls=polls)  # type: ignore[misc]


@contextlib.asynccontextmanager
async def cagw_gateway(tmp: Path, **options: Any) -> AsyncIterator[CagwClient]:
    async with running_stack(tmp, client_name=CLIENT, simulator=SimulatorSettings(issue_after_polls=0),
                             **options) as stack, aiohttp.ClientSession() as session:
        assert stack.client_ssl is not None and stack.rest_base.startswith("https://")
        yield CagwClient(stack, session)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cagw(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CagwClient]:
    async with cagw_gateway(tmp_path_factory.mktemp("conformance")) as client:
        yield client


@pytest.fixture(autouse=True)
def issue_at_once(cagw: CagwClient) -> None:
    """Every test starts with a CA that issues at the first collect."""
    cagw.slow(0)
