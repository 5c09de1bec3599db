"""/docs in a real browser, offline: headless Chromium renders Swagger UI from
the gateway alone (every other host unresolvable), with the POST body of
createTask and its "Try it out" button; a screenshot is kept for people."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from gateway import RunningGateway

#: A slow machine renders the page in a few seconds; past this it is hung.
RENDER_TIMEOUT_S = 90


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed (.ci/run installs Debian's chromium)")
    pytest.skip("chromium is not installed (apt-get install -y chromium)")


async def _chromium_run(*args: str, cwd: Path) -> str:
    process = await asyncio.create_subprocess_exec(
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        # Offline: no name resolves but the gateway's own address.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        f"--user-data-dir={cwd / 'profile'}",
        "--virtual-time-budget=15000",
        "--window-size=1280,2400",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), RENDER_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode(errors="replace")


async def test_docs_render_the_post_body_and_try_it_out_offline(
    gateway: RunningGateway, tmp_path: Path
) -> None:
    # Deep link: Swagger UI opens createTask (tag "tasks") on load.
    url = f"{gateway.url}/docs#/tasks/createTask"
    dom = await _chromium_run("--dump-dom", url, cwd=tmp_path)
    assert "swagger-ui" in dom
    assert "Try it out" in dom, dom[-3000:]
    assert "Request body" in dom
    assert "naturalLanguage" in dom
    assert "/api/v1/tasks" in dom and "/api/v1/jobs" in dom
    assert "Authorize" in dom

    shot = Path(os.environ.get("DOCS_SCREENSHOT", tmp_path / "docs.png"))
    await _chromium_run(f"--screenshot={shot}", url, cwd=tmp_path)
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000
