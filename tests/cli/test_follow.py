"""How ``taskmesh submit`` follows a job, against a scripted gateway: event
parsing, resuming a dropped stream with Last-Event-ID, falling back to
polling, and printing problem documents."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from launcher.submit import (
    Event,
    Follower,
    FollowTimeout,
    Refused,
    parse_events,
    print_problem,
)

JOB_ID = "0b7c6f2e-3c1d-4d1e-9a57-5d0f1c2b3a4e"


def job(status: str, **extra: Any) -> dict[str, Any]:
    return {"jobId": JOB_ID, "status": status, "attempts": 0, **extra}


def frame(sequence: int, body: dict[str, Any]) -> bytes:
    return f"id: {sequence}\nevent: {body['status']}\ndata: {json.dumps(body)}\n\n".encode()


class Dropping(httpx.SyncByteStream):
    """Sends its chunks, then breaks the connection the way a dead peer does."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        raise httpx.ReadError("connection reset by peer")


def event_stream(*chunks: bytes, drop: bool = False) -> httpx.Response:
    headers = {"content-type": "text/event-stream"}
    if drop:
        return httpx.Response(200, headers=headers, stream=Dropping(list(chunks)))
    return httpx.Response(200, headers=headers, content=b"".join(chunks))


def client(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    return httpx.Client(base_url="http://gateway.test", transport=httpx.MockTransport(handler))


def follower(http: httpx.Client, seen: list[str], sleeps: list[float]) -> Follower:
    return Follower(
        http,
        JOB_ID,
        deadline=time.monotonic() + 60,
        on_status=lambda j: seen.append(j["status"]),
        sleep=sleeps.append,
    )


def test_events_are_parsed_like_a_browser_does() -> None:
    lines = [
        ": keep-alive",
        "",
        "id: 1",
        "event: queued",
        'data: {"a":',
        "data:  1}",
        "",
        "retry: 1000",
        "event: running\r",
        "data: {}",
        "",
        "id: 3",
        "",
        "data: x",
    ]
    assert list(parse_events(lines)) == [
        Event('{"a":\n 1}', "queued", "1"),
        # The id persists until the server sends another.
        Event("{}", "running", "1"),
    ]


def test_a_dropped_stream_is_resumed_after_the_last_event() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if len(requests) == 1:
            return event_stream(frame(1, job("queued")), frame(2, job("running")), drop=True)
        return event_stream(frame(3, job("succeeded", task={"title": "Done"})))

    seen: list[str] = []
    sleeps: list[float] = []
    with client(handler) as http:
        final = follower(http, seen, sleeps).run()
    assert final["status"] == "succeeded" and final["task"] == {"title": "Done"}
    assert seen == ["queued", "running", "succeeded"]
    assert [r.url.path for r in requests] == [f"/api/v1/jobs/{JOB_ID}/events"] * 2
    assert "Last-Event-ID" not in requests[0].headers
    assert requests[1].headers["Last-Event-ID"] == "2"


def test_without_an_event_stream_the_job_is_polled() -> None:
    polls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(404, json={"status": 404, "title": "Not found"})
        polls.append(request.url.path)
        status = ["queued", "running", "failed"][min(len(polls) - 1, 2)]
        return httpx.Response(200, json=job(status), headers={"Retry-After": "1"})

    seen: list[str] = []
    sleeps: list[float] = []
    with client(handler) as http:
        final = follower(http, seen, sleeps).run()
    assert final["status"] == "failed"
    assert polls == [f"/api/v1/jobs/{JOB_ID}"] * 3
    assert seen == ["queued", "running", "failed"]
    # The server's Retry-After paces the polling.
    assert sleeps == [1.0, 1.0]


def test_a_stream_that_keeps_failing_gives_way_to_polling() -> None:
    calls = {"events": 0, "poll": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            calls["events"] += 1
            return httpx.Response(503, json={"status": 503}, headers={"Retry-After": "1"})
        calls["poll"] += 1
        return httpx.Response(200, json=job("succeeded"))

    with client(handler) as http:
        final = follower(http, [], []).run()
    assert final["status"] == "succeeded"
    assert calls["events"] >= 2 and calls["poll"] == 1


def test_resuming_after_the_end_reads_the_job_once() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(204)
        return httpx.Response(200, json=job("succeeded"))

    seen: list[str] = []
    with client(handler) as http:
        assert follower(http, seen, []).run()["status"] == "succeeded"
    assert seen == ["succeeded"]


def test_a_refused_key_is_not_retried() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"status": 401, "title": "Authentication required"})

    with client(handler) as http, pytest.raises(Refused) as refused:
        follower(http, [], []).run()
    assert refused.value.response.status_code == 401


def test_following_stops_at_the_deadline() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return event_stream(frame(1, job("running")))

    with client(handler) as http:
        follow = Follower(http, JOB_ID, time.monotonic() - 1, lambda j: None, sleep=lambda s: None)
        with pytest.raises(FollowTimeout):
            follow.run()


def problem(status: int, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.Response(
        status,
        json={"type": "about:blank", "status": status, **body},
        headers=headers,
        request=httpx.Request("POST", "http://gateway.test/api/v1/tasks"),
    )


def test_problem_documents_are_printed_readably() -> None:
    out = io.StringIO()
    print_problem(
        problem(
            400,
            {
                "title": "Request validation failed",
                "detail": "naturalLanguage: too long",
                "errors": [{"field": "naturalLanguage", "message": "at most 2000 characters"}],
                "requestId": "req-1",
            },
        ),
        out,
    )
    print_problem(
        problem(
            429,
            {"title": "Too many requests", "detail": "Token budget exhausted."},
            **{"Retry-After": "42"},
        ),
        out,
    )
    text = out.getvalue()
    assert "Request validation failed (400): naturalLanguage: too long" in text
    assert "  - naturalLanguage: at most 2000 characters" in text
    assert "request id: req-1" in text
    assert "Too many requests (429): Token budget exhausted." in text
    assert "Retry after 42 s." in text


def test_a_non_problem_error_still_says_what_happened() -> None:
    out = io.StringIO()
    response = httpx.Response(
        502, text="<html>bad gateway</html>", request=httpx.Request("GET", "http://proxy.test/")
    )
    print_problem(response, out)
    assert out.getvalue() == "taskmesh: HTTP 502 from http://proxy.test/\n"
