"""AdminService through a real in-process grpc.aio server on SQLite and PostgreSQL:
the operator commands' users, keys, ledger audit and job reopening, on the internal
token, answered by the Tasks domain (SPEC §3, §7, §8)."""

from __future__ import annotations

import grpc
import pytest

from services.tasks.domain import models as m
from services.tasks.domain.users import MIN_REVOKE_PREFIX, UserService
from services.tasks.transport.admin_servicer import SERVICE_NAME, AdminServicer, registrar
from taskmesh.admin.v1 import admin_pb2, admin_pb2_grpc
from taskmesh.rpc import server
from taskmesh.tasks.v1 import tasks_pb2
from tests.tasks.conftest import DRAFT, reads

TOKEN = "admin-test-token"
AUTH = (("authorization", f"Bearer {TOKEN}"),)


@pytest.fixture
async def admin(env):
    """The AdminService over the test environment's store; yields its stub and the env."""
    service = env[0]
    users = UserService(service.store)
    servicer = AdminServicer(users, service, reads(service))
    grpc_server, _, port = await server.start_server(
        "127.0.0.1:0", TOKEN, [registrar(servicer)], [SERVICE_NAME]
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield admin_pb2_grpc.AdminServiceStub(channel), env
    await channel.close()
    await grpc_server.stop(None)


async def test_create_returns_the_key_once_and_list_shows_only_its_prefix(admin) -> None:
    stub, _ = admin
    created = await stub.CreateUser(admin_pb2.CreateUserRequest(name="carol"), metadata=AUTH)
    assert created.name == "carol" and created.user_id and created.api_key

    listed = await stub.ListUsers(admin_pb2.ListUsersRequest(), metadata=AUTH)

    (carol,) = [k for k in listed.keys if k.user_name == "carol"]
    assert carol.user_id == created.user_id
    assert created.api_key.startswith(carol.key_prefix)
    assert len(carol.key_prefix) <= len(created.api_key) // 2
    assert not carol.HasField("revoke_time")
    assert created.api_key not in str(listed)


async def test_a_second_user_of_the_same_name_is_refused(admin) -> None:
    stub, _ = admin
    await stub.CreateUser(admin_pb2.CreateUserRequest(name="dora"), metadata=AUTH)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CreateUser(admin_pb2.CreateUserRequest(name="dora"), metadata=AUTH)
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "already exists" in (err.value.details() or "")


async def test_revoke_takes_a_unique_prefix_and_refuses_short_unknown_or_ambiguous(admin) -> None:
    stub, _ = admin
    key = (await stub.CreateUser(admin_pb2.CreateUserRequest(name="erin"), metadata=AUTH)).api_key

    async def revoke(prefix: str) -> grpc.StatusCode:
        try:
            await stub.RevokeKey(admin_pb2.RevokeKeyRequest(key_prefix=prefix), metadata=AUTH)
        except grpc.aio.AioRpcError as err:
            return err.code()
        return grpc.StatusCode.OK

    assert await revoke(key[: MIN_REVOKE_PREFIX - 1]) is grpc.StatusCode.INVALID_ARGUMENT
    # Every generated key starts "tm_" plus random characters: the bare marker padded
    # to eight characters with a character no key has matches none.
    assert await revoke("tm_!!!!!") is grpc.StatusCode.NOT_FOUND
    assert await revoke(key[:MIN_REVOKE_PREFIX]) is grpc.StatusCode.OK
    listed = await stub.ListUsers(admin_pb2.ListUsersRequest(), metadata=AUTH)
    (erin,) = [k for k in listed.keys if k.user_name == "erin"]
    assert erin.HasField("revoke_time")


@pytest.mark.parametrize("name", ["bob\tsmith", "eve\nmallory", "dev\u2028x", "ma\u200bx"])
async def test_a_user_name_that_would_forge_a_column_or_row_is_refused(admin, name) -> None:
    # `taskmesh users list` prints one tab-separated line per key, and scripts read it.
    stub, _ = admin
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CreateUser(admin_pb2.CreateUserRequest(name=name), metadata=AUTH)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    listed = await stub.ListUsers(admin_pb2.ListUsersRequest(), metadata=AUTH)
    assert all(k.user_name != name for k in listed.keys)


async def test_names_in_any_script_with_their_joiners_are_kept(admin) -> None:
    stub, _ = admin
    for name in ("\u0645\u0647\u200c\u0633\u0627", "Zoë Müller", "李小龍"):
        created = await stub.CreateUser(admin_pb2.CreateUserRequest(name=name), metadata=AUTH)
        assert created.name == name


async def test_a_prefix_shared_by_two_live_keys_is_ambiguous(admin) -> None:
    stub, _ = admin
    # Configured keys may share a beginning (SPEC §4: any 16-200 printable characters).
    users = UserService(admin[1][0].store)
    await users.create("fay", "shared-beginning-key-one")
    await users.create("gus", "shared-beginning-key-two")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.RevokeKey(admin_pb2.RevokeKeyRequest(key_prefix="shared-b"), metadata=AUTH)
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "several" in (err.value.details() or "")


async def test_check_ledger_names_a_job_whose_calls_do_not_add_up(admin) -> None:
    stub, (service, user, _, _, _) = admin
    balanced = await service.create(user, "Pay the water bill tomorrow")
    await service.start(balanced.id)
    await service.complete(balanced.id, DRAFT, 1750, [m.CallUsage("core", 1400, 350)])
    clean = await stub.CheckLedger(admin_pb2.CheckLedgerRequest(), metadata=AUTH)
    assert clean.windows_checked >= 1
    assert not clean.window_mismatches and not clean.job_mismatches

    off = await service.create(user, "Call the plumber on Friday")
    await service.start(off.id)
    # The window balances, but one call behind the charge was never recorded.
    await service.complete(off.id, DRAFT, 2300, [m.CallUsage("core", 1400, 350)])
    report = await stub.CheckLedger(admin_pb2.CheckLedgerRequest(), metadata=AUTH)

    assert not report.window_mismatches
    assert [(j.job_id, j.charged, j.recorded) for j in report.job_mismatches] == [
        (off.id, 2300, 1750)
    ]


async def test_reopen_puts_an_exhausted_job_back_and_refuses_any_other(admin) -> None:
    stub, (service, user, _, _, _) = admin
    done = await service.create(user, "Pay the water bill tomorrow")
    await service.complete(done.id, DRAFT, 1000)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ReopenJob(admin_pb2.ReopenJobRequest(job_id=done.id), metadata=AUTH)
    assert err.value.code() is grpc.StatusCode.FAILED_PRECONDITION

    exhausted = await service.create(user, "Call the plumber on Friday")
    await service.complete(exhausted.id, m.JobError(m.ErrorType.RETRIES_EXHAUSTED, "Gave up."), 10)
    reopened = await stub.ReopenJob(admin_pb2.ReopenJobRequest(job_id=exhausted.id), metadata=AUTH)
    assert reopened.job.job_id == exhausted.id
    assert reopened.job.state == tasks_pb2.JOB_STATE_QUEUED

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ReopenJob(admin_pb2.ReopenJobRequest(job_id=""), metadata=AUTH)
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_every_admin_call_needs_the_internal_token(admin) -> None:
    stub, _ = admin
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListUsers(
            admin_pb2.ListUsersRequest(), metadata=(("authorization", "Bearer no"),)
        )
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CreateUser(admin_pb2.CreateUserRequest(name="mallory"))
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
