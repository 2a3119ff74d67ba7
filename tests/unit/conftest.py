"""Fixtures of the unit folder: a SQLite ledger on the real clock, opened and closed for each test.

Modules that test the ledger itself (``test_ledger_sqlite.py``, ``test_ledger_contract.py``)
define their own ``ledger`` and ``clock``: they need the fake clock's exact times.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.ledger import Ledger, open_ledger


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    """An open SQLite ledger at ``tmp_path / "ledger.db"``, closed when the test ends."""
    opened = await open_ledger(tmp_path / "ledger.db")
    try:
        yield opened
    finally:
        await opened.close()
