from cagw.v1 import common_pb2 as _common_pb2
from cagw.v1 import options_pb2 as _options_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubjectCertificate(_message.Message):
    __slots__ = ("serial_number", "status", "validity_period", "subject_name", "enrollment_id", "certificate_data")
    SERIAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VALIDITY_PERIOD_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    ENROLLMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_DATA_FIELD_NUMBER: _ClassVar[int]
    serial_number: str
    status: str
    validity_period: str
    subject_name: str
    enrollment_id: str
    certificate_data: str
    def __init__(self, serial_number: _Optional[str] = ..., status: _Optional[str] = ..., validity_period: _Optional[str] = ..., subject_name: _Optional[str] = ..., enrollment_id: _Optional[str] = ..., certificate_data: _Optional[str] = ...) -> None: ...

class Subject(_message.Message):
    __slots__ = ("dn", "certificates")
    DN_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    dn: str
    certificates: _containers.RepeatedCompositeFieldContainer[SubjectCertificate]
    def __init__(self, dn: _Optional[str] = ..., certificates: _Optional[_Iterable[_Union[SubjectCertificate, _Mapping]]] = ...) -> None: ...

class GetSubjectRequest(_message.Message):
    __slots__ = ("ca_id", "dn", "preferred_page_size", "next_page_index")
    CA_ID_FIELD_NUMBER: _ClassVar[int]
    DN_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_INDEX_FIELD_NUMBER: _ClassVar[int]
    ca_id: str
    dn: str
    preferred_page_size: int
    next_page_index: str
    def __init__(self, ca_id: _Optional[str] = ..., dn: _Optional[str] = ..., preferred_page_size: _Optional[int] = ..., next_page_index: _Optional[str] = ...) -> None: ...

class GetSubjectResponse(_message.Message):
    __slots__ = ("subject", "message", "next_page_index", "more_pages")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_INDEX_FIELD_NUMBER: _ClassVar[int]
    MORE_PAGES_FIELD_NUMBER: _ClassVar[int]
    subject: Subject
    message: _common_pb2.Message
    next_page_index: str
    more_pages: bool
    def __init__(self, subject: _Optional[_Union[Subject, _Mapping]] = ..., message: _Optional[_Union[_common_pb2.Message, _Mapping]] = ..., next_page_index: _Optional[str] = ..., more_pages: _Optional[bool] = ...) -> None: ...

class PerformSubjectActionRequest(_message.Message):
    __slots__ = ("ca_id", "dn", "action")
    CA_ID_FIELD_NUMBER: _ClassVar[int]
    DN_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ca_id: str
    dn: str
    action: _common_pb2.Action
    def __init__(self, ca_id: _Optional[str] = ..., dn: _Optional[str] = ..., action: _Optional[_Union[_common_pb2.Action, _Mapping]] = ...) -> None: ...

class PerformSubjectActionResponse(_message.Message):
    __slots__ = ("action", "serial_numbers", "message")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    SERIAL_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    action: _common_pb2.Action
    serial_numbers: _containers.RepeatedScalarFieldContainer[str]
    message: _common_pb2.Message
    def __init__(self, action: _Optional[_Union[_common_pb2.Action, _Mapping]] = ..., serial_numbers: _Optional[_Iterable[str]] = ..., message: _Optional[_Union[_common_pb2.Message, _Mapping]] = ...) -> None: ...
