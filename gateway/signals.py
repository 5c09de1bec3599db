"""A Sanic signal router that skips the per-request lifecycle signals nobody handles.

Sanic dispatches about ten ``http.*`` signals per request (``http.lifecycle.request``,
``http.lifecycle.send``, ``http.handler.before`` ...). Without a handler each one costs a
router lookup that raises and catches ``NotFound``. Sanic's own remedy, TouchUp, rewrites
methods of its shared HTTP classes in place, which the gateway and the simulator turn off
(several apps share a process in tests and ``taskmesh up``). This router gives the same
result per app: the set of reserved events without a handler is computed when the router is
finalised, and an inline dispatch of one of them returns ``None`` at once, which is what
Sanic returns for them anyway once ``allow_fail_builtin`` is off (``TOUCHUP=False``)."""

from __future__ import annotations

from enum import Enum
from typing import Any

from sanic.signals import RESERVED_NAMESPACES, SignalRouter


def _unhandled(registered: set[str]) -> frozenset[str]:
    """Reserved events no registered signal matches, exactly or by a dynamic last part
    (``http.lifecycle.<name>`` matches every ``http.lifecycle.*``): TouchUp's own rule."""
    dynamic = {name.rsplit(".", 1)[0] for name in registered if name.endswith(">")}
    return frozenset(
        event
        for events in RESERVED_NAMESPACES.values()
        for event in events
        if event not in registered and event.rsplit(".", 1)[0] not in dynamic
    )


class LeanSignalRouter(SignalRouter):
    """``SignalRouter`` whose inline dispatch of an unhandled reserved event is a no-op.

    Pass it as ``Sanic(..., signal_router=LeanSignalRouter())``. Until the router is
    finalised (and while an app is amended) nothing is skipped."""

    def __init__(self) -> None:
        super().__init__()
        self._skip: frozenset[str] = frozenset()

    def finalize(self, *args: Any, **kwargs: Any) -> Any:
        result = super().finalize(*args, **kwargs)
        # With allow_fail_builtin on, Sanic raises NotFound for these: keep that path.
        registered = {signal.name for signal in self.routes}
        self._skip = frozenset() if self.allow_fail_builtin else _unhandled(registered)
        return result

    def reset(self) -> None:
        self._skip = frozenset()
        super().reset()

    async def dispatch(
        self,
        event: str | Enum,
        *,
        context: dict[str, Any] | None = None,
        condition: dict[str, str] | None = None,
        fail_not_found: bool = True,
        inline: bool = False,
        reverse: bool = False,
    ) -> Any:
        if inline and event in self._skip:
            return None
        return await super().dispatch(
            event,
            context=context,
            condition=condition,
            fail_not_found=fail_not_found,
            inline=inline,
            reverse=reverse,
        )
