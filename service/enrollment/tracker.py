"""The enrollment tracker: one task per order, from the ledger to the CA and back.

For every order the tracker

1. has it recorded in the ledger **before** the CA hears of it, with a marker
   that also goes into the CA order's comments;
2. submits it (``connector.enroll`` or ``connector.renew``) and records the CA's
   order id; when the reply is lost (timeout, dropped connection) it searches
   the CA for the marker before giving up, so nothing is ordered twice;
3. runs the collect schedule of :mod:`service.enrollment.schedule`, calling
   ``connector.collect`` before each wait runs out, recording and publishing
   every state change to the order's watchers;
4. when the attempts run out, publishes ``TIMED_OUT`` and keeps collecting in
   the background at the maximum back-off, within the CA's budget of background
   collects (:mod:`service.enrollment.pacing`), until the certificate is issued,
   the CA refuses it, or the order reaches the CA's give-up age.

Order tasks belong to the tracker, not to the RPC that started them: a caller
that goes away does not stop its order. :meth:`EnrollmentTracker.resume`
restarts every unfinished order after a restart.

With ``shared`` (several gateways on one ledger, :mod:`service.enrollment.sharing`) the tracker
runs only the orders this gateway holds the lease of: those it creates and those handed to
:meth:`EnrollmentTracker.take_over`. Watchers and waiting callers of an order another gateway
works on follow it through the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from cryptography import x509

from service.authorities import CARegistry, ManagedCA
from service.clock import Clock, utcnow
from service.connectors import base
from service.connectors.guarded import breaker_of
from service.enrollment.channel import OrderChannel, OrderEvent, Phase
from service.enrollment.orders import OrderOptions, OrderView
from service.enrollment.pacing import BackgroundPacer
from service.enrollment.schedule import Attempt, CollectSchedule, ScheduleRun
from service.enrollment.sharing import SharedOrders
from service.errors import (
    AlreadyExists,
    CAUnavailable,
    CagwError,
    CARejected,
    CircuitOpen,
    NotFound,
    ShuttingDown,
)
from service.ledger.base import (
    CertificateRecord,
    Ledger,
    NewOrder,
    OrderKind,
    OrderRecord,
    OrderState,
)
from service.ledger.budgets import budget_ledger
from service.observability.events import NO_EVENTS, GatewayEvents

__all__ = ["EnrollmentTracker", "SubmitResult"]

log = logging.getLogger(__name__)

MARKER_PREFIX = "cagw-order:"
REISSUE_REASON = "reissued through the certificate gateway"  # when the caller gave no comment

T = TypeVar("T")


@dataclass(frozen=True)
class SubmitResult:
    order: OrderRecord
    created: bool  # False: an existing order was returned (idempotent retry or duplicate CSR)


@dataclass
class _Gate:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


def _failure_state(exc: CagwError) -> tuple[str, str]:
    """The reason and the words kept with a failed order: what its callers may read later."""
    return exc.reason, exc.caller_message


class EnrollmentTracker:
    """Owns the order tasks and their channels."""

    def __init__(self, ledger: Ledger, cas: CARegistry, *, clock: Clock = utcnow,
                 sleep: base.SleepFunction = asyncio.sleep, events: GatewayEvents = NO_EVENTS,
                 on_order_done: Callable[[str], object] | None = None, shared: SharedOrders | None = None) -> None:
        self._ledger = ledger
        self._shared = shared
        self._on_order_done = on_order_done  # called with the order id when its task ends
        self._cas = cas
        self._clock = clock
        self._sleep = sleep
        self._events = events
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._channels: dict[str, OrderChannel] = {}
        self._closing = False
        self._submit_gates: dict[tuple[str, str], _Gate] = {}
        self._pauses: dict[str, asyncio.Future[None]] = {}  # order id -> the wait before its next attempt
        # Resumed orders not yet known at the CA: when they were resumed.
        self._resumed_at: dict[str, dt.datetime] = {}
        self._chains_kept: set[str] = set()  # CAs whose own chain the ledger already has
        # Each CA's background budget: the deployment's, kept in the ledger, when gateways share it.
        self._pacer = BackgroundPacer(clock=clock, sleep=sleep, events=events,
                                      shared=budget_ledger(ledger) if shared is not None else None)

    # ------------------------------------------------------------------ public

    @property
    def running_orders(self) -> int:
        return len(self._tasks)

    @property
    def watchers(self) -> int:
        """Streams and waiting callers subscribed to any order now (each holds one queue)."""
        return sum(channel.watchers for channel in self._channels.values())

    def is_running(self, order_id: str) -> bool:
        """A task works on the order now."""
        return order_id in self._tasks

    def running_ids(self) -> list[str]:
        """The orders a task works on now (whose leases this gateway renews)."""
        return list(self._tasks)

    def schedule_of(self, ca_id: str) -> CollectSchedule:
        return CollectSchedule.from_settings(self._cas.get(ca_id).settings.backoff)

    async def submit(self, request: NewOrder) -> SubmitResult:
        """Record the order and start working on it; return an existing order for a retry.
        ``request.id`` and ``request.marker`` are given here, whatever the request holds."""
        if self._closing:
            raise ShuttingDown("the gateway is shutting down; retry in a moment")
        ca = self._cas.get(request.ca_id)
        # One submission at a time per identical request, so two concurrent copies of one CSR
        # (with or without a request id) become one order, never two paid ones.
        key = (ca.id, request.fingerprint)
        gate = self._submit_gates.setdefault(key, _Gate())
        gate.users += 1
        try:
            async with gate.lock:
                return await self._submit_locked(ca, request)
        finally:
            gate.users -= 1
            if gate.users == 0:
                del self._submit_gates[key]

    async def _submit_locked(self, ca: ManagedCA, request: NewOrder) -> SubmitResult:
        # One ledger call finds a repeat (same request id, else an unfinished order for the same
        # CSR, CA and profile) or records the new order, atomically.
        order_id = str(uuid.uuid4())
        record, created = await self._ledger.create_order(
            dataclasses.replace(request, id=order_id, marker=MARKER_PREFIX + order_id))
        if not created:
            if not (request.request_id and record.request_id == request.request_id):
                log.info("order %s: same CSR, CA and profile as the unfinished order %s; returning it",
                         request.request_id or "-", record.id)
            return await self._existing(record, request)
        channel = self._channel(record.id)
        channel.publish(self._event(record, Phase.RECEIVED))
        self._start(record, fresh=True)
        return SubmitResult(record, created=True)

    async def wait_settled(self, order_id: str, timeout: float | None) -> OrderEvent:
        """Wait (at most ``timeout`` seconds) until the order is issued, failed or timed out;
        return its latest event either way. Cancelling the waiter never touches the order."""
        channel = self._channels.get(order_id)
        if channel is None and self._shared is not None:
            return await self._wait_followed(order_id, timeout)
        if channel is not None and not channel.settled.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(channel.settled.wait(), timeout)
            if channel.last_settled is not None:
                # The event that settled it: the order's task may have published the next one
                # (the first background wait after TIMED_OUT) before this waiter resumed.
                return channel.last_settled
        if channel is not None and channel.latest is not None:
            return channel.latest
        return await self.current_event(order_id)

    async def current_event(self, order_id: str, *, record: OrderRecord | None = None) -> OrderEvent:
        """The order's latest event; ``record``, when the caller just read the order, spares a
        ledger read for an order no task runs."""
        channel = self._channels.get(order_id)
        # A record that is already final wins over the task's latest event: the task publishes it
        # only after its last ledger writes, and another gateway's watcher may have seen it first.
        if channel is not None and channel.latest is not None and not (
                record is not None and record.state.finished and not channel.latest.phase.final):
            return channel.latest
        order = record if record is not None else await self._ledger.get_order(order_id)
        if order is None:
            raise NotFound(f"unknown enrollment {order_id!r}", reason="ENROLLMENT_NOT_FOUND")
        return await self._event_from_record(order)

    async def watch(self, order_id: str, *, until: Callable[[OrderEvent], bool] | None = None,
                    record: OrderRecord | None = None) -> AsyncIterator[OrderEvent]:
        """The order's current state, then every change, until a final event (or ``until``)."""
        if self._closing:
            raise ShuttingDown("the gateway is shutting down; watch the enrollment again in a moment")
        channel = self._channels.get(order_id)
        if channel is None and self._shared is not None:
            order = record or await self._ledger.get_order(order_id)
            if order is not None and not order.state.finished:  # another gateway may work on it
                async with self._shared.follow(order_id) as followed:
                    async for event in followed.subscribe():
                        yield event
                        if until is not None and until(event):
                            return
                if self._closing and (followed.latest is None or not followed.latest.phase.final):
                    raise ShuttingDown("the gateway is shutting down; watch the enrollment again in a moment")
                return
        if channel is None:
            event = await self.current_event(order_id, record=record)
            yield event
            return
        async for event in channel.subscribe():
            yield event
            if until is not None and until(event):
                return
        if self._closing and (channel.latest is None or not channel.latest.phase.final):
            raise ShuttingDown("the gateway is shutting down; watch the enrollment again in a moment")

    async def resume(self) -> int:
        """Restart every unfinished order found in the ledger; return how many."""
        orders = [order for order in await self._ledger.unfinished_orders() if self.take_over(order)]
        if orders:
            log.info("resumed %d unfinished order(s)", len(orders))
        return len(orders)

    def take_over(self, order: OrderRecord) -> bool:
        """Work on an unfinished order found in the ledger (after a restart, or just leased from a
        gateway that stopped), from the attempts it recorded; False when its CA is gone."""
        try:
            self._cas.get(order.ca_id)
        except NotFound:
            log.warning("order %s belongs to CA %s, which is no longer configured; left as it is",
                        order.id, order.ca_id)
            return False
        if order.ca_order_id is None and order.id not in self._tasks:
            # The stopped gateway may have sent its enroll just before it died, and the CA may still be
            # recording it: "not found" counts only one call timeout from now.
            self._resumed_at[order.id] = self._clock()
        self._ensure_running(order)
        return True

    def stop_accepting(self) -> None:
        """Refuse new orders and end every watch stream and waiting caller (with the current state);
        order tasks go on until :meth:`close`."""
        self._closing = True
        for channel in self._channels.values():
            channel.close()

    async def close(self) -> None:
        """Stop every order task; their state is in the ledger and :meth:`resume` picks them up."""
        self.stop_accepting()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------------ operator commands

    def collect_now(self, order_id: str) -> bool:
        """End the wait before the order's next attempt, so it is made at once; False when the
        order is not waiting for one here (not running, or in a CA call or a circuit wait now)."""
        pause = self._pauses.get(order_id)
        if pause is None or pause.done():
            return False
        pause.cancel()
        return True

    def take_up(self, order: OrderRecord) -> None:
        """Work on an unfinished order again (one the operator revived); nothing when running."""
        if self._shared is not None and order.id not in self._tasks:
            self._shared.take_up(order)  # once its lease is ours
            return
        self._ensure_running(order)

    async def stop(self, order_id: str) -> None:
        """Stop the order's task (its watchers' streams end); the ledger keeps its state."""
        task = self._tasks.get(order_id)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # ------------------------------------------------------------------ internals

    async def _pause(self, order_id: str, delay: float) -> None:
        """Sleep ``delay`` before the next attempt; :meth:`collect_now` cuts it short."""
        pause = self._pauses[order_id] = asyncio.ensure_future(self._sleep(delay))
        try:
            await pause
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the order task itself is stopped
        finally:
            self._pauses.pop(order_id, None)

    async def _existing(self, existing: OrderRecord, request: NewOrder) -> SubmitResult:
        if existing.fingerprint != request.fingerprint:
            raise AlreadyExists(
                f"request id {request.request_id!r} was already used for another request on CA {existing.ca_id} "
                f"(enrollment {existing.id})", metadata={"enrollment_id": existing.id})
        if existing.state is OrderState.FAILED and existing.ca_order_id is None \
                and existing.error_reason == CAUnavailable.reason:
            # The CA never took it (it was unreachable): a retry with the same id tries again, same order.
            existing = await self._ledger.update_order(existing.id, state=OrderState.RECEIVED,
                                                       detail="retried by the caller", error_reason="")
        if self._shared is None or existing.id in self._tasks or existing.state.finished \
                or await self._shared.acquire(existing):
            self._ensure_running(existing)
        return SubmitResult(existing, created=False)

    def _channel(self, order_id: str) -> OrderChannel:
        channel = self._channels.get(order_id)
        if channel is None:
            channel = self._channels[order_id] = OrderChannel(order_id)
        return channel

    def _ensure_running(self, order: OrderRecord) -> None:
        if order.state.finished or order.id in self._tasks or self._closing:
            return
        channel = self._channel(order.id)
        if channel.latest is None:
            if order.ca_order_id and order.attempts >= self.schedule_of(order.ca_id).max_attempts:
                # Already in background collection: a waiting caller gets the pending answer at once.
                channel.publish(self._event(order, Phase.TIMED_OUT, attempt=order.attempts, background=True))
            else:
                channel.publish(self._event(order, Phase.SUBMITTED if order.ca_order_id else Phase.RECEIVED))
        self._start(order, fresh=False)

    def _start(self, order: OrderRecord, *, fresh: bool) -> None:
        task = asyncio.create_task(self._run(order, fresh=fresh), name=f"order-{order.id}")
        self._tasks[order.id] = task
        task.add_done_callback(functools.partial(self._forget, order.id))

    def _forget(self, order_id: str, _task: object = None) -> None:
        self._tasks.pop(order_id, None)
        self._resumed_at.pop(order_id, None)
        if self._on_order_done is not None:
            self._on_order_done(order_id)
        channel = self._channels.pop(order_id, None)
        if channel is not None:
            channel.close()

    def _event(self, order: OrderRecord, phase: Phase, **fields: object) -> OrderEvent:
        schedule = self.schedule_of(order.ca_id)
        return OrderEvent(order=OrderView.of(order), phase=phase, time=self._clock(), ca_order_id=order.ca_order_id,
                          max_attempts=schedule.max_attempts, **fields)  # type: ignore[arg-type]

    async def event_of(self, order: OrderRecord) -> OrderEvent:
        """The event that shows the order as recorded (what a follower of the ledger publishes)."""
        return await self._event_from_record(order)

    async def _wait_followed(self, order_id: str, timeout: float | None) -> OrderEvent:
        """:meth:`wait_settled` for an order no task runs here: another gateway may settle it."""
        assert self._shared is not None
        async with self._shared.follow(order_id) as channel:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(channel.settled.wait(), timeout)
            event = channel.last_settled or channel.latest
        return event if event is not None else await self.current_event(order_id)

    async def _event_from_record(self, order: OrderRecord) -> OrderEvent:
        certificate = None
        if order.state is OrderState.ISSUED and order.serial_number:
            certificate = await self._ledger.get_certificate(order.ca_id, order.serial_number)
        phase = {
            OrderState.RECEIVED: Phase.RECEIVED,
            OrderState.SUBMITTED: Phase.SUBMITTED,
            OrderState.COLLECTING: Phase.PENDING,
            OrderState.ISSUED: Phase.ISSUED,
            OrderState.FAILED: Phase.FAILED,
            OrderState.ABANDONED: Phase.FAILED,
        }[order.state]
        error = None
        if phase is Phase.FAILED:
            error = _stored_error(order)
        schedule = self.schedule_of(order.ca_id)
        if order.state is OrderState.COLLECTING and order.attempts >= schedule.max_attempts:
            phase = Phase.TIMED_OUT
        return OrderEvent(order=OrderView.of(order), phase=phase, time=order.updated_at, ca_order_id=order.ca_order_id,
                          attempt=order.attempts, max_attempts=schedule.max_attempts,
                          next_attempt_at=order.next_attempt_at, detail=order.detail, error=error,
                          certificate=certificate, background=order.attempts >= schedule.max_attempts)

    def _publish(self, event: OrderEvent) -> None:
        self._channel(event.order_id).publish(event)

    async def _run(self, order: OrderRecord, *, fresh: bool) -> None:
        ca = self._cas.get(order.ca_id)
        taken_up = not fresh and order.ca_order_id is not None  # collecting already: its schedule is recorded
        try:
            if order.ca_order_id is None:
                order = await self._submit_to_ca(ca, order, fresh=fresh)
            await self._collect(ca, order, taken_up=taken_up)
        except asyncio.CancelledError:
            raise
        except CagwError as exc:
            await self._fail(order, exc)
        except Exception as exc:  # a bug must not leave the order silently stuck
            log.exception("order %s: unexpected failure", order.id)
            await self._fail(order, CagwError(f"internal error while processing the order: {type(exc).__name__}",
                                              reason="INTERNAL"))

    async def _fail(self, order: OrderRecord, exc: CagwError) -> None:
        reason, message = _failure_state(exc)
        log.warning("order %s failed: %s", order.id, exc.message)
        with contextlib.suppress(CagwError):
            order = await self._ledger.update_order(order.id, state=OrderState.FAILED, detail=message,
                                                    error_reason=reason)
        self._publish(self._event(order, Phase.FAILED, detail=message, error=exc))

    async def _submit_to_ca(self, ca: ManagedCA, order: OrderRecord, *, fresh: bool) -> OrderRecord:
        """Send the order to the CA once. An order that is not fresh (resumed after a restart, or
        retried after the CA was unreachable) may already be at the CA: it is looked for first."""
        if order.kind is OrderKind.RENEW:
            return await self._renew_at_ca(ca, order, fresh=fresh)
        if order.kind is OrderKind.REISSUE:
            return await self._reissue_at_ca(ca, order, fresh=fresh)
        if not fresh:
            return await self._resolve_unknown_submission(ca, order, None)
        try:
            result = await ca.connector.enroll(_enroll_request(order))
        except CAUnavailable as exc:
            if not exc.maybe_processed:
                raise  # it never reached the CA (refused, 429, 503, open circuit): nothing to look for
            log.warning("order %s: enroll reply not received (%s); looking for the order at the CA",
                        order.id, exc.message)
            return await self._resolve_unknown_submission(ca, order, exc)
        return await self._submitted(order, result.order_id, "accepted by the CA")

    async def _renew_at_ca(self, ca: ManagedCA, order: OrderRecord, *, fresh: bool) -> OrderRecord:
        previous = OrderOptions.from_ledger(order.options).renewal_of_ca_order
        if not previous:
            raise CARejected(f"order {order.id}: the certificate to renew has no CA order id",
                             reason=base.REASON_NOT_FOUND)
        if not fresh:
            # A renewal carries no comments at the CA, so a lost renew reply cannot be found again safely.
            raise CARejected(f"renewal {order.id} was interrupted before the CA answered; check the CA for a "
                             f"renewal of order {previous} before renewing again", reason=base.REASON_REJECTED)
        try:
            renewed = await ca.connector.renew(base.RenewRequest(order_id=previous, csr_pem=order.csr_pem or None))
        except CAUnavailable as exc:
            if exc.maybe_processed:
                # No marker travels with a renewal: the CA may have renewed, and a retry could renew twice.
                advice = f"check the CA for a renewal of order {previous} before renewing again"
                raise CARejected(f"renewal {order.id}: the CA's answer was lost ({exc.message}); {advice}",
                                 caller_message=f"renewal {order.id}: the CA's answer was lost "
                                                f"({exc.caller_message}); {advice}",
                                 reason=base.REASON_REJECTED) from exc
            raise
        return await self._submitted(order, renewed.order_id, "renewal accepted by the CA")

    async def _reissue_at_ca(self, ca: ManagedCA, order: OrderRecord, *, fresh: bool) -> OrderRecord:
        """Ask the CA to issue the order's certificate again for the new CSR; the CA order keeps its id,
        so the usual collect schedule then fetches the new certificate."""
        options = OrderOptions.from_ledger(order.options)
        previous = options.renewal_of_ca_order
        if not previous or not isinstance(ca.connector, base.CertificateReplace):
            raise CARejected(f"reissue {order.id}: CA {ca.id} cannot issue order {previous or '?'} again",
                             reason=base.REASON_REJECTED)
        if not fresh:
            raise CARejected(f"reissue {order.id} was interrupted before the CA answered; check CA order "
                             f"{previous} before reissuing again", reason=base.REASON_REJECTED)
        try:
            await ca.connector.replace(base.ReplaceRequest(
                order_id=previous, csr_pem=order.csr_pem, reason=options.reissue_reason or REISSUE_REASON))
        except CAUnavailable as exc:
            if exc.maybe_processed:
                raise CARejected(f"reissue {order.id}: the CA's answer was lost ({exc.message}); check CA order "
                                 f"{previous} before reissuing again", reason=base.REASON_REJECTED) from exc
            raise
        return await self._submitted(order, previous, "reissue accepted by the CA")

    async def _submitted(self, order: OrderRecord, ca_order_id: str, detail: str) -> OrderRecord:
        order = await self._ledger.update_order(order.id, state=OrderState.SUBMITTED, ca_order_id=ca_order_id,
                                                detail=detail)
        self._publish(self._event(order, Phase.SUBMITTED, detail=detail))
        return order

    async def _find_by_marker(self, ca: ManagedCA, order: OrderRecord) -> tuple[str | None, bool]:
        """(the CA order carrying this order's marker or None, whether the CA could be asked)."""
        if not isinstance(ca.connector, base.OrderLookup):
            return None, True
        lookup = ca.connector
        try:
            found = await self._through_circuit(
                ca, lambda: lookup.find_order_by_marker(order.common_name, order.marker))
        except CAUnavailable:
            return None, False
        return (None if found is None else found.order_id), True

    def _settling(self, ca: ManagedCA, lost_at: dt.datetime) -> float:
        """Seconds still to wait before "not found" after a lost enroll reply is believed: a CA that
        was slow to answer may still be recording the order, so it gets one call timeout from the
        loss to do so (none for a CA that cannot be searched: looking again would change nothing)."""
        if not isinstance(ca.connector, base.OrderLookup):
            return 0.0
        elapsed = (self._clock() - lost_at).total_seconds()
        return max(0.0, ca.settings.gateway.request_timeout - elapsed)

    def _schedule_run(self, ca: ManagedCA, order: OrderRecord, *, made: int) -> ScheduleRun:
        give_up_at = order.created_at + dt.timedelta(seconds=ca.settings.gateway.give_up_after)
        return ScheduleRun(self.schedule_of(ca.id), made=made, give_up_at=give_up_at)

    def _next_attempt(self, order: OrderRecord, run: ScheduleRun, *, now: dt.datetime, timed_out: str,
                      at_least: float = 0.0, due: dt.datetime | None = None) -> Attempt:
        """The next attempt of ``run``, scheduled at ``now`` (or kept at ``due``); announces TIMED_OUT
        (with ``timed_out`` as its detail) when the foreground attempts just ran out."""
        attempt = run.next(now, at_least=at_least, due=due)
        if attempt.timed_out:
            self._publish(self._event(order, Phase.TIMED_OUT, attempt=attempt.number - 1, background=True,
                                      detail=timed_out))
        return attempt

    async def _wait_for(self, order_id: str, attempt: Attempt, *, scheduled_at: dt.datetime) -> None:
        """Pause until the attempt is due: its wait counts from ``scheduled_at``, so the time the
        ledger write before it took (queueing behind other writes) is not added on top."""
        late = (self._clock() - scheduled_at).total_seconds()
        await self._pause(order_id, max(0.0, attempt.delay - late) if late > 0 else attempt.delay)

    async def _resolve_unknown_submission(self, ca: ManagedCA, order: OrderRecord,
                                          error: CAUnavailable | None) -> OrderRecord:
        """The order may or may not be at the CA (lost enroll reply, or resumed before its reply was
        recorded). Look for its marker until the CA answers: found → carry on with it; not found
        (still, one call timeout after a lost reply) → it never reached the CA, and enrolling it is safe. Never enroll while the CA cannot be
        asked, since that could pay for the same certificate twice."""
        run = self._schedule_run(ca, order, made=0)
        resumed_at = self._resumed_at.pop(order.id, None)
        lost_at = self._clock() if error is not None else resumed_at
        while True:
            found, reachable = await self._find_by_marker(ca, order)
            if found is not None:
                return await self._submitted(order, found, "found at the CA by its marker")
            if reachable:
                settling = 0.0 if lost_at is None else self._settling(ca, lost_at)
                if settling > 0:
                    await self._pause(order.id, settling)  # then look once more
                    continue
                if error is not None:
                    raise error  # not at the CA: failing is safe, and a retry may enroll it again
                try:
                    result = await self._through_circuit(ca, lambda: ca.connector.enroll(_enroll_request(order)))
                except CAUnavailable as exc:
                    if not exc.maybe_processed:
                        raise  # provably not sent: still not at the CA, and a retry may enroll it again
                    error, lost_at = exc, self._clock()  # this reply may be lost too: look for the marker again
                    continue
                return await self._submitted(order, result.order_id, "accepted by the CA")
            now = self._clock()
            attempt = self._next_attempt(order, run, now=now, timed_out="the CA is unreachable; checking in "
                                                                       "the background whether it received the order")
            if attempt.past_give_up:
                raise error or CAUnavailable(f"CA {ca.id} stayed unreachable until the order's give-up age")
            detail = "the CA is unreachable; the order may have reached it, checking again"
            order = await self._ledger.update_order(order.id, state=OrderState.RECEIVED, detail=detail)
            self._publish(self._event(order, Phase.PENDING, attempt=attempt.number, detail=detail,
                                      background=attempt.background))
            await self._wait_for(order.id, attempt, scheduled_at=now)

    async def _collect(self, ca: ManagedCA, order: OrderRecord, *, taken_up: bool = False) -> None:
        """Run the collect schedule; ``taken_up``: the order comes from the ledger (a restart, another
        gateway's order), so its next attempt keeps the time recorded for it instead of waiting anew."""
        run = self._schedule_run(ca, order, made=order.attempts)
        at_least = 0.0
        due = _recorded_due(order, run.schedule) if taken_up else None
        while True:
            now = self._clock()
            attempt = self._next_attempt(order, run, now=now, at_least=at_least, due=due,
                                         timed_out="attempts used up; collecting in the background")
            due = None
            if attempt.past_give_up:
                await self._abandon(order, attempt.number - 1)
                return
            order = await self._ledger.update_order(order.id, state=OrderState.COLLECTING,
                                                    attempts=attempt.number - 1, next_attempt_at=attempt.due)
            self._publish(self._event(order, Phase.WAITING, attempt=attempt.number, delay=attempt.delay,
                                      next_attempt_at=attempt.due, background=attempt.background))
            await self._wait_for(order.id, attempt, scheduled_at=now)
            if attempt.background:
                turn = await self._background_turn(ca, order, attempt)
                if isinstance(turn, str):  # no collect this round (listed as pending, or no budget)
                    order, at_least = await self._still_pending(order, attempt, turn), 0.0
                    continue
                attempt = turn
            outcome = await self._collect_once(ca, order, attempt)
            if outcome is None:
                return
            order, at_least = outcome

    async def _background_turn(self, ca: ManagedCA, order: OrderRecord, attempt: Attempt) -> Attempt | str:
        """The background attempt at its slot in the CA's budget, or the detail of a round without a
        collect (see :mod:`service.enrollment.pacing`); :meth:`collect_now` cuts the wait short."""
        def pending_page(position: int, size: int) -> Awaitable[base.ListResult]:
            request = base.ListRequest(status=base.OrderStatus.APPLIED, position=position, size=size)
            return self._through_circuit(ca, lambda: ca.connector.list(request))

        return await self._pacer.turn(ca, order.ca_order_id or "", attempt, schedule=self.schedule_of(ca.id),
                                      pause=lambda delay: self._pause(order.id, delay), list_page=pending_page)

    async def _collect_once(self, ca: ManagedCA, order: OrderRecord,
                            attempt: Attempt) -> tuple[OrderRecord, float] | None:
        """One collect call. None: the certificate is recorded. Otherwise the order as it now stands
        and the least wait before the next attempt. The attempt is reported to the events with how
        late its request went out against its due time."""
        request = base.CollectRequest(order_id=order.ca_order_id or "")
        sent: list[dt.datetime] = []

        async def collect() -> base.CollectResult:
            sent.append(self._clock())
            return await ca.connector.collect(request)

        outcome = "error"
        try:
            result = await self._through_circuit(ca, collect)
            replaced = result.issued is not None and _still_the_replaced(order, result.issued)
            outcome = "issued" if result.issued is not None and not replaced else "pending"
        except CAUnavailable as exc:
            # A transient CA error counts as this attempt; a longer Retry-After lengthens the next wait.
            outcome = "unavailable"
            if exc.hides_details:
                log.warning("order %s: collect attempt %d: %s", order.id, attempt.number, exc.message)
            return await self._still_pending(order, attempt, exc.caller_message), exc.retry_after or 0.0
        except CARejected:
            outcome = "rejected"
            raise
        finally:
            if sent:  # not when stopped while waiting for the circuit
                lateness = max(0.0, (sent[-1] - attempt.due).total_seconds())
                self._events.collect_attempted(ca_id=ca.id, lateness=lateness, outcome=outcome)
        if result.issued is not None and not replaced:
            await self._issued(order, result.issued, attempt.number)
            return None
        detail = result.pending_detail or "not issued yet"
        if result.issued is not None:
            detail = "the CA still shows the certificate being reissued"
        return await self._still_pending(order, attempt, detail), 0.0

    async def _through_circuit(self, ca: ManagedCA, call: Callable[[], Awaitable[T]]) -> T:
        """``call`` once the CA's circuit lets calls through. A call the circuit refused unsent (it
        opened meanwhile, or another order took the half-open probe) waits and goes again: that
        costs no attempt, since the CA was never asked."""
        breaker = breaker_of(ca.connector)
        while True:
            if breaker is not None:
                await breaker.wait_closed()
            try:
                return await call()
            except CircuitOpen:
                if breaker is None or breaker.retry_after() <= 0:
                    raise  # not this CA's circuit: waiting for it would change nothing

    async def _still_pending(self, order: OrderRecord, attempt: Attempt, detail: str) -> OrderRecord:
        order = await self._ledger.update_order(order.id, state=OrderState.COLLECTING, attempts=attempt.number,
                                                detail=detail)
        self._publish(self._event(order, Phase.PENDING, attempt=attempt.number, detail=detail,
                                  background=attempt.background))
        return order

    async def _abandon(self, order: OrderRecord, attempts: int) -> None:
        message = (f"gave up collecting order {order.ca_order_id} after {attempts} attempts "
                   f"(give-up age reached)")
        order = await self._ledger.update_order(order.id, state=OrderState.ABANDONED, detail=message,
                                                error_reason="COLLECTION_ABANDONED")
        self._publish(self._event(order, Phase.FAILED, attempt=attempts, detail=message,
                                  error=CagwError(message, reason="COLLECTION_ABANDONED")))

    async def _issued(self, order: OrderRecord, issued: base.IssuedCertificate, attempt: int) -> None:
        from service.x509 import format_serial, normalize_dn

        cert = x509.load_der_x509_certificate(issued.certificate_der)
        subject = normalize_dn(cert.subject)
        record = CertificateRecord(
            serial_number=format_serial(cert.serial_number), ca_id=order.ca_id, order_id=order.id,
            certificate_der=issued.certificate_der, chain_der=issued.chain_der, subject_dn=subject,
            issuer_dn=normalize_dn(cert.issuer), not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc, issued_at=self._clock())
        # One transaction: the attempt that collected it and the certificate.
        updated = await self._ledger.record_issued(order.id, record, subject_dns=[subject], attempts=attempt,
                                                   detail="certificate collected")
        order = updated or order
        # The order's ISSUED line (cagw.orders) carries the serial: this one is for debugging only.
        log.debug("order %s issued: serial %s", order.id, record.serial_number)
        await self._learn_ca_chain(order.ca_id, issued.chain_der)
        self._publish(self._event(order, Phase.ISSUED, attempt=attempt, certificate=record))

    async def _learn_ca_chain(self, ca_id: str, chain: tuple[bytes, ...]) -> None:
        """Keep the first chain a CA sends as its own (served as the CA's certificate), unless the
        CA has one configured. Best effort: the certificate is issued whatever happens here."""
        if not chain or ca_id in self._chains_kept or self._cas.get(ca_id).settings.gateway.ca_certificates:
            return
        try:
            await self._ledger.keep_ca_chain(ca_id, chain)
            self._chains_kept.add(ca_id)
        except CagwError as exc:
            log.warning("CA %s: could not keep its chain in the ledger: %s", ca_id, exc.message)


