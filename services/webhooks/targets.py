"""Where an event goes, asked of the Tasks service before every attempt, so
a deleted endpoint stops receiving at once, pending retries included."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from taskmesh.rpc.calls import REQUEST_ID_KEY
from taskmesh.settings import default
from taskmesh.tasks.v1 import tasks_pb2, tasks_pb2_grpc


@dataclass(frozen=True)
class Endpoint:
    id: str
    user_id: str
    url: str
    secret: str


class TasksTargets:
    """Webhook targets from Tasks, over a channel made by
    ``taskmesh.rpc.client.channel(..., token=...)``; ``timeout_s`` the deadline of a
    lookup, seconds."""

    def __init__(
        self, channel: grpc.aio.Channel, timeout_s: float = default("webhook_lookup_timeout_s")
    ) -> None:
        self.timeout_s = timeout_s
        self._stub = tasks_pb2_grpc.TasksServiceStub(channel)

    async def get(self, endpoint_id: str, request_id: str | None = None) -> Endpoint:
        """Raises taskmesh.errors.NotFound once the endpoint is deleted,
        Unavailable while Tasks does not answer."""
        response = await self._stub.GetWebhookTarget(
            tasks_pb2.GetWebhookTargetRequest(endpoint_id=endpoint_id),
            timeout=self.timeout_s,
            metadata=((REQUEST_ID_KEY, request_id),) if request_id else (),
        )
        return Endpoint(
            response.endpoint.endpoint_id, response.user_id, response.endpoint.url, response.secret
        )
