"""The floor of the parts: what one enrollment cannot cost less than, measured in the same run.

An instantly issued enrollment needs at least: one unary call on the API listener, one CSR
check (parse and signature), three keep-alive HTTPS calls to the CA (enroll, certificate,
chain), two certificate parses and two SQLite commits (the order before the CA hears of it,
the certificate after). Each part is measured on its own:

- the unary call as the gateway's CPU per ``grpc.health.v1`` Check (REST: ``GET /cagw/health``),
  which runs the same server stack with no work behind it;
- the HTTPS calls as this process's CPU per direct enroll + two downloads (the client side of
  exactly those calls, measured during the direct baseline);
- the CSR check, the certificate parses and the commits in this process, with the same library
  calls and SQLite settings (WAL, ``synchronous = NORMAL``) the gateway uses.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from cryptography import x509

from service.x509.csr import parse_csr

from .load import Load
from .processes import Stack
from .scenarios import Figures

__all__ = ["floor_parts", "total_floor", "unary_floor"]

_ROW = "x" * 2048  # about the size of an order row with its certificate


def _cpu_per_call(repeat: int, work: Callable[[], object]) -> float:
    started = time.process_time()
    for _ in range(repeat):
        work()
    return (time.process_time() - started) / repeat * 1000


def _commits_ms(folder: Path, repeat: int) -> float:
    path = folder / "floor.db"
    path.unlink(missing_ok=True)
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, body TEXT)")
        counter = iter(range(1_000_000_000))

        def commit() -> None:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO orders (id, body) VALUES (?, ?)", (next(counter), _ROW))
            connection.execute("COMMIT")

        return _cpu_per_call(repeat, commit)
    finally:
        connection.close()


def floor_parts(csrs: Sequence[str], certificate_pem: bytes, folder: Path, *, repeat: int) -> Figures:
    """The in-process parts, in ms of CPU each: CSR check, certificate parse, SQLite commit, and the
    gateway's own ``parse_csr`` (for comparison with the raw CSR check)."""
    items = iter(list(csrs) * (repeat // max(1, len(csrs)) + 1))

    def csr_check() -> None:
        csr = x509.load_pem_x509_csr(next(items).encode("ascii"))
        if not csr.is_signature_valid:
            raise ValueError("a benchmark CSR does not verify")

    gateway_items = iter(list(csrs) * (repeat // max(1, len(csrs)) + 1))
    return {
        "floor.csr_check_ms": _cpu_per_call(repeat, csr_check),
        "floor.certificate_parse_ms": _cpu_per_call(
            repeat, lambda: x509.load_pem_x509_certificate(certificate_pem)),
        "floor.sqlite_commit_ms": _commits_ms(folder, repeat),
        "parts.gateway_parse_csr_ms": _cpu_per_call(repeat, lambda: parse_csr(next(gateway_items))),
    }


async def unary_floor(stack: Stack, load: Load, count: int) -> Figures:
    """The gateway's CPU per do-nothing unary call, gRPC and REST."""
    figures: Figures = {}
    for name, driver in (("grpc", load.grpc_health), ("rest", load.rest_health)):
        before = stack.gateway_meter.sample()
        batch = await driver(count)
        after = stack.gateway_meter.sample()
        figures[f"floor.{name}_unary_ms"] = after.cpu_since(before) / max(1, len(batch.latencies)) * 1000
    return figures


def total_floor(figures: Figures, transport: str) -> float | None:
    """The floor of one enrollment over ``transport`` (``grpc`` or ``rest``) from the measured parts."""
    parts = [figures.get(f"floor.{transport}_unary_ms"), figures.get("floor.csr_check_ms"),
             figures.get("direct.client_cpu_ms"), figures.get("floor.certificate_parse_ms"),
             figures.get("floor.sqlite_commit_ms")]
    if any(part is None for part in parts):
        return None
    unary, csr, https, parse, commit = (float(part) for part in parts)  # type: ignore[arg-type]
    return unary + csr + https + 2 * parse + 2 * commit
