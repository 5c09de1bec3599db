"""A TCP proxy a test puts in front of a dependency (RabbitMQ) to make network
faults on demand without touching the machine's shared service.

It runs its own event loop in a thread, so synchronous tests drive it:

- :meth:`TcpProxy.cut` drops every open connection and refuses new ones (the
  dependency looks down to the processes behind the proxy); :meth:`restore`
  accepts again.
- :meth:`stall` stops forwarding one direction (``"down"``: dependency → client,
  ``"up"``: client → dependency); bytes wait in the proxy until :meth:`flow`.
  A stalled ``"down"`` direction is a broker whose confirms arrive late.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any, Literal

Direction = Literal["up", "down"]
CHUNK = 65536


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self.host = host
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._accepting = True
        self._flowing: dict[Direction, asyncio.Event] = {}
        self._connections: set[asyncio.Task[None]] = set()
        self.accepted = 0

    # --- control (any thread) ------------------------------------------------------------
    def start(self) -> TcpProxy:
        self._thread.start()
        self._run(self._start())
        return self

    def close(self) -> None:
        self._run(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def cut(self) -> None:
        """Drops every connection and refuses new ones until :meth:`restore`."""
        self._run(self._cut())

    def restore(self) -> None:
        self._run(self._set_accepting(True))

    def stall(self, direction: Direction) -> None:
        self._run(self._set_flowing(direction, False))

    def flow(self, direction: Direction) -> None:
        self._run(self._set_flowing(direction, True))

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # --- inside the proxy's loop -------------------------------------------------------------
    async def _start(self) -> None:
        self._flowing = {"up": asyncio.Event(), "down": asyncio.Event()}
        for event in self._flowing.values():
            event.set()
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        await self._cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _cut(self) -> None:
        self._accepting = False
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def _set_accepting(self, value: bool) -> None:
        self._accepting = value

    async def _set_flowing(self, direction: Direction, value: bool) -> None:
        event = self._flowing[direction]
        event.set() if value else event.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._accepting:
            writer.close()
            return
        self.accepted += 1
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        upstream_writer = None
        try:
            up_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
            await asyncio.gather(
                self._pump(reader, upstream_writer, "up"),
                self._pump(up_reader, writer, "down"),
            )
        except (OSError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # cut(): the connection is dropped on purpose. Returning (not re-raising)
            # keeps asyncio's stream callback from logging the cancellation as an error.
            pass
        finally:
            self._connections.discard(task)
            for w in (writer, upstream_writer):
                if w is not None:
                    with contextlib.suppress(Exception):
                        w.transport.abort()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: Direction
    ) -> None:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                writer.transport.abort()
                raise OSError("peer closed")
            await self._flowing[direction].wait()
            writer.write(data)
            await writer.drain()
