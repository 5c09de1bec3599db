"""Schemathesis drives the gateway from its own /openapi.json with all of its
checks: every answer is documented (status, content type, headers, body
shape), none is a 500, what the document allows is accepted and what it
forbids is refused."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from collections import Counter
from pathlib import Path

import pytest

from gateway import RunningGateway
from tests.gateway.fakes import ALICE_KEY, FakeTasks

#: Every check schemathesis has, negative_data_rejection and
#: positive_data_acceptance included: the document must say exactly what the
#: server enforces, in both directions (issue 11 item 4).
CHECKS = ("all",)
#: Schema-valid requests may still meet state the document cannot express: 422 is a
#: reused Idempotency-Key with another body (generated keys repeat). Schemathesis's
#: default list for positive_data_acceptance, plus that.
CONFIG = """
[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
"""
MAX_EXAMPLES = 25
#: Past this the run counts as hung; a healthy one takes a few seconds.
RUN_TIMEOUT_S = 100


def _schemathesis() -> str:
    found = shutil.which("st", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("schemathesis is not installed (it is in the dev dependencies)")
    return found


async def test_the_gateway_honours_its_openapi_document(
    gateway: RunningGateway, fake: FakeTasks, fuzz_cases: Counter[str], tmp_path: Path
) -> None:
    # Jobs finish at once, so "Prefer: wait=N" answers 201 instead of waiting N seconds.
    fake.complete_on_create = True
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    command = [
        _schemathesis(),
        "--config-file",
        str(config),
        "run",
        f"{gateway.url}/openapi.json",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--checks",
        ",".join(CHECKS),
        # Stateful runs need links between operations; the fake backend has no data.
        "--phases",
        "examples,coverage,fuzzing",
        "--header",
        f"Authorization: Bearer {ALICE_KEY}",
        "--request-timeout",
        "20",
        "--seed",
        "20250115",
        "--no-color",
    ]
    # In-process gateway: the run must not block this event loop.
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    text = output.decode(errors="replace")

    generated = re.search(r"(\d+) generated", text)
    assert generated is not None, text
    fuzz_cases["schemathesis: gateway"] += int(generated.group(1))
    assert process.returncode == 0, text
    assert int(generated.group(1)) > 0
