"""Refusals of the REST shim itself: no route, wrong method, unreadable request.

They happen before any service method runs, so they are transport-level: their
HTTP status is fixed here (grpc-gateway's routing errors: 404 NOT_FOUND, 405
UNIMPLEMENTED, 400 INVALID_ARGUMENT; plus 413 and 415) and a method's
``rest_status`` rule never rewrites them. They still leave as a
``google.rpc.Status`` with an ``ErrorInfo`` (and a ``BadRequest`` naming the
field), through the same renderer as every other error.
"""

from __future__ import annotations

from collections.abc import Mapping

from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from service.api.status import ERROR_DOMAIN, MAX_ECHOED_VALUE

__all__ = ["Refusal"]


class Refusal(Exception):
    """A request the shim turns away; ``http_status`` wins over the status table."""

    def __init__(self, message: str, *, code: int, http_status: int, reason: str,
                 field: str = "", value: str = "", headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.reason = reason
        self.field = field
        self.value = value[:MAX_ECHOED_VALUE]
        self.headers: dict[str, str] = dict(headers or {})

    def status(self) -> status_pb2.Status:
        """The refusal as the ``google.rpc.Status`` every error body is rendered from."""
        metadata = {f"value:{self.field}": self.value} if self.field and self.value else {}
        info = any_pb2.Any()
        info.Pack(error_details_pb2.ErrorInfo(reason=self.reason, domain=ERROR_DOMAIN, metadata=metadata))
        details = [info]
        if self.field:
            violation = any_pb2.Any()
            violation.Pack(error_details_pb2.BadRequest(field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=self.field, description=self.message)]))
            details.append(violation)
        return status_pb2.Status(code=self.code, message=self.message, details=details)

    # -- the refusals the shim knows ------------------------------------------------------

    @classmethod
    def not_found(cls, path: str) -> Refusal:
        shown = path if len(path) <= MAX_ECHOED_VALUE else path[:MAX_ECHOED_VALUE] + "..."
        return cls(f"no REST route for {shown}", code=code_pb2.NOT_FOUND, http_status=404,
                   reason="ROUTE_NOT_FOUND")

    @classmethod
    def method_not_allowed(cls, method: str, allowed: list[str]) -> Refusal:
        return cls(f"method {method} not allowed here; use {', '.join(allowed)}", code=code_pb2.UNIMPLEMENTED,
                   http_status=405, reason="METHOD_NOT_ALLOWED", headers={"Allow": ", ".join(allowed)})

    @classmethod
    def invalid(cls, message: str, *, field: str = "", value: str = "") -> Refusal:
        # Same reason as the service's own InvalidRequest, so clients see one code for "your request is wrong".
        return cls(message, code=code_pb2.INVALID_ARGUMENT, http_status=400, reason="INVALID_REQUEST",
                   field=field, value=value)

    @classmethod
    def too_large(cls, limit: int) -> Refusal:
        return cls(f"request body larger than {limit} bytes", code=code_pb2.RESOURCE_EXHAUSTED,
                   http_status=413, reason="REQUEST_TOO_LARGE")

    @classmethod
    def too_slow(cls, timeout: float) -> Refusal:
        # The rest of the body is never read, so the connection is closed after this answer.
        return cls(f"request body not received within {timeout:g}s (rest.limits.body-timeout)",
                   code=code_pb2.DEADLINE_EXCEEDED, http_status=408, reason="REQUEST_BODY_TIMEOUT")

    @classmethod
    def unsupported_media_type(cls, content_type: str) -> Refusal:
        return cls(f"request body must be application/json, not {content_type}", code=code_pb2.INVALID_ARGUMENT,
                   http_status=415, reason="UNSUPPORTED_MEDIA_TYPE")
