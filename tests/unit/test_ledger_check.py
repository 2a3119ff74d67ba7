"""``cagw ledger check``: a sound ledger passes; each kind of damage done to a copy is reported precisely.

Each test builds a real ledger through its API (orders received, collecting, issued, failed), copies
it, breaks the copy with plain SQL or by overwriting bytes, and runs the command on the copy.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from service.cli import main
from service.ledger import LATEST_VERSION, OrderState, open_ledger
from service.ledger.sqlite.check import check_database
from tests.unit.fakes import FakeConnector, seed_issued, seed_order

ISSUED, COLLECTING, FAILED = "issued-order", "collecting-order", "failed-order"


@pytest.fixture(scope="module")
def sound(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A ledger with one order in each interesting state, closed (its WAL folded in); and their ids."""
    import asyncio

    path = tmp_path_factory.mktemp("ledger") / "ledger.db"

    async def build() -> dict[str, str]:
        ledger = await open_ledger(path)
        try:
            issued, _ = await seed_issued(ledger, FakeConnector(), "CN=issued.example.com")
            collecting = await seed_order(ledger, "CN=collecting.example.com", ca_order_id="1001")
            failed = await seed_order(ledger, "CN=failed.example.com", state=OrderState.RECEIVED)
            await ledger.update_order(failed.id, state=OrderState.FAILED, detail="refused", error_reason="CA_REJECTED")
            await seed_order(ledger, "CN=received.example.com", state=OrderState.RECEIVED)
            return {ISSUED: issued.id, COLLECTING: collecting.id, FAILED: failed.id}
        finally:
            await ledger.close()

    return path, asyncio.run(build())


def _copy(sound: tuple[Path, dict[str, str]], tmp_path: Path, *statements: str,
          params: Callable[[dict[str, str]], tuple[object, ...]] = lambda ids: ()) -> Path:
    source, ids = sound
    copy = tmp_path / "copy.db"
    shutil.copyfile(source, copy)
    if statements:
        conn = sqlite3.connect(copy)  # foreign keys off, as any tool that edits the file by hand
        for statement in statements:
            conn.execute(statement, params(ids) if "?" in statement else ())
        conn.commit()
        conn.close()
    return copy


def _run(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["ledger", "check", "--ledger", str(path)])
    out = capsys.readouterr()
    return code, [line for line in out.out.splitlines() if line.startswith("PROBLEM")] + out.err.splitlines()


