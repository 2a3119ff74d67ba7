"""Fixtures of the integration folder: simulators on loopback (plain HTTP, HTTPS with client
certificates, approval-gated), the simulator's TLS identity and a CONNECT proxy with credentials.

The helpers behind them are in :mod:`tests.integration.sectigo_support`; whole gateway stacks
are in :mod:`tests.integration.stack`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization

from service.keystores import load_key_store
from tests.integration.proxy import ConnectProxy, start_connect_proxy
from tests.integration.sectigo_support import (
    KEYSTORES,
    PROXY_PASSWORD,
    PROXY_USER,
    STORE_PASSWORD,
    SimHandle,
    TLSFiles,
    start_sim,
)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    """The simulator's HTTPS identity from the keytool-made ``server.p12``, as PEM files."""
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


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def plain_sim(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SimHandle]:
    """A plain-HTTP simulator (password and API-key modes), shared by a module's tests."""
    handle = await start_sim(tmp_path_factory.mktemp("plain-sim"))
    yield handle
    await handle.sim.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tls_sim(tmp_path_factory: pytest.TempPathFactory, tls_files: TLSFiles) -> AsyncIterator[SimHandle]:
    """An HTTPS simulator for 127.0.0.1 whose ``/private/api`` requires a client certificate."""
    handle = await start_sim(tmp_path_factory.mktemp("tls-sim"), tls_cert=tls_files.cert, tls_key=tls_files.key,
                             client_ca=tls_files.client_ca)
    yield handle
    await handle.sim.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def approval_sim(tmp_path: Path) -> AsyncIterator[SimHandle]:
    """A plain-HTTP simulator whose orders wait for approval (so they can be declined)."""
    handle = await start_sim(tmp_path, require_approval=True)
    yield handle
    await handle.sim.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def connect_proxy() -> AsyncIterator[ConnectProxy]:
    proxy = await start_connect_proxy(username=PROXY_USER, password=PROXY_PASSWORD)
    yield proxy
    await proxy.stop()
