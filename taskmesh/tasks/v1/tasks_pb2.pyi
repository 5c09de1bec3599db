import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from taskmesh.jobs.v1 import jobs_pb2 as _jobs_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_WITHDRAWN: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]

class JobErrorType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_ERROR_TYPE_UNSPECIFIED: _ClassVar[JobErrorType]
    JOB_ERROR_TYPE_VAGUE_INPUT: _ClassVar[JobErrorType]
    JOB_ERROR_TYPE_INVALID_OUTPUT: _ClassVar[JobErrorType]
    JOB_ERROR_TYPE_RETRIES_EXHAUSTED: _ClassVar[JobErrorType]
    JOB_ERROR_TYPE_TIMED_OUT: _ClassVar[JobErrorType]
    JOB_ERROR_TYPE_INTERNAL: _ClassVar[JobErrorType]
    JOB_ERROR_TYPE_INVALID_INPUT: _ClassVar[JobErrorType]
    JOB_ERROR_TYPE_BUDGET_EXHAUSTED: _ClassVar[JobErrorType]
    JOB_ERROR_TYPE_LLM_REJECTED: _ClassVar[JobErrorType]

class TaskOrderBy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_ORDER_BY_UNSPECIFIED: _ClassVar[TaskOrderBy]
    TASK_ORDER_BY_CREATE_TIME: _ClassVar[TaskOrderBy]
    TASK_ORDER_BY_DUE_TIME: _ClassVar[TaskOrderBy]
    TASK_ORDER_BY_PRIORITY_SCORE: _ClassVar[TaskOrderBy]

class OrderDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_DIRECTION_UNSPECIFIED: _ClassVar[OrderDirection]
    ORDER_DIRECTION_ASC: _ClassVar[OrderDirection]
    ORDER_DIRECTION_DESC: _ClassVar[OrderDirection]
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_WITHDRAWN: JobState
JOB_STATE_CANCELLED: JobState
JOB_ERROR_TYPE_UNSPECIFIED: JobErrorType
JOB_ERROR_TYPE_VAGUE_INPUT: JobErrorType
JOB_ERROR_TYPE_INVALID_OUTPUT: JobErrorType
JOB_ERROR_TYPE_RETRIES_EXHAUSTED: JobErrorType
JOB_ERROR_TYPE_TIMED_OUT: JobErrorType
JOB_ERROR_TYPE_INTERNAL: JobErrorType
JOB_ERROR_TYPE_INVALID_INPUT: JobErrorType
JOB_ERROR_TYPE_BUDGET_EXHAUSTED: JobErrorType
JOB_ERROR_TYPE_LLM_REJECTED: JobErrorType
TASK_ORDER_BY_UNSPECIFIED: TaskOrderBy
TASK_ORDER_BY_CREATE_TIME: TaskOrderBy
TASK_ORDER_BY_DUE_TIME: TaskOrderBy
TASK_ORDER_BY_PRIORITY_SCORE: TaskOrderBy
ORDER_DIRECTION_UNSPECIFIED: OrderDirection
ORDER_DIRECTION_ASC: OrderDirection
ORDER_DIRECTION_DESC: OrderDirection

class JobError(_message.Message):
    __slots__ = ("type", "message", "suggestions")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    type: JobErrorType
    message: str
    suggestions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, type: _Optional[_Union[JobErrorType, str]] = ..., message: _Optional[str] = ..., suggestions: _Optional[_Iterable[str]] = ...) -> None: ...