def test_ok_a_sound_ledger_passes_and_is_left_untouched(sound: tuple[Path, dict[str, str]], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    copy = _copy(sound, tmp_path)
    before = hashlib.sha256(copy.read_bytes()).hexdigest()
    code = main(["ledger", "check", "--ledger", str(copy)])
    out = capsys.readouterr().out
    assert code == 0
    assert out.strip() == (f"ledger {copy}: schema version {LATEST_VERSION}, 4 order(s) (1 COLLECTING, 1 FAILED, 1 ISSUED, "
                           "1 RECEIVED), 1 certificate(s): OK")
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == before


def test_fail_an_issued_order_whose_certificate_is_gone(sound: tuple[Path, dict[str, str]], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    copy = _copy(sound, tmp_path, "DELETE FROM certificates")
    code, problems = _run(copy, capsys)
    issued = sound[1][ISSUED]
    assert code == 1
    assert any(p.startswith("PROBLEM foreign-key: orders row ") and "names a missing row of certificates" in p
               for p in problems)
    assert [p for p in problems if "issued-certificate" in p] == [
        f"PROBLEM issued-certificate: order {issued} is ISSUED with certificate "
        f"{_serial(sound[0], issued)}, which CA sectigo-test has no record of"]


def test_fail_a_state_its_history_does_not_end_with_and_no_certificate(
        sound: tuple[Path, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = _copy(sound, tmp_path, "UPDATE orders SET state = 'ISSUED' WHERE id = ?",
                 params=lambda ids: (ids[COLLECTING],))
    code, problems = _run(copy, capsys)
    order = sound[1][COLLECTING]
    assert code == 1
    assert problems == [f"PROBLEM order-history: order {order} is ISSUED but its history ends COLLECTING",
                        f"PROBLEM issued-certificate: order {order} is ISSUED but names no certificate"]


def test_fail_a_certificate_filed_under_an_order_that_is_not_issued(
        sound: tuple[Path, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = _copy(sound, tmp_path, "UPDATE certificates SET order_id = ?",
                 params=lambda ids: (ids[COLLECTING],))
    code, problems = _run(copy, capsys)
    ids, serial = sound[1], _serial(sound[0], sound[1][ISSUED])
    assert code == 1
    assert problems == [
        f"PROBLEM issued-certificate: order {ids[ISSUED]} is ISSUED with certificate {serial}, which is filed "
        f"under {ids[COLLECTING]}",
        f"PROBLEM certificate-order: certificate {serial} of CA sectigo-test is filed under order "
        f"{ids[COLLECTING]}, which is COLLECTING, not ISSUED"]


def test_fail_one_ca_order_for_two_orders_is_reported_as_ordered_twice(
        sound: tuple[Path, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = _copy(sound, tmp_path, "UPDATE orders SET ca_order_id = '1001' WHERE ca_order_id IS NOT NULL")
    code, problems = _run(copy, capsys)
    assert code == 1
    assert len(problems) == 1 and problems[0].startswith("PROBLEM ordered-twice: CA sectigo-test order 1001 "
                                                         "belongs to several orders: ")
    assert sound[1][ISSUED] in problems[0] and sound[1][COLLECTING] in problems[0]


def test_fail_two_unfinished_orders_for_one_csr(sound: tuple[Path, dict[str, str]], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    copy = _copy(sound, tmp_path, "DROP INDEX orders_pending_fingerprint",
                 "UPDATE orders SET fingerprint = 'f' || 'p0123456789abcdef0123' WHERE state IN ('RECEIVED', "
                 "'COLLECTING')")
    code, problems = _run(copy, capsys)
    assert code == 1
    assert len(problems) == 1 and problems[0].startswith(
        "PROBLEM unfinished-twins: CA sectigo-test: several unfinished orders for one CSR (fingerprint "
        "fp0123456789abcd…): ")


def test_fail_unknown_state_missing_history_and_a_failure_without_reason(
        sound: tuple[Path, dict[str, str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    copy = _copy(sound, tmp_path, "UPDATE orders SET state = 'LOST' WHERE state = 'RECEIVED'",
                 "DELETE FROM order_history WHERE order_id = ?", "UPDATE orders SET error_reason = ''",
                 params=lambda ids: (ids[COLLECTING],))
    code, problems = _run(copy, capsys)
    ids = sound[1]
    assert code == 1
    assert f"PROBLEM order-history: order {ids[COLLECTING]} (COLLECTING) has no history" in problems
    assert f"PROBLEM failure-reason: order {ids[FAILED]} is FAILED with no reason recorded" in problems
    assert any(p.startswith("PROBLEM order-state: order ") and p.endswith("has the unknown state 'LOST'")
               for p in problems)


def test_fail_damaged_pages_are_an_integrity_problem(sound: tuple[Path, dict[str, str]], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    copy = _copy(sound, tmp_path)
    data = bytearray(copy.read_bytes())
    page = 4096
    assert len(data) >= 6 * page
    data[3 * page: 5 * page] = b"\xa5" * (2 * page)  # two whole pages of garbage: tables or indexes
    copy.write_bytes(bytes(data))
    report = check_database(copy)
    assert not report.ok and {f.check for f in report.findings} & {"integrity"}
    code, problems = _run(copy, capsys)
    assert code == 1 and problems[0].startswith("PROBLEM integrity: ")


def test_fail_a_file_that_is_no_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notes.db"
    path.write_text("not a ledger\n" * 200)
    code, problems = _run(path, capsys)
    assert code == 1
    assert problems == ["PROBLEM integrity: the file cannot be read as a ledger: file is not a database"]


def test_fail_an_old_schema_is_named(sound: tuple[Path, dict[str, str]], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    copy = _copy(sound, tmp_path, f"DELETE FROM schema_version WHERE version = {LATEST_VERSION}")
    code, problems = _run(copy, capsys)
    assert code == 1
    assert problems == [f"PROBLEM schema: schema version {LATEST_VERSION - 1}, this gateway writes version "
                        f"{LATEST_VERSION}: open it with the gateway first (it migrates), then check again"]


def test_fail_no_ledger_there_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _run(tmp_path / "missing.db", capsys)
    assert code == 2
    assert lines == [f"error: no ledger file at {tmp_path / 'missing.db'}"]


def _serial(path: Path, order_id: str) -> str:
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return str(conn.execute("SELECT serial_number FROM orders WHERE id = ?", (order_id,)).fetchone()[0])
    finally:
        conn.close()
