import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from taskmesh.tasks.v1 import tasks_pb2 as _tasks_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateUserRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class CreateUserResponse(_message.Message):
    __slots__ = ("user_id", "name", "api_key")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    name: str
    api_key: str
    def __init__(self, user_id: _Optional[str] = ..., name: _Optional[str] = ..., api_key: _Optional[str] = ...) -> None: ...

class ListUsersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UserKey(_message.Message):
    __slots__ = ("user_id", "user_name", "key_prefix", "create_time", "revoke_time")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_NAME_FIELD_NUMBER: _ClassVar[int]
    KEY_PREFIX_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    REVOKE_TIME_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    user_name: str
    key_prefix: str
    create_time: _timestamp_pb2.Timestamp
    revoke_time: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., user_name: _Optional[str] = ..., key_prefix: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoke_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListUsersResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[UserKey]
    def __init__(self, keys: _Optional[_Iterable[_Union[UserKey, _Mapping]]] = ...) -> None: ...

class RevokeKeyRequest(_message.Message):
    __slots__ = ("key_prefix",)
    KEY_PREFIX_FIELD_NUMBER: _ClassVar[int]
    key_prefix: str
    def __init__(self, key_prefix: _Optional[str] = ...) -> None: ...

class RevokeKeyResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CheckLedgerRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LedgerWindowMismatch(_message.Message):
    __slots__ = ("user_id", "window_start", "used", "reserved", "charged", "open_reserved")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    CHARGED_FIELD_NUMBER: _ClassVar[int]
    OPEN_RESERVED_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    window_start: int
    used: int
    reserved: int
    charged: int
    open_reserved: int
    def __init__(self, user_id: _Optional[str] = ..., window_start: _Optional[int] = ..., used: _Optional[int] = ..., reserved: _Optional[int] = ..., charged: _Optional[int] = ..., open_reserved: _Optional[int] = ...) -> None: ...

class LedgerJobMismatch(_message.Message):
    __slots__ = ("job_id", "charged", "recorded")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    CHARGED_FIELD_NUMBER: _ClassVar[int]
    RECORDED_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    charged: int
    recorded: int
    def __init__(self, job_id: _Optional[str] = ..., charged: _Optional[int] = ..., recorded: _Optional[int] = ...) -> None: ...

class CheckLedgerResponse(_message.Message):
    __slots__ = ("windows_checked", "window_mismatches", "job_mismatches")
    WINDOWS_CHECKED_FIELD_NUMBER: _ClassVar[int]
    WINDOW_MISMATCHES_FIELD_NUMBER: _ClassVar[int]
    JOB_MISMATCHES_FIELD_NUMBER: _ClassVar[int]
    windows_checked: int
    window_mismatches: _containers.RepeatedCompositeFieldContainer[LedgerWindowMismatch]
    job_mismatches: _containers.RepeatedCompositeFieldContainer[LedgerJobMismatch]
    def __init__(self, windows_checked: _Optional[int] = ..., window_mismatches: _Optional[_Iterable[_Union[LedgerWindowMismatch, _Mapping]]] = ..., job_mismatches: _Optional[_Iterable[_Union[LedgerJobMismatch, _Mapping]]] = ...) -> None: ...

class ReopenJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ReopenJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: _tasks_pb2.Job
    def __init__(self, job: _Optional[_Union[_tasks_pb2.Job, _Mapping]] = ...) -> None: ...
