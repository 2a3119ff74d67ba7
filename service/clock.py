"""The gateway's wall clock: the ``Clock`` type every time-aware part takes, and its default ``utcnow``.

Parts that read the time take a ``clock=`` argument (defaulting to
:func:`utcnow`) so tests run them on a fake clock; times are aware UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

__all__ = ["Clock", "utcnow"]

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    """Now, as a timezone-aware UTC datetime."""
    return dt.datetime.now(dt.timezone.utc)
