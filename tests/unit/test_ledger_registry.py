"""Choosing the ledger by type: ``ledger.url`` (or ``ledger.path``) → the backend registered for the
scheme, its settings, ``open_ledger`` and ``cagw ledger backup`` through it; no credential of a URL
in any message or repr; a backend package added next to the others is found without touching
anything else."""

from __future__ import annotations

import os
import sys
import textwrap
from urllib.parse import quote
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import service.ledger
from service.cli import EXIT_OK, EXIT_USAGE, main
from service.config import load_config, parse_config
from service.errors import ConfigError, NotFound, Unimplemented
from service.ledger import (
    LedgerBackend,
    LedgerSettingsError,
    LedgerTarget,
    OrderState,
    SQLiteLedger,
    backup_ledger,
    open_ledger,
    parse_target,
    register_backend,
)
from service.ledger import registry
from service.ledger.registry import LedgerSource, backend_for, file_target, redact_url, supported_schemes
from service.ledger.sqlite import SQLiteSettings
from tests.unit.ledger_records import new_order

PASSWORD = "Db-S3cret-71c9"
SUPPORTED = ", ".join(supported_schemes())  # sqlite, and whatever backends the tree holds


def document(ledger: Any = None) -> dict[str, Any]:
    """A valid configuration (plain HTTP CA, no trust store needed) with the given ``ledger`` section."""
    doc: dict[str, Any] = {"managed-cas": [{
        "id": "ca-1",
        "properties": {"url": "http://127.0.0.1:1/api", "customer-uri": "acme", "org-id": "1",
                       "login": "gateway", "login-password": "not-a-secret"},
    }]}
    if ledger is not None:
        doc["ledger"] = ledger
    return doc


