from cagw.v1 import common_pb2 as _common_pb2
from cagw.v1 import enrollments_pb2 as _enrollments_pb2
from cagw.v1 import options_pb2 as _options_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubjectPublicKeyInfo(_message.Message):
    __slots__ = ("public_key_alg", "subject_public_key")
    PUBLIC_KEY_ALG_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    public_key_alg: str
    subject_public_key: str
    def __init__(self, public_key_alg: _Optional[str] = ..., subject_public_key: _Optional[str] = ...) -> None: ...

class RevocationInfo(_message.Message):
    __slots__ = ("comment", "compromise_date", "revocation_date", "reason")
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    COMPROMISE_DATE_FIELD_NUMBER: _ClassVar[int]
    REVOCATION_DATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    comment: str
    compromise_date: str
    revocation_date: str
    reason: str
    def __init__(self, comment: _Optional[str] = ..., compromise_date: _Optional[str] = ..., revocation_date: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class Certificate(_message.Message):
    __slots__ = ("status", "version_number", "serial_number", "signature_alg_id", "issuer_name", "subject_name", "rfc2253_encoded_subject_name", "rfc2253_escaped_subject_name", "validity_period", "subject_public_key_info", "issuer_unique_identifier", "subject_unique_identifier", "certificate_signature_alg", "revocation_info", "certificate_data")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VERSION_NUMBER_FIELD_NUMBER: _ClassVar[int]
    SERIAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_ALG_ID_FIELD_NUMBER: _ClassVar[int]
    ISSUER_NAME_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    RFC2253_ENCODED_SUBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    RFC2253_ESCAPED_SUBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    VALIDITY_PERIOD_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_PUBLIC_KEY_INFO_FIELD_NUMBER: _ClassVar[int]
    ISSUER_UNIQUE_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_UNIQUE_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_SIGNATURE_ALG_FIELD_NUMBER: _ClassVar[int]
    REVOCATION_INFO_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_DATA_FIELD_NUMBER: _ClassVar[int]
    status: str
    version_number: str
    serial_number: str
    signature_alg_id: str
    issuer_name: str
    subject_name: str
    rfc2253_encoded_subject_name: str
    rfc2253_escaped_subject_name: str
    validity_period: str
    subject_public_key_info: SubjectPublicKeyInfo
    issuer_unique_identifier: str
    subject_unique_identifier: str
    certificate_signature_alg: str
    revocation_info: RevocationInfo
    certificate_data: str
    def __init__(self, status: _Optional[str] = ..., version_number: _Optional[str] = ..., serial_number: _Optional[str] = ..., signature_alg_id: _Optional[str] = ..., issuer_name: _Optional[str] = ..., subject_name: _Optional[str] = ..., rfc2253_encoded_subject_name: _Optional[str] = ..., rfc2253_escaped_subject_name: _Optional[str] = ..., validity_period: _Optional[str] = ..., subject_public_key_info: _Optional[_Union[SubjectPublicKeyInfo, _Mapping]] = ..., issuer_unique_identifier: _Optional[str] = ..., subject_unique_identifier: _Optional[str] = ..., certificate_signature_alg: _Optional[str] = ..., revocation_info: _Optional[_Union[RevocationInfo, _Mapping]] = ..., certificate_data: _Optional[str] = ...) -> None: ...

class GetCertificateRequest(_message.Message):
    __slots__ = ("ca_id", "serial_number", "fields")
    CA_ID_FIELD_NUMBER: _ClassVar[int]
    SERIAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    ca_id: str
    serial_number: str
    fields: str
    def __init__(self, ca_id: _Optional[str] = ..., serial_number: _Optional[str] = ..., fields: _Optional[str] = ...) -> None: ...

class GetCertificateResponse(_message.Message):
    __slots__ = ("certificate", "chain", "message")
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    certificate: Certificate
    chain: _containers.RepeatedCompositeFieldContainer[_common_pb2.CertificateData]
    message: _common_pb2.Message
    def __init__(self, certificate: _Optional[_Union[Certificate, _Mapping]] = ..., chain: _Optional[_Iterable[_Union[_common_pb2.CertificateData, _Mapping]]] = ..., message: _Optional[_Union[_common_pb2.Message, _Mapping]] = ...) -> None: ...

class PerformCertificateActionRequest(_message.Message):
    __slots__ = ("ca_id", "serial_number", "action")
    CA_ID_FIELD_NUMBER: _ClassVar[int]
    SERIAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    ca_id: str
    serial_number: str
    action: _common_pb2.Action
    def __init__(self, ca_id: _Optional[str] = ..., serial_number: _Optional[str] = ..., action: _Optional[_Union[_common_pb2.Action, _Mapping]] = ...) -> None: ...

class PerformCertificateActionResponse(_message.Message):
    __slots__ = ("action", "message", "enrollment")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ENROLLMENT_FIELD_NUMBER: _ClassVar[int]
    action: _common_pb2.Action
    message: _common_pb2.Message
    enrollment: _enrollments_pb2.Enrollment
    def __init__(self, action: _Optional[_Union[_common_pb2.Action, _Mapping]] = ..., message: _Optional[_Union[_common_pb2.Message, _Mapping]] = ..., enrollment: _Optional[_Union[_enrollments_pb2.Enrollment, _Mapping]] = ...) -> None: ...

class CertificateEvent(_message.Message):
    __slots__ = ("action", "event", "event_date", "certificate", "serial_number", "detail", "reason")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    EVENT_DATE_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    SERIAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    action: str
    event: int
    event_date: str
    certificate: str
    serial_number: str
    detail: str
    reason: str
    def __init__(self, action: _Optional[str] = ..., event: _Optional[int] = ..., event_date: _Optional[str] = ..., certificate: _Optional[str] = ..., serial_number: _Optional[str] = ..., detail: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class EventsMetadata(_message.Message):
    __slots__ = ("current_count", "total_count", "current_offset", "current_limit")
    CURRENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    CURRENT_LIMIT_FIELD_NUMBER: _ClassVar[int]
    current_count: int
    total_count: int
    current_offset: int
    current_limit: int
    def __init__(self, current_count: _Optional[int] = ..., total_count: _Optional[int] = ..., current_offset: _Optional[int] = ..., current_limit: _Optional[int] = ...) -> None: ...

class ListCertificateEventsRequest(_message.Message):
    __slots__ = ("ca_id", "start_date", "preferred_page_size", "next_page_index", "fields")
    CA_ID_FIELD_NUMBER: _ClassVar[int]
    START_DATE_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_INDEX_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    ca_id: str
    start_date: str
    preferred_page_size: int
    next_page_index: str
    fields: str
    def __init__(self, ca_id: _Optional[str] = ..., start_date: _Optional[str] = ..., preferred_page_size: _Optional[int] = ..., next_page_index: _Optional[str] = ..., fields: _Optional[str] = ...) -> None: ...

class ListCertificateEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_index", "more_pages", "has_more", "metadata")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_INDEX_FIELD_NUMBER: _ClassVar[int]
    MORE_PAGES_FIELD_NUMBER: _ClassVar[int]
    HAS_MORE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[CertificateEvent]
    next_page_index: str
    more_pages: bool
    has_more: bool
    metadata: EventsMetadata
    def __init__(self, events: _Optional[_Iterable[_Union[CertificateEvent, _Mapping]]] = ..., next_page_index: _Optional[str] = ..., more_pages: _Optional[bool] = ..., has_more: _Optional[bool] = ..., metadata: _Optional[_Union[EventsMetadata, _Mapping]] = ...) -> None: ...
