"""Field-descriptor helpers shared by the route compiler, the transcoder and the OpenAPI builder.

They answer the questions the ``google.api.http`` rules raise about a field:
is it a map, a message, a scalar a URL can carry; what does a dotted path
(``a.b.c``) resolve to. Nothing here knows a message of the contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

__all__ = [
    "STRING_WELL_KNOWN_TYPES",
    "WRAPPER_TYPES",
    "FieldPathError",
    "descriptor_of",
    "enum_of",
    "is_map",
    "is_message",
    "is_url_scalar",
    "message_of",
    "resolve_field_path",
]

# Well-known types whose proto3 JSON form is a single string: a URL can carry them.
STRING_WELL_KNOWN_TYPES = frozenset({
    "google.protobuf.Timestamp",
    "google.protobuf.Duration",
    "google.protobuf.FieldMask",
})

# Wrappers are written in JSON as their `value`, so they behave like scalars.
WRAPPER_TYPES = frozenset({
    "google.protobuf.DoubleValue", "google.protobuf.FloatValue",
    "google.protobuf.Int64Value", "google.protobuf.UInt64Value",
    "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
    "google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue",
})


class FieldPathError(ValueError):
    """A dotted field path that does not name a usable field; ``path`` is the text given."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def descriptor_of(message: Message | type[Message]) -> Descriptor:
    """The pure-Python view of a message's descriptor (the stubs also admit upb's type)."""
    return cast(Descriptor, message.DESCRIPTOR)


def message_of(field: FieldDescriptor) -> Descriptor:
    """The message type of a message field."""
    if field.message_type is None:
        raise TypeError(f"{field.full_name} is not a message field")
    return field.message_type


def enum_of(field: FieldDescriptor) -> EnumDescriptor:
    """The enum type of an enum field."""
    if field.enum_type is None:
        raise TypeError(f"{field.full_name} is not an enum field")
    return field.enum_type


def is_message(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_MESSAGE


def is_map(field: FieldDescriptor) -> bool:
    return is_message(field) and field.is_repeated and bool(message_of(field).GetOptions().map_entry)


def is_url_scalar(field: FieldDescriptor) -> bool:
    """True when one URL string can set the field (a scalar, an enum, or a string-like WKT)."""
    if not is_message(field):
        return True
    name = message_of(field).full_name
    return name in STRING_WELL_KNOWN_TYPES or name in WRAPPER_TYPES


def _lookup(message: Descriptor, name: str, *, json_names: bool) -> FieldDescriptor | None:
    field = message.fields_by_name.get(name)
    if field is None and json_names:
        field = next((f for f in message.fields if f.json_name == name), None)
    return field


def resolve_field_path(message: Descriptor, path: str | Sequence[str], *,
                       json_names: bool = False) -> tuple[FieldDescriptor, ...]:
    """The fields along ``path`` (``"a.b"`` or ``("a", "b")``), each step a singular message.

    Templates name fields by their proto names; query parameters may also use the
    JSON name (``profileId``, ``$fields``) when ``json_names`` is true. The leaf
    may be anything; callers check what they can use.
    """
    names = path.split(".") if isinstance(path, str) else list(path)
    text = path if isinstance(path, str) else ".".join(path)
    fields: list[FieldDescriptor] = []
    current: Descriptor | None = message
    for position, name in enumerate(names):
        if current is None:
            raise FieldPathError(text, f"{names[position - 1]!r} is not a message")
        field = _lookup(current, name, json_names=json_names)
        if field is None:
            raise FieldPathError(text, f"{current.full_name} has no field {name!r}")
        fields.append(field)
        last = position == len(names) - 1
        if not last and (field.is_repeated or not is_message(field)):
            raise FieldPathError(text, f"{name!r} is repeated or not a message")
        current = field.message_type if is_message(field) else None
    return tuple(fields)
