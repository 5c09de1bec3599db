"""Label children bound once (taskmesh.metrics.labelled) count into the same series that
``labels()`` and a scrape of the registry see."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from taskmesh import metrics


def test_a_bound_child_counts_into_the_family_series() -> None:
    labels = {"operation": "core", "model": "test-children", "outcome": "ok"}
    before = REGISTRY.get_sample_value("taskmesh_llm_calls_total", labels) or 0.0
    child = metrics.labelled(metrics.llm_calls, "core", "test-children", "ok")
    child.inc()
    metrics.labelled(metrics.llm_calls, "core", "test-children", "ok").inc(2)
    assert child is metrics.llm_calls.labels("core", "test-children", "ok")
    assert REGISTRY.get_sample_value("taskmesh_llm_calls_total", labels) == before + 3


def test_a_wrong_label_count_raises_as_labels_does() -> None:
    with pytest.raises(ValueError):
        metrics.labelled(metrics.llm_calls, "core")
