"""Row ids are random version-4 UUIDs in their canonical text form (what job, task and
subtask ids look like on the wire)."""

from __future__ import annotations

import uuid

import pytest

from services.tasks.storage.ids import new_id, new_ids

pytestmark = pytest.mark.timeout(10)


def test_ids_are_canonical_random_v4_uuids() -> None:
    # One at a time, and drawn together as a task's and its subtasks' are.
    ids = [new_id() for _ in range(1000)] + [i for _ in range(250) for i in new_ids(4)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == text
    # Every variant digit occurs: the random bits beside the variant bits are kept.
    assert {text[19] for text in ids} == set("89ab")
