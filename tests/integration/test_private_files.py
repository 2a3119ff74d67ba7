"""Files and the simulator's exposure: the ledger and its -wal/-shm are 0600, the embedded work
folder 0700, the simulator's state file 0600; the simulator does not listen beyond loopback without
client certificates, answers its admin routes to loopback callers only, and takes its passwords
from a file or the environment instead of the command line."""

from __future__ import annotations

import argparse
import stat
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from service.errors import ConfigError
from service.ledger.sqlite import SQLiteLedger
from service.simulator import SimulatorSettings, start_simulator
from service.simulator.app import _admin_on_loopback_only, is_loopback
from service.simulator.embedded import start_embedded
from service.simulator.server import PASSWORD_ENV, add_simulator_arguments, settings_from_args
from tests.integration.stack import make_csr
from tests.unit.ledger_records import new_order


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_ok_the_ledger_and_its_wal_and_shm_are_private(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    async with SQLiteLedger(path) as ledger:
        await ledger.create_order(new_order("o-1"))
        files = [path, path.with_name("ledger.db-wal"), path.with_name("ledger.db-shm")]
        assert all(f.exists() for f in files)
        assert [_mode(f) for f in files] == [0o600] * 3


async def test_ok_a_ledger_left_readable_is_tightened(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "ledger.db"
    async with SQLiteLedger(path):
        pass
    path.chmod(0o644)
    async with SQLiteLedger(path):
        assert _mode(path) == 0o600
    assert any("readable by others" in r.getMessage() for r in caplog.records)


async def test_ok_the_embedded_work_folder_is_0700_and_the_state_file_0600(tmp_path: Path) -> None:
    backend = await start_embedded(tmp_path / "work", grpc_listen="127.0.0.1:0", rest_listen="127.0.0.1:0",
                                   ops_listen="127.0.0.1:0")
    try:
        assert _mode(tmp_path / "work") == 0o700
    finally:
        await backend.stop()
    state = tmp_path / "work" / "simulator-state.json"
    assert state.exists() and _mode(state) == 0o600


async def test_ok_orders_appended_to_the_state_file_keep_it_private(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    sim = await start_simulator(SimulatorSettings(port=0, ca_dir=tmp_path / "ca", state_file=state))
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{sim.api_url}/ssl/v1/enroll", headers=sim.credentials_headers(),
                                 json={"orgId": sim.settings.org_id, "csr": make_csr("s.example.com"),
                                       "certType": sim.settings.cert_types[0].id, "term": 365}) as answer:
                assert answer.status == 200, await answer.text()
        assert _mode(state) == 0o600
    finally:
        await sim.stop()
    assert _mode(state) == 0o600


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", ""])
async def test_fail_the_simulator_does_not_listen_beyond_loopback_without_client_certificates(
        tmp_path: Path, host: str) -> None:
    with pytest.raises(ConfigError, match="is not a loopback address; listening there needs --client-ca"):
        await start_simulator(SimulatorSettings(host=host, port=0, ca_dir=tmp_path / "ca"))


@pytest.mark.parametrize(("address", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("10.0.0.1", False), ("::ffff:10.0.0.1", False), ("", False), (None, False), ("example.com", False),
])
def test_is_loopback(address: str | None, loopback: bool) -> None:
    assert is_loopback(address) is loopback


@pytest.mark.parametrize(("peer", "status"), [(("10.1.2.3", 5000), 404), (("127.0.0.1", 5000), 200)])
async def test_admin_routes_answer_loopback_callers_only(peer: tuple[str, int], status: int) -> None:
    request = make_mocked_request("GET", "/__simulator/stats", transport=_Transport(peer))

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({})

    answer = await _admin_on_loopback_only(request, handler)
    assert answer.status == status


class _Transport:
    """The one transport fact the middleware reads: the peer's address."""

    def __init__(self, peer: tuple[str, int]) -> None:
        self._peer = peer

    def get_extra_info(self, name: str, default: object = None) -> object:
        return self._peer if name == "peername" else default

    def is_closing(self) -> bool:
        return False


def _settings(argv: list[str]):  # type: ignore[no-untyped-def]
    parser = argparse.ArgumentParser()
    add_simulator_arguments(parser)
    return settings_from_args(parser.parse_args(argv))


def test_ok_simulator_passwords_from_a_file_or_the_environment(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n")
    assert _settings(["--password-file", str(secret)]).password == "from-a-file"
    monkeypatch.setenv(PASSWORD_ENV, "from-the-environment")
    assert _settings([]).password == "from-the-environment"
    assert _settings(["--password-file", str(secret)]).password == "from-a-file"  # the file wins
    with pytest.raises(ConfigError, match="give --password or --password-file, not both"):
        _settings(["--password", "x", "--password-file", str(secret)])
    (tmp_path / "empty").write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        _settings(["--password-file", str(tmp_path / "empty")])
