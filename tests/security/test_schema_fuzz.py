"""Schemathesis drives the gateway from its own /openapi.json: every answer is
documented (status, content type, headers, body shape) and none is a 500."""

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

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
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
    command = [
        _schemathesis(),
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
