"""``guard_connector``: any connector behind its CA's circuit breaker, every call observed.

The gateway wraps each CA's connector once, at start-up. Every call of the
connector protocol (and of the optional abilities the connector has) goes
through :class:`~service.connectors.breaker.CircuitBreaker.call` and is reported
to a :class:`ConnectorObserver` (metrics, spans) with its operation name — the
method's name, so label values stay a small fixed set — and its outcome.
``open`` and ``close`` pass straight through.

The wrapper has exactly the optional abilities of the connector it wraps (an
``isinstance`` check on it answers as on the connector), so the core cannot
tell the difference; :func:`unwrap` gives the connector itself back.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar, cast

from service.connectors import base
from service.connectors.breaker import CircuitBreaker, is_breaker_failure
from service.errors import CAUnavailable, CARejected, CircuitOpen

__all__ = ["CACall", "ConnectorObserver", "GuardedConnector", "breaker_of", "guard_connector", "outcome_of",
           "unwrap"]

T = TypeVar("T")

OUTCOMES = ("ok", "unavailable", "throttled", "rejected", "circuit_open", "error")


@dataclass
class CACall:
    """One connector call as an observer sees it; ``outcome`` is set when it ends."""

    ca_id: str
    operation: str  # enroll, collect, details, list, revoke, renew, profiles, check, ...
    outcome: str = "ok"  # one of OUTCOMES
    error: BaseException | None = None
    # What the call is about, for the operator's view of one order (never a metric label): the CA's
    # order id of a collect or details, the comments (with the order's marker) of an enroll, the marker
    # of a search.
    subject: str = ""


class ConnectorObserver(Protocol):
    """Sees each connector call: entered before the call, left after it (``call.outcome`` set)."""

    def observe(self, call: CACall) -> contextlib.AbstractContextManager[None]: ...


class _Unobserved:
    def observe(self, call: CACall) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


def outcome_of(exc: BaseException) -> str:
    """The outcome label of a failed call."""
    if isinstance(exc, CircuitOpen):
        return "circuit_open"
    if is_breaker_failure(exc):
        return "unavailable"
    if isinstance(exc, CAUnavailable):
        return "throttled"  # an unavailable that is no breaker failure: a 429
    if isinstance(exc, CARejected):
        return "rejected"
    return "error"


class GuardedConnector:
    """The connector protocol in front of ``inner``; see the module docstring."""

    def __init__(self, inner: base.Connector, *, ca_id: str, breaker: CircuitBreaker,
                 observer: ConnectorObserver | None = None) -> None:
        self.inner = inner
        self.ca_id = ca_id
        self.breaker = breaker
        self._observer: ConnectorObserver = observer or _Unobserved()

    def __repr__(self) -> str:
        return f"GuardedConnector({self.inner!r}, breaker={self.breaker!r})"

    async def _guarded(self, operation: str, call: Callable[[], Awaitable[T]], subject: str = "") -> T:
        record = CACall(ca_id=self.ca_id, operation=operation, subject=subject)
        with self._observer.observe(record):
            try:
                return await self.breaker.call(call)
            except BaseException as exc:
                record.outcome = outcome_of(exc) if isinstance(exc, Exception) else "error"
                record.error = exc
                raise

    # -- lifecycle: not guarded

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    # -- the connector protocol

    async def check(self) -> None:
        await self._guarded("check", self.inner.check)

    async def profiles(self) -> tuple[base.CAProfile, ...]:
        return await self._guarded("profiles", self.inner.profiles)

    async def custom_fields(self) -> tuple[base.CustomField, ...]:
        return await self._guarded("custom_fields", self.inner.custom_fields)

    async def enroll(self, request: base.EnrollRequest) -> base.EnrollResult:
        return await self._guarded("enroll", lambda: self.inner.enroll(request), request.comments)

    async def collect(self, request: base.CollectRequest) -> base.CollectResult:
        return await self._guarded("collect", lambda: self.inner.collect(request), request.order_id)

    async def details(self, request: base.DetailsRequest) -> base.OrderDetails:
        return await self._guarded("details", lambda: self.inner.details(request), request.order_id)

    async def list(self, request: base.ListRequest) -> base.ListResult:
        return await self._guarded("list", lambda: self.inner.list(request))

    async def revoke(self, request: base.RevokeRequest) -> None:
        await self._guarded("revoke", lambda: self.inner.revoke(request))

    async def renew(self, request: base.RenewRequest) -> base.RenewResult:
        return await self._guarded("renew", lambda: self.inner.renew(request))


# -- the optional abilities: one mixin each, put in only when the wrapped connector has it


class _OrderLookup(GuardedConnector):
    async def find_order_by_marker(self, common_name: str, marker: str) -> base.OrderDetails | None:
        inner = cast(base.OrderLookup, self.inner)
        return await self._guarded("find_order_by_marker",
                                   lambda: inner.find_order_by_marker(common_name, marker), marker)


class _SubjectAltNameTypes(GuardedConnector):
    @property
    def san_types(self) -> frozenset[str]:
        return cast(base.SubjectAltNameTypes, self.inner).san_types


class _CommentLimit(GuardedConnector):
    @property
    def max_comment_length(self) -> int:
        return cast(base.CommentLimit, self.inner).max_comment_length


class _CertificateHold(GuardedConnector):
    async def hold(self, request: base.RevokeRequest) -> None:
        inner = cast(base.CertificateHold, self.inner)
        await self._guarded("hold", lambda: inner.hold(request))

    async def unhold(self, request: base.RevokeRequest) -> None:
        inner = cast(base.CertificateHold, self.inner)
        await self._guarded("unhold", lambda: inner.unhold(request))


class _CertificateReplace(GuardedConnector):
    async def replace(self, request: base.ReplaceRequest) -> None:
        inner = cast(base.CertificateReplace, self.inner)
        await self._guarded("replace", lambda: inner.replace(request))


# Every optional protocol of connectors/base.py has its mixin here (a unit test holds that).
ABILITIES: tuple[tuple[type, type[GuardedConnector]], ...] = (
    (base.OrderLookup, _OrderLookup),
    (base.SubjectAltNameTypes, _SubjectAltNameTypes),
    (base.CommentLimit, _CommentLimit),
    (base.CertificateHold, _CertificateHold),
    (base.CertificateReplace, _CertificateReplace),
)


@functools.cache
def _wrapper_class(mixins: tuple[type[GuardedConnector], ...]) -> type[GuardedConnector]:
    if not mixins:
        return GuardedConnector
    return cast(type[GuardedConnector], type("GuardedConnector", mixins, {"__module__": __name__}))


def guard_connector(connector: base.Connector, *, ca_id: str, breaker: CircuitBreaker,
                    observer: ConnectorObserver | None = None) -> GuardedConnector:
    """``connector`` behind ``breaker``, its calls reported to ``observer``.

    Example::

        connector = guard_connector(create_connector(ca), ca_id=ca.id,
                                    breaker=CircuitBreaker(ca.gateway.circuit_breaker, name=ca.id))
    """
    mixins = tuple(mixin for protocol, mixin in ABILITIES if isinstance(connector, protocol))
    return _wrapper_class(mixins)(connector, ca_id=ca_id, breaker=breaker, observer=observer)


def unwrap(connector: base.Connector) -> base.Connector:
    """The connector a :class:`GuardedConnector` wraps (any other connector as it is)."""
    return connector.inner if isinstance(connector, GuardedConnector) else connector


def breaker_of(connector: base.Connector) -> CircuitBreaker | None:
    """The circuit breaker in front of ``connector``, or None when it has none.

    Example (before a scheduled collect)::

        breaker = breaker_of(ca.connector)
        if breaker is not None:
            await breaker.wait_closed()
    """
    return connector.breaker if isinstance(connector, GuardedConnector) else None
