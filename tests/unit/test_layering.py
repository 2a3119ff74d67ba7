"""The direction of dependencies: api/ and rest/ -> core -> connectors/base.py <- connectors/sectigo/.

The core knows neither the transports (grpc, aiohttp, the generated stubs) nor
Sectigo, so a second CA connector or a third transport touches no core module;
rest/ never imports a servicer, and api/ never imports rest/. Beyond imports, no
file of service/ outside the Sectigo connector and the simulator (which imitates
Sectigo) even names Sectigo: what is Sectigo's lives in its connector package.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[2] / "service"
CORE = [SERVICE / "enrollment", SERVICE / "ledger", SERVICE / "catalog.py", SERVICE / "certificates",
        SERVICE / "lifecycle", SERVICE / "authorities.py", SERVICE / "connectors" / "base.py",
        SERVICE / "connectors" / "registry.py", SERVICE / "config", SERVICE / "x509", SERVICE / "clock.py",
        SERVICE / "health.py", SERVICE / "errors.py"]
FORBIDDEN_IN_CORE = ("grpc", "grpc_status", "grpc_health", "aiohttp", "cagw", "service.api", "service.rest",
                     "service.connectors.sectigo", "service.simulator", "service.app", "service.cli")


def _modules(path: Path) -> list[Path]:
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _offending(path: Path, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(name for name in _imports(path)
                  if any(name == prefix or name.startswith(prefix + ".") for prefix in forbidden))


@pytest.mark.parametrize("module", [m for p in CORE for m in _modules(p)], ids=lambda m: str(m.relative_to(SERVICE)))
def test_core_modules_know_no_transport_and_no_sectigo(module: Path) -> None:
    assert _offending(module, FORBIDDEN_IN_CORE) == []


@pytest.mark.parametrize("module", _modules(SERVICE / "rest"), ids=lambda m: m.name)
def test_rest_knows_no_servicer_and_no_ca(module: Path) -> None:
    assert _offending(module, ("service.api.certificate_authorities", "service.api.enrollments",
                               "service.api.certificates", "service.api.subjects", "service.connectors",
                               "service.enrollment", "service.ledger", "grpc")) == []


@pytest.mark.parametrize("module", _modules(SERVICE / "api"), ids=lambda m: m.name)
def test_api_does_not_reach_into_rest_or_sectigo(module: Path) -> None:
    assert _offending(module, ("service.rest", "service.connectors.sectigo", "aiohttp")) == []


# ---------------------------------------------------------------- the word itself

WORD = re.compile("sectigo", re.IGNORECASE)
MAY_NAME_IT = [SERVICE / "connectors" / "sectigo", SERVICE / "simulator"]
# The one exception: the contract's own field for the CA's order id (protos/cagw/v1/enrollments.proto),
# which the servicers fill and the client CLI prints; spelled as the generated code and the JSON name do.
CONTRACT_FIELD = ("sectigo_order_id", "sectigoOrderId")
MAY_USE_THE_CONTRACT_FIELD = [SERVICE / "api", SERVICE / "client_cli.py"]


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _text_files() -> list[Path]:
    return sorted(path for path in SERVICE.rglob("*") if path.is_file() and "__pycache__" not in path.parts
                  and not _inside(path, MAY_NAME_IT))


@pytest.mark.parametrize("path", _text_files(), ids=lambda p: str(p.relative_to(SERVICE)))
def test_no_sectigo_outside_its_connector_and_the_simulator(path: Path) -> None:
    offending = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if _inside(path, MAY_USE_THE_CONTRACT_FIELD):
            for field in CONTRACT_FIELD:
                line = line.replace(field, "")
        if WORD.search(line):
            offending.append(f"{number}: {line.strip()}")
    assert offending == []


def test_the_word_check_finds_the_word() -> None:
    """The check above must be able to fail: every spelling is caught, the allowed field only where allowed."""
    assert all(WORD.search(text) for text in ("Sectigo", "SECTIGO", "cagw.sectigo", "sectigo_order_id"))
    assert _inside(SERVICE / "api" / "enrollments.py", MAY_USE_THE_CONTRACT_FIELD)
    assert not _inside(SERVICE / "config" / "sections.py", MAY_USE_THE_CONTRACT_FIELD + MAY_NAME_IT)
    assert SERVICE / "config" / "sections.py" in _text_files()
