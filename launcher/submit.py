"""``taskmesh submit "text"``: submit, follow the job, print the task.

Submission goes through the Python client (``taskmesh.client``), so the CLI
is its first user.

The job is followed through its server-sent event stream, resumed with
``Last-Event-ID`` when the connection drops; a gateway without the stream (or
one that keeps failing) is polled instead. Progress goes to stderr, the result
to stdout (``--json``: the final job document alone, for scripts). With ``--json`` an
error is one JSON object on stdout too, where a script already reads a failed job: the
gateway's problem document as sent, or ``{"error": "..."}`` for one found here (no key,
no answer, the follow's deadline), and nothing goes to stderr (argparse's own usage
errors, found before ``--json`` is read, stay text there).

Exit codes: 0 the job succeeded, 1 it failed or the request was refused or
could not be made, 2 usage (no API key, a malformed TASKMESH_URL)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx

from taskmesh.api_keys import printable_ascii
from taskmesh.client import TERMINAL, ApiError, TaskmeshClient, gateway_base

#: The gateway sends a keep-alive comment every 15 s; silence for longer means a dead stream.
STREAM_READ_TIMEOUT_S = 35.0
#: Consecutive stream failures (without an event in between) before falling back to polling.
MAX_STREAM_FAILURES = 3
#: Statuses that mean "this gateway has no event stream here", not "this job is unknown".
NO_STREAM = frozenset({404, 405, 406, 501})
#: Upper bounds on waits the server asks for, so a follow never outlives its deadline by much.
MAX_POLL_S = 2.0
MAX_RETRY_S = 5.0

Job = dict[str, Any]
Sleep = Callable[[float], None]


class Refused(Exception):
    """The gateway answered with an error document; printed, then exit 1."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class FollowTimeout(Exception):
    def __init__(self, job: Job | None) -> None:
        super().__init__("deadline passed")
        self.job = job


@dataclass
class Event:
    """One server-sent event (WHATWG HTML, "server-sent events")."""

    data: str
    type: str = "message"
    id: str | None = None


def parse_events(lines: Iterable[str]) -> Iterator[Event]:
    """Events from a stream's lines (without their line endings); comments,
    unknown fields and events without data are skipped, as a browser would."""
    data: list[str] = []
    kind = ""
    event_id: str | None = None
    for raw in lines:
        line = raw.rstrip("\r")
        if not line:
            if data:
                yield Event("\n".join(data), kind or "message", event_id)
            data, kind = [], ""
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            kind = value
        elif name == "id" and "\0" not in value:
            # The last event id persists across events until the server sends another.
            event_id = value


@dataclass
class Follower:
    """Follows one job to a terminal state; ``on_status`` sees each new status."""

    http: httpx.Client
    job_id: str
    deadline: float
    on_status: Callable[[Job], None]
    sleep: Sleep = time.sleep
    last_event_id: str | None = None
    job: Job | None = None
    _shown: str | None = field(default=None, init=False)

    def seen(self, job: Job) -> None:
        self.job = job
        status = job.get("status")
        if status != self._shown:
            self._shown = status if isinstance(status, str) else None
            self.on_status(job)

    def run(self) -> Job:
        job = self.stream()
        return job if job is not None else self.poll()

    def stream(self) -> Job | None:
        """The terminal job, or None when the event stream is not usable."""
        failures = 0
        while time.monotonic() < self.deadline:
            headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
            if self.last_event_id is not None:
                headers["Last-Event-ID"] = self.last_event_id
            try:
                with self.http.stream(
                    "GET",
                    f"/api/v1/jobs/{self.job_id}/events",
                    headers=headers,
                    timeout=httpx.Timeout(10.0, read=STREAM_READ_TIMEOUT_S),
                ) as response:
                    if response.status_code == 204:
                        # Every event was delivered and the job is over: read it once.
                        return self.fetch()
                    if response.status_code in NO_STREAM:
                        return None
                    if response.status_code == 401:
                        response.read()
                        raise Refused(response)
                    content_type = response.headers.get("content-type", "")
                    if response.status_code != 200 or "text/event-stream" not in content_type:
                        failures += 1
                        response.read()
                        if failures >= MAX_STREAM_FAILURES:
                            return None
                        self.pause(_retry_after(response, 1.0), MAX_RETRY_S)
                        continue
                    got_event = False
                    for event in parse_events(response.iter_lines()):
                        got_event = True
                        failures = 0
                        if event.id is not None:
                            self.last_event_id = event.id
                        job: Job = json.loads(event.data)
                        self.seen(job)
                        if job.get("status") in TERMINAL:
                            return job
                        if time.monotonic() >= self.deadline:
                            break
                    if not got_event:
                        # Closed before saying anything: count it, lest an endless quick loop.
                        failures += 1
                        if failures >= MAX_STREAM_FAILURES:
                            return None
                        self.pause(0.2 * 2**failures, MAX_RETRY_S)
            except (httpx.TransportError, json.JSONDecodeError):
                # Dropped or garbled stream: resume from the last event id.
                failures += 1
                if failures >= MAX_STREAM_FAILURES:
                    return None
                self.pause(0.2 * 2**failures, MAX_RETRY_S)
        raise FollowTimeout(self.job)

    def poll(self) -> Job:
        while True:
            response = self.http.get(f"/api/v1/jobs/{self.job_id}")
            if response.status_code >= 500:
                wait = _retry_after(response, 1.0)
            elif response.status_code != 200:
                raise Refused(response)
            else:
                job: Job = response.json()
                self.seen(job)
                if job.get("status") in TERMINAL:
                    return job
                wait = _retry_after(response, 0.5)
            if time.monotonic() >= self.deadline:
                raise FollowTimeout(self.job)
            self.pause(wait, MAX_POLL_S)

    def fetch(self) -> Job:
        response = self.http.get(f"/api/v1/jobs/{self.job_id}")
        if response.status_code != 200:
            raise Refused(response)
        job: Job = response.json()
        self.seen(job)
        return job

    def pause(self, seconds: float, cap: float) -> None:
        remaining = self.deadline - time.monotonic()
        self.sleep(max(0.0, min(seconds, cap, remaining)))


