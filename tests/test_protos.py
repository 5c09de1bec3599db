"""The protobuf contract: buf lint passes and the committed stubs are what
protoc generates from protos/ today."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_committed_stubs_match_the_protos(tmp_path):
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_protos.py"), str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    generated = sorted(p.relative_to(tmp_path) for p in (tmp_path / "taskmesh").rglob("*_pb2*"))
    committed = sorted(
        p.relative_to(ROOT)
        for p in (ROOT / "taskmesh").rglob("*_pb2*")
        if p.suffix in (".py", ".pyi")
    )
    assert generated == committed, "run `make protos` and commit the stubs"
    stale = [str(p) for p in generated if not filecmp.cmp(tmp_path / p, ROOT / p, shallow=False)]
    assert not stale, f"stale stubs (run `make protos`): {stale}"


def _buf(*args: str) -> subprocess.CompletedProcess[str]:
    """``buf`` from npm (SPEC §2), run at the repository root; skips without npx."""
    npx = shutil.which("npx")
    if npx is None:
        pytest.skip("npx is not installed")
    return subprocess.run(
        [npx, "--yes", "@bufbuild/buf", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=590,
    )


@pytest.mark.timeout(600)
def test_buf_lint_passes():
    result = _buf("lint")
    assert result.returncode == 0, result.stdout + result.stderr


#: The wire contract clients were last given (the main of 2026-11-29). `buf breaking` (FILE rules,
#: buf.yaml) holds every later change to it: new fields, values and RPCs only. A deliberate
#: break moves this to the commit that made it, and says so in its message.
CONTRACT_BASELINE = "239339a"


@pytest.mark.timeout(600)
def test_protos_stay_wire_compatible_with_the_released_contract():
    known = subprocess.run(
        ["git", "cat-file", "-e", f"{CONTRACT_BASELINE}^{{commit}}"], cwd=ROOT, capture_output=True
    )
    if known.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"the baseline commit {CONTRACT_BASELINE} is not in this clone's history")
        pytest.skip(f"the baseline commit {CONTRACT_BASELINE} is not in this clone (shallow?)")
    # buf clones 50 commits deep unless told: the baseline falls out of reach as history grows.
    result = _buf("breaking", "--against", f".git#ref={CONTRACT_BASELINE},depth=1000")
    assert result.returncode == 0, result.stdout + result.stderr
