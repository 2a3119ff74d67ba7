"""Fixtures of the e2e suite: a process registry per test and per module, always cleaned up.

The suite drives real ``cagw`` processes (see :mod:`tests.e2e.processes`); it is
marked ``slow`` but runs in the default ``make test``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.processes import Processes


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """Processes started by one test; all stopped (SIGTERM, then SIGKILL) when it ends, pass or fail."""
    procs = Processes(tmp_path / "logs")
    try:
        yield procs
    finally:
        procs.cleanup()


@pytest.fixture(scope="module")
def module_processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Processes]:
    """Processes shared by a module's tests (one gateway for many read-only CLI calls)."""
    procs = Processes(tmp_path_factory.mktemp("e2e-logs"))
    try:
        yield procs
    finally:
        procs.cleanup()
