"""The HTTP gateway: authenticates API keys, validates JSON at the edge and
speaks gRPC to the Tasks service (SPEC §5).

The server is imported on first use, so processes that only need the HTTP
shapes (the Tasks webhook relay renders events with ``gateway.schemas``) do
not load Sanic."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.main import RunningGateway, run, start

__all__ = ["RunningGateway", "run", "start"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from gateway import main

        return getattr(main, name)
    raise AttributeError(f"module 'gateway' has no attribute {name!r}")