def _retry_after(response: httpx.Response, default: float) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", default)))
    except ValueError:
        return default


def run(args: argparse.Namespace) -> int:
    as_json = bool(getattr(args, "json", False))
    base = gateway_base(os.environ.get("TASKMESH_URL", ""))
    key = os.environ.get("TASKMESH_API_KEY", "").strip()
    if not key:
        report_error(
            "set TASKMESH_API_KEY to your API key "
            "(taskmesh up prints one; taskmesh users create NAME makes one)",
            as_json=as_json,
        )
        return 2
    if not printable_ascii(key):
        # No key of SPEC §4, and no header value the HTTP library would send: a usage error,
        # not its traceback. (Length is the gateway's to judge: 401.)
        report_error(
            "TASKMESH_API_KEY must be printable ASCII characters (SPEC §4)", as_json=as_json
        )
        return 2
    timeout = float(getattr(args, "timeout", 120.0))
    headers = {"Authorization": f"Bearer {key}", "User-Agent": "taskmesh-cli"}
    progress = _Progress(sys.stderr, enabled=not as_json)
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=10.0) as http:
            client = TaskmeshClient(api_key=key, http=http, user_agent="taskmesh-cli")
            return _submit(client, args.text, timeout, progress, as_json=as_json)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol):
        report_error(f"TASKMESH_URL is not an http(s) URL: {base!r}", as_json=as_json)
        return 2
    except httpx.HTTPError as exc:
        report_error(f"cannot reach {base} ({_failure(exc)})", as_json=as_json)
        return 1


def _failure(exc: httpx.HTTPError) -> str:
    """What went wrong on the way to the gateway, in words, not the HTTP library's class."""
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or no route"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server broke the HTTP exchange"
    return "network error"


def _print_json(document: dict[str, Any]) -> None:
    print(json.dumps(document, indent=2))


def report_error(message: str, *, as_json: bool, **fields: Any) -> None:
    """An error found by the CLI itself: ``taskmesh: message`` on stderr, or with
    ``--json`` ``{"error": message, ...fields}`` on stdout."""
    if as_json:
        _print_json({"error": message, **fields})
    else:
        print(f"taskmesh: {message}", file=sys.stderr)


def report_problem(response: httpx.Response, *, as_json: bool) -> None:
    """The gateway's refusal: readable lines on stderr, or with ``--json`` its problem
    document as sent (``{"error", "status"}`` when the answer was no JSON object)."""
    if not as_json:
        print_problem(response, sys.stderr)
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {
            "error": f"HTTP {response.status_code} from {response.request.url}",
            "status": response.status_code,
        }
    _print_json(body)


