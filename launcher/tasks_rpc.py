"""Operator commands' calls to the Tasks service: its address (``TASKS_GRPC_ADDR``),
the internal token (``launcher.internal``), and one line on stderr for what went wrong.

Only the Tasks process opens its database; ``users``, ``ledger check`` and ``dlq
replay`` ask it through ``taskmesh.admin.v1.AdminService``, ``jobs`` through
``TasksService``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc

from launcher.internal import NoToken, read_token
from taskmesh.admin.v1 import admin_pb2_grpc
from taskmesh.rpc import tls
from taskmesh.rpc.calls import auth_metadata
from taskmesh.rpc.client import channel
from taskmesh.rpc.status import from_rpc_error
from taskmesh.settings import RpcSettings, load_settings

#: Deadline of one call: each answers in milliseconds; the ledger audit reads every
#: window and job in one query, seconds on a large database.
TIMEOUT_S = 30.0

T = TypeVar("T")


class Refused(Exception):
    """A command cannot go on: ``message`` for stderr (no ``taskmesh:`` prefix) and
    the exit code (1 failure, 2 configuration, as ``launcher.main`` documents)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True)
class TasksTarget:
    """Where the Tasks service answers (HOST:PORT), the metadata that opens it, and
    the process's GRPC_TLS_* files (plaintext when none, as the services dial)."""

    addr: str
    metadata: Sequence[tuple[str, str]]
    tls_config: tls.TlsConfig

    def channel(self) -> grpc.aio.Channel:
        """A new channel to the Tasks service (close it, e.g. ``async with``)."""
        return channel(self.addr, self.tls_config)

    def options(self) -> dict[str, Any]:
        """Keyword arguments for a stub call: the token's metadata and the deadline."""
        return {"metadata": self.metadata, "timeout": TIMEOUT_S}


def target() -> TasksTarget:
    """The Tasks address and TLS files from the settings, and the internal token;
    raises Refused (exit 2) when no token is configured or kept by ``taskmesh up``, or
    a GRPC_TLS_* file cannot be read."""
    try:
        token = read_token()
    except NoToken as exc:
        raise Refused(str(exc), 2) from None
    settings = load_settings(RpcSettings)
    try:
        tls_config = tls.TlsConfig.from_files(
            settings.grpc_tls_cert,
            settings.grpc_tls_key,
            settings.grpc_tls_ca,
            settings.grpc_tls_server_name,
        )
    except OSError as exc:
        raise Refused(f"cannot read a GRPC_TLS_* file: {exc.strerror}", 2) from None
    return TasksTarget(settings.tasks_grpc_addr, (auth_metadata(token),), tls_config)


def explain(err: grpc.aio.AioRpcError, addr: str) -> str:
    """One line for a failed call: "not running" when nothing answers at ``addr``,
    else the service's own message (never a driver message: the server maps those
    to a bare INTERNAL)."""
    if err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return (
            f"the Tasks service does not answer at {addr} (TASKS_GRPC_ADDR); "
            f"start it first (`taskmesh up` or `taskmesh tasks`)"
        )
    if err.code() is grpc.StatusCode.UNAUTHENTICATED:
        return (
            f"the Tasks service at {addr} refused the internal token "
            f"(INTERNAL_AUTH_TOKEN or .taskmesh/internal-token)"
        )
    return from_rpc_error(err).message


async def call_admin(
    where: TasksTarget,
    call: Callable[[admin_pb2_grpc.AdminServiceStub], Awaitable[T]],
) -> T:
    """Runs ``call(stub)`` on a fresh channel to ``where`` (the call passes
    ``**where.options()``); raises Refused with ``explain``'s line when it fails."""
    async with where.channel() as ch:
        try:
            return await call(admin_pb2_grpc.AdminServiceStub(ch))
        except grpc.aio.AioRpcError as err:
            raise Refused(explain(err, where.addr)) from None
