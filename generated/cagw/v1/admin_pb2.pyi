import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AdminOrder(_message.Message):
    __slots__ = ("id", "ca_id", "kind", "state", "profile_id", "common_name", "requested_dn", "ca_order_id", "attempts", "create_time", "update_time", "next_attempt_time", "detail", "error_reason", "serial_number", "request_id", "requested_by")
    ID_FIELD_NUMBER: _ClassVar[int]
    CA_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    COMMON_NAME_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_DN_FIELD_NUMBER: _ClassVar[int]
    CA_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_TIME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    ERROR_REASON_FIELD_NUMBER: _ClassVar[int]
    SERIAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    id: str
    ca_id: str
    kind: str
    state: str
    profile_id: str
    common_name: str
    requested_dn: str
    ca_order_id: str
    attempts: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    next_attempt_time: _timestamp_pb2.Timestamp
    detail: str
    error_reason: str
    serial_number: str
    request_id: str
    requested_by: str
    def __init__(self, id: _Optional[str] = ..., ca_id: _Optional[str] = ..., kind: _Optional[str] = ..., state: _Optional[str] = ..., profile_id: _Optional[str] = ..., common_name: _Optional[str] = ..., requested_dn: _Optional[str] = ..., ca_order_id: _Optional[str] = ..., attempts: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_attempt_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., detail: _Optional[str] = ..., error_reason: _Optional[str] = ..., serial_number: _Optional[str] = ..., request_id: _Optional[str] = ..., requested_by: _Optional[str] = ...) -> None: ...

class OrderHistoryEntry(_message.Message):
    __slots__ = ("time", "state", "detail")
    TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    state: str
    detail: str
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class OrderCACall(_message.Message):
    __slots__ = ("time", "operation", "outcome", "duration_ms", "error")
    TIME_FIELD_NUMBER: _ClassVar[int]
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    operation: str
    outcome: str
    duration_ms: float
    error: str
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., operation: _Optional[str] = ..., outcome: _Optional[str] = ..., duration_ms: _Optional[float] = ..., error: _Optional[str] = ...) -> None: ...

class OrderAuditEntry(_message.Message):
    __slots__ = ("time", "actor", "action", "outcome", "detail")
    TIME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    actor: str
    action: str
    outcome: str
    detail: str
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., action: _Optional[str] = ..., outcome: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class ListOrdersRequest(_message.Message):
    __slots__ = ("state", "ca_id", "page_size", "page_token")
    STATE_FIELD_NUMBER: _ClassVar[int]
    CA_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    state: str
    ca_id: str
    page_size: int
    page_token: str
    def __init__(self, state: _Optional[str] = ..., ca_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListOrdersResponse(_message.Message):
    __slots__ = ("orders", "next_page_token")
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[AdminOrder]
    next_page_token: str
    def __init__(self, orders: _Optional[_Iterable[_Union[AdminOrder, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetOrderRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetOrderResponse(_message.Message):
    __slots__ = ("order", "history", "ca_calls", "audit", "running")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    CA_CALLS_FIELD_NUMBER: _ClassVar[int]
    AUDIT_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    order: AdminOrder
    history: _containers.RepeatedCompositeFieldContainer[OrderHistoryEntry]
    ca_calls: _containers.RepeatedCompositeFieldContainer[OrderCACall]
    audit: _containers.RepeatedCompositeFieldContainer[OrderAuditEntry]
    running: bool
    def __init__(self, order: _Optional[_Union[AdminOrder, _Mapping]] = ..., history: _Optional[_Iterable[_Union[OrderHistoryEntry, _Mapping]]] = ..., ca_calls: _Optional[_Iterable[_Union[OrderCACall, _Mapping]]] = ..., audit: _Optional[_Iterable[_Union[OrderAuditEntry, _Mapping]]] = ..., running: _Optional[bool] = ...) -> None: ...

class RetryOrderRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class RetryOrderResponse(_message.Message):
    __slots__ = ("order", "action")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    order: AdminOrder
    action: str
    def __init__(self, order: _Optional[_Union[AdminOrder, _Mapping]] = ..., action: _Optional[str] = ...) -> None: ...

class AbandonOrderRequest(_message.Message):
    __slots__ = ("id", "reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    reason: str
    def __init__(self, id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class AbandonOrderResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: AdminOrder
    def __init__(self, order: _Optional[_Union[AdminOrder, _Mapping]] = ...) -> None: ...
