"""A job's cost is bounded and covered (SPEC §8, §9; issue 10 case 4), on the real
processes against an endpoint whose answers and usage the test chooses: five
concurrent long sentences whose first core answer fails validation, each call
reporting about its bound (~1,750-1,900 tokens for core calls). Before each further
call the reservation must cover it, or the call is not made and the job fails
BUDGET_EXHAUSTED with what it spent charged; the window never ends past its limit by
more than one job's bound, and `taskmesh ledger check` finds every charge equal to its
recorded calls."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from taskmesh.capabilities.llm_client import CallOptions
from taskmesh.capabilities.parse_task.handler import first_calls_bound
from taskmesh.jobs.v1 import jobs_pb2
from tests.support.checks import assert_exactly_once, assert_ledger_balanced, client, wait_terminal
from tests.support.fake_llm import FakeLLM, FakeLLMServer

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(240)]

LIMIT = 10_000
ESTIMATE = 2_500
#: A small subtasks bound, so the first calls of these sentences fit the estimate and the
#: further (corrective) call is the one that needs a top-up.
MAX_CORE, MAX_SUBTASKS = 400, 32
#: (input, output) tokens each call reports: about each call's bound, as a model that
#: writes up to max_tokens would.
USAGE = {"core": (1_400, 350), "corrective": (1_500, 400), "subtasks": (450, 32)}
SENTENCES = [
    "Prepare the quarterly budget review for the finance team with last year's figures, "
    "the new hiring plan and the office move costs before Friday afternoon",
    "Organise the company offsite next month with the venue booking, catering for forty "
    "people, transport from the office and an agenda for both days",
    "Write the onboarding guide for new engineers covering the laptop setup, the code review "
    "rules, the on-call rota and who to ask about access by next Monday",
    "Plan the garden renovation this spring with new raised beds, a drip irrigation line, "
    "fresh soil and compost deliveries and a small shed for the tools",
    "Get the car ready for the long road trip in July with an oil change, new tyres, a brake "
    "check, the roof box fitted and the insurance documents renewed",
]


def one_jobs_bound() -> int:
    """The most one job may cost: its first calls + the corrective call, whose prompt is
    the core prompt plus the rejected answer and the feedback (under the first bound)."""
    options = CallOptions(max_tokens_core=MAX_CORE, max_tokens_subtasks=MAX_SUBTASKS)
    first = max(
        first_calls_bound(jobs_pb2.ParseTaskInput(natural_language=s), "v1", options)
        for s in SENTENCES
    )
    return 2 * first


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_concurrent_jobs_never_push_the_window_past_its_limit_by_more_than_one_job(
    stack_factory, database, request
):
    extra = {}
    if database == "postgresql":
        extra["DATABASE_URL"] = request.getfixturevalue("empty_postgres")
    fake = FakeLLM(USAGE)
    with FakeLLMServer(fake) as base_url:
        # The worker starts once every submission has its answer: a job it starts tops its
        # reservation up to its first calls' bound, which would shrink the room left for
        # submissions still arriving (how many fit would depend on timing).
        stack = stack_factory(
            services=["tasks", "ai", "gateway"],
            OPENAI_BASE_URL=base_url,
            TOKEN_WINDOW_LIMIT=str(LIMIT),
            PARSE_TASK_TOKEN_ESTIMATE=str(ESTIMATE),
            OPENAI_MAX_TOKENS_CORE=str(MAX_CORE),
            OPENAI_MAX_TOKENS_SUBTASKS=str(MAX_SUBTASKS),
            WORKER_CONCURRENCY="5",
            **extra,
        )
        with client(stack, timeout=30) as http, ThreadPoolExecutor(len(SENTENCES)) as pool:
            responses = list(
                pool.map(
                    lambda text: http.post("/api/v1/tasks", json={"naturalLanguage": text}),
                    SENTENCES,
                )
            )
            assert {r.status_code for r in responses} <= {202, 429}
            ids = [r.json()["jobId"] for r in responses if r.status_code == 202]
            # The estimate admits four submissions of 2,500 into a window of 10,000.
            assert len(ids) == LIMIT // ESTIMATE
            assert stack.stack is not None
            stack.stack.start("worker")

            final = wait_terminal(http, ids, timeout=120)
            usage = http.get("/api/v1/usage").json()
            assert_exactly_once(http, final)

        assert usage["used"] <= LIMIT + one_jobs_bound()
        # Every call the endpoint answered is charged, and nothing stays reserved.
        assert usage["used"] == fake.reported
        assert usage["reserved"] == 0
        # The first calls ran; no corrective call was made without a top-up covering it,
        # and a job refused one failed BUDGET_EXHAUSTED.
        assert len(fake.of("core")) == len(ids), final
        refused = [j for j in final.values() if j["status"] == "failed"]
        assert refused, "the window had room for every corrective call"
        for job in refused:
            assert job["error"]["type"] == "BUDGET_EXHAUSTED", job
        assert len(fake.of("corrective")) == len(ids) - len(refused)
        # Charged = Σ recorded calls per job, and the windows balance.
        assert_ledger_balanced(stack)
