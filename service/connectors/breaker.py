"""``CircuitBreaker``: one CA's circuit, so that a CA that keeps failing is not asked again and again.

States and transitions (``failure_threshold``, ``window`` and ``open_for`` from
the CA's ``gateway.circuit-breaker`` block)::

    CLOSED ──(threshold failures in a row, within the window)──▶ OPEN
    OPEN ──(open_for elapsed)──▶ HALF_OPEN
    HALF_OPEN ──(the probe call succeeds)──▶ CLOSED
    HALF_OPEN ──(the probe call fails)──▶ OPEN (for open_for again)

A *failure* is ``CAUnavailable`` (5xx, timeout, reset) other than a 429: a CA
that throttles answers, so it is neither a failure nor a success. A *success*
is any answer, a refusal (``CARejected``) included. While the circuit is open
every call fails at once with :class:`~service.errors.CircuitOpen` (nothing is
sent; ``retry_after`` says when the next probe is allowed); half-open, one call
at a time goes through as the probe. A call that started before a transition
does not decide the state after it.

Time comes from ``clock`` and waits from ``sleep``, so every transition is
tested on a fake clock. The breaker knows no connector: :mod:`.guarded` puts
one in front of each CA's connector, and the engine waits on
:meth:`CircuitBreaker.wait_closed` before a scheduled collect.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from service.config.settings import CircuitBreakerSettings
from service.connectors.base import SleepFunction
from service.errors import CAUnavailable, CircuitOpen

__all__ = ["CircuitBreaker", "CircuitState", "TransitionListener", "is_breaker_failure"]

log = logging.getLogger(__name__)

T = TypeVar("T")

THROTTLED = 429


class CircuitState(enum.Enum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"

    @property
    def number(self) -> int:
        """The state as the ``cagw_ca_circuit_state`` gauge shows it: 0 closed, 1 half-open, 2 open."""
        return {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}[self]


# (breaker name, old state, new state)
TransitionListener = Callable[[str, CircuitState, CircuitState], None]


def is_breaker_failure(exc: BaseException) -> bool:
    """Whether an exception counts toward opening the circuit (see the module docstring)."""
    return (isinstance(exc, CAUnavailable) and not isinstance(exc, CircuitOpen)
            and exc.http_status != THROTTLED)


@dataclass(frozen=True)
class _Ticket:
    generation: int
    probe: bool


class CircuitBreaker:
    """The circuit of one CA; see the module docstring.

    Example::

        breaker = CircuitBreaker(ca.gateway.circuit_breaker, name=ca.id)
        details = await breaker.call(lambda: connector.details(request))  # CircuitOpen while open
        await breaker.wait_closed()  # before a scheduled collect: returns when a call may go through
    """

    def __init__(self, settings: CircuitBreakerSettings = CircuitBreakerSettings(), *, name: str,
                 clock: Callable[[], float] = time.monotonic, sleep: SleepFunction = asyncio.sleep) -> None:
        self.settings = settings
        self.name = name
        self._clock = clock
        self._sleep = sleep
        self._state = CircuitState.CLOSED
        self._generation = 0  # grows at every transition; a call's result counts only in its own
        self._failures: deque[float] = deque()
        self._open_until = 0.0
        self._probing = False
        self._changed = asyncio.Event()
        self._listeners: list[TransitionListener] = []

    def __repr__(self) -> str:
        return f"CircuitBreaker(name={self.name!r}, state={self.state.value!r})"

    # ------------------------------------------------------------ state

    @property
    def state(self) -> CircuitState:
        if self._state is CircuitState.OPEN and self._clock() >= self._open_until:
            self._move(CircuitState.HALF_OPEN)
        return self._state

    def retry_after(self) -> float:
        """Seconds until a call may go through: 0 when closed or a probe may go now."""
        state = self.state
        if state is CircuitState.OPEN:
            return max(0.0, self._open_until - self._clock())
        if state is CircuitState.HALF_OPEN and self._probing:
            return min(1.0, self.settings.open_for)  # the probe in flight decides soon
        return 0.0

    def watch(self, listener: TransitionListener) -> None:
        """Call ``listener(name, old, new)`` at every transition."""
        self._listeners.append(listener)

    async def wait_closed(self) -> None:
        """Return once a call may go through: the circuit is closed, or half-open with no probe in
        flight (the caller's next call is then the probe; should another caller take the probe
        first, that call fails with ``CircuitOpen`` and the caller waits again)."""
        while True:
            state = self.state
            if state is CircuitState.CLOSED or (state is CircuitState.HALF_OPEN and not self._probing):
                return
            changed = self._changed
            if state is CircuitState.OPEN:
                await self._wait(changed, self._open_until - self._clock())
            else:
                await changed.wait()

    # ------------------------------------------------------------ calls

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run ``operation`` through the circuit: refused with ``CircuitOpen`` while open."""
        ticket = self._admit()
        try:
            result = await operation()
        except BaseException as exc:
            if is_breaker_failure(exc):
                self._failed(ticket)
            elif isinstance(exc, CAUnavailable):
                self._release(ticket)  # throttled (or refused by a circuit further in): neither way
            elif isinstance(exc, Exception):
                self._succeeded(ticket)  # the CA answered (a refusal, a bad answer): it is there
            else:
                self._release(ticket)  # cancelled: nothing learnt
            raise
        self._succeeded(ticket)
        return result

    def _admit(self) -> _Ticket:
        state = self.state
        if state is CircuitState.CLOSED or not self.settings.enabled:
            return _Ticket(self._generation, probe=False)
        if state is CircuitState.HALF_OPEN and not self._probing:
            self._probing = True
            return _Ticket(self._generation, probe=True)
        delay = self.retry_after()
        raise CircuitOpen(f"CA {self.name}: not asked, its circuit is open after repeated failures "
                          f"(next try in {delay:.1f}s)", retry_after=delay, metadata={"ca_id": self.name})

    def _succeeded(self, ticket: _Ticket) -> None:
        self._release(ticket)
        if ticket.generation != self._generation:
            return
        self._failures.clear()
        if ticket.probe:
            self._move(CircuitState.CLOSED)

    def _failed(self, ticket: _Ticket) -> None:
        self._release(ticket)
        if ticket.generation != self._generation or not self.settings.enabled:
            return
        now = self._clock()
        if ticket.probe:
            self._open(now)
            return
        self._failures.append(now)
        while self._failures and self._failures[0] < now - self.settings.window:
            self._failures.popleft()
        if len(self._failures) >= self.settings.failure_threshold:
            self._open(now)

    def _release(self, ticket: _Ticket) -> None:
        if ticket.probe and ticket.generation == self._generation and self._probing:
            self._probing = False
            self._notify()

    # ------------------------------------------------------------ transitions

    def _open(self, now: float) -> None:
        self._open_until = now + self.settings.open_for
        self._move(CircuitState.OPEN)

    def _move(self, new: CircuitState) -> None:
        old, self._state = self._state, new
        self._generation += 1
        self._probing = False
        self._failures.clear()
        if new is CircuitState.OPEN:
            log.warning("CA %s: circuit open for %.1fs after repeated failures", self.name, self.settings.open_for)
        elif new is CircuitState.CLOSED:
            log.warning("CA %s: circuit closed again", self.name)
        else:
            log.info("CA %s: circuit half-open: the next call is a probe", self.name)
        for listener in self._listeners:
            try:
                listener(self.name, old, new)
            except Exception:
                log.exception("CA %s: a circuit listener failed", self.name)
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _wait(self, changed: asyncio.Event, seconds: float) -> None:
        """Until ``changed`` is set or ``seconds`` (of ``sleep``'s time) have passed."""
        waiter = asyncio.ensure_future(changed.wait())
        sleeper = asyncio.ensure_future(self._sleep(max(0.0, seconds)))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            sleeper.cancel()
