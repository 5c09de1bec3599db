"""API keys as an operator manages them with ``taskmesh users``: shown once,
listed only by prefix, revoked at once, stored as hashes."""

from __future__ import annotations

import sqlite3
import uuid

import pytest

from tests.support.gateway import assert_problem
from tests.support.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

#: Characters of a key ``users list`` may show (services.tasks.domain.users.SHOWN_PREFIX).
SHOWN = 12


def test_create_prints_the_key_alone_once_and_it_works(stack: Stack) -> None:
    created = stack.cli("users", "create", f"carol-{uuid.uuid4().hex[:8]}")

    assert created.returncode == 0, created.stderr
    lines = created.stdout.splitlines()
    assert len(lines) == 1 and lines[0] == created.stdout.strip()
    key = lines[0]
    assert key not in created.stderr
    assert "only once" in created.stderr
    with stack.http(key) as http:
        assert http.get("/api/v1/usage").status_code == 200


def test_list_shows_names_and_prefixes_never_a_whole_key(stack: Stack) -> None:
    name, key = stack.new_user()

    listed = stack.cli("users", "list")

    assert listed.returncode == 0, listed.stderr
    (row,) = [line for line in listed.stdout.splitlines() if line.split("\t")[0] == name]
    assert key[:8] in row
    assert "active" in row
    for output in (listed.stdout, listed.stderr):
        assert key[: SHOWN + 1] not in output
        assert stack.api_key[: SHOWN + 1] not in output


def test_a_revoked_key_is_refused_on_the_very_next_request(stack: Stack) -> None:
    name, key = stack.new_user()
    _, other_key = stack.new_user()
    with stack.http(key) as http, stack.http(other_key) as other:
        assert http.get("/api/v1/usage").status_code == 200

        revoked = stack.cli("users", "revoke", key[:10])

        assert revoked.returncode == 0, revoked.stderr
        body = assert_problem(http.get("/api/v1/usage"), 401, "unauthenticated")
        assert key not in str(body)
        assert other.get("/api/v1/usage").status_code == 200
    (row,) = [
        line for line in stack.cli("users", "list").stdout.splitlines() if line.startswith(name)
    ]
    assert "revoked" in row


@pytest.mark.parametrize("length", [0, 3, 7])
def test_a_prefix_under_eight_characters_is_refused(stack: Stack, length: int) -> None:
    _, key = stack.new_user()

    refused = stack.cli("users", "revoke", key[:length])

    assert refused.returncode == 1
    assert "at least 8 characters" in refused.stderr
    assert "Traceback" not in refused.stderr
    with stack.http(key) as http:
        assert http.get("/api/v1/usage").status_code == 200


@pytest.mark.parametrize("mangle", ["longer-and-wrong", "swapped-case"])
def test_a_prefix_that_does_not_start_the_key_revokes_nothing(stack: Stack, mangle: str) -> None:
    _, key = stack.new_user()
    if mangle == "longer-and-wrong":
        prefix = key[:SHOWN] + ("A" if key[SHOWN] != "A" else "B")
    else:
        prefix = key[:SHOWN].swapcase()
    assert not key.startswith(prefix)

    result = stack.cli("users", "revoke", prefix)

    assert result.returncode == 1
    with stack.http(key) as http:
        assert http.get("/api/v1/usage").status_code == 200


def test_keys_are_stored_hashed(stack: Stack) -> None:
    _, key = stack.new_user()
    secrets_ = {key: "created key", stack.api_key: "development key"}
    # Read-only: the running Tasks service owns the file.
    db = sqlite3.connect(f"file:{stack.db_path}?mode=ro", uri=True, timeout=30)
    try:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert "api_keys" in tables
        scanned = 0
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 - names from the schema
                for value in row:
                    text = (
                        value.decode(errors="replace") if isinstance(value, bytes) else str(value)
                    )
                    scanned += 1
                    for secret, what in secrets_.items():
                        # Past the shown prefix nothing of a key may be kept in clear.
                        assert secret[SHOWN:] not in text, f"{what} stored in clear in {table}"
    finally:
        db.close()
    assert scanned > 0
