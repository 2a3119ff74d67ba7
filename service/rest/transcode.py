"""HTTP request → request message: path variables, query parameters and body, by proto3 JSON.

The field classification of ``google.api.http`` decides what may come from
where: path-bound fields from the path only, body-covered fields (everything
else for ``body: "*"``, the named field otherwise) from the body only, and the
rest from the query string (primitive or repeated-primitive fields, by JSON or
proto name). Everything is parsed with ``json_format.ParseDict`` and
``ignore_unknown_fields=False``, so an unknown field, a wrong type, malformed
JSON or an unknown query parameter is a 400 ``INVALID_ARGUMENT`` naming the
field, never a 500.

One contract option widens what a body may hold: a ``map<string, string>``
field served by a ``google.protobuf.Struct`` sibling that declares
``(cagw.v1.json_values_of)`` accepts any JSON value in its object; entries
that are not strings are moved into the sibling, and the servicer converts
them by key (so ``properties.tracking.additionalEmails`` may be a list).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import hdrs, web
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from cagw.v1 import options_pb2
from service.rest.fields import (
    WRAPPER_TYPES,
    FieldPathError,
    descriptor_of,
    is_map,
    is_message,
    is_url_scalar,
    message_of,
    resolve_field_path,
)
from service.rest.refusals import Refusal
from service.rest.routes import Binding

__all__ = ["IDEMPOTENCY_FIELD", "IDEMPOTENCY_HEADER", "build_request", "json_values_fields", "read_body"]

# AIP-155: a request's idempotency key lives in `request_id`; REST callers may send it as a header.
IDEMPOTENCY_FIELD = "request_id"
IDEMPOTENCY_HEADER = "Idempotency-Key"

_CHUNK = 64 * 1024


async def read_body(request: web.Request, *, limit: int) -> bytes:
    """The request body, refused with 413 above ``limit`` bytes and 415 when it is not JSON.

    Content-Length is checked before reading and the streamed size while reading,
    so a chunked upload cannot get past the limit either. A missing Content-Type
    is read as JSON (clients that send no body often send no type); an empty body
    is accepted whatever its type.
    """
    if request.content_length is not None and request.content_length > limit:
        raise Refusal.too_large(limit)
    if not request.body_exists:
        return b""
    declared = request.headers.get(hdrs.CONTENT_TYPE)
    if declared is not None:
        mime = request.content_type.lower()
        charset = (request.charset or "utf-8").lower()
        if not (mime == "application/json" or mime.endswith("+json")) or charset not in ("utf-8", "utf8"):
            # Drain nothing: the connection is closed by aiohttp when the body is left unread.
            raise Refusal.unsupported_media_type(declared)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise Refusal.too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise Refusal.invalid(f"request body is not UTF-8: {exc.reason} at byte {exc.start}") from exc
    except json.JSONDecodeError as exc:
        raise Refusal.invalid(f"malformed JSON body: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except ValueError as exc:
        raise Refusal.invalid(f"malformed JSON body: {exc}") from exc
    except RecursionError as exc:
        raise Refusal.invalid("malformed JSON body: nested too deeply") from exc


_FAILED_FIELD = re.compile(r"Failed to parse (\S+) field: ")
_NO_FIELD = re.compile(r'has no field named "([^"]+)"')


def _parse_error(exc: json_format.ParseError) -> Refusal:
    """A 400 naming the field json_format stumbled on (``requiredFormat.format``)."""
    text = str(exc).split("\n", 1)[0].rstrip(".")
    path: list[str] = _FAILED_FIELD.findall(text)
    unknown = _NO_FIELD.search(text)
    if unknown:
        path.append(unknown.group(1))
    target = ".".join(path)
    detail = _FAILED_FIELD.sub("", text)
    if unknown:
        detail = f"unknown field {unknown.group(1)!r}"
    return Refusal.invalid(f"{target}: {detail}" if target else detail, field=target)


def _parse_into(js: dict[str, Any], message: Message, *, name: str = "", value: str = "") -> None:
    """ParseDict, turning its errors into a 400; ``name``/``value`` name a URL parameter."""
    try:
        json_format.ParseDict(js, message, ignore_unknown_fields=False)
    except json_format.ParseError as exc:
        refusal = _parse_error(exc)
        if name:
            detail = refusal.message.split(": ", 1)[-1]
            refusal = Refusal.invalid(f"{name}: {detail}", field=name, value=value)
        raise refusal from exc
    except (RecursionError, ValueError, TypeError) as exc:  # depth limit and upb conversion errors
        raise Refusal.invalid(f"{name or 'request'}: {exc}", field=name, value=value) from exc


def _nest(fields: Sequence[FieldDescriptor], value: Any) -> dict[str, Any]:
    js: dict[str, Any] = {fields[-1].json_name: value}
    for outer in reversed(fields[:-1]):
        js = {outer.json_name: js}
    return js


def _url_value(field: FieldDescriptor, text: str, name: str) -> Any:
    """A URL string in the JSON form ``ParseDict`` expects for ``field``.

    Numbers, enums (by name or number), bytes and string-like WKTs are parsed
    from strings by json_format itself; only booleans need a conversion.
    """
    wrapped = is_message(field) and message_of(field).full_name in WRAPPER_TYPES
    leaf = message_of(field).fields_by_name["value"] if wrapped else field
    if leaf.type == FieldDescriptor.TYPE_BOOL:
        if text not in ("true", "false"):
            raise Refusal.invalid(f"{name}: expected true or false, got {text!r}", field=name, value=text)
        return text == "true"
    return text


def _value_at(message: Message, fields: Sequence[FieldDescriptor]) -> Any:
    current: Any = message
    for field in fields:
        current = getattr(current, field.name)
    return current


def _body_fields(binding: Binding, request: Descriptor) -> frozenset[str]:
    """Top-level fields the body covers (the query may set none of them)."""
    if binding.body == "*":
        roots = {v.field_path[0] for v in binding.template.variables}
        return frozenset(f.name for f in request.fields if f.name not in roots)
    return frozenset({binding.body}) if binding.body else frozenset()


def _apply_query(binding: Binding, message: Message, query: Sequence[tuple[str, str]]) -> None:
    request = descriptor_of(message)
    grouped: dict[str, list[str]] = {}
    for name, value in query:
        grouped.setdefault(name, []).append(value)
    covered = _body_fields(binding, request)
    bound = binding.path_fields
    for name, values in grouped.items():
        try:
            fields = resolve_field_path(request, name, json_names=True)
        except FieldPathError:
            raise Refusal.invalid(f"unknown query parameter {name!r}", field=name) from None
        proto_path = ".".join(f.name for f in fields)
        if fields[0].name in covered or any(proto_path == b or proto_path.startswith(b + ".")
                                            or b.startswith(proto_path + ".") for b in bound):
            raise Refusal.invalid(f"query parameter {name!r} is set by the path or the body here", field=name)
        leaf = fields[-1]
        if is_map(leaf) or not is_url_scalar(leaf):
            raise Refusal.invalid(f"query parameter {name!r} is not a primitive field", field=name)
        if not leaf.is_repeated and len(values) > 1:
            raise Refusal.invalid(f"query parameter {name!r} given {len(values)} times", field=name)
        converted = [_url_value(leaf, v, name) for v in values]
        part = type(message)()
        _parse_into(_nest(fields, converted if leaf.is_repeated else converted[0]), part,
                    name=name, value=",".join(values))
        message.MergeFrom(part)


def _apply_path(binding: Binding, message: Message, path_values: Mapping[str, str]) -> None:
    request = descriptor_of(message)
    for name, value in path_values.items():
        fields = resolve_field_path(request, name)  # checked at start-up
        json_path = ".".join(f.json_name for f in fields)
        part = type(message)()
        _parse_into(_nest(fields, _url_value(fields[-1], value, json_path)), part, name=json_path, value=value)
        wanted = _value_at(part, fields)
        present = _value_at(message, fields)
        # The body may repeat a path value (clients echo caId) but never contradict it.
        if present != wanted and present != type(present)():
            raise Refusal.invalid(f"{json_path}: the body says {present!r}, the path {wanted!r}",
                                  field=json_path, value=str(present))
        message.MergeFrom(part)


def json_values_fields(message: Descriptor) -> dict[str, FieldDescriptor]:
    """The fields declaring ``(cagw.v1.json_values_of)``, by the JSON name of the map they serve."""
    found: dict[str, FieldDescriptor] = {}
    for field in message.fields:
        options: Any = field.GetOptions()  # extension typing of the stubs does not fit generated options
        target = str(options.Extensions[options_pb2.json_values_of])
        if target and target in message.fields_by_name:
            found[message.fields_by_name[target].json_name] = field
    return found


def _move_json_values(js: dict[str, Any], message: Descriptor) -> None:
    """Move the entries of a string map's JSON object that are not strings into the Struct field
    that declares itself their home, so ``{"properties": {"n": 3}}`` parses instead of failing."""
    for map_name, values_field in json_values_fields(message).items():
        entries = js.get(map_name)
        if not isinstance(entries, dict):
            continue
        others = {key: value for key, value in entries.items() if not isinstance(value, str)}
        if not others:
            continue
        js[map_name] = {key: value for key, value in entries.items() if isinstance(value, str)}
        target = js.setdefault(values_field.json_name, {})
        if isinstance(target, dict):
            for key, value in others.items():
                target.setdefault(key, value)


def _apply_body(binding: Binding, message: Message, body: bytes) -> None:
    if not binding.body or not body.strip():
        return  # no body expected, or an empty one: the empty message
    js = _parse_json(body)
    if binding.body == "*":
        if not isinstance(js, dict):
            raise Refusal.invalid(f"request body must be a JSON object, not {type(js).__name__}")
        _move_json_values(js, descriptor_of(message))
        _parse_into(js, message)
    else:
        field = descriptor_of(message).fields_by_name[binding.body]
        _parse_into({field.json_name: js}, message)


def build_request(binding: Binding, *, path_values: Mapping[str, str], query: Sequence[tuple[str, str]] = (),
                  body: bytes = b"", headers: Mapping[str, str] | None = None) -> Message:
    """The request message of ``binding``'s method from the parts of an HTTP request.

    ``headers`` are only read for ``Idempotency-Key``, which fills ``request_id``
    when the message has one and the body left it empty.
    """
    message = binding.spec.request_type()
    _apply_body(binding, message, body)
    _apply_query(binding, message, query)
    _apply_path(binding, message, path_values)
    key = (headers or {}).get(IDEMPOTENCY_HEADER) or (headers or {}).get(IDEMPOTENCY_HEADER.lower())
    target = descriptor_of(message).fields_by_name.get(IDEMPOTENCY_FIELD)
    if key and target is not None and target.type == FieldDescriptor.TYPE_STRING and not target.is_repeated \
            and not getattr(message, IDEMPOTENCY_FIELD):
        setattr(message, IDEMPOTENCY_FIELD, key)
    return message