def _submit(
    client: TaskmeshClient, text: str, timeout: float, progress: _Progress, *, as_json: bool
) -> int:
    try:
        accepted: Job = client.submit(text)
    except ApiError as refused:
        report_problem(refused.response, as_json=as_json)
        return 1
    job_id = str(accepted["jobId"])
    follower = Follower(client.http, job_id, time.monotonic() + timeout, progress.show)
    try:
        if accepted.get("status") in TERMINAL:
            # Prefer: wait answered with the finished job already.
            job = accepted
            follower.seen(job)
        else:
            follower.seen(accepted)
            job = follower.run()
    except Refused as refused:
        report_problem(refused.response, as_json=as_json)
        return 1
    except FollowTimeout as timed_out:
        status = (timed_out.job or accepted).get("status", "unknown")
        report_error(
            f"job {job_id} still {status} after {timeout:g} s; "
            f"it goes on: GET /api/v1/jobs/{job_id}",
            as_json=as_json,
            jobId=job_id,
        )
        return 1
    except KeyboardInterrupt:
        if not as_json:
            print(file=sys.stderr)  # past the ^C the terminal echoed
        report_error(f"stopped following; job {job_id} goes on", as_json=as_json, jobId=job_id)
        return 1
    if as_json:
        _print_json(job)
    elif job.get("status") == "succeeded":
        print_task(job, sys.stdout)
    else:
        print_failure(job, sys.stderr)
    return 0 if job.get("status") == "succeeded" else 1


class _Progress:
    """``job 1f2e… queued`` → ``running`` → ``succeeded in 1.3 s`` on stderr."""

    def __init__(self, out: TextIO, *, enabled: bool) -> None:
        self.out = out
        self.enabled = enabled
        self.started = time.monotonic()

    def show(self, job: Job) -> None:
        if not self.enabled:
            return
        status = job.get("status", "?")
        suffix = f" in {time.monotonic() - self.started:.1f} s" if status in TERMINAL else ""
        print(f"job {job.get('jobId', '?')}: {status}{suffix}", file=self.out, flush=True)


def print_problem(response: httpx.Response, out: TextIO) -> None:
    """An RFC 9457 problem document in a few readable lines."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        print(f"taskmesh: HTTP {response.status_code} from {response.request.url}", file=out)
        return
    title = body.get("title") or f"HTTP {response.status_code}"
    detail = body.get("detail")
    print(
        f"taskmesh: {title} ({response.status_code})" + (f": {detail}" if detail else ""), file=out
    )
    for error in body.get("errors") or []:
        if isinstance(error, dict):
            where = error.get("field") or error.get("name") or error.get("pointer") or "input"
            print(f"  - {where}: {error.get('message') or error.get('detail') or error}", file=out)
    suggestions = body.get("suggestions") or []
    if suggestions:
        print("Try instead:", file=out)
        for hint in suggestions:
            print(f"  - {hint}", file=out)
    retry_after = response.headers.get("Retry-After")
    if retry_after and response.status_code in (429, 503):
        print(f"Retry after {retry_after} s.", file=out)
    if response.status_code == 401:
        print("Check TASKMESH_API_KEY (taskmesh users list shows the keys' state).", file=out)
    request_id = body.get("requestId")
    if request_id:
        print(f"request id: {request_id}", file=out)


def print_task(job: Job, out: TextIO) -> None:
    task: dict[str, Any] = job.get("task") or {}
    priority: dict[str, Any] = task.get("priority") or {}
    print(task.get("title", "(untitled)"), file=out)
    print(f"  due       {task.get('dueDate') or '-'}", file=out)
    print(f"  category  {task.get('category', '-')}", file=out)
    reason = f" - {priority['reason']}" if priority.get("reason") else ""
    print(
        f"  priority  {priority.get('level', '-')} ({priority.get('score', '-')}){reason}", file=out
    )
    subtasks = sorted(task.get("subtasks") or [], key=lambda sub: sub.get("order", 0))
    if subtasks:
        print("  subtasks", file=out)
        for sub in subtasks:
            print(f"    {sub.get('order')}. {sub.get('title')}", file=out)
    print(f"  task {task.get('id', '-')}  (job {job.get('jobId', '-')})", file=out)


def print_failure(job: Job, out: TextIO) -> None:
    if job.get("status") == "cancelled":
        print(f"taskmesh: job {job.get('jobId', '?')} was cancelled", file=out)
        return
    error: dict[str, Any] = job.get("error") or {}
    kind = error.get("type") or "UNKNOWN"
    print(
        f"taskmesh: job {job.get('jobId', '?')} failed: {kind}: {error.get('message', '')}",
        file=out,
    )
    suggestions = error.get("suggestions") or []
    if suggestions:
        print("Try instead:", file=out)
        for hint in suggestions:
            print(f"  - {hint}", file=out)
