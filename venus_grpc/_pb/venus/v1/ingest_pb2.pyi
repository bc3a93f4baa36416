import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Platform(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLATFORM_UNSPECIFIED: _ClassVar[Platform]
    PLATFORM_IOS: _ClassVar[Platform]
    PLATFORM_ANDROID: _ClassVar[Platform]
    PLATFORM_WEB: _ClassVar[Platform]
    PLATFORM_SERVER: _ClassVar[Platform]
    PLATFORM_DESKTOP: _ClassVar[Platform]

class ResultCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESULT_CODE_UNSPECIFIED: _ClassVar[ResultCode]
    RESULT_CODE_ALL_SUCCESS: _ClassVar[ResultCode]
    RESULT_CODE_PARTIAL_SUCCESS: _ClassVar[ResultCode]
    RESULT_CODE_ALL_FAIL: _ClassVar[ResultCode]

class EventCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_CODE_UNSPECIFIED: _ClassVar[EventCode]
    EVENT_CODE_OK: _ClassVar[EventCode]
    EVENT_CODE_VALIDATION_ERROR: _ClassVar[EventCode]
    EVENT_CODE_TOO_LARGE: _ClassVar[EventCode]
    EVENT_CODE_DUPLICATE_ID: _ClassVar[EventCode]
    EVENT_CODE_SERIALIZATION_ERROR: _ClassVar[EventCode]
    EVENT_CODE_PUBLISH_ERROR: _ClassVar[EventCode]
PLATFORM_UNSPECIFIED: Platform
PLATFORM_IOS: Platform
PLATFORM_ANDROID: Platform
PLATFORM_WEB: Platform
PLATFORM_SERVER: Platform
PLATFORM_DESKTOP: Platform
RESULT_CODE_UNSPECIFIED: ResultCode
RESULT_CODE_ALL_SUCCESS: ResultCode
RESULT_CODE_PARTIAL_SUCCESS: ResultCode
RESULT_CODE_ALL_FAIL: ResultCode
EVENT_CODE_UNSPECIFIED: EventCode
EVENT_CODE_OK: EventCode
EVENT_CODE_VALIDATION_ERROR: EventCode
EVENT_CODE_TOO_LARGE: EventCode
EVENT_CODE_DUPLICATE_ID: EventCode
EVENT_CODE_SERIALIZATION_ERROR: EventCode
EVENT_CODE_PUBLISH_ERROR: EventCode

class UploadEventsRequest(_message.Message):
    __slots__ = ("meta", "events")
    META_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    meta: BatchMeta
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, meta: _Optional[_Union[BatchMeta, _Mapping]] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class BatchMeta(_message.Message):
    __slots__ = ("app_id", "category", "platform", "app_version", "sdk_version", "device_id", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    APP_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    APP_VERSION_FIELD_NUMBER: _ClassVar[int]
    SDK_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    app_id: str
    category: str
    platform: Platform
    app_version: str
    sdk_version: str
    device_id: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, app_id: _Optional[str] = ..., category: _Optional[str] = ..., platform: _Optional[_Union[Platform, str]] = ..., app_version: _Optional[str] = ..., sdk_version: _Optional[str] = ..., device_id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("id", "occurred_at", "ip", "payload", "attributes")
    class AttributesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTES_FIELD_NUMBER: _ClassVar[int]
    id: str
    occurred_at: _timestamp_pb2.Timestamp
    ip: str
    payload: bytes
    attributes: _containers.ScalarMap[str, str]
    def __init__(self, id: _Optional[str] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ip: _Optional[str] = ..., payload: _Optional[bytes] = ..., attributes: _Optional[_Mapping[str, str]] = ...) -> None: ...

class EventResult(_message.Message):
    __slots__ = ("id", "backend_id", "code", "message", "retryable", "topic", "partition", "offset")
    ID_FIELD_NUMBER: _ClassVar[int]
    BACKEND_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    id: str
    backend_id: str
    code: EventCode
    message: str
    retryable: bool
    topic: str
    partition: int
    offset: int
    def __init__(self, id: _Optional[str] = ..., backend_id: _Optional[str] = ..., code: _Optional[_Union[EventCode, str]] = ..., message: _Optional[str] = ..., retryable: _Optional[bool] = ..., topic: _Optional[str] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class UploadEventsResponse(_message.Message):
    __slots__ = ("code", "message", "results", "request_id")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    code: ResultCode
    message: str
    results: _containers.RepeatedCompositeFieldContainer[EventResult]
    request_id: str
    def __init__(self, code: _Optional[_Union[ResultCode, str]] = ..., message: _Optional[str] = ..., results: _Optional[_Iterable[_Union[EventResult, _Mapping]]] = ..., request_id: _Optional[str] = ...) -> None: ...

class StreamEventsRequest(_message.Message):
    __slots__ = ("sequence", "batch")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    batch: UploadEventsRequest
    def __init__(self, sequence: _Optional[int] = ..., batch: _Optional[_Union[UploadEventsRequest, _Mapping]] = ...) -> None: ...

class StreamEventsResponse(_message.Message):
    __slots__ = ("sequence", "response", "rejection")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    REJECTION_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    response: UploadEventsResponse
    rejection: BatchRejection
    def __init__(self, sequence: _Optional[int] = ..., response: _Optional[_Union[UploadEventsResponse, _Mapping]] = ..., rejection: _Optional[_Union[BatchRejection, _Mapping]] = ...) -> None: ...

class BatchRejection(_message.Message):
    __slots__ = ("status_code", "message", "retry_after", "field_violations")
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_FIELD_NUMBER: _ClassVar[int]
    FIELD_VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    status_code: int
    message: str
    retry_after: _duration_pb2.Duration
    field_violations: _containers.RepeatedCompositeFieldContainer[FieldViolation]
    def __init__(self, status_code: _Optional[int] = ..., message: _Optional[str] = ..., retry_after: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., field_violations: _Optional[_Iterable[_Union[FieldViolation, _Mapping]]] = ...) -> None: ...

class FieldViolation(_message.Message):
    __slots__ = ("field", "description")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    field: str
    description: str
    def __init__(self, field: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...
