"""Service again within 3 s of a dependency answering (SPEC §8): no client-side
reconnect backoff keeps answering 503 after Tasks is back."""

from __future__ import annotations

import signal
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.checks import client, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.faults, pytest.mark.timeout(300)]

#: Long enough for gRPC's default reconnect backoff to grow past 3 s many times.
OUTAGE_S = 25


def tasks_serving(addr: str) -> bool:
    """A fresh channel each time, so this probe has no backoff of its own."""
    with grpc.insecure_channel(addr) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=0.5
            )
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING


def test_the_gateway_serves_within_3_s_of_tasks_answering_after_a_restart(stack_factory):
    stack = stack_factory()
    with client(stack, timeout=5) as http:
        assert http.get("/api/v1/usage").status_code == 200
        stack.stack.signal("tasks", signal.SIGTERM)
        assert stack.stack.wait("tasks", 30) == 0
        deadline = time.monotonic() + OUTAGE_S
        while time.monotonic() < deadline:  # a client that keeps calling through the outage
            assert http.get("/api/v1/usage").status_code == 503
            time.sleep(0.5)
        stack.stack.start("tasks")
        wait_until(lambda: tasks_serving(stack.tasks_addr), 120, "tasks serving", every=0.05)
        answering = time.monotonic()
        wait_until(lambda: http.get("/api/v1/usage").status_code == 200, 30, "the gateway", 0.05)
        assert time.monotonic() - answering < 3.0
