"""taskmesh.admin.v1.AdminService: operator administration through the Tasks process.

Users and keys, the ledger audit and reopening a dead-lettered job go through here (on
the internal token, like every Tasks RPC), so the Tasks process alone opens its
database. Domain errors raised below become status codes in the server's
ObserveInterceptor (taskmesh.rpc.server)."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from services.tasks.domain.jobs import JobService
from services.tasks.domain.queries import JobQueries
from services.tasks.domain.users import UserService
from services.tasks.transport import convert
from taskmesh import errors
from taskmesh.admin.v1 import admin_pb2, admin_pb2_grpc

SERVICE_NAME = admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name


def _require(value: str, field: str) -> str:
    if not value:
        raise errors.InvalidInput(
            f"{field} is required", [errors.FieldViolation(field, "required")]
        )
    return value


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    """Calls the Tasks domain for each RPC: ``users`` (keys), ``jobs`` (reopen) and
    ``queries`` (the ledger check) work on the process's one store."""

    def __init__(self, users: UserService, jobs: JobService, queries: JobQueries) -> None:
        self.users = users
        self.jobs = jobs
        self.queries = queries

    async def CreateUser(  # noqa: N802
        self, request: admin_pb2.CreateUserRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.CreateUserResponse:
        user, key = await self.users.create(request.name)
        return admin_pb2.CreateUserResponse(user_id=user.id, name=user.name, api_key=key)

    async def ListUsers(  # noqa: N802
        self, request: admin_pb2.ListUsersRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ListUsersResponse:
        keys = []
        for row in await self.users.list():
            key = admin_pb2.UserKey(
                user_id=row.user_id,
                user_name=row.user_name,
                key_prefix=row.prefix,
                create_time=convert.ts(row.created_at),
            )
            if row.revoked_at is not None:
                key.revoke_time.CopyFrom(convert.ts(row.revoked_at))
            keys.append(key)
        return admin_pb2.ListUsersResponse(keys=keys)

    async def RevokeKey(  # noqa: N802
        self, request: admin_pb2.RevokeKeyRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.RevokeKeyResponse:
        await self.users.revoke(request.key_prefix)
        return admin_pb2.RevokeKeyResponse()

    async def CheckLedger(  # noqa: N802
        self, request: admin_pb2.CheckLedgerRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.CheckLedgerResponse:
        check = await self.queries.ledger_check()
        return admin_pb2.CheckLedgerResponse(
            windows_checked=len(check.windows),
            window_mismatches=[
                admin_pb2.LedgerWindowMismatch(
                    user_id=user_id,
                    window_start=window,
                    used=used,
                    reserved=reserved,
                    charged=charged,
                    open_reserved=open_reserved,
                )
                for user_id, window, used, reserved, charged, open_reserved in (
                    check.unbalanced_windows
                )
            ],
            job_mismatches=[
                admin_pb2.LedgerJobMismatch(job_id=job_id, charged=charged, recorded=recorded)
                for job_id, charged, recorded in check.jobs
            ],
        )

    async def ReopenJob(  # noqa: N802
        self, request: admin_pb2.ReopenJobRequest, context: grpc.aio.ServicerContext
    ) -> admin_pb2.ReopenJobResponse:
        job = await self.jobs.reopen(_require(request.job_id, "job_id"))
        return admin_pb2.ReopenJobResponse(job=convert.job_to_proto(job))


def registrar(servicer: AdminServicer) -> Callable[[grpc.aio.Server], None]:
    """Adds ``servicer`` to a server (``taskmesh.rpc.server.start_server``)."""

    def register(server: grpc.aio.Server) -> None:
        admin_pb2_grpc.add_AdminServiceServicer_to_server(servicer, server)

    return register
