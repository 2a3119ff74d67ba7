"""OrderAdminService: the operator's commands on orders, for ``cagw orders …``.

Served only on the admin listener (``admin.listen``, loopback only; see
:mod:`service.app`), never on the API listeners and never over REST. Each
method converts the proto, calls :class:`~service.enrollment.admin.OrderAdmin`
and converts its answer; the operator named in the audit is the caller as the
transport saw it (the client certificate's subject, or ``anonymous`` on the
plain loopback listener) with its peer address.
"""

from __future__ import annotations

import datetime as dt

from cagw.v1 import admin_pb2 as pb
from google.protobuf import timestamp_pb2

from service.api.pipeline import CallContext
from service.enrollment.admin import OrderAdmin
from service.ledger.base import OrderRecord
from service.observability.journal import CACallJournal

__all__ = ["OrderAdminApi"]


def _timestamp(value: dt.datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def order_message(order: OrderRecord) -> pb.AdminOrder:
    message = pb.AdminOrder(
        id=order.id, ca_id=order.ca_id, kind=order.kind.value, state=order.state.value, profile_id=order.profile_id,
        common_name=order.common_name, requested_dn=order.requested_dn, ca_order_id=order.ca_order_id or "",
        attempts=order.attempts, detail=order.detail, error_reason=order.error_reason,
        serial_number=order.serial_number or "", request_id=order.request_id or "", requested_by=order.requested_by,
        create_time=_timestamp(order.created_at), update_time=_timestamp(order.updated_at))
    if order.next_attempt_at is not None and not order.state.finished:
        message.next_attempt_time.CopyFrom(_timestamp(order.next_attempt_at))
    return message


def _actor(call: CallContext) -> str:
    return f"{call.caller} ({call.transport} {call.peer})" if call.peer else call.caller


class OrderAdminApi:
    """The servicer; see the module docstring."""

    def __init__(self, admin: OrderAdmin, journal: CACallJournal | None = None) -> None:
        self._admin = admin
        self._journal = journal

    async def ListOrders(self, request: pb.ListOrdersRequest, call: CallContext) -> pb.ListOrdersResponse:
        orders, token = await self._admin.list(state=request.state, ca_id=request.ca_id,
                                               page_size=request.page_size, token=request.page_token)
        return pb.ListOrdersResponse(orders=[order_message(order) for order in orders], next_page_token=token)

    async def GetOrder(self, request: pb.GetOrderRequest, call: CallContext) -> pb.GetOrderResponse:
        dossier = await self._admin.show(request.id)
        order = dossier.order
        response = pb.GetOrderResponse(order=order_message(order), running=dossier.running)
        for time, state, detail in dossier.history:
            response.history.append(pb.OrderHistoryEntry(time=_timestamp(time), state=state.value, detail=detail))
        calls = self._journal.calls_for(order.ca_id, order.marker, order.ca_order_id) if self._journal else []
        for entry in calls:
            response.ca_calls.append(pb.OrderCACall(time=_timestamp(entry.time), operation=entry.operation,
                                                    outcome=entry.outcome, duration_ms=entry.seconds * 1000,
                                                    error=entry.error))
        for audit in dossier.audit:
            response.audit.append(pb.OrderAuditEntry(time=_timestamp(audit.time), actor=audit.actor,
                                                     action=audit.action, outcome=audit.outcome,
                                                     detail=audit.detail))
        return response

    async def RetryOrder(self, request: pb.RetryOrderRequest, call: CallContext) -> pb.RetryOrderResponse:
        order, action = await self._admin.retry(request.id, actor=_actor(call))
        return pb.RetryOrderResponse(order=order_message(order), action=action)

    async def AbandonOrder(self, request: pb.AbandonOrderRequest, call: CallContext) -> pb.AbandonOrderResponse:
        order = await self._admin.abandon(request.id, reason=request.reason, actor=_actor(call))
        return pb.AbandonOrderResponse(order=order_message(order))
