import datetime

from cagw.v1 import common_pb2 as _common_pb2
from cagw.v1 import options_pb2 as _options_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EnrollmentState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENROLLMENT_STATE_UNSPECIFIED: _ClassVar[EnrollmentState]
    ENROLLMENT_STATE_RECEIVED: _ClassVar[EnrollmentState]
    ENROLLMENT_STATE_SUBMITTED: _ClassVar[EnrollmentState]
    ENROLLMENT_STATE_WAITING: _ClassVar[EnrollmentState]
    ENROLLMENT_STATE_PENDING: _ClassVar[EnrollmentState]
    ENROLLMENT_STATE_ISSUED: _ClassVar[EnrollmentState]
    ENROLLMENT_STATE_TIMED_OUT: _ClassVar[EnrollmentState]
    ENROLLMENT_STATE_FAILED: _ClassVar[EnrollmentState]
ENROLLMENT_STATE_UNSPECIFIED: EnrollmentState
ENROLLMENT_STATE_RECEIVED: EnrollmentState
ENROLLMENT_STATE_SUBMITTED: EnrollmentState
ENROLLMENT_STATE_WAITING: EnrollmentState
ENROLLMENT_STATE_PENDING: EnrollmentState
ENROLLMENT_STATE_ISSUED: EnrollmentState
ENROLLMENT_STATE_TIMED_OUT: EnrollmentState
ENROLLMENT_STATE_FAILED: EnrollmentState

class RequiredFormat(_message.Message):
    __slots__ = ("format", "protection")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    PROTECTION_FIELD_NUMBER: _ClassVar[int]
    format: str
    protection: Protection
    def __init__(self, format: _Optional[str] = ..., protection: _Optional[_Union[Protection, _Mapping]] = ...) -> None: ...

class Protection(_message.Message):
    __slots__ = ("type", "password")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    type: str
    password: str
    def __init__(self, type: _Optional[str] = ..., password: _Optional[str] = ...) -> None: ...

