"""The gateway's health: one source that every health endpoint reads (gRPC health, REST, ops).

A component that cannot serve marks itself down with a reason (``health.down("draining",
"stopping")``) and up again when it recovers; the gateway serves while nothing is down. The gRPC
health service is pushed every change through :meth:`HealthState.watch`; REST and ops read
:meth:`HealthState.serving` on each probe, so all three always agree.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

__all__ = ["HealthState"]

log = logging.getLogger(__name__)

Watcher = Callable[[bool], None]


class HealthState:
    """Serving unless some component said it is down. Starts down (``starting``) until :meth:`up`."""

    def __init__(self) -> None:
        self._down: dict[str, str] = {"starting": "the gateway is starting"}
        self._watchers: list[Watcher] = []

    def serving(self) -> bool:
        return not self._down

    @property
    def reasons(self) -> Mapping[str, str]:
        """What is down, by component, in plain words (empty while serving)."""
        return dict(self._down)

    def down(self, component: str, reason: str) -> None:
        was = self.serving()
        if self._down.get(component) != reason:
            log.info("health: %s is down: %s", component, reason)
        self._down[component] = reason
        self._notify(was)

    def up(self, component: str) -> None:
        was = self.serving()
        if self._down.pop(component, None) is not None and component != "starting":
            log.info("health: %s is up again", component)
        self._notify(was)

    def watch(self, watcher: Watcher) -> None:
        """Call ``watcher(serving)`` on every change between serving and not serving."""
        self._watchers.append(watcher)

    def _notify(self, was: bool) -> None:
        now = self.serving()
        if now != was:
            for watcher in self._watchers:
                watcher(now)
