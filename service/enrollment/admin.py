"""``OrderAdmin``: the operator's commands on orders — list, show, retry (collect now), abandon.

What the ``OrderAdminService`` RPC (and ``cagw orders …``) does, in the core: it
reads the ledger and acts through the tracker, so an operator never edits the
ledger file behind the running gateway's back. Every change is a conditional
ledger write (``expected_version``), so a change made meanwhile by the order's
own task or another gateway is refused rather than overwritten; every change
leaves an audit entry with the operator's name.

Retry, by the order's state:

* unfinished and waiting for its next attempt: the wait ends now;
* unfinished and not worked on here (left by a stopped task): taken up again;
* ``ABANDONED``, or ``FAILED`` after the CA accepted it: back to ``COLLECTING``
  with its attempt count reset, so it gets the CA's foreground attempts again;
* ``FAILED`` only because the CA could not be reached before it took the order:
  back to ``RECEIVED``; it is looked for at the CA by its marker before any
  new enroll, so it is never ordered twice;
* ``ISSUED``, or refused by the CA: refused (enroll again instead).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass

from service.clock import Clock, utcnow
from service.enrollment.tracker import EnrollmentTracker
from service.errors import CAUnavailable, FailedPrecondition, FieldViolation, InvalidRequest, NotFound
from service.ledger.base import AuditEntry, Ledger, OrderRecord, OrderState
from service.ledger.errors import DuplicateOrder, OrderChanged

__all__ = ["ABANDONED_BY_OPERATOR", "MAX_PAGE_SIZE", "MAX_REASON", "OrderAdmin", "OrderDossier"]

ABANDONED_BY_OPERATOR = "ABANDONED_BY_OPERATOR"
PENDING = "pending"  # every unfinished state
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000
MAX_REASON = 500
AUDIT_LIMIT = 200


@dataclass(frozen=True)
class OrderDossier:
    """An order with everything the ledger knows of it."""

    order: OrderRecord
    history: list[tuple[dt.datetime, OrderState, str]]
    audit: list[AuditEntry]
    running: bool  # this gateway has a task working on it


def parse_states(text: str) -> tuple[OrderState, ...]:
    """``pending``, a state name (any case) or nothing (every state)."""
    word = text.strip()
    if not word:
        return ()
    if word.lower() == PENDING:
        return tuple(state for state in OrderState if not state.finished)
    try:
        return (OrderState(word.upper()),)
    except ValueError:
        names = ", ".join([PENDING, *(state.value for state in OrderState)])
        raise InvalidRequest.of([FieldViolation("state", f"{word[:40]!r} is not one of {names}")]) from None


def page_token(order: OrderRecord) -> str:
    raw = f"{order.created_at.isoformat()}|{order.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(token: str) -> tuple[dt.datetime, str] | None:
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        created, order_id = raw.split("|", 1)
        return dt.datetime.fromisoformat(created), order_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidRequest.of([FieldViolation("page_token", "is not a token of a previous page")]) from None


class OrderAdmin:
    """See the module docstring."""

    def __init__(self, ledger: Ledger, tracker: EnrollmentTracker, *, clock: Clock = utcnow) -> None:
        self._ledger = ledger
        self._tracker = tracker
        self._clock = clock

    async def list(self, *, state: str = "", ca_id: str = "", page_size: int = 0,
                   token: str = "") -> tuple[list[OrderRecord], str]:
        """One page of orders, newest first, and the token of the next page ("" when last)."""
        states = parse_states(state)
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise InvalidRequest.of([FieldViolation("page_size", f"must be between 1 and {MAX_PAGE_SIZE} "
                                                                 f"(0: {DEFAULT_PAGE_SIZE})")])
        size = page_size or DEFAULT_PAGE_SIZE
        orders = await self._ledger.list_orders(states=states, ca_id=ca_id or None, before=_after(token),
                                                limit=size + 1)
        more = len(orders) > size
        orders = orders[:size]
        return orders, page_token(orders[-1]) if more else ""

    async def show(self, order_id: str) -> OrderDossier:
        order = await self._order(order_id)
        history = await self._ledger.order_history(order.id)
        audit = await self._ledger.audit_entries(ca_id=order.ca_id, target=order.id, limit=AUDIT_LIMIT)
        return OrderDossier(order, history, audit, self._tracker.is_running(order.id))

    async def retry(self, order_id: str, *, actor: str) -> tuple[OrderRecord, str]:
        """Set the order off again (see the module docstring); returns it and what was done."""
        order = await self._order(order_id)
        if not order.state.finished:
            if self._tracker.collect_now(order.id):
                action = "collect now"
            elif not self._tracker.is_running(order.id):
                self._tracker.take_up(order)
                action = "taken up again"
            else:
                action = "in a CA call or waiting for the CA's circuit now; its next attempt follows at once"
        else:
            order, action = await self._revive(order, actor)
        await self._audit(order, actor, "retry", action)
        return order, action

    async def abandon(self, order_id: str, *, reason: str, actor: str) -> OrderRecord:
        """Stop working on an unfinished order: ABANDONED, with ``reason`` in its history and the audit."""
        reason = _checked_reason(reason)
        order = await self._order(order_id)
        if order.state.finished:
            raise FailedPrecondition(f"order {order.id} is {order.state.value}: there is nothing to abandon",
                                     reason="ORDER_FINISHED", metadata={"state": order.state.value})
        await self._tracker.stop(order.id)
        order = await self._order(order_id)  # as the stopped task left it
        try:
            if order.state.finished:
                raise OrderChanged(f"order {order.id} finished", current=order)
            order = await self._ledger.update_order(
                order.id, state=OrderState.ABANDONED, detail=f"abandoned by {actor}: {reason}",
                error_reason=ABANDONED_BY_OPERATOR, expected_version=order.version)
        except OrderChanged as exc:
            raise FailedPrecondition(f"order {order.id} changed meanwhile (now {exc.current.state.value}); "
                                     "look at it again", reason="ORDER_CHANGED") from None
        await self._audit(order, actor, "abandon", reason)
        return order

    # ------------------------------------------------------------------ internals

    async def _revive(self, order: OrderRecord, actor: str) -> tuple[OrderRecord, str]:
        if order.state is OrderState.ISSUED:
            raise FailedPrecondition(f"order {order.id} is already issued (serial {order.serial_number})",
                                     reason="ORDER_FINISHED", metadata={"state": order.state.value})
        unreachable = order.error_reason == CAUnavailable.reason
        if order.ca_order_id is None and not unreachable:
            raise FailedPrecondition(f"order {order.id} was refused before the CA took it "
                                     f"({order.error_reason or 'no reason'}): enroll again",
                                     reason="ORDER_REFUSED", metadata={"state": order.state.value})
        state = OrderState.COLLECTING if order.ca_order_id else OrderState.RECEIVED
        try:
            order = await self._ledger.update_order(
                order.id, state=state, attempts=0, error_reason="", expected_version=order.version,
                detail=f"taken up again by {actor}")
        except OrderChanged as exc:
            raise FailedPrecondition(f"order {order.id} changed meanwhile (now {exc.current.state.value}); "
                                     "look at it again", reason="ORDER_CHANGED") from None
        except DuplicateOrder as exc:
            raise FailedPrecondition(f"order {order.id}: the unfinished order {exc.existing.id} is for the same "
                                     "CSR; retry that one", reason="ORDER_DUPLICATE") from None
        self._tracker.take_up(order)
        return order, "taken up again"

    async def _order(self, order_id: str) -> OrderRecord:
        order = await self._ledger.get_order(order_id) if order_id else None
        if order is None:
            raise NotFound(f"no order {order_id[:64]!r}", reason="ENROLLMENT_NOT_FOUND")
        return order

    async def _audit(self, order: OrderRecord, actor: str, action: str, detail: str) -> None:
        await self._ledger.append_audit(AuditEntry(time=self._clock(), ca_id=order.ca_id, actor=actor,
                                                   action=action, target=order.id, outcome="ok", detail=detail))


def _checked_reason(reason: str) -> str:
    text = reason.strip()
    if not text:
        raise InvalidRequest.of([FieldViolation("reason", "is required: say why the order is abandoned")])
    if len(text) > MAX_REASON:
        raise InvalidRequest.of([FieldViolation("reason", f"is {len(text)} characters; at most {MAX_REASON}")])
    if any(ord(ch) < 32 for ch in text):
        raise InvalidRequest.of([FieldViolation("reason", "must be one line of text (no control characters)")])
    return text