class SubjectVariable(_message.Message):
    __slots__ = ("type", "value")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    type: str
    value: str
    def __init__(self, type: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class SubjectAltName(_message.Message):
    __slots__ = ("type", "value", "der")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DER_FIELD_NUMBER: _ClassVar[int]
    type: str
    value: str
    der: bytes
    def __init__(self, type: _Optional[str] = ..., value: _Optional[str] = ..., der: _Optional[bytes] = ...) -> None: ...

class Extension(_message.Message):
    __slots__ = ("oid", "critical", "value")
    OID_FIELD_NUMBER: _ClassVar[int]
    CRITICAL_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    oid: str
    critical: bool
    value: str
    def __init__(self, oid: _Optional[str] = ..., critical: _Optional[bool] = ..., value: _Optional[str] = ...) -> None: ...

class OptionalCertificateRequestDetails(_message.Message):
    __slots__ = ("subject_dn", "validity_period", "extensions", "private_key_usage_percentage", "encoded_public_key", "encoded_private_key", "force_issuance", "use_san_from_csr", "perform_pop")
    SUBJECT_DN_FIELD_NUMBER: _ClassVar[int]
    VALIDITY_PERIOD_FIELD_NUMBER: _ClassVar[int]
    EXTENSIONS_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_KEY_USAGE_PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    ENCODED_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    ENCODED_PRIVATE_KEY_FIELD_NUMBER: _ClassVar[int]
    FORCE_ISSUANCE_FIELD_NUMBER: _ClassVar[int]
    USE_SAN_FROM_CSR_FIELD_NUMBER: _ClassVar[int]
    PERFORM_POP_FIELD_NUMBER: _ClassVar[int]
    subject_dn: str
    validity_period: str
    extensions: _containers.RepeatedCompositeFieldContainer[Extension]
    private_key_usage_percentage: int
    encoded_public_key: str
    encoded_private_key: str
    force_issuance: bool
    use_san_from_csr: bool
    perform_pop: bool
    def __init__(self, subject_dn: _Optional[str] = ..., validity_period: _Optional[str] = ..., extensions: _Optional[_Iterable[_Union[Extension, _Mapping]]] = ..., private_key_usage_percentage: _Optional[int] = ..., encoded_public_key: _Optional[str] = ..., encoded_private_key: _Optional[str] = ..., force_issuance: _Optional[bool] = ..., use_san_from_csr: _Optional[bool] = ..., perform_pop: _Optional[bool] = ...) -> None: ...

class EnrollRequest(_message.Message):
    __slots__ = ("ca_id", "profile_id", "required_format", "csr", "subject_variables", "subject_alt_names", "optional_certificate_request_details", "properties", "renewal", "previous_subject_dn", "include_ca", "request_id", "max_wait", "property_values")
    class PropertiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CA_ID_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FORMAT_FIELD_NUMBER: _ClassVar[int]
    CSR_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_VARIABLES_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ALT_NAMES_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_CERTIFICATE_REQUEST_DETAILS_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    RENEWAL_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SUBJECT_DN_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_CA_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_WAIT_FIELD_NUMBER: _ClassVar[int]
    PROPERTY_VALUES_FIELD_NUMBER: _ClassVar[int]
    ca_id: str
    profile_id: str
    required_format: RequiredFormat
    csr: str
    subject_variables: _containers.RepeatedCompositeFieldContainer[SubjectVariable]
    subject_alt_names: _containers.RepeatedCompositeFieldContainer[SubjectAltName]
    optional_certificate_request_details: OptionalCertificateRequestDetails
    properties: _containers.ScalarMap[str, str]
    renewal: bool
    previous_subject_dn: str
    include_ca: bool
    request_id: str
    max_wait: _duration_pb2.Duration
    property_values: _struct_pb2.Struct
    def __init__(self, ca_id: _Optional[str] = ..., profile_id: _Optional[str] = ..., required_format: _Optional[_Union[RequiredFormat, _Mapping]] = ..., csr: _Optional[str] = ..., subject_variables: _Optional[_Iterable[_Union[SubjectVariable, _Mapping]]] = ..., subject_alt_names: _Optional[_Iterable[_Union[SubjectAltName, _Mapping]]] = ..., optional_certificate_request_details: _Optional[_Union[OptionalCertificateRequestDetails, _Mapping]] = ..., properties: _Optional[_Mapping[str, str]] = ..., renewal: _Optional[bool] = ..., previous_subject_dn: _Optional[str] = ..., include_ca: _Optional[bool] = ..., request_id: _Optional[str] = ..., max_wait: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., property_values: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class Enrollment(_message.Message):
    __slots__ = ("id", "serial_number", "subject_name", "status", "body", "validity_period", "properties", "sectigo_order_id", "chain")
    class PropertiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    SERIAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    VALIDITY_PERIOD_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    SECTIGO_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    id: str
    serial_number: str
    subject_name: str
    status: str
    body: str
    validity_period: str
    properties: _containers.ScalarMap[str, str]
    sectigo_order_id: str
    chain: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., serial_number: _Optional[str] = ..., subject_name: _Optional[str] = ..., status: _Optional[str] = ..., body: _Optional[str] = ..., validity_period: _Optional[str] = ..., properties: _Optional[_Mapping[str, str]] = ..., sectigo_order_id: _Optional[str] = ..., chain: _Optional[_Iterable[str]] = ...) -> None: ...

class EnrollResponse(_message.Message):
    __slots__ = ("enrollment", "message")
    ENROLLMENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    enrollment: Enrollment
    message: _common_pb2.Message
    def __init__(self, enrollment: _Optional[_Union[Enrollment, _Mapping]] = ..., message: _Optional[_Union[_common_pb2.Message, _Mapping]] = ...) -> None: ...

class EnrollAndWatchRequest(_message.Message):
    __slots__ = ("ca_id", "profile_id", "required_format", "csr", "subject_variables", "subject_alt_names", "optional_certificate_request_details", "properties", "renewal", "previous_subject_dn", "include_ca", "request_id", "max_wait", "property_values")
    class PropertiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CA_ID_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FORMAT_FIELD_NUMBER: _ClassVar[int]
    CSR_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_VARIABLES_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ALT_NAMES_FIELD_NUMBER: _ClassVar[int]
    OPTIONAL_CERTIFICATE_REQUEST_DETAILS_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    RENEWAL_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SUBJECT_DN_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_CA_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_WAIT_FIELD_NUMBER: _ClassVar[int]
    PROPERTY_VALUES_FIELD_NUMBER: _ClassVar[int]
    ca_id: str
    profile_id: str
    required_format: RequiredFormat
    csr: str
    subject_variables: _containers.RepeatedCompositeFieldContainer[SubjectVariable]
    subject_alt_names: _containers.RepeatedCompositeFieldContainer[SubjectAltName]
    optional_certificate_request_details: OptionalCertificateRequestDetails
    properties: _containers.ScalarMap[str, str]
    renewal: bool
    previous_subject_dn: str
    include_ca: bool
    request_id: str
    max_wait: _duration_pb2.Duration
    property_values: _struct_pb2.Struct
    def __init__(self, ca_id: _Optional[str] = ..., profile_id: _Optional[str] = ..., required_format: _Optional[_Union[RequiredFormat, _Mapping]] = ..., csr: _Optional[str] = ..., subject_variables: _Optional[_Iterable[_Union[SubjectVariable, _Mapping]]] = ..., subject_alt_names: _Optional[_Iterable[_Union[SubjectAltName, _Mapping]]] = ..., optional_certificate_request_details: _Optional[_Union[OptionalCertificateRequestDetails, _Mapping]] = ..., properties: _Optional[_Mapping[str, str]] = ..., renewal: _Optional[bool] = ..., previous_subject_dn: _Optional[str] = ..., include_ca: _Optional[bool] = ..., request_id: _Optional[str] = ..., max_wait: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., property_values: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class EnrollmentEvent(_message.Message):
    __slots__ = ("enrollment_id", "state", "time", "sectigo_order_id", "attempt", "max_attempts", "delay", "next_attempt_time", "detail", "enrollment", "error")
    ENROLLMENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    SECTIGO_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    DELAY_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    ENROLLMENT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    enrollment_id: str
    state: EnrollmentState
    time: _timestamp_pb2.Timestamp
    sectigo_order_id: str
    attempt: int
    max_attempts: int
    delay: _duration_pb2.Duration
    next_attempt_time: _timestamp_pb2.Timestamp
    detail: str
    enrollment: Enrollment
    error: _status_pb2.Status
    def __init__(self, enrollment_id: _Optional[str] = ..., state: _Optional[_Union[EnrollmentState, str]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sectigo_order_id: _Optional[str] = ..., attempt: _Optional[int] = ..., max_attempts: _Optional[int] = ..., delay: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., next_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., detail: _Optional[str] = ..., enrollment: _Optional[_Union[Enrollment, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class EnrollAndWatchResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: EnrollmentEvent
    def __init__(self, event: _Optional[_Union[EnrollmentEvent, _Mapping]] = ...) -> None: ...

class GetEnrollmentRequest(_message.Message):
    __slots__ = ("ca_id", "enrollment_id", "protection")
    CA_ID_FIELD_NUMBER: _ClassVar[int]
    ENROLLMENT_ID_FIELD_NUMBER: _ClassVar[int]
    PROTECTION_FIELD_NUMBER: _ClassVar[int]
    ca_id: str
    enrollment_id: str
    protection: Protection
    def __init__(self, ca_id: _Optional[str] = ..., enrollment_id: _Optional[str] = ..., protection: _Optional[_Union[Protection, _Mapping]] = ...) -> None: ...

class GetEnrollmentResponse(_message.Message):
    __slots__ = ("enrollment", "last_event", "message")
    ENROLLMENT_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    enrollment: Enrollment
    last_event: EnrollmentEvent
    message: _common_pb2.Message
    def __init__(self, enrollment: _Optional[_Union[Enrollment, _Mapping]] = ..., last_event: _Optional[_Union[EnrollmentEvent, _Mapping]] = ..., message: _Optional[_Union[_common_pb2.Message, _Mapping]] = ...) -> None: ...

class WatchEnrollmentRequest(_message.Message):
    __slots__ = ("ca_id", "enrollment_id")
    CA_ID_FIELD_NUMBER: _ClassVar[int]
    ENROLLMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ca_id: str
    enrollment_id: str
    def __init__(self, ca_id: _Optional[str] = ..., enrollment_id: _Optional[str] = ...) -> None: ...

class WatchEnrollmentResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: EnrollmentEvent
    def __init__(self, event: _Optional[_Union[EnrollmentEvent, _Mapping]] = ...) -> None: ...
