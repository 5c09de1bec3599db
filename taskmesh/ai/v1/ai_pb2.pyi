from google.rpc import status_pb2 as _status_pb2
from taskmesh.jobs.v1 import jobs_pb2 as _jobs_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExecutionPattern(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXECUTION_PATTERN_UNSPECIFIED: _ClassVar[ExecutionPattern]
    EXECUTION_PATTERN_ASYNC: _ClassVar[ExecutionPattern]
    EXECUTION_PATTERN_SYNC: _ClassVar[ExecutionPattern]
EXECUTION_PATTERN_UNSPECIFIED: ExecutionPattern
EXECUTION_PATTERN_ASYNC: ExecutionPattern
EXECUTION_PATTERN_SYNC: ExecutionPattern

class ExecuteCapabilityRequest(_message.Message):
    __slots__ = ("capability", "pattern", "job_id", "user_id", "parse_task", "reservation", "request_id", "trace_context")
    class TraceContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CAPABILITY_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PARSE_TASK_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TRACE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    capability: _jobs_pb2.Capability
    pattern: ExecutionPattern
    job_id: str
    user_id: str
    parse_task: _jobs_pb2.ParseTaskInput
    reservation: _jobs_pb2.Reservation
    request_id: str
    trace_context: _containers.ScalarMap[str, str]
    def __init__(self, capability: _Optional[_Union[_jobs_pb2.Capability, str]] = ..., pattern: _Optional[_Union[ExecutionPattern, str]] = ..., job_id: _Optional[str] = ..., user_id: _Optional[str] = ..., parse_task: _Optional[_Union[_jobs_pb2.ParseTaskInput, _Mapping]] = ..., reservation: _Optional[_Union[_jobs_pb2.Reservation, _Mapping]] = ..., request_id: _Optional[str] = ..., trace_context: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ExecuteCapabilitiesRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[ExecuteCapabilityRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[ExecuteCapabilityRequest, _Mapping]]] = ...) -> None: ...

class ExecuteCapabilitiesResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ExecuteCapabilityResult]
    def __init__(self, results: _Optional[_Iterable[_Union[ExecuteCapabilityResult, _Mapping]]] = ...) -> None: ...

class ExecuteCapabilityResult(_message.Message):
    __slots__ = ("response", "error")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    response: ExecuteCapabilityResponse
    error: _status_pb2.Status
    def __init__(self, response: _Optional[_Union[ExecuteCapabilityResponse, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class ExecuteCapabilityResponse(_message.Message):
    __slots__ = ("accepted", "parse_task", "vague_input", "usage")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    PARSE_TASK_FIELD_NUMBER: _ClassVar[int]
    VAGUE_INPUT_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    accepted: bool
    parse_task: _jobs_pb2.ParseTaskOutput
    vague_input: _jobs_pb2.VagueInput
    usage: _jobs_pb2.TokenUsage
    def __init__(self, accepted: _Optional[bool] = ..., parse_task: _Optional[_Union[_jobs_pb2.ParseTaskOutput, _Mapping]] = ..., vague_input: _Optional[_Union[_jobs_pb2.VagueInput, _Mapping]] = ..., usage: _Optional[_Union[_jobs_pb2.TokenUsage, _Mapping]] = ...) -> None: ...

class ListCapabilitiesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CapabilityInfo(_message.Message):
    __slots__ = ("capability", "name", "description", "patterns")
    CAPABILITY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PATTERNS_FIELD_NUMBER: _ClassVar[int]
    capability: _jobs_pb2.Capability
    name: str
    description: str
    patterns: _containers.RepeatedScalarFieldContainer[ExecutionPattern]
    def __init__(self, capability: _Optional[_Union[_jobs_pb2.Capability, str]] = ..., name: _Optional[str] = ..., description: _Optional[str] = ..., patterns: _Optional[_Iterable[_Union[ExecutionPattern, str]]] = ...) -> None: ...

class ListCapabilitiesResponse(_message.Message):
    __slots__ = ("capabilities",)
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    capabilities: _containers.RepeatedCompositeFieldContainer[CapabilityInfo]
    def __init__(self, capabilities: _Optional[_Iterable[_Union[CapabilityInfo, _Mapping]]] = ...) -> None: ...