def problems(ledger: Any, tmp_path: Path, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(document(ledger), base_dir=tmp_path, environ=environ or {})
    assert all(PASSWORD not in problem for problem in caught.value.problems)
    return caught.value.problems


@pytest.fixture
def backends(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Backends registered by a test are gone after it."""
    monkeypatch.setattr(registry, "_BACKENDS", dict(registry._BACKENDS))
    monkeypatch.setattr(registry, "_UNLOADABLE", dict(registry._UNLOADABLE))
    yield


# -- sqlite: URLs


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("sqlite:///ledger.db", "{base}/ledger.db", id="ok-relative-to-the-config-folder"),
        pytest.param("sqlite:///data/ledger.db", "{base}/data/ledger.db", id="ok-relative-subfolder"),
        pytest.param("sqlite:////var/lib/cagw/ledger.db", "/var/lib/cagw/ledger.db", id="ok-four-slashes-absolute"),
        pytest.param("sqlite:///my%20ledger.db", "{base}/my ledger.db", id="ok-percent-escapes-decode"),
        pytest.param("SQLite:///ledger.db", "{base}/ledger.db", id="ok-scheme-is-case-blind"),
        pytest.param("sqlite:///~/ledger.db", "{home}/ledger.db", id="ok-home-folder"),
    ],
)
def test_ok_sqlite_url(url: str, expected: str, tmp_path: Path) -> None:
    config = parse_config(document({"url": url}), base_dir=tmp_path, environ={})
    path = Path(expected.format(base=tmp_path, home=os.path.expanduser("~")))
    assert config.ledger.path == path
    assert config.ledger.url == f"sqlite:///{quote(str(path), safe='/~')}"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("sqlite://host/ledger.db", "a SQLite ledger is a local file with no host or user",
                     id="fail-host"),
        pytest.param(f"sqlite://gw:{PASSWORD}@/ledger.db", "a SQLite ledger is a local file with no host or user",
                     id="fail-credentials-never-shown"),
        pytest.param("sqlite:ledger.db", "is not a SQLite file URL", id="fail-no-slashes"),
        pytest.param("sqlite:///ledger.db?mode=ro", "a SQLite URL takes no query or fragment", id="fail-query"),
        pytest.param("sqlite://", "names no file", id="fail-no-file"),
        pytest.param("sqlite:///", "names no file", id="fail-empty-file"),
        pytest.param("sqlite:///:memory:", "the ledger must be a file", id="fail-in-memory"),
        pytest.param("sqlite:///a%00b", "the file name contains a NUL character", id="fail-nul"),
        pytest.param(f"mysql://gw:{PASSWORD}@db/cagw", "unknown ledger scheme 'mysql' (supported: ",
                     id="fail-unknown-scheme-names-the-supported-ones"),
        pytest.param("ledger.db", "is not a URL: expected SCHEME://", id="fail-not-a-url"),
    ],
)
def test_fail_ledger_url(url: str, expected: str, tmp_path: Path) -> None:
    [problem] = problems({"url": url}, tmp_path)
    assert problem.startswith(f"ledger.url: {expected}"), problem
    if "unknown" in expected or "not a URL" in expected:
        assert "sqlite" in problem.partition("supported")[2]


def test_ok_path_is_short_for_a_sqlite_url(tmp_path: Path) -> None:
    by_path = parse_config(document({"path": "data/ledger.db"}), base_dir=tmp_path, environ={})
    by_url = parse_config(document({"url": "sqlite:///data/ledger.db"}), base_dir=tmp_path, environ={})
    assert by_path.ledger == by_url.ledger
    assert by_path.ledger.path == tmp_path / "data" / "ledger.db"
    default = parse_config(document(), base_dir=tmp_path, environ={})
    assert default.ledger.path == tmp_path / "cagw-ledger.db"


@pytest.mark.parametrize(
    ("ledger", "expected"),
    [
        pytest.param({"url": "sqlite:///a.db", "path": "b.db"},
                     ["ledger.url: give url or path, not both (path is short for a sqlite:/// url)"], id="fail-both"),
        pytest.param({"path": ""}, ["ledger.path: names no file: write sqlite:///FILE (relative to the configuration "
                                    "file's folder) or sqlite:////ABSOLUTE/FILE"], id="fail-empty-path"),
        pytest.param({"url": "sqlite:///a.db", "pool-size": "4"},
                     ["ledger.pool-size: unknown key (allowed: path, url)"], id="fail-key-of-no-backend"),
        pytest.param({"url": "nosuch://x", "pool-size": "4"},
                     ["ledger.pool-size: unknown key (allowed: path, url)",
                      f"ledger.url: unknown ledger scheme 'nosuch' (supported: {SUPPORTED})"],
                     id="fail-unknown-scheme-and-key"),
        pytest.param({"url": "${LEDGER_URL}"}, ["ledger.url: environment variable LEDGER_URL is not set",
                                                "ledger.url: is not a URL: expected SCHEME://…, e.g. "
                                                f"sqlite:///cagw-ledger.db (supported schemes: {SUPPORTED})"],
                     id="fail-missing-environment-variable"),
    ],
)
def test_fail_ledger_section(ledger: dict[str, str], expected: list[str], tmp_path: Path) -> None:
    assert problems(ledger, tmp_path) == expected


def test_ok_url_from_the_environment(tmp_path: Path) -> None:
    config = parse_config(document({"url": "${LEDGER_URL}"}), base_dir=tmp_path,
                          environ={"LEDGER_URL": "sqlite:////srv/cagw/ledger.db"})
    assert config.ledger.path == Path("/srv/cagw/ledger.db")


def test_ok_relative_url_resolves_against_the_file_not_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    path = folder / "cagw.yaml"
    path.write_text(textwrap.dedent("""
        ledger:
          url: sqlite:///data/ledger.db
        managed-cas:
          - id: ca-1
            properties: {url: "http://127.0.0.1:1/api", customer-uri: acme, org-id: "1", login: gw,
                         login-password: x}
    """))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(Path(os.path.relpath(path, elsewhere)), environ={})
    assert config.ledger.path == folder.resolve() / "data" / "ledger.db"


# -- redaction


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        pytest.param(f"postgresql://gw:{PASSWORD}@db:5432/cagw", "postgresql://gw:***@db:5432/cagw", id="ok-password"),
        pytest.param("postgresql://gw@db/cagw", "postgresql://gw@db/cagw", id="ok-user-only"),
        pytest.param(f"postgresql://db/cagw?user=gw&password={PASSWORD}&sslmode=require",
                     "postgresql://db/cagw?user=gw&password=***&sslmode=require", id="ok-password-parameter"),
        pytest.param(f"postgresql://db/cagw?sslpassword={PASSWORD}", "postgresql://db/cagw?sslpassword=***",
                     id="ok-ssl-password-parameter"),
        pytest.param(f"postgresql://gw:{PASSWORD}@[db/x", "postgresql:***", id="ok-malformed-shows-only-the-scheme"),
        pytest.param("sqlite:////var/lib/ledger.db", "sqlite:////var/lib/ledger.db", id="ok-nothing-to-hide"),
    ],
)
def test_ok_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


# -- a backend that registers itself


def _test_backend(*, backup: bool = False, echo_url: bool = False) -> LedgerBackend[SQLiteSettings]:
    """A backend for ``testdb://`` that keeps its ledger in a SQLite file named by the URL's path
    and reads one option, ``busy``; ``echo_url`` makes it careless enough to quote its URL."""

    def parse(source: LedgerSource) -> SQLiteSettings:
        if echo_url:
            raise LedgerSettingsError(("url", f"cannot reach {source.url}"))
        if source.options.get("busy", "1") != "1":
            raise LedgerSettingsError(("busy", "must be 1"))
        return SQLiteSettings(path=source.resolve_path(source.url.partition("@")[2].lstrip("/")))

    async def copy(settings: SQLiteSettings, target: Path) -> None:
        target.write_bytes(settings.path.read_bytes())

    return LedgerBackend(
        name="TestDB", schemes=("testdb",), parse=parse, option_keys=frozenset({"busy"}),
        create=lambda settings, clock: SQLiteLedger(settings.path),
        describe=lambda settings: f"testdb://gw:{PASSWORD}@/{settings.path}",  # careless: redacted after it
        backup=copy if backup else None, file_of=None)


def test_ok_registered_backend_is_chosen_by_its_scheme(backends: None, tmp_path: Path) -> None:
    register_backend(_test_backend())
    config = parse_config(document({"url": f"testdb://gw:{PASSWORD}@/ledger.db", "busy": "1"}),
                          base_dir=tmp_path, environ={})
    assert config.ledger.target.backend.name == "TestDB"
    assert config.ledger.target.settings == SQLiteSettings(path=tmp_path / "ledger.db")
    assert config.ledger.url == f"testdb://gw:***@/{tmp_path / 'ledger.db'}"
    assert config.ledger.path is None  # no file the registry knows of
    assert PASSWORD not in repr(config) and PASSWORD not in repr(config.ledger.target)
    assert "testdb" in supported_schemes()


def test_fail_registered_backend_options_and_careless_messages(backends: None, tmp_path: Path) -> None:
    register_backend(_test_backend())
    assert problems({"url": f"testdb://gw:{PASSWORD}@/x.db", "busy": "2", "pool": "3"}, tmp_path) == [
        "ledger.pool: unknown key (allowed: busy, path, url)", "ledger.busy: must be 1"]
    register_backend(_test_backend(echo_url=True))
    assert problems({"url": f"testdb://gw:{PASSWORD}@/x.db"}, tmp_path) == [
        "ledger.url: cannot reach testdb://gw:***@/x.db"]


async def test_ok_open_and_backup_through_the_backend(backends: None, tmp_path: Path) -> None:
    register_backend(_test_backend(backup=True))
    target = parse_target("testdb://@/ledger.db", resolve_path=lambda raw: tmp_path / raw)
    ledger = await open_ledger(target)
    try:
        await ledger.create_order(new_order("ok-through-backend"))
    finally:
        await ledger.close()
    await backup_ledger(target, tmp_path / "copy.db")
    async with SQLiteLedger(tmp_path / "copy.db") as copy:
        order = await copy.get_order("ok-through-backend")
        assert order is not None and order.state is OrderState.RECEIVED


async def test_fail_backup_of_a_backend_without_one_says_so(backends: None, tmp_path: Path) -> None:
    register_backend(_test_backend(backup=False))
    target = parse_target(f"testdb://gw:{PASSWORD}@/ledger.db", resolve_path=lambda raw: tmp_path / raw)
    with pytest.raises(Unimplemented) as caught:
        await backup_ledger(target, tmp_path / "copy.db")
    assert caught.value.message == (f"the TestDB ledger testdb://gw:***@/{tmp_path / 'ledger.db'} cannot be copied "
                                    "by `cagw ledger backup`; back it up with its database's own tools")
    assert caught.value.reason == "LEDGER_BACKUP_UNSUPPORTED"
    assert not (tmp_path / "copy.db").exists()


async def test_fail_backup_of_a_missing_sqlite_file(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no ledger at"):
        await backup_ledger(tmp_path / "nothing.db", tmp_path / "copy.db")
    assert not (tmp_path / "copy.db").exists()


def test_ok_file_target_is_sqlite_relative_to_the_working_directory() -> None:
    target = file_target(Path("relative/ledger.db"))
    assert isinstance(target, LedgerTarget)
    assert (target.backend.name, target.path, target.shown) == ("SQLite", Path("relative/ledger.db"),
                                                                 "sqlite:///relative/ledger.db")


# -- a backend package dropped next to the others


BACKEND_PACKAGE = '''
from pathlib import Path
from service.ledger.registry import LedgerBackend, register_backend
from service.ledger.sqlite import SQLiteLedger, SQLiteSettings

register_backend(LedgerBackend(
    name="Example", schemes=("example", "example2"),
    parse=lambda source: SQLiteSettings(path=Path(source.url.partition("://")[2])),
    create=lambda settings, clock: SQLiteLedger(settings.path), describe=lambda settings: "example://"))
'''


@pytest.fixture
def plugin_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backends: None) -> Iterator[Path]:
    """A folder that counts as part of ``service.ledger``, as a new package in the tree would."""
    folder = tmp_path / "plugins"
    folder.mkdir()
    monkeypatch.setattr(service.ledger, "__path__", [*service.ledger.__path__, str(folder)])
    yield folder
    for name in ("service.ledger.example", "service.ledger.needsdriver"):
        sys.modules.pop(name, None)


def test_ok_a_new_backend_package_registers_itself(plugin_folder: Path, tmp_path: Path) -> None:
    (plugin_folder / "example").mkdir()
    (plugin_folder / "example" / "__init__.py").write_text(BACKEND_PACKAGE)
    assert backend_for(f"example2://{tmp_path}/x.db").name == "Example"
    config = parse_config(document({"url": f"example://{tmp_path}/x.db"}), base_dir=tmp_path, environ={})
    assert config.ledger.target.settings == SQLiteSettings(path=tmp_path / "x.db")
    assert {"example", "example2", "sqlite"} <= set(supported_schemes())


def test_fail_a_backend_package_without_its_driver_is_named(plugin_folder: Path, tmp_path: Path) -> None:
    (plugin_folder / "needsdriver").mkdir()
    (plugin_folder / "needsdriver" / "__init__.py").write_text("import no_such_driver_module\n")
    [problem] = problems({"url": "needs://x"}, tmp_path)
    assert problem == (f"ledger.url: unknown ledger scheme 'needs' (supported: {SUPPORTED}); the ledger backend "
                       "service.ledger.needsdriver could not be loaded: No module named 'no_such_driver_module'")


# -- cagw ledger backup


async def _make_ledger(path: Path) -> None:
    async with SQLiteLedger(path) as ledger:
        await ledger.create_order(new_order("ok-cli"))


@pytest.mark.parametrize("form", ["file", "url"])
async def test_ok_cli_backup_of_a_file_or_url(tmp_path: Path, form: str, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    await _make_ledger(tmp_path / "ledger.db")
    monkeypatch.chdir(tmp_path)
    source = "ledger.db" if form == "file" else "sqlite:///ledger.db"
    code = await _run_cli(["ledger", "backup", "--ledger", source, "copy.db"])
    assert code == EXIT_OK
    assert capsys.readouterr().err.strip().endswith("ledger ledger.db copied to copy.db")
    async with SQLiteLedger(tmp_path / "copy.db") as copy:
        assert await copy.get_order("ok-cli") is not None


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("missing.db", "error: no ledger at missing.db", id="fail-no-ledger-there"),
        pytest.param(f"mysql://gw:{PASSWORD}@db/x", "error: --ledger: unknown ledger scheme 'mysql'",
                     id="fail-unknown-scheme"),
    ],
)
async def test_fail_cli_backup(tmp_path: Path, source: str, expected: str, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert await _run_cli(["ledger", "backup", "--ledger", source, "copy.db"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith(expected) and PASSWORD not in err
    assert not (tmp_path / "copy.db").exists()


async def _run_cli(argv: list[str]) -> int:
    """``cagw …`` in a thread: the command runs its own event loop."""
    import asyncio

    return await asyncio.to_thread(main, argv)
