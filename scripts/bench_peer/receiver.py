"""The peer's callback endpoint: counts the results POSTed to /callback and
reports them at GET /stats as ``{"received": N, "distinct": D}`` (D = distinct
job ids), so the benchmark knows when the burst has settled.

Usage: python -m bench_peer.receiver PORT
"""

from __future__ import annotations

import sys

import uvloop
from aiohttp import web

_seen: set[str] = set()
_received = 0


async def callback(request: web.Request) -> web.Response:
    global _received
    body = await request.json()
    _received += 1
    _seen.add(str(body.get("jobId")))
    return web.Response(status=204)


async def stats(request: web.Request) -> web.Response:
    return web.json_response({"received": _received, "distinct": len(_seen)})


def main() -> None:
    app = web.Application()
    app.router.add_post("/callback", callback)
    app.router.add_get("/stats", stats)
    web.run_app(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
