"""The API key rides on the request's own Tasks call (taskmesh.rpc.caller): one hop
per request, the key still checked (and the rate token taken) on every request,
and a bad key still outranks every other error."""

from __future__ import annotations

import httpx
import pytest

from taskmesh import errors
from tests.gateway.fakes import ALICE_KEY, BOB_KEY, USERS, FakeTasks
from tests.support.gateway import assert_problem

CREATE = {"naturalLanguage": "Pay rent tomorrow"}


async def test_a_request_costs_one_call_that_checks_the_key(
    client: httpx.AsyncClient, fake: FakeTasks
) -> None:
    response = await client.get("/api/v1/usage")
    assert response.status_code == 200, response.text
    assert fake.calls["Authenticate"] == 1  # the key was checked ...
    assert len(fake.request_ids) == fake.calls["GetUsage"]  # ... inside the only call made


async def test_the_key_is_checked_on_every_request(
    client: httpx.AsyncClient, fake: FakeTasks
) -> None:
    for _ in range(3):
        assert (await client.get("/api/v1/usage")).status_code == 200
    assert fake.calls["Authenticate"] == fake.calls["GetUsage"]


async def test_each_user_acts_as_themselves(anon: httpx.AsyncClient, fake: FakeTasks) -> None:
    created = await anon.post(
        "/api/v1/tasks", json=CREATE, headers={"Authorization": f"Bearer {ALICE_KEY}"}
    )
    assert created.status_code == 202, created.text
    job = created.headers["location"].rsplit("/", 1)[1]
    assert fake.owners[job] == USERS[ALICE_KEY][0]
    other = await anon.get(f"/api/v1/jobs/{job}", headers={"Authorization": f"Bearer {BOB_KEY}"})
    assert_problem(other, 404, "not-found")


async def test_a_later_call_of_the_same_request_names_the_user_without_the_key(
    client: httpx.AsyncClient, fake: FakeTasks
) -> None:
    fake.complete_on_create = True
    response = await client.post("/api/v1/tasks", json=CREATE, headers={"Prefer": "wait=5"})
    assert response.status_code == 201, response.text
    # CreateTask carried the key, WatchJob the user's id: one check for the request.
    assert fake.calls["WatchJob"] == 1
    assert fake.calls["Authenticate"] == 1


async def test_an_unknown_key_outranks_a_bad_body(anon: httpx.AsyncClient, fake: FakeTasks) -> None:
    response = await anon.post(
        "/api/v1/tasks", json={}, headers={"Authorization": "Bearer not-a-real-key-at-all"}
    )
    assert_problem(response, 401, "unauthenticated")
    assert fake.calls["Authenticate"] == 1


async def test_a_bad_body_with_a_good_key_is_400_after_one_key_check(
    client: httpx.AsyncClient, fake: FakeTasks
) -> None:
    response = await client.post("/api/v1/tasks", json={})
    assert response.status_code == 400, response.text
    assert fake.calls["Authenticate"] == 1
    assert fake.calls["CreateTask"] == 0


async def test_the_request_rate_outranks_a_bad_body(
    client: httpx.AsyncClient, fake: FakeTasks
) -> None:
    fake.failures["Authenticate"] = errors.ResourceExhausted("Slow down.", 2, "RATE_LIMITED")
    response = await client.post("/api/v1/tasks", json={})
    assert_problem(response, 429)
    assert "retry-after" in response.headers


@pytest.mark.parametrize(
    "keys",
    [(ALICE_KEY, BOB_KEY), (ALICE_KEY, ALICE_KEY), ("not-a-real-key-at-all", ALICE_KEY)],
    ids=["two-users", "same-key-twice", "bad-then-good"],
)
async def test_two_authorization_headers_are_400_before_any_key_lookup(
    anon: httpx.AsyncClient, fake: FakeTasks, keys: tuple[str, str]
) -> None:
    # RFC 9110 §5.3: Authorization is not a list; acting as either key would be a guess.
    headers = [("Authorization", f"Bearer {key}") for key in keys]
    for response in (
        await anon.get("/api/v1/usage", headers=headers),
        await anon.post("/api/v1/tasks", json=CREATE, headers=headers),
    ):
        body = assert_problem(response, 400, "validation")
        assert body["errors"] == [
            {"field": "Authorization", "message": "must be given at most once"}
        ]
    assert sum(fake.calls.values()) == 0
