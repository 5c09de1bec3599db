"""Where an event goes, asked of the Tasks service before every attempt, so
a deleted endpoint stops receiving at once, pending retries included."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from taskmesh.rpc.client import CallCredentials
from taskmesh.rpc.status import from_rpc_error
from taskmesh.settings import default
from taskmesh.tasks.v1 import tasks_pb2, tasks_pb2_grpc


@dataclass(frozen=True)
class Endpoint:
    id: str
    user_id: str
    url: str
    secret: str


class TasksTargets:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        credentials: CallCredentials,
        timeout_s: float = default("webhook_lookup_timeout_s"),
    ) -> None:
        self.timeout_s = timeout_s
        self._stub = tasks_pb2_grpc.TasksServiceStub(channel)
        self._credentials = credentials

    async def get(self, endpoint_id: str, request_id: str | None = None) -> Endpoint:
        """Raises taskmesh.errors.NotFound once the endpoint is deleted,
        Unavailable while Tasks does not answer."""
        try:
            response = await self._stub.GetWebhookTarget(
                tasks_pb2.GetWebhookTargetRequest(endpoint_id=endpoint_id),
                timeout=self.timeout_s,
                metadata=self._credentials.metadata(request_id),
            )
        except grpc.aio.AioRpcError as err:
            raise from_rpc_error(err) from None
        return Endpoint(
            response.endpoint.endpoint_id, response.user_id, response.endpoint.url, response.secret
        )
