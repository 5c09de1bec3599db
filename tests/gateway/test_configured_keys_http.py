"""The gateway passes any 16-200 character printable ASCII key on to the Tasks
service (SPEC §4): configured keys need not look like generated ones."""

from __future__ import annotations

import httpx
import pytest

from tests.gateway import fakes
from tests.support.gateway import assert_problem
from tests.tasks.test_configured_keys import CONFIGURED_KEYS


@pytest.mark.parametrize("key", CONFIGURED_KEYS.values(), ids=CONFIGURED_KEYS.keys())
async def test_a_configured_key_reaches_its_user(
    anon: httpx.AsyncClient, fake: fakes.FakeTasks, monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    monkeypatch.setitem(fakes.USERS, key, ("user-alice", "alice"))
    response = await anon.get("/api/v1/usage", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    assert fake.calls["Authenticate"] == 1


@pytest.mark.parametrize("key", ["abcdefghijklmno", "k" * 201], ids=["15", "201"])
async def test_a_key_of_the_wrong_length_is_401_without_a_lookup(
    anon: httpx.AsyncClient, fake: fakes.FakeTasks, key: str
) -> None:
    response = await anon.get("/api/v1/usage", headers={"Authorization": f"Bearer {key}"})
    assert_problem(response, 401, "unauthenticated")
    assert fake.calls["Authenticate"] == 0
