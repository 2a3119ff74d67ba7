"""Fixtures of the whole suite: a clean environment, one throwaway CA, a fake clock, CSR and settings factories.

The builders behind them are plain modules in ``tests/support/``; fixtures that
only one folder uses live in that folder's ``conftest.py``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trustme

from service.config import CASettings
from tests.support.clocks import FakeClock
from tests.support.csr import make_csr as build_csr_pem
from tests.support.settings import CASettingsFactory, build_ca_settings

# Variables that would change what the code under test reads: configuration values written as
# ``${CAGW_...}``, proxies (the Sectigo client never reads them, and a test must show that) and
# TLS overrides of the machine. ``CAGW_TEST_*`` are the suite's own settings (where PostgreSQL
# is, whether it is required) and stay.
_MACHINE_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
                      "all_proxy", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
                      "CURL_CA_BUNDLE")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CAGW_* variable, proxy or TLS setting of the machine leaks into a test."""
    gateway_variables = [name for name in os.environ if name.startswith("CAGW_") and not name.startswith("CAGW_TEST_")]
    for name in [*_MACHINE_VARIABLES, *gateway_variables]:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def test_ca() -> trustme.CA:
    """One throwaway CA for the session: issue a server or client certificate from it with
    ``test_ca.issue_cert(...)``."""
    return trustme.CA()


@pytest.fixture
def clock() -> FakeClock:
    """A wall clock (aware UTC) that moves only with ``clock.advance(...)``."""
    return FakeClock()


@pytest.fixture
def make_csr() -> Callable[..., str]:
    """``make_csr(common_name, *, sans=(), kind="ec256", organization=None, ...)``: a PEM CSR."""
    return build_csr_pem


@pytest.fixture
def ca_settings(tmp_path: Path) -> CASettingsFactory:
    """``ca_settings(**overrides)``: one CA's parsed settings, its ledger under ``tmp_path``
    (see :func:`tests.support.settings.ca_entry` for the overrides)."""
    def build(**overrides: Any) -> CASettings:
        return build_ca_settings(tmp_path, **overrides)
    return build
