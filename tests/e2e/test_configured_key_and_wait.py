"""The real processes with a configured development key that does not look
like a generated one (SPEC §4), answering ``Prefer: wait`` with 201 for a
task, 200 for a job that ended without one (SPEC §5)."""

from __future__ import annotations

import httpx
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

CONFIGURED_KEY = "devkey-0123456789abcdef"


@pytest.mark.timeout(240)
def test_a_configured_key_works_and_prefer_wait_tells_task_from_none(stack_factory) -> None:
    stack = stack_factory(TASKMESH_DEV_API_KEY=CONFIGURED_KEY)
    headers = {"Authorization": f"Bearer {CONFIGURED_KEY}", "Prefer": "wait=30"}
    with httpx.Client(base_url=stack.url, headers=headers, timeout=40) as http:
        assert http.get("/api/v1/usage").status_code == 200

        created = http.post(
            "/api/v1/tasks", json={"naturalLanguage": "Pay the electricity bill tomorrow"}
        )
        assert created.status_code == 201, created.text
        assert created.json()["task"]["category"] == "finance"

        vague = http.post("/api/v1/tasks", json={"naturalLanguage": "Do stuff"})
        assert vague.status_code == 200, vague.text
        job = vague.json()
        assert job["status"] == "failed" and job["error"]["type"] == "VAGUE_INPUT"
        assert "task" not in job
