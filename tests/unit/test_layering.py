"""The direction of dependencies: api/ and rest/ -> core -> connectors/base.py <- connectors/sectigo/.

The core knows neither the transports (grpc, aiohttp, the generated stubs) nor
Sectigo, so a second CA connector or a third transport touches no core module;
rest/ never imports a servicer, and api/ never imports rest/.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SERVICE = Path(__file__).resolve().parents[2] / "service"
CORE = [SERVICE / "enrollment", SERVICE / "ledger", SERVICE / "catalog.py", SERVICE / "certificates",
        SERVICE / "authorities.py", SERVICE / "connectors" / "base.py"]
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
