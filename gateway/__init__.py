"""The HTTP gateway: authenticates API keys, validates JSON at the edge and
speaks gRPC to the Tasks service (SPEC §5)."""

from gateway.main import RunningGateway, run, start

__all__ = ["RunningGateway", "run", "start"]
