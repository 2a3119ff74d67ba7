"""The OpenAPI 3.0.3 document of the REST surface, built from the same bindings and descriptors.

Paths, parameters and bodies come from the compiled :class:`Binding` objects,
schemas from the message descriptors (proto3 JSON mapping: JSON names, int64 as
strings, enums as strings, maps as ``additionalProperties``, well-known types
by their JSON form). Response messages get their CAGW ``type`` discriminator;
errors are CAGW ``ErrorResponse``; streams are NDJSON lines.

A response never carries an empty string (the shim leaves out a field that has
no value), so the string fields of messages that only answers use are
``minLength: 1``: a schema check of the served answers catches a ``""``.
Messages that requests also use keep plain strings, since a caller may send one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.rpc import status_pb2

from service.rest.fields import (
    descriptor_of,
    enum_of,
    is_map,
    is_message,
    is_url_scalar,
    message_of,
    resolve_field_path,
)
from service.rest.render import ERROR_RESPONSE_TYPE, TYPE_PROPERTY, response_type_of
from service.rest.routes import Binding
from service.rest.status_table import HTTP_STATUS_BY_CODE, StatusRule, http_status_from_code
from service.rest.transcode import IDEMPOTENCY_FIELD, IDEMPOTENCY_HEADER, json_values_fields

__all__ = ["OPENAPI_VERSION", "build_openapi"]

OPENAPI_VERSION = "3.0.3"
_OPENAPI_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
ErrorSchemaName = "ErrorResponse"
Schema = dict[str, Any]

_F = FieldDescriptor
_SCALARS: dict[int, Schema] = {
    _F.TYPE_DOUBLE: {"type": "number", "format": "double"},
    _F.TYPE_FLOAT: {"type": "number", "format": "float"},
    _F.TYPE_INT32: {"type": "integer", "format": "int32"},
    _F.TYPE_SINT32: {"type": "integer", "format": "int32"},
    _F.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    _F.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295},
    _F.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 4294967295},
    # proto3 JSON writes 64-bit integers as strings (JavaScript numbers lose precision past 2^53).
    _F.TYPE_INT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    _F.TYPE_SINT64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    _F.TYPE_SFIXED64: {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$"},
    _F.TYPE_UINT64: {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"},
    _F.TYPE_FIXED64: {"type": "string", "format": "uint64", "pattern": "^[0-9]+$"},
    _F.TYPE_BOOL: {"type": "boolean"},
    _F.TYPE_STRING: {"type": "string"},
    _F.TYPE_BYTES: {"type": "string", "format": "byte"},
}

# Well-known types have their own JSON forms (protobuf's JSON mapping table).
_WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$",
                                 "description": "seconds with up to 9 decimals and an 's' suffix, e.g. 1.5s"},
    "google.protobuf.FieldMask": {"type": "string", "description": "comma-separated field paths"},
    "google.protobuf.Value": {"description": "any JSON value"},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    "google.protobuf.Any": {"type": "object", "required": ["@type"], "additionalProperties": True,
                            "properties": {"@type": {"type": "string"}}},
    "google.protobuf.DoubleValue": {"type": "number", "format": "double"},
    "google.protobuf.FloatValue": {"type": "number", "format": "float"},
    "google.protobuf.Int64Value": {"type": "string", "format": "int64"},
    "google.protobuf.UInt64Value": {"type": "string", "format": "uint64"},
    "google.protobuf.Int32Value": {"type": "integer", "format": "int32"},
    "google.protobuf.UInt32Value": {"type": "integer", "format": "int64", "minimum": 0},
    "google.protobuf.BoolValue": {"type": "boolean"},
    "google.protobuf.StringValue": {"type": "string"},
    "google.protobuf.BytesValue": {"type": "string", "format": "byte"},
}

_ERROR_DETAIL: Schema = {
    "type": "object",
    "properties": {name: {"type": "string"} for name in ("code", "message", "target", "value")},
}
_ERROR_RESPONSE: Schema = {
    "type": "object",
    "required": [TYPE_PROPERTY, "error"],
    "properties": {
        TYPE_PROPERTY: {"type": "string", "enum": [ERROR_RESPONSE_TYPE]},
        "error": {"type": "object", "properties": {
            **_ERROR_DETAIL["properties"],
            "details": {"type": "array", "items": _ERROR_DETAIL},
        }},
    },
}

_REASONS = {200: "OK", 202: "Accepted, not complete yet", 400: "Bad request", 401: "Unauthenticated",
            403: "Forbidden", 404: "Not found", 408: "Cancelled", 409: "Conflict", 413: "Request body too large",
            415: "Body is not JSON", 429: "Too many requests", 500: "Internal error", 501: "Not implemented",
            503: "Unavailable", 504: "Deadline exceeded"}


def _is_required(field: FieldDescriptor) -> bool:
    """``(google.api.field_behavior) = REQUIRED`` in the contract."""
    behaviors = field.GetOptions().Extensions[field_behavior_pb2.field_behavior]
    return field_behavior_pb2.FieldBehavior.REQUIRED in behaviors


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


class _Schemas:
    """components/schemas, filled on demand by walking message descriptors."""

    def __init__(self, request_messages: frozenset[str] = frozenset()) -> None:
        self.components: dict[str, Schema] = {ErrorSchemaName: _ERROR_RESPONSE}
        self.request_messages = request_messages

    def enum(self, enum: EnumDescriptor) -> Schema:
        if enum.full_name not in self.components:
            self.components[enum.full_name] = {"type": "string", "enum": [v.name for v in enum.values]}
        return _ref(enum.full_name)

    def message(self, message: Descriptor) -> Schema:
        if message.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[message.full_name])
        if message.full_name not in self.components:
            self.components[message.full_name] = {}  # placeholder first: messages may be recursive
            self.components[message.full_name] = self.object(message)
        return _ref(message.full_name)

    def object(self, message: Descriptor, *, without: frozenset[str] = frozenset()) -> Schema:
        """The object schema of a message, leaving out the top-level fields in ``without``."""
        properties: dict[str, Schema] = {}
        declared = response_type_of(message)
        if declared:
            properties[TYPE_PROPERTY] = {"type": "string", "enum": [declared], "readOnly": True}
        required = []
        for field in message.fields:
            if field.name not in without:
                properties[field.json_name] = self.field(field)
                if field.type == FieldDescriptor.TYPE_STRING and not field.is_repeated \
                        and message.full_name not in self.request_messages:
                    properties[field.json_name]["minLength"] = 1
                if _is_required(field):
                    required.append(field.json_name)
        # Unknown members are refused with 400, so the schema says so.
        schema: Schema = {"type": "object", "properties": properties, "additionalProperties": False}
        if required:
            schema["required"] = required
        return schema

    def field(self, field: FieldDescriptor) -> Schema:
        if is_map(field):
            value = message_of(field).fields_by_name["value"]
            if field.containing_type is not None and field.json_name in json_values_fields(field.containing_type):
                # The shim accepts JSON values here (moved to the Struct sibling), not only strings.
                return {"type": "object", "additionalProperties": {"anyOf": [
                    self.single(value), {"type": "number"}, {"type": "boolean"},
                    {"type": "array", "items": {"type": "string"}}]}}
            return {"type": "object", "additionalProperties": self.single(value)}
        single = self.single(field)
        return {"type": "array", "items": single} if field.is_repeated else single

    def single(self, field: FieldDescriptor) -> Schema:
        if is_message(field):
            return self.message(message_of(field))
        if field.type == FieldDescriptor.TYPE_ENUM:
            return self.enum(enum_of(field))
        return dict(_SCALARS[field.type])


def _response(description: str, content: dict[str, Any] | None = None,
              headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if content:
        response["content"] = content
    if headers:
        response["headers"] = headers
    return response


def _error_response(status: int) -> dict[str, Any]:
    headers = None
    if status in (429, 503):
        headers = {"Retry-After": {"description": "seconds to wait, from RetryInfo",
                                   "schema": {"type": "integer", "minimum": 0}}}
    return _response(_REASONS.get(status, "Error"), {"application/json": {"schema": _ref(ErrorSchemaName)}},
                     headers)


def _query_parameters(binding: Binding, schemas: _Schemas) -> list[dict[str, Any]]:
    """Every primitive field reachable from the request that neither the path nor the body sets."""
    if binding.body == "*":
        return []
    parameters: list[dict[str, Any]] = []

    def walk(message: Descriptor, json_prefix: str, proto_prefix: str, depth: int) -> None:
        for field in message.fields:
            proto_path = proto_prefix + field.name
            json_path = json_prefix + field.json_name
            if not proto_prefix and field.name == binding.body:
                continue
            if any(proto_path == b or b.startswith(proto_path + ".") for b in binding.path_fields):
                if is_message(field) and not field.is_repeated and depth < 3:
                    walk(message_of(field), json_path + ".", proto_path + ".", depth + 1)
                continue
            if is_map(field):
                continue
            if is_url_scalar(field):
                parameter: dict[str, Any] = {"name": json_path, "in": "query", "required": False,
                                             "schema": schemas.field(field)}
                if field.is_repeated:
                    parameter.update(style="form", explode=True)
                parameters.append(parameter)
            elif is_message(field) and not field.is_repeated and depth < 3:
                walk(message_of(field), json_path + ".", proto_path + ".", depth + 1)

    walk(binding.spec.descriptor.input_type, "", "", 0)
    return parameters


def _path_parameters(binding: Binding, schemas: _Schemas, names: dict[str, str]) -> list[dict[str, Any]]:
    request = binding.spec.descriptor.input_type
    parameters = []
    for variable in binding.template.variables:
        leaf = resolve_field_path(request, variable.field_path)[-1]
        parameters.append({"name": names[variable.name], "in": "path", "required": True,
                           "schema": schemas.single(leaf)})
    for position, (kind, _) in enumerate(binding.template.segments):
        covered = any(v.start <= position < (v.end or len(binding.template.segments))
                      for v in binding.template.variables)
        if kind != "literal" and not covered:
            parameters.append({"name": f"segment{position}", "in": "path", "required": True,
                               "schema": {"type": "string"}})
    return parameters


def _header_parameters(binding: Binding) -> list[dict[str, Any]]:
    target = binding.spec.descriptor.input_type.fields_by_name.get(IDEMPOTENCY_FIELD)
    if target is None or target.type != FieldDescriptor.TYPE_STRING or IDEMPOTENCY_FIELD in binding.path_fields:
        return []
    return [{"name": IDEMPOTENCY_HEADER, "in": "header", "required": False, "schema": {"type": "string"},
             "description": f"sets {target.json_name} when the request leaves it empty"}]


def _request_body(binding: Binding, schemas: _Schemas) -> dict[str, Any] | None:
    request = binding.spec.descriptor.input_type
    if binding.body == "*":
        # The path sets its fields; the body schema leaves them out (inline, one per binding).
        roots = frozenset(v.field_path[0] for v in binding.template.variables)
        schema = schemas.object(request, without=roots) if roots else schemas.message(request)
    elif binding.body:
        schema = schemas.field(request.fields_by_name[binding.body])
    else:
        return None
    return {"required": False, "content": {"application/json": {"schema": schema}}}


def _success_schema(binding: Binding, schemas: _Schemas) -> Schema:
    response = binding.spec.descriptor.output_type
    if binding.response_body:
        return schemas.field(response.fields_by_name[binding.response_body])
    return schemas.message(response)


def _responses(binding: Binding, schemas: _Schemas, rule: StatusRule | None) -> dict[str, Any]:
    success = _success_schema(binding, schemas)
    responses: dict[str, Any] = {}
    if binding.spec.server_streaming:
        line = {"type": "object", "description": "one NDJSON line: a result, or a final error",
                "properties": {"result": success, "error": schemas.message(descriptor_of(status_pb2.Status))}}
        responses["200"] = _response("a stream of NDJSON lines", {"application/x-ndjson": {"schema": line}})
    else:
        responses["200"] = _response("OK", {"application/json": {"schema": success}})
    if rule is not None and rule.accepted_values:
        responses[str(rule.accepted_http_status)] = _response(
            _REASONS.get(rule.accepted_http_status, "Accepted"), {"application/json": {"schema": success}})
    if rule is not None and rule.failure_http_status:
        failures = {rule.failure_http_status, *(http_status_from_code(c) for c in rule.kept_codes)}
    else:
        failures = {s for s in HTTP_STATUS_BY_CODE.values() if s >= 400}
    failures.add(400)  # the shim's own refusal of an unreadable request
    if binding.body:
        failures.update({413, 415})
    for status in sorted(failures):
        responses[str(status)] = _error_response(status)
    responses["default"] = _response("Error", {"application/json": {"schema": _ref(ErrorSchemaName)}})
    return responses


def _request_messages(bindings: Sequence[Binding]) -> frozenset[str]:
    """Full names of every message a request of ``bindings`` can contain."""
    seen: set[str] = set()
    pending = [b.spec.descriptor.input_type for b in bindings]
    while pending:
        message = pending.pop()
        if message.full_name in seen:
            continue
        seen.add(message.full_name)
        pending.extend(message_of(f) for f in message.fields if is_message(f))
    return frozenset(seen)


def _health_path() -> dict[str, Any]:
    body = {"type": "object", "required": ["status"],
            "properties": {"status": {"type": "string", "enum": ["UP", "DOWN"]}}}
    content = {"application/json": {"schema": body}}
    return {"get": {"operationId": "health", "summary": "Readiness for load balancers",
                    "tags": ["health"],
                    "responses": {"200": _response("UP", content), "503": _response("DOWN", content)}}}


def build_openapi(bindings: Sequence[Binding], *, context_path: str = "", title: str = "",
                  version: str = "", rules: dict[str, StatusRule | None] | None = None,
                  health_path: str | None = None) -> dict[str, Any]:
    """An OpenAPI 3.0.3 document for ``bindings`` (paths include ``context_path``).

    ``rules`` maps a method's full name to the ``rest_status`` rule in force, so
    the documented statuses (200/202/404 on enrollment) match what is served.
    ``health_path`` adds the health endpoint.
    """
    schemas = _Schemas(_request_messages(bindings))
    paths: dict[str, dict[str, Any]] = {}
    packages = sorted({b.spec.descriptor.containing_service.file.package for b in bindings})
    for binding in bindings:
        request = binding.spec.descriptor.input_type
        names = {v.name: ".".join(f.json_name for f in resolve_field_path(request, v.field_path))
                 for v in binding.template.variables}
        path = context_path + binding.template.openapi_path(names)
        method = binding.http_method.lower()
        if method not in _OPENAPI_METHODS:
            continue  # a custom HTTP method (HttpRule.custom) has no place in OpenAPI 3.0
        item = paths.setdefault(path, {})
        if method in item:
            continue  # the same route bound twice through additional_bindings: documented once
        service = binding.spec.descriptor.containing_service
        operation: dict[str, Any] = {
            "operationId": f"{service.name}_{binding.spec.descriptor.name}"
                           + (f"_{binding.index}" if binding.index else ""),
            "summary": f"{service.full_name}.{binding.spec.descriptor.name}",
            "tags": [service.full_name],
            "parameters": (_path_parameters(binding, schemas, names) + _query_parameters(binding, schemas)
                           + _header_parameters(binding)),
            "responses": _responses(binding, schemas, (rules or {}).get(binding.spec.full_name)),
        }
        body = _request_body(binding, schemas)
        if body is not None:
            operation["requestBody"] = body
        if not operation["parameters"]:
            del operation["parameters"]
        item[method] = operation
    if health_path is not None:
        paths[health_path] = _health_path()
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title or f"REST API of {', '.join(packages) or 'the gateway'}",
                 "version": version or (packages[0] if packages else "0")},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": schemas.components},
    }

