"""``LedgerWatch``: the gateway not serving while its ledger cannot be written, and back by itself.

Every failed ledger operation is shown to :meth:`LedgerWatch.failed`; those that fail as
:class:`~service.ledger.errors.LedgerUnwritable` (a full disk, a read-only file) or
:class:`~service.ledger.errors.LedgerUnreachable` (the database server cannot be reached) count. The
first one marks the ``ledger`` component of the health down (every health
endpoint says NOT_SERVING; callers already got ``UNAVAILABLE`` with a retry
delay) and starts a probe: every ``interval`` seconds
:meth:`~service.ledger.base.Ledger.check_writable`. Once a write would go
through again the health is up and ``on_recovered`` runs (the engine takes up
the orders whose state could not be written meanwhile). Nothing is retried
behind the caller's back; the ledger was never half written (each write is one
transaction).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from service.health import HealthState
from service.ledger.base import Ledger
from service.ledger.errors import LedgerUnavailable, LedgerUnreachable, LedgerUnwritable

__all__ = ["COMPONENT", "LedgerWatch"]

log = logging.getLogger(__name__)

COMPONENT = "ledger"


class LedgerWatch:
    """See the module docstring. ``ledger`` is set once the ledger is open."""

    def __init__(self, health: HealthState, *, on_recovered: Callable[[], Awaitable[object]],
                 interval: float = 1.0, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.ledger: Ledger | None = None
        self._health = health
        self._on_recovered = on_recovered
        self._interval = interval
        self._sleep = sleep
        self._probe: asyncio.Task[None] | None = None

    def failed(self, exc: BaseException) -> None:
        """A ledger operation raised ``exc``; only an unwritable or unreachable ledger matters here."""
        if not isinstance(exc, (LedgerUnwritable, LedgerUnreachable)) or self.ledger is None:
            return
        what = "cannot be written" if isinstance(exc, LedgerUnwritable) else "cannot be reached"
        self._health.down(COMPONENT, f"the ledger {what}: {exc.message}")
        if self._probe is None or self._probe.done():
            log.error("%s; not serving until it can be written again (checking every %gs)",
                      exc.message, self._interval)
            self._probe = asyncio.get_running_loop().create_task(self._until_writable(self.ledger),
                                                                 name="ledger-probe")

    async def _until_writable(self, ledger: Ledger) -> None:
        while True:
            await self._sleep(self._interval)
            try:
                await ledger.check_writable()
            except LedgerUnavailable:  # still unwritable, unreachable or busy
                continue
            except Exception:
                log.exception("checking whether the ledger can be written failed")
                continue
            break
        log.warning("the ledger can be written again; serving")
        self._health.up(COMPONENT)
        try:
            await self._on_recovered()
        except Exception:
            log.exception("taking up the orders again after the ledger recovered failed")

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
