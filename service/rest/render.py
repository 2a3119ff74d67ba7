"""The one JSON marshaler of the REST shim: success bodies, CAGW error bodies and NDJSON lines.

Bodies are proto3 JSON (``json_format.MessageToDict``) with the JSON names
(CAGW's camelCase), preceded by the CAGW ``type`` discriminator when the
message declares ``(cagw.v1.response_type)``.

A field that has no value is left out: an empty string (a date not known, the
``body`` of a pending enrollment, a ``compromiseDate`` never given) is absent,
not ``""``, in every body and stream line, at any depth, so a strictly typed
client never parses ``""`` as a date or writes an empty certificate file. What
is a value stays: ``false``, ``0``, ``[]`` and ``{}`` (CAGW clients read
``morePages: false`` and ``chain: []``), and the entries of a map as given.
Fields with presence (messages, ``optional`` scalars) stay absent when unset,
so an optional ``message`` object is not invented.

Errors render as CAGW's ``ErrorResponse`` built from the ``google.rpc.Status``
(``ErrorInfo`` reason as the code, ``BadRequest`` violations as details), whose
error object always has its five members (``code``, ``message``, ``target``,
``value``, ``details``: CAGW's fixed message shape, never a date); on a
stream, after the first line, as grpc-gateway's ``{"error": <Status>}`` line.
If rendering itself fails, a fixed fallback body goes out instead.
"""

from __future__ import annotations

import json
import logging
import math
from functools import lru_cache
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from cagw.v1 import options_pb2
from service.rest.fields import descriptor_of
from service.rest.status_table import code_name

__all__ = [
    "ERROR_RESPONSE_TYPE",
    "FALLBACK_ERROR_BODY",
    "FALLBACK_STREAM_ERROR_LINE",
    "JsonMarshaler",
    "prune_empty",
    "response_type_of",
    "retry_after_seconds",
]

log = logging.getLogger(__name__)

# CAGW's error envelope: part of the REST format itself, like grpc-gateway's Status body.
ERROR_RESPONSE_TYPE = "ErrorResponse"
FIELD_VIOLATION_CODE = "INVALID_FIELD"
TYPE_PROPERTY = "type"

FALLBACK_ERROR_BODY = (b'{"type":"ErrorResponse","error":{"code":"INTERNAL","message":"failed to render the error",'
                       b'"target":"","value":"","details":[]}}')
FALLBACK_STREAM_ERROR_LINE = b'{"error":{"code":13,"message":"failed to marshal error message","details":[]}}\n'


@lru_cache(maxsize=None)
def response_type_of(message: Descriptor) -> str:
    """The CAGW ``type`` a message declares, or ``""``.

    Raises ``ValueError`` when the message also has a field whose JSON name is
    ``type``: the discriminator would overwrite it.
    """
    options: Any = message.GetOptions()  # extension typing of the stubs does not fit generated options
    declared = str(options.Extensions[options_pb2.response_type])
    if declared and any(f.json_name == TYPE_PROPERTY for f in message.fields):
        raise ValueError(f"{message.full_name} declares response_type and has a field named {TYPE_PROPERTY!r}")
    return declared


def retry_after_seconds(status: status_pb2.Status) -> int | None:
    """The ``RetryInfo`` delay in whole seconds, rounded up; ``None`` without one."""
    for detail in status.details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            delay = info.retry_delay.seconds + info.retry_delay.nanos / 1e9
            return max(0, int(math.ceil(delay)))
    return None


def prune_empty(js: dict[str, Any], message: Descriptor) -> dict[str, Any]:
    """``js`` (the JSON of a ``message``) without its empty-string fields, at every depth.

    Walks the descriptor rather than the dict, so a map entry whose value is
    ``""`` or a well-known type's JSON (a ``Struct``) is kept as it is.
    """
    for field in message.fields:
        name = field.json_name
        if name not in js:
            continue
        value = js[name]
        if value == "" and field.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
            del js[name]
        elif field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None \
                and not field.message_type.GetOptions().map_entry \
                and not field.message_type.full_name.startswith("google.protobuf."):
            for element in (value if field.is_repeated else [value]):
                if isinstance(element, dict):
                    prune_empty(element, field.message_type)
    return js


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class JsonMarshaler:
    """Renders messages and statuses for one wire format (JSON bodies, NDJSON streams)."""

    content_type = "application/json"
    stream_content_type = "application/x-ndjson"
    delimiter = b"\n"

    def to_dict(self, message: Message, *, response_body: str = "") -> Any:
        """The JSON value of a response (or of its ``response_body`` field, then without ``type``)."""
        js = prune_empty(json_format.MessageToDict(message, always_print_fields_with_no_presence=True,
                                                   preserving_proto_field_name=False), descriptor_of(message))
        if response_body:
            return js.get(descriptor_of(message).fields_by_name[response_body].json_name)
        declared = response_type_of(descriptor_of(message))
        return {TYPE_PROPERTY: declared, **js} if declared else js

    def body(self, message: Message, *, response_body: str = "") -> bytes:
        return _dumps(self.to_dict(message, response_body=response_body))

    def stream_line(self, message: Message, *, response_body: str = "") -> bytes:
        # grpc-gateway wraps each message so that fields can be added to the line later.
        return _dumps({"result": self.to_dict(message, response_body=response_body)}) + self.delimiter

    @staticmethod
    def error_response(status: status_pb2.Status) -> dict[str, Any]:
        """CAGW's ``ErrorResponse`` for a status, as a JSON object."""
        info = error_details_pb2.ErrorInfo()
        violations: list[error_details_pb2.BadRequest.FieldViolation] = []
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR) and not info.reason:
                detail.Unpack(info)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations.extend(bad.field_violations)
        values = {key[len("value:"):]: value for key, value in info.metadata.items() if key.startswith("value:")}
        target = violations[0].field if violations else ""
        return {
            TYPE_PROPERTY: ERROR_RESPONSE_TYPE,
            "error": {
                "code": info.reason or code_name(status.code),
                "message": status.message,
                "target": target,
                "value": values.get(target, ""),
                "details": [{"code": FIELD_VIOLATION_CODE, "message": v.description, "target": v.field,
                             "value": values.get(v.field, "")} for v in violations],
            },
        }

    def error_body(self, status: status_pb2.Status) -> bytes:
        try:
            return _dumps(self.error_response(status))
        except Exception:  # a broken detail must not turn an error into a crash
            log.exception("failed to render an error body (code %d)", status.code)
            return FALLBACK_ERROR_BODY

    def stream_error_line(self, status: status_pb2.Status) -> bytes:
        """The final line of a stream that failed after its first line: ``{"error": <google.rpc.Status>}``."""
        try:
            js = json_format.MessageToDict(status, always_print_fields_with_no_presence=True,
                                           preserving_proto_field_name=False)
            return _dumps({"error": js}) + self.delimiter
        except Exception:
            log.exception("failed to render a stream error (code %d)", status.code)
            return FALLBACK_STREAM_ERROR_LINE
