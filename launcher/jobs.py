"""``taskmesh jobs list`` and ``taskmesh jobs cancel``, for operators.

Both go through the Tasks service (``ListJobs``, ``CancelJob`` with ``all_users``;
SPEC §3, §6) with the internal token, never to the database, so they work against
any deployment the operator can reach at ``TASKS_GRPC_ADDR``. One tab-separated
line per job on stdout: job id, user id, status, attempts, created (UTC), then the
task's title or the error type; list prints a count on stderr."""

from __future__ import annotations

import argparse
import asyncio
import sys

import grpc

from launcher.tasks_rpc import Refused, TasksTarget, target
from taskmesh import job_states
from taskmesh.rpc.status import from_rpc_error
from taskmesh.tasks.v1 import tasks_pb2, tasks_pb2_grpc

#: Deadline of the one call: the Tasks service answers a page in milliseconds.
TIMEOUT_S = 10.0
#: Every state the wire knows (new ones, such as cancelled, come with the stubs).
_STATE = job_states.STATES
STATUSES = tuple(_STATE)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    jobs = sub.add_parser("jobs", help="list or cancel jobs (operators; through the Tasks service)")
    jobs_sub = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = jobs_sub.add_parser("list", help="every user's jobs, newest first")
    listing.add_argument("--status", choices=STATUSES, help="only jobs in this state")
    listing.add_argument("--take", type=int, default=20, help="jobs per page, 1-100 (20)")
    listing.add_argument("--skip", type=int, default=0, help="jobs to skip (0)")
    listing.set_defaults(func=run)
    cancel = jobs_sub.add_parser(
        "cancel", help="cancel a queued or running job (its LLM calls stop within about 1 s)"
    )
    cancel.add_argument("job_id", metavar="JOB_ID")
    cancel.set_defaults(func=run_cancel)


def _line(job: tasks_pb2.Job) -> str:
    status = job_states.status_name(job.state)
    created = job.create_time.ToDatetime().strftime("%Y-%m-%dT%H:%M:%SZ")
    if job.HasField("task"):
        outcome = job.task.title
    elif job.HasField("error"):
        outcome = tasks_pb2.JobErrorType.Name(job.error.type).removeprefix("JOB_ERROR_TYPE_")
    else:
        outcome = "-"
    return "\t".join((job.job_id, job.user_id, status, str(job.attempts), created, outcome))


def _target() -> TasksTarget | None:
    """Where Tasks answers and the token's metadata, or None after saying on stderr
    where the token was looked for."""
    try:
        return target()
    except Refused as exc:
        print(f"taskmesh: {exc.message}", file=sys.stderr)
        return None


async def _list(where: TasksTarget, args: argparse.Namespace) -> tasks_pb2.ListJobsResponse:
    async with where.channel() as ch:
        stub = tasks_pb2_grpc.TasksServiceStub(ch)
        request = tasks_pb2.ListJobsRequest(
            all_users=True,
            state=_STATE[args.status] if args.status else tasks_pb2.JOB_STATE_UNSPECIFIED,
            skip=args.skip,
            take=args.take,
        )
        response: tasks_pb2.ListJobsResponse = await stub.ListJobs(
            request, timeout=TIMEOUT_S, metadata=where.metadata
        )
        return response


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.take <= 100 or args.skip < 0:
        print("taskmesh: --take must be 1-100 and --skip >= 0", file=sys.stderr)
        return 2
    where = _target()
    if where is None:
        return 2
    try:
        response = asyncio.run(_list(where, args))
    except grpc.aio.AioRpcError as err:
        error = from_rpc_error(err)
        print(
            f"taskmesh: the Tasks service at {where.addr} answered "
            f"{err.code().name}: {error.message}",
            file=sys.stderr,
        )
        return 1
    for job in response.jobs:
        print(_line(job))
    shown = len(response.jobs)
    print(
        f"{shown} of {response.total_count} jobs"
        + (f" (skipped {args.skip})" if args.skip else ""),
        file=sys.stderr,
    )
    return 0


async def _cancel(where: TasksTarget, job_id: str) -> tasks_pb2.Job:
    async with where.channel() as ch:
        stub = tasks_pb2_grpc.TasksServiceStub(ch)
        response: tasks_pb2.CancelJobResponse = await stub.CancelJob(
            tasks_pb2.CancelJobRequest(job_id=job_id, all_users=True),
            timeout=TIMEOUT_S,
            metadata=where.metadata,
        )
        return response.job


def run_cancel(args: argparse.Namespace) -> int:
    """Exit 0 with the cancelled job's line; 1 when the job is unknown or already
    finished (the service's reason on stderr); 2 without an internal token."""
    where = _target()
    if where is None:
        return 2
    try:
        job = asyncio.run(_cancel(where, args.job_id))
    except grpc.aio.AioRpcError as err:
        # The service's own words ("The job has already finished."), as HTTP gives them; the
        # gRPC code name means nothing to an operator here.
        error = from_rpc_error(err)
        print(f"taskmesh: cannot cancel {args.job_id}: {error.message}", file=sys.stderr)
        return 1
    print(_line(job))
    return 0
