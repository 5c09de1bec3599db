import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Capability(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAPABILITY_UNSPECIFIED: _ClassVar[Capability]
    CAPABILITY_PARSE_TASK: _ClassVar[Capability]
CAPABILITY_UNSPECIFIED: Capability
CAPABILITY_PARSE_TASK: Capability

class PriorityLevel(_message.Message):
    __slots__ = ("name", "min_score", "max_score")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    MAX_SCORE_FIELD_NUMBER: _ClassVar[int]
    name: str
    min_score: int
    max_score: int
    def __init__(self, name: _Optional[str] = ..., min_score: _Optional[int] = ..., max_score: _Optional[int] = ...) -> None: ...

class ParseTaskConfig(_message.Message):
    __slots__ = ("categories", "priority_levels")
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_LEVELS_FIELD_NUMBER: _ClassVar[int]
    categories: _containers.RepeatedScalarFieldContainer[str]
    priority_levels: _containers.RepeatedCompositeFieldContainer[PriorityLevel]
    def __init__(self, categories: _Optional[_Iterable[str]] = ..., priority_levels: _Optional[_Iterable[_Union[PriorityLevel, _Mapping]]] = ...) -> None: ...

class ParseTaskInput(_message.Message):
    __slots__ = ("natural_language", "config", "reference_time")
    NATURAL_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_TIME_FIELD_NUMBER: _ClassVar[int]
    natural_language: str
    config: ParseTaskConfig
    reference_time: _timestamp_pb2.Timestamp
    def __init__(self, natural_language: _Optional[str] = ..., config: _Optional[_Union[ParseTaskConfig, _Mapping]] = ..., reference_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Priority(_message.Message):
    __slots__ = ("level", "score", "reason")
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    level: str
    score: int
    reason: str
    def __init__(self, level: _Optional[str] = ..., score: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class ParseTaskOutput(_message.Message):
    __slots__ = ("title", "due_time", "category", "priority", "subtasks")
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DUE_TIME_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SUBTASKS_FIELD_NUMBER: _ClassVar[int]
    title: str
    due_time: _timestamp_pb2.Timestamp
    category: str
    priority: Priority
    subtasks: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, title: _Optional[str] = ..., due_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., category: _Optional[str] = ..., priority: _Optional[_Union[Priority, _Mapping]] = ..., subtasks: _Optional[_Iterable[str]] = ...) -> None: ...

class VagueInput(_message.Message):
    __slots__ = ("reason", "suggestions")
    REASON_FIELD_NUMBER: _ClassVar[int]
    SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    reason: str
    suggestions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, reason: _Optional[str] = ..., suggestions: _Optional[_Iterable[str]] = ...) -> None: ...

class TokenUsage(_message.Message):
    __slots__ = ("input_tokens", "output_tokens", "llm_calls")
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    LLM_CALLS_FIELD_NUMBER: _ClassVar[int]
    input_tokens: int
    output_tokens: int
    llm_calls: int
    def __init__(self, input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., llm_calls: _Optional[int] = ...) -> None: ...

class LlmCallUsage(_message.Message):
    __slots__ = ("operation", "input_tokens", "output_tokens", "estimated")
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_FIELD_NUMBER: _ClassVar[int]
    operation: str
    input_tokens: int
    output_tokens: int
    estimated: bool
    def __init__(self, operation: _Optional[str] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., estimated: _Optional[bool] = ...) -> None: ...

class Reservation(_message.Message):
    __slots__ = ("tokens", "window_start")
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    tokens: int
    window_start: _timestamp_pb2.Timestamp
    def __init__(self, tokens: _Optional[int] = ..., window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CapabilityJob(_message.Message):
    __slots__ = ("job_id", "user_id", "capability", "parse_task", "request_id", "enqueue_time", "reservation", "prior_usage", "prior_calls")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CAPABILITY_FIELD_NUMBER: _ClassVar[int]
    PARSE_TASK_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ENQUEUE_TIME_FIELD_NUMBER: _ClassVar[int]
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    PRIOR_USAGE_FIELD_NUMBER: _ClassVar[int]
    PRIOR_CALLS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    user_id: str
    capability: Capability
    parse_task: ParseTaskInput
    request_id: str
    enqueue_time: _timestamp_pb2.Timestamp
    reservation: Reservation
    prior_usage: TokenUsage
    prior_calls: _containers.RepeatedCompositeFieldContainer[LlmCallUsage]
    def __init__(self, job_id: _Optional[str] = ..., user_id: _Optional[str] = ..., capability: _Optional[_Union[Capability, str]] = ..., parse_task: _Optional[_Union[ParseTaskInput, _Mapping]] = ..., request_id: _Optional[str] = ..., enqueue_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reservation: _Optional[_Union[Reservation, _Mapping]] = ..., prior_usage: _Optional[_Union[TokenUsage, _Mapping]] = ..., prior_calls: _Optional[_Iterable[_Union[LlmCallUsage, _Mapping]]] = ...) -> None: ...
