"""The enrollment engine: the core's one door for enrolling, checking, looking up and watching orders.

A transport adapter (``api/enrollments.py``) converts its messages to an
:class:`EnrollmentInput`, calls one method here and converts the
:class:`OrderEvent` it gets back; it never reads the ledger, runs no schedule
arithmetic and holds no order state. The engine owns validation
(:mod:`service.enrollment.requests`), the wait budget of a unary enroll, the
tracker (:mod:`service.enrollment.tracker`) and every ledger read of an
answer. Every event carries the order's :class:`OrderView`, so answering a
watcher costs no ledger read at all.

One enrollment meets four request types, one per boundary it crosses:

* ``cagw.v1.EnrollRequest`` — the wire (gRPC, and REST through the
  transcoder). Only ``api/`` sees it; the stream's ``EnrollAndWatchRequest``
  has the same fields and is read as one.
* :class:`EnrollmentInput` — the caller's fields as plain values, not yet
  validated: what :meth:`EnrollmentEngine.enroll` and
  :meth:`EnrollmentEngine.check` take.
* :class:`~service.ledger.base.NewOrder` — the validated order as the ledger
  records it before the CA hears of it, with its :class:`OrderOptions` in the
  ledger's JSON shape. Validation fills everything but the id and the marker,
  which the tracker gives when it records the order.
* :class:`~service.connectors.base.EnrollRequest` — the connector's call,
  built by the tracker from the recorded order right before the CA is asked,
  so a resumed order sends exactly what was recorded.

Example (what ``Enroll`` does)::

    event = await engine.enroll(EnrollmentInput(ca_id="ov-ca", profile_id="ov", csr=pem),
                                deadline=time.monotonic() + 10)
    event.phase  # Phase.ISSUED (event.certificate), or Phase.TIMED_OUT / WAITING / PENDING (pending)
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal

from service.authorities import CARegistry, ManagedCA
from service.clock import Clock, utcnow
from service.config import Secret
from service.connectors import base
from service.enrollment.admin import OrderAdmin
from service.enrollment.authorize import certificate_names, inherit_owner, policy_refusals, quota_refusal
from service.enrollment import server_side
from service.enrollment.channel import OrderEvent, Phase
from service.enrollment.orders import OrderOptions, OrderView
from service.enrollment.replicas import Replicas
from service.enrollment.replacement import CertificateReplacement, replacement_input, with_action_fields
from service.enrollment.requests import EnrollmentInput, Violations, prepare, unsupported
from service.enrollment.schedule import CollectSchedule
from service.enrollment.tracker import EnrollmentTracker
from service.errors import CagwError, FieldViolation, InvalidRequest, NotFound
from service.ledger.base import Ledger, NewOrder, OrderRecord
from service.ledger.leases import leasing
from service.observability.events import NO_EVENTS, GatewayEvents
from service.policy import Caller, CertificateName
from service.policy.audit import AuditTrail
from service.x509.server_keys import KeySpec

__all__ = [
    "DEADLINE_MARGIN",
    "MAX_WAIT_CAP",
    "CertificateReplacement",
    "EnrollmentCheck",
    "EnrollmentEngine",
    "EnrollmentInput",
    "OrderEvent",
    "OrderOptions",
    "OrderView",
    "Phase",
    "WaitBudget",
]

# Answer this long before the caller's deadline, so the answer still reaches it.
DEADLINE_MARGIN = 0.5
MAX_WAIT_CAP = 3600.0
KEY_PURGE_INTERVAL = 3600.0  # how often expired server-side keys are deleted
ENROLL_PASSWORD_FIELD = "requiredFormat.protection.password"
GET_PASSWORD_FIELD = "protection.password"
KEYSTORE_WITHHELD = ("issued; the PKCS#12 needs the protection password, which the gateway no longer holds: "
                     "GetEnrollment with protection.password delivers it")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EnrollmentCheck:
    """The answer of a dry run: allowed (with the order an enroll would record) or refused with
    every reason. Checks added later (caller policy, quotas) add their refusals here."""

    ca_id: str
    order: NewOrder | None = None  # what enroll would record; None when refused
    refusals: tuple[CagwError, ...] = ()  # in the order enroll meets them: the first is what it raises
    operation: str = "enroll"  # enroll | renew
    grant: str = ""  # the grant that allows it ("open" without a clients section); "" when refused there
    names: tuple[CertificateName, ...] = ()  # every name the certificate would carry

    def summary(self) -> str:
        """One line for the audit trail: the grant and names, or every reason."""
        names = ", ".join(f"{n.type}:{n.value}" for n in self.names) or "-"
        if self.allowed:
            return f"grant {self.grant}; names {names}"
        return "; ".join(f"{r.reason}: {r.message}" for r in self.refusals) + f"; names {names}"

    @property
    def allowed(self) -> bool:
        return not self.refusals

    @property
    def violations(self) -> tuple[FieldViolation, ...]:
        """Every bad field named by the refusals."""
        return tuple(v for refusal in self.refusals if isinstance(refusal, InvalidRequest)
                     for v in refusal.violations)

    def accepted(self) -> NewOrder:
        """The order to place; raises the first refusal when there is one."""
        if self.refusals:
            raise self.refusals[0]
        assert self.order is not None
        return self.order


@dataclass(frozen=True)
class WaitBudget:
    """How long a unary enroll may wait for the certificate before answering pending: the whole
    foreground schedule plus one CA call per attempt, but never past ``answer_by``."""

    schedule: float  # seconds, counted from when the order is placed
    answer_by: float | None = None  # monotonic instant: the caller's deadline less the margin, or maxWait

    def remaining(self, now: float) -> float:
        """Seconds left to wait at monotonic time ``now`` (never negative, at most MAX_WAIT_CAP)."""
        wait = self.schedule if self.answer_by is None else min(self.schedule, self.answer_by - now)
        return max(0.0, min(wait, MAX_WAIT_CAP))


class EnrollmentEngine:
    """Enroll, check, get and watch; owns the tracker and its order tasks."""

    def __init__(self, ledger: Ledger, cas: CARegistry, *, clock: Clock = utcnow,
                 sleep: base.SleepFunction = asyncio.sleep, monotonic: Callable[[], float] = time.monotonic,
                 events: GatewayEvents = NO_EVENTS) -> None:
        self._ledger = ledger
        self._cas = cas
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        # PKCS12 orders: the caller's password, in memory only and only while the order's task runs.
        self._passwords: dict[str, Secret] = {}
        # A ledger several gateways share: its unfinished orders are split between them by leases.
        shared = leasing(ledger)
        self._replicas = None if shared is None else Replicas(ledger, shared, sleep=sleep)
        # ``events`` hears of every collect attempt (the gateway passes its metrics).
        self._tracker = EnrollmentTracker(ledger, cas, clock=clock, sleep=sleep, events=events,
                                          on_order_done=lambda order_id: self._passwords.pop(order_id, None),
                                          shared=self._replicas)
        if self._replicas is not None:
            self._replicas.attach(self._tracker)
        self._key_purge: asyncio.Task[None] | None = None
        self._audit = AuditTrail(ledger, clock=clock, events=events)

    # ------------------------------------------------------------------ enrollments

    async def check(self, request: EnrollmentInput, *, caller: Caller | None = None) -> EnrollmentCheck:
        """Every check of an enrollment (validation, the caller's grants and names, ownership of a
        renewed certificate, quotas), and nothing else: no order is written, no CA order placed
        (the CA may be asked for its profiles, as an enroll would)."""
        caller = caller or Caller.unrestricted()
        gate = caller.may(_operation(request), request.ca_id, request.profile_id or None)
        result = (await self._check(self._cas.get(request.ca_id), request, caller) if gate.allowed else
                  EnrollmentCheck(ca_id=request.ca_id, refusals=(gate.error(),), operation=_operation(request)))
        if caller.enforced:
            await self._audit.record(caller, ca_id=result.ca_id, action="check", target=_target(result),
                                     outcome="ok" if result.allowed else "refused", detail=result.summary())
        return result

    async def enroll(self, request: EnrollmentInput, *, deadline: float | None = None,
                     caller: Caller | None = None) -> OrderEvent:
        """Place the order and wait for it to settle within its :class:`WaitBudget`; ``deadline``
        is the caller's (monotonic time). Returns the issued or the pending (latest) event;
        raises the refusal or the order's failure."""
        caller = caller or Caller.unrestricted()
        ca = await self._ca_for(request, caller)
        budget = self.wait_budget(ca, request, deadline=deadline)  # before the order exists: it cannot fail after
        order = await self._place(ca, request, caller)
        event = await self._tracker.wait_settled(order.id, budget.remaining(self._monotonic()))
        if event.phase is Phase.FAILED:
            raise event.error or CagwError(event.detail or "the enrollment failed", reason="ORDER_FAILED")
        return await self._deliver(event, request.password, field=ENROLL_PASSWORD_FIELD)

    async def replace_certificate(self, request: CertificateReplacement, *, deadline: float | None = None,
                                  caller: Caller | None = None) -> OrderEvent:
        """Renew or reissue a certificate issued through this gateway (see
        :mod:`service.enrollment.replacement`), then wait like :meth:`enroll`: the issued event,
        or the pending one when the budget runs out (the order goes on in the background). The
        caller needs the renew grant and must own the certificate, as for any renewal."""
        caller = caller or Caller.unrestricted()
        caller.may("renew", request.ca_id).check()  # before the ledger is read for the certificate
        ca = self._cas.get(request.ca_id)
        enrollment = await replacement_input(request, ca=ca, ledger=self._ledger)
        try:
            return await self.enroll(enrollment, deadline=deadline, caller=caller)
        except InvalidRequest as exc:
            raise with_action_fields(exc) from exc

    async def enroll_and_watch(self, request: EnrollmentInput, *,
                               caller: Caller | None = None) -> AsyncIterator[OrderEvent]:
        """Place the order, then yield its events until it is issued, failed or timed out."""
        caller = caller or Caller.unrestricted()
        order = await self._place(await self._ca_for(request, caller), request, caller)
        async for event in self._tracker.watch(order.id, until=lambda e: e.phase.settled, record=order):
            yield await self._deliver(event, request.password, field=ENROLL_PASSWORD_FIELD)

    async def get(self, ca_id: str, enrollment_id: str, *, password: Secret | None = None,
                  caller: Caller | None = None) -> OrderEvent:
        """The latest event of an enrollment of ``ca_id`` (one of the caller's own, unless admin).
        An issued PKCS12 order needs its ``password`` (``protection.password``) unless its order
        task still holds it."""
        order = await self._order(ca_id, enrollment_id, caller or Caller.unrestricted())
        held = password or self._passwords.get(order.id)
        event = await self._tracker.current_event(order.id, record=order)
        if held is None and _needs_keystore(event):
            raise InvalidRequest.of([FieldViolation(
                GET_PASSWORD_FIELD, f"is required to receive the PKCS#12 of enrollment {order.id}: the gateway "
                "keeps the password of an order only while it works on it")])
        return await self._deliver(event, held, field=GET_PASSWORD_FIELD)

    async def watch(self, ca_id: str, enrollment_id: str, *,
                    caller: Caller | None = None) -> AsyncIterator[OrderEvent]:
        """The enrollment's current state, then every change until a final one. An issued PKCS12
        order's event carries the PKCS#12 when its order task still held the password as the
        watch began (otherwise its detail says how to get it)."""
        order = await self._order(ca_id, enrollment_id, caller or Caller.unrestricted())
        held = self._passwords.get(order.id)
        async for event in self._tracker.watch(order.id, record=order):
            yield await self._deliver(event, held, field=GET_PASSWORD_FIELD)

    def wait_budget(self, ca: ManagedCA, request: EnrollmentInput, *, deadline: float | None) -> WaitBudget:
        """The budget of a unary enroll starting now: the caller's deadline and ``maxWait`` count
        from the call, so the time validation takes is spent from them too."""
        schedule = CollectSchedule.from_settings(ca.settings.backoff)
        limits = []
        if request.max_wait is not None:
            limits.append(self._monotonic() + request.max_wait)
        if deadline is not None:
            limits.append(deadline - DEADLINE_MARGIN)
        return WaitBudget(schedule=schedule.foreground_time(call_timeout=ca.settings.gateway.request_timeout),
                          answer_by=min(limits) if limits else None)

    def admin(self) -> OrderAdmin:
        """The operator's commands on this engine's orders."""
        return OrderAdmin(self._ledger, self._tracker, clock=self._clock)

    # ------------------------------------------------------------------ lifecycle

    @property
    def running_orders(self) -> int:
        return self._tracker.running_orders

    @property
    def watchers(self) -> int:
        return self._tracker.watchers

    @property
    def replicas(self) -> Replicas | None:
        """This gateway's share of the work of a shared ledger; None for a ledger of its own."""
        return self._replicas

    async def resume(self) -> int:
        """Restart every unfinished order found in the ledger (of a shared ledger: claim the due
        ones nobody holds, and from now on keep leases); return how many."""
        if self._replicas is not None:
            return await self._replicas.start()
        return await self._tracker.resume()

    async def purge_expired_keys(self) -> int:
        """Delete the server-side keys whose retention ran out; return how many."""
        purged = await self._ledger.purge_server_keys(expired_at=self._clock())
        if purged:
            log.info("deleted %d server-side key(s) at the end of their retention", purged)
        return purged

    def start_key_retention(self, interval: float | None = None) -> None:
        """Run :meth:`purge_expired_keys` now and every ``interval`` seconds until :meth:`close`;
        by default hourly, or as often as the shortest retention of a CA when that is shorter."""
        if interval is None:
            retentions = [ca.settings.gateway.server_side_key_retention for ca in self._cas
                          if ca.settings.gateway.server_side_keys]
            interval = min([KEY_PURGE_INTERVAL, *retentions])
        if self._key_purge is None:
            self._key_purge = asyncio.create_task(self._purge_loop(interval), name="server-key-retention")

    async def _purge_loop(self, interval: float) -> None:
        while True:
            try:
                await self.purge_expired_keys()
            except CagwError as exc:  # the ledger was briefly unavailable: the next round deletes them
                log.warning("could not delete expired server-side keys: %s", exc.message)
            await self._sleep(interval)

    def stop_accepting(self) -> None:
        """Refuse new orders; open watches end and waiting enrolls answer with the current state."""
        self._tracker.stop_accepting()
        if self._replicas is not None:
            self._replicas.stop_following()

    async def close(self) -> None:
        """Stop every order task; the ledger has their state for :meth:`resume`."""
        if self._key_purge is not None:
            self._key_purge.cancel()
            await asyncio.gather(self._key_purge, return_exceptions=True)
        if self._replicas is not None:
            await self._replicas.stop_claiming()
        await self._tracker.close()
        if self._replicas is not None:
            await self._replicas.close()  # gives up the leases: the other gateways take the orders at once
        self._passwords.clear()

    # ------------------------------------------------------------------ internals

    async def _ca_for(self, request: EnrollmentInput, caller: Caller) -> ManagedCA:
        """The CA of an order, once the caller may order there: a CA outside its grants is refused
        (and audited) whether it exists or not, so grants do not reveal the other CAs."""
        gate = caller.may(_operation(request), request.ca_id, request.profile_id or None)
        if not gate.allowed:
            await self._audit.record(caller, ca_id=request.ca_id[:64], action=_operation(request),
                                     target=request.profile_id[:64] or "-", outcome="refused",
                                     detail=f"{gate.reason}: {gate.message}", refusals=(gate.error(),))
            raise gate.error()
        return self._cas.get(request.ca_id)

    async def _check(self, ca: ManagedCA, request: EnrollmentInput, caller: Caller) -> EnrollmentCheck:
        operation = _operation(request)
        gate = caller.may(operation, ca.id, request.profile_id or None)
        if not gate.allowed:  # nothing else is looked at (the CA is not even asked for its profiles)
            return EnrollmentCheck(ca_id=ca.id, refusals=(gate.error(),), operation=operation)
        request = dataclasses.replace(request, client=caller.name, caller=request.caller or caller.actor)
        refusals: list[CagwError] = []
        refusal = unsupported(request, ca)
        if refusal is not None:
            refusals.append(refusal)
        problems = Violations()
        order, csr = await prepare(request, ca=ca, ledger=self._ledger, now=self._clock(), problems=problems)
        order = await inherit_owner(self._ledger, caller, order)
        if problems:
            refusals.append(InvalidRequest.of(problems.items))
        names = certificate_names(order, csr, request_sans=request.subject_alt_names)
        decision, names, denied = await policy_refusals(self._ledger, caller, operation=operation, ca_id=ca.id,
                                                        profile_id=request.profile_id, order=order, csr=csr,
                                                        names=names)
        refusals = denied + refusals  # the caller's refusal first: it is what an enroll raises
        if not refusals and order is not None:
            quota = await quota_refusal(self._ledger, caller, order, now=self._clock(),
                                        ca_max_pending=ca.settings.gateway.max_pending_orders)
            if quota is not None:
                refusals.append(quota)
        return EnrollmentCheck(ca_id=ca.id, order=None if refusals else order, refusals=tuple(refusals),
                               operation=operation, grant=decision.grant if not refusals else "", names=names)

    async def _place(self, ca: ManagedCA, request: EnrollmentInput, caller: Caller) -> OrderRecord:
        refusal = unsupported(request, ca)
        if refusal is not None:
            raise refusal  # nothing else in the request could change that: refuse before asking the CA anything
        check = await self._check(ca, request, caller)
        if not check.allowed and caller.enforced:
            await self._audit.record(caller, ca_id=ca.id, action=check.operation, target=_target(check),
                                     outcome="refused", detail=check.summary(), refusals=check.refusals)
        placed = await self._submit(ca, check.accepted(), request)  # accepted() raises the first refusal
        if caller.enforced:
            await self._audit.record(caller, ca_id=ca.id, action=check.operation, target=placed.id,
                                     outcome="ok", detail=check.summary())
        return placed

    async def _submit(self, ca: ManagedCA, order: NewOrder, request: EnrollmentInput) -> OrderRecord:
        spec = KeySpec.parse(OrderOptions.from_ledger(order.options).server_key)
        if spec is None or request.password is None:
            return (await self._tracker.submit(order)).order
        order = await server_side.attach_server_key(order, spec=spec, password=request.password,
                                                    retention=ca.settings.gateway.server_side_key_retention,
                                                    now=self._clock())
        placed = (await self._tracker.submit(order)).order
        if self._tracker.is_running(placed.id):  # forgotten when its task ends (see __init__)
            self._passwords.setdefault(placed.id, request.password)
        return placed

    async def _deliver(self, event: OrderEvent, password: Secret | None, *, field: str) -> OrderEvent:
        """``event`` as its caller gets it: an issued PKCS12 order's with its PKCS#12 when
        ``password`` is known, else with a detail that says how to get it."""
        if not _needs_keystore(event):
            return event
        if password is None:
            return dataclasses.replace(event, detail=KEYSTORE_WITHHELD)
        encryption = self._cas.get(event.order.ca_id).settings.gateway.pkcs12_encryption
        keystore = await server_side.open_keystore(self._ledger, event, password, encryption=encryption, field=field)
        return dataclasses.replace(event, keystore=keystore)

    async def _order(self, ca_id: str, order_id: str, caller: Caller) -> OrderRecord:
        if not any(caller.may(op, ca_id).allowed for op in ("read", "enroll", "renew")):
            caller.may("read", ca_id).check()  # raises the refusal naming what is missing
        self._cas.get(ca_id)
        order = await self._ledger.get_order(order_id)
        # Another client's enrollment reads exactly as one that does not exist.
        if order is None or order.ca_id != ca_id or not (caller.admin or order.client == caller.name):
            raise NotFound(f"CA {ca_id} has no enrollment {order_id!r}", reason="ENROLLMENT_NOT_FOUND",
                           metadata={"ca_id": ca_id})
        return order


def _needs_keystore(event: OrderEvent) -> bool:
    """An issued PKCS12 order: its answer is a PKCS#12, which needs the password."""
    return event.phase is Phase.ISSUED and event.certificate is not None \
        and event.order.options.required_format == "PKCS12"


def _operation(request: EnrollmentInput) -> Literal["enroll", "renew"]:
    return "renew" if request.renewal or request.reissue else "enroll"


def _target(check: EnrollmentCheck) -> str:
    """What an audit entry of an enrollment decision is about before an order exists: its names."""
    return ", ".join(name.value for name in check.names[:5]) or "-"
