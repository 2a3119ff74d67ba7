"""The only gRPC code → HTTP status table of the gateway, and the per-method ``rest_status`` rule.

The table is grpc-gateway's ``HTTPStatusFromCode`` (runtime/errors.go), row for
row. A method may carry the ``(cagw.v1.rest_status)`` option to follow the
connector documentation instead (enrollment: 200 issued, 202 pending, 404 for
any other failure); the rule is read from the descriptor, never keyed on a
method name. It only rewrites what the *method* answered: refusals of the shim
itself (404/405/413/415, an unreadable request) keep their status.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from google.rpc import code_pb2

from cagw.v1 import options_pb2
from service.rest.fields import FieldPathError, descriptor_of, is_message, resolve_field_path

__all__ = ["HTTP_STATUS_BY_CODE", "StatusPolicy", "StatusRule", "code_name", "http_status_from_code"]

log = logging.getLogger(__name__)

HTTP_STATUS_BY_CODE: Mapping[int, int] = {
    code_pb2.OK: 200,
    # grpc-gateway says 408; Envoy says 499 (nginx's "client closed request"). We follow grpc-gateway:
    # the caller who cancelled rarely reads the answer anyway.
    code_pb2.CANCELLED: 408,
    code_pb2.UNKNOWN: 500,
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.DEADLINE_EXCEEDED: 504,
    code_pb2.NOT_FOUND: 404,
    code_pb2.ALREADY_EXISTS: 409,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    # 400 on purpose, not 412: grpc-gateway keeps 412 for HTTP conditional requests (If-Match...).
    code_pb2.FAILED_PRECONDITION: 400,
    code_pb2.ABORTED: 409,
    code_pb2.OUT_OF_RANGE: 400,
    code_pb2.UNIMPLEMENTED: 501,
    code_pb2.INTERNAL: 500,
    # 503, not the 500 of older CAGW material (DESIGN Decision 1): a caller may retry it.
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DATA_LOSS: 500,
    code_pb2.UNAUTHENTICATED: 401,
}


def http_status_from_code(code: int) -> int:
    """HTTP status of a gRPC code; an unknown code is a 500, logged because it is a bug."""
    status = HTTP_STATUS_BY_CODE.get(code)
    if status is None:
        log.error("no HTTP status for gRPC code %d; answering 500", code)
        return 500
    return status


def code_name(code: int) -> str:
    """``NOT_FOUND`` for 5; ``CODE_<n>`` for a value outside google.rpc.Code."""
    try:
        return str(code_pb2.Code.Name(code))
    except ValueError:
        return f"CODE_{code}"


@dataclass(frozen=True)
class StatusRule:
    """A method's ``(cagw.v1.rest_status)`` option, checked against its response type at start-up."""

    accepted_field: tuple[str, ...]  # proto field names into the response
    accepted_values: frozenset[str]
    accepted_http_status: int
    failure_http_status: int
    kept_codes: frozenset[int]

    @classmethod
    def of(cls, method: MethodDescriptor) -> StatusRule | None:
        """The rule declared on ``method``, ``None`` without one; ``ValueError`` when it is unusable."""
        options: Any = method.GetOptions()  # extension typing of the stubs does not fit generated options
        if not options.HasExtension(options_pb2.rest_status):
            return None
        rule: options_pb2.RestStatusRule = options.Extensions[options_pb2.rest_status]
        where = f"{method.full_name} rest_status"
        path: tuple[str, ...] = ()
        if rule.accepted_field:
            try:
                fields = resolve_field_path(method.output_type, rule.accepted_field, json_names=True)
            except FieldPathError as exc:
                raise ValueError(f"{where}: accepted_field {exc}") from exc
            if fields[-1].is_repeated or is_message(fields[-1]):
                raise ValueError(f"{where}: accepted_field {rule.accepted_field!r} must be a singular scalar")
            path = tuple(f.name for f in fields)
        kept: set[int] = set()
        for name in rule.kept_codes:
            if name not in code_pb2.Code.keys():
                raise ValueError(f"{where}: kept_codes has unknown code {name!r}")
            kept.add(code_pb2.Code.Value(name))
        for status in (rule.accepted_http_status, rule.failure_http_status):
            if status and not 100 <= status <= 599:
                raise ValueError(f"{where}: {status} is not an HTTP status")
        return cls(accepted_field=path, accepted_values=frozenset(rule.accepted_values),
                   accepted_http_status=rule.accepted_http_status or 200,
                   failure_http_status=rule.failure_http_status, kept_codes=frozenset(kept))

    def success_status(self, response: Message) -> int:
        if not self.accepted_field or not self.accepted_values:
            return 200
        value: object = response
        for name in self.accepted_field:
            value = getattr(value, name)
        leaf = resolve_field_path(descriptor_of(response), self.accepted_field)[-1]
        if leaf.enum_type is not None and isinstance(value, int):
            enum_value = leaf.enum_type.values_by_number.get(value)
            value = enum_value.name if enum_value is not None else value
        if isinstance(value, bool):
            value = "true" if value else "false"
        return self.accepted_http_status if str(value) in self.accepted_values else 200

    def failure_status(self, code: int) -> int:
        if code in self.kept_codes or not self.failure_http_status:
            return http_status_from_code(code)
        return self.failure_http_status


class StatusPolicy:
    """HTTP statuses for one method's answers, under ``rest.enrollment-status``.

    ``"documented"`` applies the method's ``rest_status`` rule; ``"standard"``
    ignores it, leaving the plain table.
    """

    def __init__(self, method: MethodDescriptor, mode: Literal["documented", "standard"]) -> None:
        rule = StatusRule.of(method)  # checked in both modes: a broken option fails start-up either way
        self.rule = rule if mode == "documented" and not method.server_streaming else None

    def success(self, response: Message) -> int:
        return 200 if self.rule is None else self.rule.success_status(response)

    def failure(self, code: int) -> int:
        return http_status_from_code(code) if self.rule is None else self.rule.failure_status(code)
