"""``TaskmeshClient``: submit, wait, follow, list and cancel jobs over HTTP.

Jobs are returned as the JSON objects of the API (camelCase dicts), so new
fields reach callers without a client release. Errors are RFC 9457 problem
documents, raised as ``ApiError``. Every call has a timeout (``timeout_s``,
default 10 s); waits and streams have their own deadlines."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import connect_sse

from taskmesh import job_states

DEFAULT_URL = "http://127.0.0.1:8080"
#: The HTTP API's path prefix (SPEC §5); the client adds it to every path.
API_PREFIX = "/api/v1"


def gateway_base(url: str) -> str:
    """The gateway's base URL: ``DEFAULT_URL`` when blank, without a trailing slash, and without
    a trailing ``/api/v1``, the API URL ``taskmesh up`` prints beside the gateway's address
    (``http://127.0.0.1:8080/api/v1`` → ``http://127.0.0.1:8080``)."""
    base = url.strip().rstrip("/")
    if base.lower().endswith(API_PREFIX):
        base = base[: -len(API_PREFIX)].rstrip("/")
    return base or DEFAULT_URL


#: Job states after which nothing changes (SPEC §5).
TERMINAL = job_states.TERMINAL
#: SPEC §5: the server waits at most 30 s for ``Prefer: wait``.
MAX_SERVER_WAIT_S = 30
#: The gateway sends a keep-alive every 15 s; silence for longer means a dead stream.
STREAM_READ_TIMEOUT_S = 35.0
#: Bounds on the pauses between polls, whatever Retry-After says.
MIN_POLL_S, MAX_POLL_S = 0.2, 2.0

Job = dict[str, Any]


class ApiError(Exception):
    """The API answered with an error: ``status``, the problem document
    (``type``, ``title``, ``detail``, ``requestId``, …) and ``retry_after`` (s)."""

    def __init__(self, response: httpx.Response) -> None:
        try:
            body = response.json()
        except ValueError:
            body = None
        self.response = response
        self.status = response.status_code
        self.problem: dict[str, Any] = body if isinstance(body, dict) else {}
        self.retry_after = _seconds(response.headers.get("Retry-After"))
        detail = self.problem.get("detail") or self.problem.get("title") or response.reason_phrase
        super().__init__(f"HTTP {self.status}: {detail}")


class WaitTimeout(Exception):
    """The job was not terminal by the deadline; ``job`` is its last known state."""

    def __init__(self, job: Job) -> None:
        super().__init__(f"job {job.get('jobId')} still {job.get('status')}")
        self.job = job


@dataclass(frozen=True)
class JobEvent:
    """One state change from ``GET /api/v1/jobs/{id}/events``: the event id
    (pass it back as ``last_event_id`` to resume), the status and the job."""

    id: str | None
    status: str
    job: Job


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class TaskmeshClient:
    """A synchronous client; use as a context manager or call ``close()``.

    ``http`` may be given (tests, shared pools, custom transports); it must
    have ``base_url`` set, and the client adds the API key to each request."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        api_key: str = "",
        *,
        timeout_s: float = 10.0,
        http: httpx.Client | None = None,
        user_agent: str = "taskmesh-python",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._auth = {"Authorization": f"Bearer {api_key}", "User-Agent": user_agent}
        self._owned = http is None
        self.http = http or httpx.Client(base_url=gateway_base(base_url), timeout=timeout_s)
        self._sleep = sleep

    def __enter__(self) -> TaskmeshClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owned:
            self.http.close()

    # --- calls ------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self._auth, **kwargs.pop("headers", {})}
        response = self.http.request(method, path, headers=headers, **kwargs)
        if response.status_code >= 400:
            raise ApiError(response)
        return response

    def submit(
        self, text: str, *, idempotency_key: str | None = None, wait_s: int | None = None
    ) -> Job:
        """``POST /api/v1/tasks``. Without ``wait_s``: the accepted job
        (``{"jobId", "status": "queued", "links"}``). With ``wait_s`` (1-30):
        the server holds the answer until the job ends, so the result is the
        finished job (with ``task`` or ``error``) or, if still running at the
        deadline, the accepted one. Raises ApiError (400 validation or
        injection, 429 with ``retry_after``, 503 …)."""
        headers: dict[str, str] = {}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        timeout: httpx.Timeout | None = None
        if wait_s is not None:
            wait_s = max(1, min(int(wait_s), MAX_SERVER_WAIT_S))
            headers["Prefer"] = f"wait={wait_s}"
            timeout = httpx.Timeout(self.http.timeout.connect, read=wait_s + 10.0)
        kwargs: dict[str, Any] = {"json": {"naturalLanguage": text}, "headers": headers}
        if timeout is not None:
            kwargs["timeout"] = timeout
        job: Job = self._request("POST", "/api/v1/tasks", **kwargs).json()
        return job

    def get_job(self, job_id: str) -> Job:
        job: Job = self._request("GET", f"/api/v1/jobs/{job_id}").json()
        return job

    def list_jobs(self, status: str | None = None, *, skip: int = 0, take: int = 10) -> Job:
        """``{"jobs": [Job], "pagination": {…}}``, the caller's jobs newest first."""
        params: dict[str, Any] = {"skip": skip, "take": take}
        if status is not None:
            params["status"] = status
        page: Job = self._request("GET", "/api/v1/jobs", params=params).json()
        return page

    def cancel(self, job_id: str) -> Job:
        """``POST /api/v1/jobs/{id}/cancel``: the job, ``cancelled``. Raises
        ApiError 409 when it is already terminal, 404 when it is not yours."""
        job: Job = self._request("POST", f"/api/v1/jobs/{job_id}/cancel").json()
        return job

    def get_task(self, task_id: str) -> Job:
        task: Job = self._request("GET", f"/api/v1/tasks/{task_id}").json()
        return task

    def usage(self) -> Job:
        usage: Job = self._request("GET", "/api/v1/usage").json()
        return usage

    # --- waiting ----------------------------------------------------------------------
    def wait(self, job_id: str, timeout_s: float = 120.0) -> Job:
        """The job once terminal, by polling at the pace the server's
        ``Retry-After`` asks (bounded). Raises WaitTimeout at the deadline,
        ApiError for an unknown job or a refused key."""
        deadline = time.monotonic() + timeout_s
        while True:
            response = self.http.get(f"/api/v1/jobs/{job_id}", headers=self._auth)
            if response.status_code >= 500:
                job = {"jobId": job_id, "status": "unknown"}
            elif response.status_code >= 400:
                raise ApiError(response)
            else:
                job = response.json()
                if job.get("status") in TERMINAL:
                    return job
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(job)
            pause = _seconds(response.headers.get("Retry-After")) or MIN_POLL_S
            self._sleep(min(max(pause, MIN_POLL_S), MAX_POLL_S, left))

    def submit_and_wait(
        self, text: str, *, timeout_s: float = 120.0, idempotency_key: str | None = None
    ) -> Job:
        """Submit with ``Prefer: wait`` and poll for the rest: the terminal job."""
        started = time.monotonic()
        job = self.submit(
            text,
            idempotency_key=idempotency_key,
            wait_s=max(1, min(MAX_SERVER_WAIT_S, int(timeout_s))),
        )
        if job.get("status") in TERMINAL:
            return job
        left = timeout_s - (time.monotonic() - started)
        return self.wait(str(job["jobId"]), timeout_s=max(0.0, left))

    def events(self, job_id: str, last_event_id: str | None = None) -> Iterator[JobEvent]:
        """The job's state changes as server-sent events, ending after the
        terminal one. Resume a dropped stream with the last ``JobEvent.id``
        seen; a stream resumed after the end yields nothing (204)."""
        headers = {**self._auth, "Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        timeout = httpx.Timeout(self.http.timeout.connect, read=STREAM_READ_TIMEOUT_S)
        with connect_sse(
            self.http, "GET", f"/api/v1/jobs/{job_id}/events", headers=headers, timeout=timeout
        ) as source:
            response = source.response
            if response.status_code == 204:
                return
            if response.status_code >= 400:
                response.read()
                raise ApiError(response)
            for sse in source.iter_sse():
                if not sse.data:
                    continue
                job: Job = json.loads(sse.data)
                status = str(job.get("status") or sse.event)
                yield JobEvent(sse.id or None, status, job)
                if status in TERMINAL:
                    return
