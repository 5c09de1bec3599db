"""TasksService through a real in-process grpc.aio server: status codes and
rich error details callers (and grpcurl users) rely on."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.tasks.domain.budget import BudgetPolicy
from services.tasks.domain.jobs import JobPolicy, JobService
from services.tasks.domain.users import UserService
from services.tasks.storage.ratelimit import LocalTokenBucket
from services.tasks.storage.repository import Store
from services.tasks.transport.servicer import SERVICE_NAME, TasksServicer, registrar
from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.rpc import server
from taskmesh.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from tests.tasks.conftest import FakeDispatcher

TOKEN = "test-token"
AUTH = (("authorization", f"Bearer {TOKEN}"),)
#: A well-formed user id no user has.
NOBODY = "00000000-0000-4000-8000-000000000000"
#: Ids of no well-formed kind: every user id is a UUID in its 36-character text form.
NOT_UUIDS = ["zzz", "alice", "' OR 1=1 --", f"{NOBODY}\n", NOBODY.replace("-", "")]


@pytest.fixture
async def tasks(tmp_path):
    store = Store(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    await store.open()
    users = UserService(store, LocalTokenBucket(capacity=3, refill_per_s=0.001))
    alice, alice_key = await users.create("alice")
    bob, _ = await users.create("bob")
    jobs = JobService(store, FakeDispatcher(), JobPolicy(BudgetPolicy(86_400, 2 * 2500, 2500), 900))
    grpc_server, _, port = await server.start_server(
        "127.0.0.1:0", TOKEN, [registrar(TasksServicer(jobs, users))], [SERVICE_NAME]
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield tasks_pb2_grpc.TasksServiceStub(channel), alice.id, alice_key, bob.id
    await channel.close()
    await grpc_server.stop(None)
    await store.close()


def details(err: grpc.aio.AioRpcError, kind):  # type: ignore[no-untyped-def]
    detail = kind()
    status = rpc_status.from_call(err)
    assert status is not None
    assert any(d.Unpack(detail) for d in status.details if d.Is(detail.DESCRIPTOR))
    return detail


async def test_budget_exhaustion_is_resource_exhausted_with_retry_info(tasks):
    stub, alice, _, _ = tasks
    for _ in range(2):
        await stub.CreateTask(
            tasks_pb2.CreateTaskRequest(user_id=alice, natural_language="Book dentist"),
            metadata=AUTH,
            timeout=5,
        )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateTask(
            tasks_pb2.CreateTaskRequest(user_id=alice, natural_language="One more"),
            metadata=AUTH,
            timeout=5,
        )
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details(caught.value, error_details_pb2.RetryInfo).retry_delay.seconds > 0
    assert details(caught.value, error_details_pb2.ErrorInfo).reason == "TOKEN_BUDGET_EXHAUSTED"


async def test_authenticate_applies_the_request_rate(tasks):
    stub, _, key, _ = tasks
    for _ in range(3):
        await stub.Authenticate(
            tasks_pb2.AuthenticateRequest(api_key=key), metadata=AUTH, timeout=5
        )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Authenticate(
            tasks_pb2.AuthenticateRequest(api_key=key), metadata=AUTH, timeout=5
        )
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await stub.Authenticate(
            tasks_pb2.AuthenticateRequest(api_key="tm_unknown"), metadata=AUTH, timeout=5
        )
    assert unknown.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_complete_job_is_idempotent_and_scoped_reads_are_not_found(tasks):
    stub, alice, _, bob = tasks
    created = await stub.CreateTask(
        tasks_pb2.CreateTaskRequest(user_id=alice, natural_language="Pay bill"),
        metadata=AUTH,
        timeout=5,
    )
    job_id = created.job.job_id
    result = jobs_pb2.ParseTaskOutput(
        title="Pay Bill",
        category="finance",
        priority=jobs_pb2.Priority(level="high", score=7, reason="Fees."),
        subtasks=["Open Bank App", "Enter The Amount", "Confirm Payment"],
    )
    complete = tasks_pb2.CompleteJobRequest(
        job_id=job_id,
        parse_task=result,
        usage=jobs_pb2.TokenUsage(input_tokens=900, output_tokens=100),
    )
    first = await stub.CompleteJob(complete, metadata=AUTH, timeout=5)
    again = await stub.CompleteJob(complete, metadata=AUTH, timeout=5)
    assert first.applied and not again.applied
    assert again.job.task.task_id == first.job.task.task_id
    assert [s.title for s in first.job.task.subtasks] == list(result.subtasks)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetJob(
            tasks_pb2.GetJobRequest(user_id=bob, job_id=job_id), metadata=AUTH, timeout=5
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    usage = await stub.GetUsage(tasks_pb2.GetUsageRequest(user_id=alice), metadata=AUTH, timeout=5)
    assert (usage.used, usage.reserved) == (1000, 0)
    # An unknown user has no budget to report (as CreateTask for one), not a full one.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetUsage(tasks_pb2.GetUsageRequest(user_id=NOBODY), metadata=AUTH, timeout=5)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_watch_job_streams_until_terminal(tasks):
    stub, alice, _, _ = tasks
    created = await stub.CreateTask(
        tasks_pb2.CreateTaskRequest(user_id=alice, natural_language="Pay bill"),
        metadata=AUTH,
        timeout=5,
    )
    job_id = created.job.job_id
    stream = stub.WatchJob(
        tasks_pb2.WatchJobRequest(user_id=alice, job_id=job_id), metadata=AUTH, timeout=10
    )
    seen = []
    async for event in stream:
        seen.append((event.sequence, event.job.state))
        if event.job.state == tasks_pb2.JOB_STATE_QUEUED:
            await stub.StartJob(tasks_pb2.StartJobRequest(job_id=job_id), metadata=AUTH, timeout=5)
        elif event.job.state == tasks_pb2.JOB_STATE_RUNNING:
            await stub.CompleteJob(
                tasks_pb2.CompleteJobRequest(
                    job_id=job_id,
                    error=tasks_pb2.JobError(
                        type=tasks_pb2.JOB_ERROR_TYPE_VAGUE_INPUT,
                        message="Too vague.",
                        suggestions=["What should be paid?"],
                    ),
                ),
                metadata=AUTH,
                timeout=5,
            )
    assert [state for _, state in seen] == [
        tasks_pb2.JOB_STATE_QUEUED,
        tasks_pb2.JOB_STATE_RUNNING,
        tasks_pb2.JOB_STATE_FAILED,
    ]
    assert [seq for seq, _ in seen] == sorted({seq for seq, _ in seen})


@pytest.mark.parametrize(
    ("page", "named"),
    [
        ({"take": 101}, ["take"]),
        ({"take": -1}, ["take"]),
        ({"skip": -5}, ["skip"]),
        ({"take": 500, "skip": -1}, ["take", "skip"]),
    ],
)
@pytest.mark.parametrize("rpc", ["ListTasks", "ListJobs"])
async def test_a_bad_page_is_refused_naming_the_fields_out_of_range(
    tasks, rpc: str, page: dict[str, int], named: list[str]
) -> None:
    stub, alice, _, _ = tasks
    request = getattr(tasks_pb2, f"{rpc}Request")(user_id=alice, **page)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await getattr(stub, rpc)(request, metadata=AUTH, timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = details(caught.value, error_details_pb2.BadRequest).field_violations
    assert [v.field for v in violations] == named
    assert all(name in caught.value.details() for name in named)


async def test_atomic_task_has_no_subtasks_on_grpc(tasks):
    """SPEC §10: none is no steps on the wire (grpcurl's JSON omits the field), never a
    placeholder list."""
    from google.protobuf.json_format import MessageToDict

    stub, alice, _, _ = tasks
    created = await stub.CreateTask(
        tasks_pb2.CreateTaskRequest(user_id=alice, natural_language="Buy milk"),
        metadata=AUTH,
        timeout=5,
    )
    result = jobs_pb2.ParseTaskOutput(
        title="Buy Milk",
        category="errand",
        priority=jobs_pb2.Priority(level="low", score=2, reason="Routine."),
    )
    done = await stub.CompleteJob(
        tasks_pb2.CompleteJobRequest(
            job_id=created.job.job_id, parse_task=result, usage=jobs_pb2.TokenUsage()
        ),
        metadata=AUTH,
        timeout=5,
    )
    assert done.applied and len(done.job.task.subtasks) == 0
    read = await stub.GetTask(
        tasks_pb2.GetTaskRequest(user_id=alice, task_id=done.job.task.task_id),
        metadata=AUTH,
        timeout=5,
    )
    assert "subtasks" not in MessageToDict(read.task)


async def test_start_job_admits_the_first_calls_and_reserve_tokens_answers_granted_or_refused(
    tasks,
):
    stub, alice, _, _ = tasks
    created = await stub.CreateTask(
        tasks_pb2.CreateTaskRequest(user_id=alice, natural_language="Book dentist"),
        metadata=AUTH,
        timeout=5,
    )
    job_id = created.job.job_id
    started = await stub.StartJob(
        tasks_pb2.StartJobRequest(job_id=job_id, tokens_needed=2700), metadata=AUTH, timeout=5
    )
    assert started.job.state == tasks_pb2.JOB_STATE_RUNNING
    assert (started.budget_granted, started.reserved_tokens) == (True, 2700)
    # The window (5,000) has room for 4,900, not for 5,100.
    granted = await stub.ReserveTokens(
        tasks_pb2.ReserveTokensRequest(job_id=job_id, tokens_needed=4900), metadata=AUTH, timeout=5
    )
    assert (granted.granted, granted.reserved_tokens) == (True, 4900)
    refused = await stub.ReserveTokens(
        tasks_pb2.ReserveTokensRequest(job_id=job_id, tokens_needed=5100), metadata=AUTH, timeout=5
    )
    assert (refused.granted, refused.reserved_tokens) == (False, 4900)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ReserveTokens(
            tasks_pb2.ReserveTokensRequest(job_id=job_id, tokens_needed=-1),
            metadata=AUTH,
            timeout=5,
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ReserveTokens(
            tasks_pb2.ReserveTokensRequest(
                job_id="00000000-0000-4000-8000-000000000000", tokens_needed=10
            ),
            metadata=AUTH,
            timeout=5,
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND

    done = await stub.CompleteJob(
        tasks_pb2.CompleteJobRequest(
            job_id=job_id,
            error=tasks_pb2.JobError(
                type=tasks_pb2.JOB_ERROR_TYPE_BUDGET_EXHAUSTED, message="no room"
            ),
            usage=jobs_pb2.TokenUsage(input_tokens=1900, output_tokens=450, llm_calls=2),
            calls=[
                jobs_pb2.LlmCallUsage(operation="core", input_tokens=1400, output_tokens=350),
                jobs_pb2.LlmCallUsage(operation="subtasks", input_tokens=500, output_tokens=100),
            ],
        ),
        metadata=AUTH,
        timeout=5,
    )
    assert done.applied and done.job.error.type == tasks_pb2.JOB_ERROR_TYPE_BUDGET_EXHAUSTED
    usage = await stub.GetUsage(tasks_pb2.GetUsageRequest(user_id=alice), metadata=AUTH, timeout=5)
    assert (usage.used, usage.reserved) == (2350, 0)


#: Every TasksService RPC that acts for a user, with the rest of a valid request.
USER_RPCS = {
    "CreateTask": {"natural_language": "Pay bill"},
    "GetJob": {"job_id": NOBODY},
    "ListJobs": {},
    "CancelJob": {"job_id": NOBODY},
    "WatchJob": {"job_id": NOBODY},
    "ListTasks": {},
    "GetTask": {"task_id": NOBODY},
    "GetUsage": {},
    "CreateWebhookEndpoint": {"url": "https://example.com/hooks"},
    "ListWebhookEndpoints": {},
    "DeleteWebhookEndpoint": {"endpoint_id": NOBODY},
}


def _assert_names_user_id(status: status_pb2.Status) -> None:
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "user_id" in status.message
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in status.details if d.Is(bad.DESCRIPTOR))
    assert [v.field for v in bad.field_violations] == ["user_id"]


@pytest.mark.parametrize("user_id", NOT_UUIDS)
@pytest.mark.parametrize("rpc", list(USER_RPCS))
async def test_a_user_id_that_is_no_uuid_is_invalid_argument_naming_it(
    tasks, rpc: str, user_id: str
) -> None:
    # Not an empty answer (no jobs, no tasks, no endpoints): the id names nobody at all.
    stub, _, _, _ = tasks
    request = getattr(tasks_pb2, f"{rpc}Request")(user_id=user_id, **USER_RPCS[rpc])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        call = getattr(stub, rpc)(request, metadata=AUTH, timeout=5)
        if rpc == "WatchJob":
            async for _ in call:
                pass
        else:
            await call
    status = rpc_status.from_call(caught.value)
    assert status is not None
    _assert_names_user_id(status)


async def test_a_create_tasks_item_whose_user_id_is_no_uuid_fails_alone(tasks) -> None:
    stub, alice, _, _ = tasks
    answer = await stub.CreateTasks(
        tasks_pb2.CreateTasksRequest(
            items=[
                tasks_pb2.CreateTasksItem(
                    request=tasks_pb2.CreateTaskRequest(user_id="zzz", natural_language="Pay bill")
                ),
                tasks_pb2.CreateTasksItem(
                    request=tasks_pb2.CreateTaskRequest(user_id=alice, natural_language="Pay rent")
                ),
            ]
        ),
        metadata=AUTH,
        timeout=5,
    )
    refused, accepted = answer.results
    assert refused.WhichOneof("result") == "error"
    _assert_names_user_id(refused.error)
    assert accepted.WhichOneof("result") == "response"


@pytest.mark.parametrize("rpc", ["ListJobs", "ListTasks", "ListWebhookEndpoints", "GetUsage"])
async def test_a_user_id_in_capitals_names_the_same_user(tasks, rpc: str) -> None:
    # UUID text is case-insensitive (RFC 9562 §4); ids are stored lowercased.
    stub, alice, _, _ = tasks
    await stub.CreateTask(
        tasks_pb2.CreateTaskRequest(user_id=alice, natural_language="Pay bill"),
        metadata=AUTH,
        timeout=5,
    )
    ask = getattr(stub, rpc)
    lower = await ask(getattr(tasks_pb2, f"{rpc}Request")(user_id=alice), metadata=AUTH, timeout=5)
    upper = await ask(
        getattr(tasks_pb2, f"{rpc}Request")(user_id=alice.upper()), metadata=AUTH, timeout=5
    )
    assert upper == lower
