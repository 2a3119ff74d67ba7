"""When a certificate should be renewed: a window near the end of its life, spread per serial.

The idea follows ACME Renewal Information (RFC 9773): the gateway suggests a window, and a
caller renews at a moment inside it. A fleet of certificates issued in the same minute would
otherwise renew in the same minute too, so each certificate's window starts a little later than
the policy's earliest point, by an offset derived from its serial number (stable: asking twice
gives the same answer, after a restart too).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from service.config import RenewalPolicy

__all__ = ["RenewalAdvice", "RenewalPolicy", "renewal_advice"]

# How long a caller may wait before asking again (ARI's Retry-After): the window can only
# move when the certificate is revoked or replaced, which the caller then hears about anyway.
RECHECK_AFTER = dt.timedelta(hours=6)


@dataclass(frozen=True)
class RenewalAdvice:
    start: dt.datetime
    end: dt.datetime
    explanation: str
    recheck_after: dt.timedelta = RECHECK_AFTER


def _spread(serial_number: str) -> float:
    """A number in [0, 1) that depends only on the serial."""
    digest = hashlib.sha256(serial_number.lower().encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def renewal_advice(*, serial_number: str, not_before: dt.datetime, not_after: dt.datetime,
                   revoked: bool, policy: RenewalPolicy, now: dt.datetime) -> RenewalAdvice:
    """The suggested window for one certificate.

    The renewal period is the last ``policy.window`` of the lifetime. The window starts at its
    beginning plus a per-serial share of ``policy.jitter`` of it, and lasts half of the period,
    so the second half stays as a margin for a CA that is slow to issue. A revoked or expired
    certificate should be replaced at once: its window is now.
    """
    if revoked or not_after <= now:
        reason = "revoked" if revoked else "expired"
        return RenewalAdvice(start=now, end=now, explanation=f"the certificate is {reason}: replace it now")
    lifetime = not_after - not_before
    period = lifetime * policy.window
    start = not_after - period + period * (policy.jitter * _spread(serial_number))
    end = min(start + period / 2, not_after)
    return RenewalAdvice(
        start=start, end=end,
        explanation=(f"renew in the last {policy.window:.0%} of the certificate's lifetime; this window "
                     f"is placed for this serial so that certificates issued together do not renew together"))
