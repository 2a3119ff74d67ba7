"""One listing of a CA's orders still being processed instead of one collect per background order.

With many orders in background collection, most collects only hear "not issued
yet". The CA can list its orders by status, a page of up to 200 at a time, with
the total count in the first answer. When listing every order the CA is still
processing (status ``Applied``) costs far fewer calls than collecting each
background order once, the gateway lists instead: an order in the listing is
still pending and costs no call this time; an order missing from it has changed
(issued, declined, rejected, or waiting for approval) and is collected, which
downloads the certificate or learns the failure as before.

What makes that sound, and where it stops:

- Only presence is trusted, and only to mean "not issued yet"; absence always
  leads to a real collect. A page that shifted while the listing was read (the set
  changed between pages) can hide an order, which then costs one collect more;
  an order listed just before it was issued waits one more round at most.
- A listing is used only when complete (every page read) and only while younger
  than one background interval.
- Should the CA keep listing an order it can already deliver, each order still
  gets a real collect every ``verify_after`` seconds (``gateway.background-collects.verify-after``,
  an hour by default), each in its own phase so orders placed together do not
  verify together.
- It lists every pending order of the account, not just this gateway's, so it is
  used only when each page stands for at least :data:`ORDERS_PER_PAGE` background
  collects asked for in the last interval; fewer pending orders collect one by one
  as before.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import zlib
from collections import deque
from collections.abc import Awaitable, Callable

from service.connectors.base import ListResult
from service.errors import CagwError

__all__ = ["ORDERS_PER_PAGE", "PAGE_SIZE", "PendingListing", "ListPage", "Verdict"]

log = logging.getLogger(__name__)

PAGE_SIZE = 200  # orders per listing page: the largest page the default connector's CA serves
ORDERS_PER_PAGE = 10  # a listing page must stand for at least this many collects to be worth it

ListPage = Callable[[int, int], Awaitable[ListResult]]  # (position, size) -> one page of the pending orders


class Verdict(enum.Enum):
    COLLECT = "collect"  # not listed as pending (it changed), or no listing to go by: collect
    VERIFY = "verify"  # listed, but due for its occasional real collect
    PENDING = "pending"  # listed as still being processed: no collect this time


class PendingListing:
    """The orders one CA was still processing at its latest complete listing, and when to list again."""

    def __init__(self, *, freshness: float, verify_after: float, clock: Callable[[], float]) -> None:
        self.freshness = freshness  # seconds a listing stays good for (one background interval)
        self.verify_after = verify_after
        # Every this many background attempts of an order, a collect whatever the listing says.
        self._verify_every = max(1, round(verify_after / freshness))
        self._clock = clock
        self._asks: deque[float] = deque()  # when background collects asked, over the last ``freshness``
        self._pending: frozenset[str] | None = None
        self._listed_at = -math.inf
        self._pages = 1  # pages the latest listing needed (or would have)
        self._round: asyncio.Future[None] | None = None
        self.rounds = 0  # listings completed
        self.calls = 0  # list calls made
        self.waiting = 0  # background attempts waiting for the listing under way

    @property
    def listing_now(self) -> bool:
        return self._round is not None

    def demand(self, now: float) -> int:
        """Background collects asked for in the last ``freshness`` seconds."""
        while self._asks and self._asks[0] < now - self.freshness:
            self._asks.popleft()
        return len(self._asks)

    async def verdict(self, ca_order_id: str, *, now: float, attempt: int, list_page: ListPage) -> Verdict:
        """Whether background attempt ``attempt`` (counted from the first background one) of the
        order needs a collect, listing the CA's pending orders first when that is due and worth it."""
        self._asks.append(now)
        if now - self._listed_at > self.freshness:
            budget = self.demand(now) // ORDERS_PER_PAGE
            if budget < self._pages:
                return Verdict.COLLECT  # too few orders waiting for a listing of this account to pay off
            if self._round is None:
                self._round = asyncio.ensure_future(self._list(list_page, max_pages=budget))
                self._round.add_done_callback(_retrieved)
            self.waiting += 1
            try:
                await asyncio.shield(self._round)
            except CagwError as exc:
                log.info("listing the pending orders failed (%s); collecting instead", exc.message)
                return Verdict.COLLECT
            except Exception:  # a listing is an optimisation: never let it fail an order
                log.exception("listing the pending orders failed; collecting instead")
                return Verdict.COLLECT
            finally:
                self.waiting -= 1
        if self._pending is None or ca_order_id not in self._pending:
            return Verdict.COLLECT
        # Each order verifies in its own round of the eight, so orders placed together do not all at once.
        phase = zlib.crc32(ca_order_id.encode()) % self._verify_every
        return Verdict.VERIFY if (attempt + phase) % self._verify_every == 0 else Verdict.PENDING

    async def _list(self, list_page: ListPage, *, max_pages: int) -> None:
        """List every pending order. When the first page shows the listing longer than ``max_pages``,
        stop there: the next ask lists again as soon as enough orders ask for it to pay off. After
        an error the next listing waits one interval."""
        self._pending = None
        started = self._clock()
        complete = False
        try:
            first = await self._page(list_page, 0)
            started = self._clock()  # the listing shows the CA as of its first page
            self._pages = max(1, math.ceil(first.total / PAGE_SIZE))
            if self._pages > max_pages:
                return
            pending = {item.order_id for item in first.items}
            for page in range(1, self._pages):
                pending.update(item.order_id for item in (await self._page(list_page, page * PAGE_SIZE)).items)
            self._pending = frozenset(pending)
            self.rounds += 1
            complete = True
        finally:
            self._round = None
            if complete or self._pages <= max_pages:  # listed, or failed: not again for one interval
                self._listed_at = started

    async def _page(self, list_page: ListPage, position: int) -> ListResult:
        self.calls += 1
        return await list_page(position, PAGE_SIZE)


def _retrieved(round_: asyncio.Future[None]) -> None:
    """Mark a listing's error as seen even when every order that waited for it was stopped."""
    if not round_.cancelled():
        round_.exception()
