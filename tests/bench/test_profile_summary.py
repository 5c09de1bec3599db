"""The profile summary reads py-spy's raw (collapsed) stacks: own time goes to
the leaf frame, by function and by package, in ms per job."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from bench_profile import Profiler, collapse  # noqa: E402

RAW = """\
<module> (/x/lib/python3.11/site-packages/taskiq/cli.py:3);run (/x/lib/python3.11/asyncio/runners.py:118) 60
<module> (/x/lib/python3.11/site-packages/taskiq/cli.py:3);create (/x/lib/python3.11/site-packages/openai/_base_client.py:10);_transform (/x/lib/python3.11/site-packages/openai/_utils/_transform.py:7) 30
<module> (/x/lib/python3.11/site-packages/taskiq/cli.py:3);_transform (/x/lib/python3.11/site-packages/openai/_utils/_transform.py:7) 10
 2
<module> (/x/lib/python3.11/site-packages/taskiq/cli.py:3);run (/x/lib/python3.11/asyncio/runners.py:118);epoll_wait (libc.so.6) 500
"""


def test_own_time_is_counted_on_the_leaf_frame_by_function_and_by_package_waits_left_out() -> None:
    own, packages, total = collapse(RAW)
    assert total == 102
    assert own[("_transform", "openai/_utils/_transform.py")] == 40
    assert own[("run", "stdlib/asyncio/runners.py")] == 60
    assert packages == {"stdlib:asyncio": 60, "openai": 40, "(native)": 2}


def test_summary_gives_milliseconds_per_job_from_samples_and_rate(tmp_path: Path) -> None:
    prof = Profiler(tmp_path, rate=100)
    prof.pids = {"worker#1": 1}
    prof.path("worker#1").write_text(RAW)
    # 102 samples at 100 per second over 10 jobs = 102 ms per job.
    text = prof.summary(jobs=10, top=2)
    assert "worker#1: 102.00 ms/job sampled" in text
    assert "stdlib:asyncio 60.00, openai 40.00" in text
    assert "60.00 ms  run  (stdlib/asyncio/runners.py)" in text
