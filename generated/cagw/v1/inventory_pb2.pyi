from cagw.v1 import common_pb2 as _common_pb2
from cagw.v1 import options_pb2 as _options_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InventoryCertificate(_message.Message):
    __slots__ = ("serial_number", "status", "subject_name", "names", "profile_id", "owner", "not_before", "not_after", "enrollment_id", "replaced_by", "replacement_enrollment_id", "days_to_expiry", "automatic_renewal")
    SERIAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    ENROLLMENT_ID_FIELD_NUMBER: _ClassVar[int]
    REPLACED_BY_FIELD_NUMBER: _ClassVar[int]
    REPLACEMENT_ENROLLMENT_ID_FIELD_NUMBER: _ClassVar[int]
    DAYS_TO_EXPIRY_FIELD_NUMBER: _ClassVar[int]
    AUTOMATIC_RENEWAL_FIELD_NUMBER: _ClassVar[int]
    serial_number: str
    status: str
    subject_name: str
    names: _containers.RepeatedScalarFieldContainer[str]
    profile_id: str
    owner: str
    not_before: str
    not_after: str
    enrollment_id: str
    replaced_by: str
    replacement_enrollment_id: str
    days_to_expiry: int
    automatic_renewal: str
    def __init__(self, serial_number: _Optional[str] = ..., status: _Optional[str] = ..., subject_name: _Optional[str] = ..., names: _Optional[_Iterable[str]] = ..., profile_id: _Optional[str] = ..., owner: _Optional[str] = ..., not_before: _Optional[str] = ..., not_after: _Optional[str] = ..., enrollment_id: _Optional[str] = ..., replaced_by: _Optional[str] = ..., replacement_enrollment_id: _Optional[str] = ..., days_to_expiry: _Optional[int] = ..., automatic_renewal: _Optional[str] = ...) -> None: ...

class ListCertificatesRequest(_message.Message):
    __slots__ = ("ca_id", "status", "owner", "name", "expiring_before", "expiring_within", "issued_after", "page_size", "page_token")
    CA_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXPIRING_BEFORE_FIELD_NUMBER: _ClassVar[int]
    EXPIRING_WITHIN_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AFTER_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ca_id: str
    status: str
    owner: str
    name: str
    expiring_before: str
    expiring_within: str
    issued_after: str
    page_size: int
    page_token: str
    def __init__(self, ca_id: _Optional[str] = ..., status: _Optional[str] = ..., owner: _Optional[str] = ..., name: _Optional[str] = ..., expiring_before: _Optional[str] = ..., expiring_within: _Optional[str] = ..., issued_after: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCertificatesResponse(_message.Message):
    __slots__ = ("certificates", "next_page_token", "message")
    CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    certificates: _containers.RepeatedCompositeFieldContainer[InventoryCertificate]
    next_page_token: str
    message: _common_pb2.Message
    def __init__(self, certificates: _Optional[_Iterable[_Union[InventoryCertificate, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., message: _Optional[_Union[_common_pb2.Message, _Mapping]] = ...) -> None: ...

class RenewalWindow(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: str
    end: str
    def __init__(self, start: _Optional[str] = ..., end: _Optional[str] = ...) -> None: ...

class GetRenewalInfoRequest(_message.Message):
    __slots__ = ("ca_id", "serial_number")
    CA_ID_FIELD_NUMBER: _ClassVar[int]
    SERIAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ca_id: str
    serial_number: str
    def __init__(self, ca_id: _Optional[str] = ..., serial_number: _Optional[str] = ...) -> None: ...

class GetRenewalInfoResponse(_message.Message):
    __slots__ = ("suggested_window", "explanation", "retry_after_seconds", "certificate", "message")
    SUGGESTED_WINDOW_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    suggested_window: RenewalWindow
    explanation: str
    retry_after_seconds: int
    certificate: InventoryCertificate
    message: _common_pb2.Message
    def __init__(self, suggested_window: _Optional[_Union[RenewalWindow, _Mapping]] = ..., explanation: _Optional[str] = ..., retry_after_seconds: _Optional[int] = ..., certificate: _Optional[_Union[InventoryCertificate, _Mapping]] = ..., message: _Optional[_Union[_common_pb2.Message, _Mapping]] = ...) -> None: ...

class CertificateLifecycleEvent(_message.Message):
    __slots__ = ("id", "type", "serial_number", "time", "owner", "replaces", "reason", "detail", "enrollment_id", "replaced_by", "renewal_of", "expires_within")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SERIAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    REPLACES_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    ENROLLMENT_ID_FIELD_NUMBER: _ClassVar[int]
    REPLACED_BY_FIELD_NUMBER: _ClassVar[int]
    RENEWAL_OF_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_WITHIN_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    serial_number: str
    time: str
    owner: str
    replaces: str
    reason: str
    detail: str
    enrollment_id: str
    replaced_by: str
    renewal_of: str
    expires_within: str
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., serial_number: _Optional[str] = ..., time: _Optional[str] = ..., owner: _Optional[str] = ..., replaces: _Optional[str] = ..., reason: _Optional[str] = ..., detail: _Optional[str] = ..., enrollment_id: _Optional[str] = ..., replaced_by: _Optional[str] = ..., renewal_of: _Optional[str] = ..., expires_within: _Optional[str] = ...) -> None: ...

class WatchCertificateEventsRequest(_message.Message):
    __slots__ = ("ca_id", "after", "max_events", "idle_seconds")
    CA_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENTS_FIELD_NUMBER: _ClassVar[int]
    IDLE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ca_id: str
    after: str
    max_events: int
    idle_seconds: int
    def __init__(self, ca_id: _Optional[str] = ..., after: _Optional[str] = ..., max_events: _Optional[int] = ..., idle_seconds: _Optional[int] = ...) -> None: ...

class WatchCertificateEventsResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: CertificateLifecycleEvent
    def __init__(self, event: _Optional[_Union[CertificateLifecycleEvent, _Mapping]] = ...) -> None: ...
