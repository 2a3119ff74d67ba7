from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor
REST_STATUS_FIELD_NUMBER: _ClassVar[int]
rest_status: _descriptor.FieldDescriptor
JSON_VALUES_OF_FIELD_NUMBER: _ClassVar[int]
json_values_of: _descriptor.FieldDescriptor
RESPONSE_TYPE_FIELD_NUMBER: _ClassVar[int]
response_type: _descriptor.FieldDescriptor

class RestStatusRule(_message.Message):
    __slots__ = ("accepted_field", "accepted_values", "accepted_http_status", "failure_http_status", "kept_codes")
    ACCEPTED_FIELD_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_VALUES_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    KEPT_CODES_FIELD_NUMBER: _ClassVar[int]
    accepted_field: str
    accepted_values: _containers.RepeatedScalarFieldContainer[str]
    accepted_http_status: int
    failure_http_status: int
    kept_codes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, accepted_field: _Optional[str] = ..., accepted_values: _Optional[_Iterable[str]] = ..., accepted_http_status: _Optional[int] = ..., failure_http_status: _Optional[int] = ..., kept_codes: _Optional[_Iterable[str]] = ...) -> None: ...
