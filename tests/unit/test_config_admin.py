"""The ``admin`` section: the operator's listener, on loopback only."""

from __future__ import annotations

from typing import Any

import pytest

from service.config import ListenSettings
from service.errors import ConfigError
from tests.unit.test_config import Ctx, base_document, ctx, parse

__all__ = ["ctx"]  # the fixture, shared


def test_ok_admin_listens_on_loopback_port_50052_by_default(ctx: Ctx) -> None:
    assert parse(base_document(ctx), ctx).admin == ListenSettings("127.0.0.1", 50052)


@pytest.mark.parametrize("listen", ["127.0.0.1:6000", "[::1]:6000", "localhost:6000", ":0"])
def test_ok_admin_on_any_loopback_address(ctx: Ctx, listen: str) -> None:
    document: dict[str, Any] = {**base_document(ctx), "admin": {"listen": listen}}
    assert parse(document, ctx).admin.port == int(listen.rsplit(":", 1)[1])


@pytest.mark.parametrize(("section", "problem"), [
    ({"listen": "0.0.0.0:50052"}, "admin.listen: '0.0.0.0' is not a loopback address: the admin service lets "
                                  "whoever reaches it list, retry and abandon any order, so it listens on "
                                  "127.0.0.1, ::1 or localhost only"),
    ({"listen": "10.1.2.3:50052"}, "admin.listen: '10.1.2.3' is not a loopback address"),
    ({"tls": {}}, "admin.tls: unknown key (allowed: listen)"),
    ({"listen": "127.0.0.1"}, "admin.listen: '127.0.0.1' is not HOST:PORT"),
], ids=["fail-any-address", "fail-private-address", "fail-tls", "fail-no-port"])
def test_fail_admin_off_loopback_or_malformed(ctx: Ctx, section: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse({**base_document(ctx), "admin": section}, ctx)
    assert any(text.startswith(problem) for text in caught.value.problems), caught.value.problems
