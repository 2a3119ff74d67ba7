from cagw.v1 import common_pb2 as _common_pb2
from cagw.v1 import options_pb2 as _options_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CertificateAuthority(_message.Message):
    __slots__ = ("id", "name", "properties", "certificate", "chain")
    class PropertiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    properties: _containers.ScalarMap[str, str]
    certificate: _common_pb2.CertificateData
    chain: _containers.RepeatedCompositeFieldContainer[_common_pb2.CertificateData]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., properties: _Optional[_Mapping[str, str]] = ..., certificate: _Optional[_Union[_common_pb2.CertificateData, _Mapping]] = ..., chain: _Optional[_Iterable[_Union[_common_pb2.CertificateData, _Mapping]]] = ...) -> None: ...

class ListCertificateAuthoritiesRequest(_message.Message):
    __slots__ = ("fields",)
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    fields: str
    def __init__(self, fields: _Optional[str] = ...) -> None: ...

class ListCertificateAuthoritiesResponse(_message.Message):
    __slots__ = ("ca_list", "message")
    CA_LIST_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ca_list: _containers.RepeatedCompositeFieldContainer[CertificateAuthority]
    message: _common_pb2.Message
    def __init__(self, ca_list: _Optional[_Iterable[_Union[CertificateAuthority, _Mapping]]] = ..., message: _Optional[_Union[_common_pb2.Message, _Mapping]] = ...) -> None: ...

class GetCertificateAuthorityRequest(_message.Message):
    __slots__ = ("ca_id", "fields")
    CA_ID_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    ca_id: str
    fields: str
    def __init__(self, ca_id: _Optional[str] = ..., fields: _Optional[str] = ...) -> None: ...

class GetCertificateAuthorityResponse(_message.Message):
    __slots__ = ("ca", "message")
    CA_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ca: CertificateAuthority
    message: _common_pb2.Message
    def __init__(self, ca: _Optional[_Union[CertificateAuthority, _Mapping]] = ..., message: _Optional[_Union[_common_pb2.Message, _Mapping]] = ...) -> None: ...

class GetCertificateAuthorityStatusRequest(_message.Message):
    __slots__ = ("ca_id",)
    CA_ID_FIELD_NUMBER: _ClassVar[int]
    ca_id: str
    def __init__(self, ca_id: _Optional[str] = ...) -> None: ...

class GetCertificateAuthorityStatusResponse(_message.Message):
    __slots__ = ("status", "message")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    status: str
    message: _common_pb2.Message
    def __init__(self, status: _Optional[str] = ..., message: _Optional[_Union[_common_pb2.Message, _Mapping]] = ...) -> None: ...

class GetCertificateAuthorityPropertiesRequest(_message.Message):
    __slots__ = ("ca_id", "fields")
    CA_ID_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    ca_id: str
    fields: str
    def __init__(self, ca_id: _Optional[str] = ..., fields: _Optional[str] = ...) -> None: ...

class GetCertificateAuthorityPropertiesResponse(_message.Message):
    __slots__ = ("properties",)
    class PropertiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    properties: _containers.ScalarMap[str, str]
    def __init__(self, properties: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Requirement(_message.Message):
    __slots__ = ("name", "description", "required")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    required: bool
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., required: _Optional[bool] = ...) -> None: ...

class SubjectAltNameRequirement(_message.Message):
    __slots__ = ("type", "required")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    type: str
    required: bool
    def __init__(self, type: _Optional[str] = ..., required: _Optional[bool] = ...) -> None: ...

class Profile(_message.Message):
    __slots__ = ("id", "name", "properties", "protocols", "requested_properties", "subject_variable_requirements", "subject_alt_name_requirements")
    class PropertiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    PROTOCOLS_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_VARIABLE_REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ALT_NAME_REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    properties: _containers.ScalarMap[str, str]
    protocols: _containers.RepeatedScalarFieldContainer[str]
    requested_properties: _containers.RepeatedCompositeFieldContainer[Requirement]
    subject_variable_requirements: _containers.RepeatedCompositeFieldContainer[Requirement]
    subject_alt_name_requirements: _containers.RepeatedCompositeFieldContainer[SubjectAltNameRequirement]
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., properties: _Optional[_Mapping[str, str]] = ..., protocols: _Optional[_Iterable[str]] = ..., requested_properties: _Optional[_Iterable[_Union[Requirement, _Mapping]]] = ..., subject_variable_requirements: _Optional[_Iterable[_Union[Requirement, _Mapping]]] = ..., subject_alt_name_requirements: _Optional[_Iterable[_Union[SubjectAltNameRequirement, _Mapping]]] = ...) -> None: ...

class ListProfilesRequest(_message.Message):
    __slots__ = ("ca_id",)
    CA_ID_FIELD_NUMBER: _ClassVar[int]
    ca_id: str
    def __init__(self, ca_id: _Optional[str] = ...) -> None: ...

class ListProfilesResponse(_message.Message):
    __slots__ = ("profiles", "message")
    PROFILES_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    profiles: _containers.RepeatedCompositeFieldContainer[Profile]
    message: _common_pb2.Message
    def __init__(self, profiles: _Optional[_Iterable[_Union[Profile, _Mapping]]] = ..., message: _Optional[_Union[_common_pb2.Message, _Mapping]] = ...) -> None: ...

class GetProfileRequest(_message.Message):
    __slots__ = ("ca_id", "profile_id")
    CA_ID_FIELD_NUMBER: _ClassVar[int]
    PROFILE_ID_FIELD_NUMBER: _ClassVar[int]
    ca_id: str
    profile_id: str
    def __init__(self, ca_id: _Optional[str] = ..., profile_id: _Optional[str] = ...) -> None: ...

class GetProfileResponse(_message.Message):
    __slots__ = ("profile", "message")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    profile: Profile
    message: _common_pb2.Message
    def __init__(self, profile: _Optional[_Union[Profile, _Mapping]] = ..., message: _Optional[_Union[_common_pb2.Message, _Mapping]] = ...) -> None: ...