def _still_the_replaced(order: OrderRecord, issued: base.IssuedCertificate) -> bool:
    """A reissue's CA order may still hand out the certificate it replaces: that is not the new one."""
    if order.kind is not OrderKind.REISSUE or not order.renewal_of_serial:
        return False
    from service.x509 import format_serial

    return format_serial(x509.load_der_x509_certificate(issued.certificate_der).serial_number) == \
        order.renewal_of_serial


def _recorded_due(order: OrderRecord, schedule: CollectSchedule) -> dt.datetime:
    """When the next attempt of an order taken up from the ledger is due: the time recorded for it
    while its wait was under way; else (the attempt it waited for was made, or an operator revived
    the order, after that time) one wait after the order's last recorded change."""
    if order.next_attempt_at is not None and order.next_attempt_at > order.updated_at:
        return order.next_attempt_at
    return order.updated_at + dt.timedelta(seconds=schedule.wait_for(order.attempts + 1))


def _stored_error(order: OrderRecord) -> CagwError:
    """Rebuild the error of a failed order from what the ledger kept (reason and message)."""
    reason = order.error_reason or "ORDER_FAILED"
    message = order.detail or "the order failed"
    if reason == CAUnavailable.reason:
        return CAUnavailable(message)
    if reason.startswith("CA_"):
        return CARejected(message, reason=reason)
    return CagwError(message, reason=reason)


def _enroll_request(order: OrderRecord) -> base.EnrollRequest:
    """The connector's request for a recorded order: the marker goes into the CA order's comments."""
    options = OrderOptions.from_ledger(order.options)
    return base.EnrollRequest(
        csr_pem=order.csr_pem, profile_id=order.ca_profile_id, term_days=order.term_days,
        common_name=order.common_name, subject_alt_names=order.subject_alt_names,
        comments=f"{order.marker} (CA Gateway enrollment)",
        external_requester=options.external_requester, custom_fields=options.custom_fields)
