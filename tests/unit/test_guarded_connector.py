"""The guarded connector: the wrapped connector's abilities kept, every call through the breaker and observed."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator

import pytest

from service.config import CircuitBreakerSettings
from service.connectors import base
from service.connectors.breaker import CircuitBreaker, CircuitState
from service.connectors.guarded import ABILITIES, CACall, GuardedConnector, breaker_of, guard_connector, unwrap
from service.errors import CAUnavailable, CARejected, CircuitOpen

from tests.unit.fakes import FakeConnector


class EveryAbility(FakeConnector):
    """A connector with every optional ability of connectors/base.py."""

    san_types = frozenset({"dNSName"})

    async def find_order_by_marker(self, common_name: str, marker: str) -> base.OrderDetails | None:
        self._enter("find_order_by_marker", marker)
        return None

    async def hold(self, request: base.RevokeRequest) -> None:
        self._enter("hold", request)

    async def unhold(self, request: base.RevokeRequest) -> None:
        self._enter("unhold", request)

    async def replace(self, request: base.ReplaceRequest) -> None:
        self._enter("replace", request)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []
        self.entered: list[str] = []

    @contextlib.contextmanager
    def observe(self, call: CACall) -> Iterator[None]:
        self.entered.append(call.operation)
        try:
            yield
        finally:
            self.calls.append((call.ca_id, call.operation, call.outcome))


def optional_protocols() -> list[type]:
    return [value for name, value in vars(base).items()
            if inspect.isclass(value) and getattr(value, "_is_runtime_protocol", False) and value is not base.Connector]


def guarded(connector: base.Connector, threshold: int = 2) -> tuple[GuardedConnector, Recorder]:
    recorder = Recorder()
    breaker = CircuitBreaker(CircuitBreakerSettings(failure_threshold=threshold, open_for=60.0), name="ca-1")
    return guard_connector(connector, ca_id="ca-1", breaker=breaker, observer=recorder), recorder


def test_ok_every_optional_protocol_has_its_mixin() -> None:
    assert {protocol for protocol, _ in ABILITIES} == set(optional_protocols())


@pytest.mark.parametrize("protocol", optional_protocols(), ids=lambda p: p.__name__)
def test_ok_the_wrapper_has_exactly_the_abilities_of_the_connector(protocol: type) -> None:
    full, _ = guarded(EveryAbility())
    bare, _ = guarded(FakeConnector(comment_limit=None))
    assert isinstance(full, protocol)
    assert not isinstance(bare, protocol)
    assert isinstance(full, base.Connector) and isinstance(bare, base.Connector)


def test_ok_properties_pass_through_and_unwrap_gives_the_connector_back() -> None:
    inner = EveryAbility(comment_limit=77)
    wrapper, _ = guarded(inner)
    assert isinstance(wrapper, base.CommentLimit) and wrapper.max_comment_length == 77
    assert isinstance(wrapper, base.SubjectAltNameTypes) and wrapper.san_types == frozenset({"dNSName"})
    assert unwrap(wrapper) is inner and unwrap(inner) is inner


async def test_ok_calls_are_observed_with_their_operation_and_outcome() -> None:
    inner = EveryAbility()
    wrapper, recorder = guarded(inner)
    await wrapper.open()
    await wrapper.check()
    assert isinstance(wrapper, base.OrderLookup)
    await wrapper.find_order_by_marker("www.example.com", "cagw-order:1")
    inner.fail("details", CARejected("fake CA: unknown order 5", reason=base.REASON_NOT_FOUND))
    with pytest.raises(CARejected):
        await wrapper.details(base.DetailsRequest(order_id="5"))
    inner.fail("collect", CAUnavailable("fake CA: HTTP 429", http_status=429))
    with pytest.raises(CAUnavailable):
        await wrapper.collect(base.CollectRequest(order_id="5"))
    assert recorder.calls == [("ca-1", "check", "ok"), ("ca-1", "find_order_by_marker", "ok"),
                              ("ca-1", "details", "rejected"), ("ca-1", "collect", "throttled")]
    assert inner.names() == ["open", "check", "find_order_by_marker", "details", "collect"]  # open: not observed


async def test_fail_an_open_circuit_refuses_without_calling_the_connector() -> None:
    inner = EveryAbility()
    wrapper, recorder = guarded(inner, threshold=2)
    inner.fail("check", CAUnavailable("fake CA: HTTP 503", http_status=503))
    for _ in range(2):
        with pytest.raises(CAUnavailable):
            await wrapper.check()
    assert wrapper.breaker.state is CircuitState.OPEN
    request = base.EnrollRequest(csr_pem="x", profile_id="101", term_days=365, common_name="www.example.com")
    with pytest.raises(CircuitOpen):
        await wrapper.enroll(request)
    with pytest.raises(CircuitOpen):
        await wrapper.hold(base.RevokeRequest(reason=base.RevokeReason.CERTIFICATE_HOLD, comment="", order_id="1"))
    assert inner.names() == ["check", "check"]
    assert [outcome for _, _, outcome in recorder.calls] == ["unavailable", "unavailable", "circuit_open",
                                                              "circuit_open"]


def test_ok_breaker_of_finds_the_breaker_in_front_of_a_connector() -> None:
    wrapper, _ = guarded(FakeConnector())
    assert breaker_of(wrapper) is wrapper.breaker
    assert breaker_of(FakeConnector()) is None
