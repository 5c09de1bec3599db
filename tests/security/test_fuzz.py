"""Generated hostile input: whatever a client sends, the gateway answers with
a success or a problem document, never a 500, and keeps serving; whatever
lands on the queue, the worker's decoder returns a job or says it cannot."""

from __future__ import annotations

import json
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

import aio_pika
import httpx
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from taskmesh.jobs.v1 import jobs_pb2
from taskmesh.queue.messages import CONTENT_TYPE, MESSAGE_TYPE, UndecodableMessage, decode_job

HTTP_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    # The gateway and its fake backend hold no per-example state worth resetting.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

PROBLEM = "application/problem+json"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4)
    ),
    max_leaves=12,
)
create_bodies = st.one_of(
    st.fixed_dictionaries({"naturalLanguage": st.text(max_size=2100)}).map(
        lambda d: json.dumps(d).encode()
    ),
    st.fixed_dictionaries({"naturalLanguage": json_values}, optional={"extra": json_values}).map(
        lambda d: json.dumps(d).encode()
    ),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=2048),
    st.text(max_size=512).map(lambda t: t.encode("utf-8", errors="surrogatepass")),
)
content_types = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "APPLICATION/JSON",
            "application/json; charset=utf-16",
            "application/problem+json",
            "text/plain",
            "multipart/form-data",
            "application/x-www-form-urlencoded",
        ]
    ),
    # Any value a client library will put on the wire (no edge whitespace).
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
    .map(str.strip)
    .filter(bool),
)


def _check_answer(response: httpx.Response, allowed: set[int]) -> None:
    assert response.status_code < 500, response.text
    assert response.status_code in allowed, (response.status_code, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith(PROBLEM)
        body = response.json()
        assert body["status"] == response.status_code
        assert body["requestId"] == response.headers["x-request-id"]
        assert body["type"].startswith("https://taskmesh.dev/problems/")
    else:
        assert response.headers["content-type"].startswith("application/json")
        response.json()


async def _still_serving(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).status_code == 200


@given(body=create_bodies, content_type=content_types)
@HTTP_SETTINGS
async def test_submissions_get_a_success_or_a_problem(
    client: httpx.AsyncClient, fuzz_cases: Counter[str], body: bytes, content_type: str | None
) -> None:
    fuzz_cases["http: POST /api/v1/tasks"] += 1
    headers = {} if content_type is None else {"Content-Type": content_type}

    response = await client.post("/api/v1/tasks", content=body, headers=headers)

    _check_answer(response, {202, 400, 413, 415})
    await _still_serving(client)


query_keys = st.sampled_from(
    ["skip", "take", "orderBy", "orderDirection", "category", "priorityLevel"]
) | st.text(min_size=1, max_size=20)
query_values = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["dueDate", "priorityScore", "createdAt", "asc", "desc", "work", "high", ""]),
    st.text(max_size=120),
)


@given(params=st.lists(st.tuples(query_keys, query_values), max_size=6))
@HTTP_SETTINGS
async def test_task_listing_queries_get_a_page_or_a_problem(
    client: httpx.AsyncClient, fuzz_cases: Counter[str], params: list[tuple[str, str]]
) -> None:
    fuzz_cases["http: GET /api/v1/tasks query"] += 1

    response = await client.get("/api/v1/tasks", params=params)

    _check_answer(response, {200, 400})
    if response.status_code == 400:
        named = {e["field"] for e in response.json().get("errors", [])}
        assert named, response.text
    await _still_serving(client)


path_ids = st.one_of(
    st.uuids().map(str),
    st.text(min_size=1, max_size=200),
    st.text(alphabet="0123456789abcdefABCDEF-", min_size=30, max_size=40),
)


@given(
    template=st.sampled_from(["/api/v1/jobs/{}", "/api/v1/jobs/{}/events", "/api/v1/tasks/{}"]),
    resource_id=path_ids,
)
@HTTP_SETTINGS
async def test_path_ids_get_a_404_problem(
    client: httpx.AsyncClient, fuzz_cases: Counter[str], template: str, resource_id: str
) -> None:
    # Dot segments are resolved by the client before sending: another path entirely.
    assume(resource_id not in (".", ".."))
    fuzz_cases["http: path ids"] += 1
    path = template.format(urllib.parse.quote(resource_id, safe=""))

    response = await client.get(path)

    # Nothing exists for this caller, so nothing may be found, whatever the id.
    _check_answer(response, {404})
    await _still_serving(client)


# --- queue messages -------------------------------------------------------------------


@dataclass
class Delivery:
    """The attributes of an incoming AMQP message that decoding reads."""

    body: bytes
    content_type: str | None
    type: str | None
    headers: dict[str, Any] = field(default_factory=dict)


def _job_bytes(job_id: str, user_id: str, capability: int, text: str, tokens: int) -> bytes:
    job = jobs_pb2.CapabilityJob(
        job_id=job_id,
        user_id=user_id,
        capability=capability,  # type: ignore[arg-type]
        reservation=jobs_pb2.Reservation(tokens=tokens),
    )
    try:
        job.request_id = text
        job.parse_task.natural_language = text
    except ValueError:
        pass  # protobuf refuses some strings (lone surrogates); keep the rest
    return job.SerializeToString()


def _splice(job: bytes, at: int, byte: int) -> bytes:
    cut = at % (len(job) + 1)
    return job[:cut] + bytes([byte]) + job[cut:]


valid_jobs = st.builds(
    _job_bytes,
    st.text(max_size=40),
    st.text(max_size=40),
    # Unknown enum values included: a newer publisher may send them.
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
    st.text(max_size=40),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
)
message_bodies = st.one_of(
    st.binary(max_size=512),
    valid_jobs,
    # A real job with a byte spliced in, or cut short.
    st.builds(_splice, valid_jobs, st.integers(0, 511), st.integers(0, 255)),
    st.tuples(valid_jobs, st.integers(0, 100)).map(lambda t: t[0][: t[1]]),
)
header_values = st.one_of(st.integers(), st.text(max_size=20), st.none(), st.binary(max_size=20))


@given(
    body=message_bodies,
    content_type=st.one_of(st.none(), st.just(CONTENT_TYPE), st.text(max_size=40)),
    message_type=st.one_of(st.none(), st.just(MESSAGE_TYPE), st.text(max_size=40)),
    headers=st.dictionaries(st.text(max_size=30), header_values, max_size=4),
)
@settings(max_examples=600, deadline=None)
def test_decode_job_returns_a_job_or_refuses_it(
    fuzz_cases: Counter[str],
    body: bytes,
    content_type: str | None,
    message_type: str | None,
    headers: dict[str, Any],
) -> None:
    fuzz_cases["queue: decode_job"] += 1
    message = Delivery(body, content_type, message_type, headers)

    try:
        job = decode_job(cast(aio_pika.abc.AbstractIncomingMessage, message))
    except UndecodableMessage:
        return

    assert isinstance(job, jobs_pb2.CapabilityJob)
    assert job.job_id and job.user_id
    assert content_type in (None, CONTENT_TYPE) and message_type in (None, MESSAGE_TYPE)
