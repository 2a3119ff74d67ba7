"""ErrorInfo domains: the gateway's own reasons carry its domain, a connector's errors carry the connector's."""

from __future__ import annotations

import pytest
from google.rpc import error_details_pb2

from service.api.status import ERROR_DOMAIN, status_from_error
from service.connectors.sectigo import SectigoValidationError
from service.errors import GATEWAY_ERROR_DOMAIN, CagwError, CARejected, InvalidRequest, NotFound


def _domain(exc: BaseException) -> str:
    status = status_from_error(exc)
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return info.domain


@pytest.mark.parametrize("exc", [
    pytest.param(InvalidRequest("bad"), id="ok-invalid-request"),
    pytest.param(NotFound("nope"), id="ok-not-found"),
    pytest.param(CARejected("a connector without its own domain"), id="ok-plain-connector-error"),
])
def test_gateway_errors_carry_the_gateway_domain(exc: CagwError) -> None:
    assert _domain(exc) == GATEWAY_ERROR_DOMAIN == ERROR_DOMAIN


def test_connector_errors_carry_their_connector_domain() -> None:
    assert _domain(SectigoValidationError("CA x: refused")) == "cagw.sectigo"


def test_a_connector_error_class_sets_its_own_domain() -> None:
    class LocalRejected(CARejected):
        domain = "cagw.example"

    assert _domain(LocalRejected("refused")) == "cagw.example"