class Subtask(_message.Message):
    __slots__ = ("subtask_id", "title", "order")
    SUBTASK_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    subtask_id: str
    title: str
    order: int
    def __init__(self, subtask_id: _Optional[str] = ..., title: _Optional[str] = ..., order: _Optional[int] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("task_id", "title", "due_time", "category", "priority", "subtasks", "create_time", "update_time", "job_id")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DUE_TIME_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SUBTASKS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    title: str
    due_time: _timestamp_pb2.Timestamp
    category: str
    priority: _jobs_pb2.Priority
    subtasks: _containers.RepeatedCompositeFieldContainer[Subtask]
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    job_id: str
    def __init__(self, task_id: _Optional[str] = ..., title: _Optional[str] = ..., due_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., category: _Optional[str] = ..., priority: _Optional[_Union[_jobs_pb2.Priority, _Mapping]] = ..., subtasks: _Optional[_Iterable[_Union[Subtask, _Mapping]]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., job_id: _Optional[str] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "state", "create_time", "update_time", "attempts", "task", "error", "user_id")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: JobState
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    attempts: int
    task: Task
    error: JobError
    user_id: str
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempts: _Optional[int] = ..., task: _Optional[_Union[Task, _Mapping]] = ..., error: _Optional[_Union[JobError, _Mapping]] = ..., user_id: _Optional[str] = ...) -> None: ...

class AuthenticateRequest(_message.Message):
    __slots__ = ("api_key",)
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    api_key: str
    def __init__(self, api_key: _Optional[str] = ...) -> None: ...

class AuthenticateResponse(_message.Message):
    __slots__ = ("user_id", "user_name")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_NAME_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    user_name: str
    def __init__(self, user_id: _Optional[str] = ..., user_name: _Optional[str] = ...) -> None: ...

class CreateTaskRequest(_message.Message):
    __slots__ = ("user_id", "natural_language", "idempotency_key")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    NATURAL_LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    natural_language: str
    idempotency_key: str
    def __init__(self, user_id: _Optional[str] = ..., natural_language: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class CreateTaskResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class CreateTasksRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[CreateTasksItem]
    def __init__(self, items: _Optional[_Iterable[_Union[CreateTasksItem, _Mapping]]] = ...) -> None: ...

class CreateTasksItem(_message.Message):
    __slots__ = ("request", "api_key", "request_id", "timeout", "trace_context")
    class TraceContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    TRACE_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    request: CreateTaskRequest
    api_key: str
    request_id: str
    timeout: _duration_pb2.Duration
    trace_context: _containers.ScalarMap[str, str]
    def __init__(self, request: _Optional[_Union[CreateTaskRequest, _Mapping]] = ..., api_key: _Optional[str] = ..., request_id: _Optional[str] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., trace_context: _Optional[_Mapping[str, str]] = ...) -> None: ...

class CreateTasksResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[CreateTasksResult]
    def __init__(self, results: _Optional[_Iterable[_Union[CreateTasksResult, _Mapping]]] = ...) -> None: ...

class CreateTasksResult(_message.Message):
    __slots__ = ("response", "error", "user_id", "user_name")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    USER_NAME_FIELD_NUMBER: _ClassVar[int]
    response: CreateTaskResponse
    error: _status_pb2.Status
    user_id: str
    user_name: str
    def __init__(self, response: _Optional[_Union[CreateTaskResponse, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., user_id: _Optional[str] = ..., user_name: _Optional[str] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("user_id", "job_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    job_id: str
    def __init__(self, user_id: _Optional[str] = ..., job_id: _Optional[str] = ...) -> None: ...

class GetJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("user_id", "all_users", "state", "skip", "take")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ALL_USERS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SKIP_FIELD_NUMBER: _ClassVar[int]
    TAKE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    all_users: bool
    state: JobState
    skip: int
    take: int
    def __init__(self, user_id: _Optional[str] = ..., all_users: _Optional[bool] = ..., state: _Optional[_Union[JobState, str]] = ..., skip: _Optional[int] = ..., take: _Optional[int] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "total_count")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    total_count: int
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., total_count: _Optional[int] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("user_id", "job_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    job_id: str
    def __init__(self, user_id: _Optional[str] = ..., job_id: _Optional[str] = ...) -> None: ...

class WatchJobResponse(_message.Message):
    __slots__ = ("job", "sequence")
    JOB_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    job: Job
    sequence: int
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ..., sequence: _Optional[int] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("user_id", "skip", "take", "order_by", "order_direction", "category", "priority_level")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SKIP_FIELD_NUMBER: _ClassVar[int]
    TAKE_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    ORDER_DIRECTION_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_LEVEL_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    skip: int
    take: int
    order_by: TaskOrderBy
    order_direction: OrderDirection
    category: str
    priority_level: str
    def __init__(self, user_id: _Optional[str] = ..., skip: _Optional[int] = ..., take: _Optional[int] = ..., order_by: _Optional[_Union[TaskOrderBy, str]] = ..., order_direction: _Optional[_Union[OrderDirection, str]] = ..., category: _Optional[str] = ..., priority_level: _Optional[str] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks", "total_count")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    total_count: int
    def __init__(self, tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., total_count: _Optional[int] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("user_id", "task_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    task_id: str
    def __init__(self, user_id: _Optional[str] = ..., task_id: _Optional[str] = ...) -> None: ...

class GetTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class GetUsageRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class GetUsageResponse(_message.Message):
    __slots__ = ("window_start", "window_end", "limit", "used", "reserved", "remaining")
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    RESERVED_FIELD_NUMBER: _ClassVar[int]
    REMAINING_FIELD_NUMBER: _ClassVar[int]
    window_start: _timestamp_pb2.Timestamp
    window_end: _timestamp_pb2.Timestamp
    limit: int
    used: int
    reserved: int
    remaining: int
    def __init__(self, window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., limit: _Optional[int] = ..., used: _Optional[int] = ..., reserved: _Optional[int] = ..., remaining: _Optional[int] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("user_id", "job_id", "all_users")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ALL_USERS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    job_id: str
    all_users: bool
    def __init__(self, user_id: _Optional[str] = ..., job_id: _Optional[str] = ..., all_users: _Optional[bool] = ...) -> None: ...

class CancelJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class CheckJobsRequest(_message.Message):
    __slots__ = ("job_ids",)
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    job_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, job_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CheckJobsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[JobStateEntry]
    def __init__(self, jobs: _Optional[_Iterable[_Union[JobStateEntry, _Mapping]]] = ...) -> None: ...

class JobStateEntry(_message.Message):
    __slots__ = ("job_id", "state")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: JobState
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ...) -> None: ...

class StartJobRequest(_message.Message):
    __slots__ = ("job_id", "tokens_needed")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TOKENS_NEEDED_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    tokens_needed: int
    def __init__(self, job_id: _Optional[str] = ..., tokens_needed: _Optional[int] = ...) -> None: ...

class StartJobResponse(_message.Message):
    __slots__ = ("job", "budget_granted", "reserved_tokens")
    JOB_FIELD_NUMBER: _ClassVar[int]
    BUDGET_GRANTED_FIELD_NUMBER: _ClassVar[int]
    RESERVED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    job: Job
    budget_granted: bool
    reserved_tokens: int
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ..., budget_granted: _Optional[bool] = ..., reserved_tokens: _Optional[int] = ...) -> None: ...

class ReserveTokensRequest(_message.Message):
    __slots__ = ("job_id", "tokens_needed")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TOKENS_NEEDED_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    tokens_needed: int
    def __init__(self, job_id: _Optional[str] = ..., tokens_needed: _Optional[int] = ...) -> None: ...

class ReserveTokensResponse(_message.Message):
    __slots__ = ("granted", "reserved_tokens")
    GRANTED_FIELD_NUMBER: _ClassVar[int]
    RESERVED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    granted: bool
    reserved_tokens: int
    def __init__(self, granted: _Optional[bool] = ..., reserved_tokens: _Optional[int] = ...) -> None: ...

class CompleteJobRequest(_message.Message):
    __slots__ = ("job_id", "parse_task", "error", "usage", "calls")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    PARSE_TASK_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    parse_task: _jobs_pb2.ParseTaskOutput
    error: JobError
    usage: _jobs_pb2.TokenUsage
    calls: _containers.RepeatedCompositeFieldContainer[_jobs_pb2.LlmCallUsage]
    def __init__(self, job_id: _Optional[str] = ..., parse_task: _Optional[_Union[_jobs_pb2.ParseTaskOutput, _Mapping]] = ..., error: _Optional[_Union[JobError, _Mapping]] = ..., usage: _Optional[_Union[_jobs_pb2.TokenUsage, _Mapping]] = ..., calls: _Optional[_Iterable[_Union[_jobs_pb2.LlmCallUsage, _Mapping]]] = ...) -> None: ...

class CompleteJobResponse(_message.Message):
    __slots__ = ("job", "applied")
    JOB_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    job: Job
    applied: bool
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ..., applied: _Optional[bool] = ...) -> None: ...

class StartJobsItem(_message.Message):
    __slots__ = ("request", "request_id")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request: StartJobRequest
    request_id: str
    def __init__(self, request: _Optional[_Union[StartJobRequest, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class StartJobsRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[StartJobsItem]
    def __init__(self, items: _Optional[_Iterable[_Union[StartJobsItem, _Mapping]]] = ...) -> None: ...

class StartJobsResult(_message.Message):
    __slots__ = ("response", "error")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    response: StartJobResponse
    error: _status_pb2.Status
    def __init__(self, response: _Optional[_Union[StartJobResponse, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class StartJobsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[StartJobsResult]
    def __init__(self, results: _Optional[_Iterable[_Union[StartJobsResult, _Mapping]]] = ...) -> None: ...

class CompleteJobsItem(_message.Message):
    __slots__ = ("request", "request_id")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request: CompleteJobRequest
    request_id: str
    def __init__(self, request: _Optional[_Union[CompleteJobRequest, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CompleteJobsRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[CompleteJobsItem]
    def __init__(self, items: _Optional[_Iterable[_Union[CompleteJobsItem, _Mapping]]] = ...) -> None: ...

class CompleteJobsResult(_message.Message):
    __slots__ = ("response", "error")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    response: CompleteJobResponse
    error: _status_pb2.Status
    def __init__(self, response: _Optional[_Union[CompleteJobResponse, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class CompleteJobsResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[CompleteJobsResult]
    def __init__(self, results: _Optional[_Iterable[_Union[CompleteJobsResult, _Mapping]]] = ...) -> None: ...

class WebhookEndpoint(_message.Message):
    __slots__ = ("endpoint_id", "url", "events", "create_time")
    ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    endpoint_id: str
    url: str
    events: _containers.RepeatedScalarFieldContainer[str]
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, endpoint_id: _Optional[str] = ..., url: _Optional[str] = ..., events: _Optional[_Iterable[str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateWebhookEndpointRequest(_message.Message):
    __slots__ = ("user_id", "url", "events")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    url: str
    events: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_id: _Optional[str] = ..., url: _Optional[str] = ..., events: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateWebhookEndpointResponse(_message.Message):
    __slots__ = ("endpoint", "secret")
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    endpoint: WebhookEndpoint
    secret: str
    def __init__(self, endpoint: _Optional[_Union[WebhookEndpoint, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class ListWebhookEndpointsRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class ListWebhookEndpointsResponse(_message.Message):
    __slots__ = ("endpoints",)
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    endpoints: _containers.RepeatedCompositeFieldContainer[WebhookEndpoint]
    def __init__(self, endpoints: _Optional[_Iterable[_Union[WebhookEndpoint, _Mapping]]] = ...) -> None: ...

class DeleteWebhookEndpointRequest(_message.Message):
    __slots__ = ("user_id", "endpoint_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    endpoint_id: str
    def __init__(self, user_id: _Optional[str] = ..., endpoint_id: _Optional[str] = ...) -> None: ...

class DeleteWebhookEndpointResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetWebhookTargetRequest(_message.Message):
    __slots__ = ("endpoint_id",)
    ENDPOINT_ID_FIELD_NUMBER: _ClassVar[int]
    endpoint_id: str
    def __init__(self, endpoint_id: _Optional[str] = ...) -> None: ...

class GetWebhookTargetResponse(_message.Message):
    __slots__ = ("endpoint", "secret", "user_id")
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    endpoint: WebhookEndpoint
    secret: str
    user_id: str
    def __init__(self, endpoint: _Optional[_Union[WebhookEndpoint, _Mapping]] = ..., secret: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...
