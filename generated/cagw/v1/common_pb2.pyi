from cagw.v1 import options_pb2 as _options_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MessageDetail(_message.Message):
    __slots__ = ("code", "message", "target", "value")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    target: str
    value: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., target: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class Message(_message.Message):
    __slots__ = ("code", "message", "target", "value", "details")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    target: str
    value: str
    details: _containers.RepeatedCompositeFieldContainer[MessageDetail]
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., target: _Optional[str] = ..., value: _Optional[str] = ..., details: _Optional[_Iterable[_Union[MessageDetail, _Mapping]]] = ...) -> None: ...

class ErrorResponse(_message.Message):
    __slots__ = ("error",)
    ERROR_FIELD_NUMBER: _ClassVar[int]
    error: Message
    def __init__(self, error: _Optional[_Union[Message, _Mapping]] = ...) -> None: ...

class CertificateData(_message.Message):
    __slots__ = ("certificate_data",)
    CERTIFICATE_DATA_FIELD_NUMBER: _ClassVar[int]
    certificate_data: str
    def __init__(self, certificate_data: _Optional[str] = ...) -> None: ...

class Action(_message.Message):
    __slots__ = ("type", "id", "status", "reason", "comment", "compromise_date", "succeed_if_already_in_requested_state", "properties", "issue_crl", "force", "csr")
    class PropertiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TYPE_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    COMPROMISE_DATE_FIELD_NUMBER: _ClassVar[int]
    SUCCEED_IF_ALREADY_IN_REQUESTED_STATE_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    ISSUE_CRL_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    CSR_FIELD_NUMBER: _ClassVar[int]
    type: str
    id: str
    status: str
    reason: str
    comment: str
    compromise_date: str
    succeed_if_already_in_requested_state: bool
    properties: _containers.ScalarMap[str, str]
    issue_crl: _struct_pb2.Value
    force: bool
    csr: str
    def __init__(self, type: _Optional[str] = ..., id: _Optional[str] = ..., status: _Optional[str] = ..., reason: _Optional[str] = ..., comment: _Optional[str] = ..., compromise_date: _Optional[str] = ..., succeed_if_already_in_requested_state: _Optional[bool] = ..., properties: _Optional[_Mapping[str, str]] = ..., issue_crl: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., force: _Optional[bool] = ..., csr: _Optional[str] = ...) -> None: ...
