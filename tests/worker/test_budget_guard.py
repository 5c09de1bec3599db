"""The worker's CallGuard (SPEC §8): a call is made only when the job's reservation
covers what was spent, what is in flight and the call's bound; the first calls were
admitted by StartJob (no extra RPC), a further one asks Tasks for a top-up, and a
refusal ends the run BUDGET_EXHAUSTED with what it spent charged."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import openai
import pytest

from services.worker.budget_guard import ReservationGuard, Unconfirmed
from services.worker.decisions import Delivery, Finished, Transient
from services.worker.handling import JobHandler
from services.worker.hooks import WorkerHooks
from services.worker.runner import CapabilityRunner
from taskmesh import errors
from taskmesh.capabilities.errors import BudgetRefused, UsageMeter
from taskmesh.capabilities.llm_client import CallOptions, configure
from taskmesh.capabilities.parse_task.handler import first_calls_bound
from taskmesh.tasks.v1 import tasks_pb2
from tests.support.fake_llm import FakeLLM, FakeLLMServer
from tests.worker.doubles import FakeTasks, a_job

pytestmark = pytest.mark.timeout(30)


class TopUps:
    """Tasks' answer to ReserveTokens: grants a reservation of up to ``most`` tokens."""

    def __init__(self, most: int | None = None, down: bool = False) -> None:
        self.most = most
        self.down = down
        self.asked: list[int] = []

    async def __call__(self, needed: int) -> bool:
        self.asked.append(needed)
        if self.down:
            raise errors.Unavailable("tasks down")
        return self.most is None or needed <= self.most


def guard(top_ups: TopUps, meter: UsageMeter, reserved: int = 2500, **kwargs) -> ReservationGuard:  # type: ignore[no-untyped-def]
    options = {"start_granted": True, "prior_tokens": 0, **kwargs}
    return ReservationGuard(top_ups, reserved=reserved, meter=meter, **options)


async def test_calls_the_reservation_covers_need_no_rpc():
    top_ups, meter = TopUps(), UsageMeter()
    g = guard(top_ups, meter)
    await g.admit(2400)
    meter.record("core", 1500, 400)
    meter.record("subtasks", 400, 100)
    assert top_ups.asked == []


async def test_a_further_call_asks_for_spent_plus_its_bound():
    top_ups, meter = TopUps(), UsageMeter()
    g = guard(top_ups, meter)
    await g.admit(2400)
    meter.record("core", 1400, 400)
    meter.record("subtasks", 500, 100)
    await g.admit(1900)
    # Committed 2400 (the admitted bounds cover the 2400 spent) + the corrective 1900.
    assert top_ups.asked == [4300]
    assert g.covered == 4300


async def test_calls_still_in_flight_are_covered_by_their_bounds():
    top_ups, meter = TopUps(), UsageMeter()
    g = guard(top_ups, meter, reserved=5000)
    await g.admit(1800)  # core, in flight
    await g.admit(700)  # subtasks, in flight
    await g.admit(1900)  # nothing reported yet: 4400 committed
    assert top_ups.asked == []
    await g.admit(1000)
    assert top_ups.asked == [5400]


async def test_what_an_endpoint_reports_above_the_bounds_counts():
    top_ups, meter = TopUps(), UsageMeter()
    g = guard(top_ups, meter)
    await g.admit(2400)
    meter.record("core", 2600, 400)  # reported more than admitted
    await g.admit(1900)
    assert top_ups.asked == [3000 + 1900]


async def test_earlier_attempts_spend_is_covered_too():
    top_ups, meter = TopUps(), UsageMeter()
    g = guard(top_ups, meter, reserved=5000, prior_tokens=2000)
    await g.admit(2400)
    assert top_ups.asked == []
    await g.admit(1000)
    assert top_ups.asked == [5400]


async def test_a_refused_top_up_refuses_the_call():
    top_ups, meter = TopUps(most=2500), UsageMeter()
    g = guard(top_ups, meter)
    await g.admit(2400)
    meter.record("core", 1800, 400)
    with pytest.raises(BudgetRefused):
        await g.admit(1900)
    assert g.covered == 2500


async def test_first_calls_refused_at_start_are_refused_without_another_rpc():
    top_ups, meter = TopUps(), UsageMeter()
    g = guard(top_ups, meter, start_granted=False)
    with pytest.raises(BudgetRefused):
        await g.admit(2600)
    assert top_ups.asked == []


async def test_tasks_not_answering_a_top_up_is_transient_not_a_refusal():
    top_ups, meter = TopUps(down=True), UsageMeter()
    g = guard(top_ups, meter)
    await g.admit(2400)
    meter.record("core", 1800, 400)
    with pytest.raises(Unconfirmed) as raised:
        await g.admit(1900)
    assert raised.value.usage.input_tokens == 1800


async def test_concurrent_admissions_do_not_share_headroom():
    top_ups, meter = TopUps(most=4500), UsageMeter()
    g = guard(top_ups, meter, reserved=2500)
    results = await asyncio.gather(*(g.admit(1500) for _ in range(4)), return_exceptions=True)
    # Each admission counts the ones before it: 1500 and 3000 fit, 4500 fits after a top-up,
    # 6000 does not.
    assert results[:3] == [None, None, None]
    assert isinstance(results[3], BudgetRefused)
    assert top_ups.asked == [3000, 4500, 6000]


# --- the worker's chain: StartJob, the capability, the guard --------------------------------

SENTENCE = (
    "Prepare the quarterly budget review for the finance team with last year's figures, "
    "the new hiring plan and the office move costs before Friday afternoon"
)
USAGE = {"core": (1400, 350), "corrective": (1500, 400), "subtasks": (500, 100)}


def long_job():  # type: ignore[no-untyped-def]
    job = a_job()
    job.parse_task.natural_language = SENTENCE
    job.parse_task.reference_time.FromDatetime(datetime(2024, 1, 15, 12, tzinfo=UTC))
    return job


async def run_once(tasks: FakeTasks) -> tuple[object, FakeLLM]:
    fake = FakeLLM(USAGE)
    with FakeLLMServer(fake) as base_url:
        llm = openai.AsyncOpenAI(base_url=base_url, api_key="fake", max_retries=0, timeout=10)
        configure(llm, CallOptions(max_tokens_core=400, max_tokens_subtasks=100))
        async with llm:
            handler = JobHandler(CapabilityRunner(llm, "fake"), tasks, WorkerHooks())  # type: ignore[arg-type]
            outcome = await handler.handle(long_job(), Delivery(0, 0, None), UsageMeter())
    return outcome, fake


async def test_a_job_refused_its_corrective_call_fails_budget_exhausted_charged():
    tasks = FakeTasks(room=0)
    outcome, fake = await run_once(tasks)
    assert isinstance(outcome, Finished)
    request = outcome.request
    assert request.error.type == tasks_pb2.JOB_ERROR_TYPE_BUDGET_EXHAUSTED
    # The corrective call was not made; the two first calls are charged.
    assert [c.kind for c in fake.of("corrective")] == []
    spent = request.usage.input_tokens + request.usage.output_tokens
    assert spent == fake.reported == 1750 + 600
    # StartJob admitted the first calls (no top-up RPC for them), the corrective asked once.
    [(stage, first), (further, needed)] = tasks.admissions
    assert (stage, further) == ("start", "further")
    assert first <= 2500 < needed


async def test_start_job_admits_the_bound_of_the_first_calls_the_run_makes():
    tasks = FakeTasks()
    outcome, fake = await run_once(tasks)
    assert isinstance(outcome, Finished)
    options = CallOptions(max_tokens_core=400, max_tokens_subtasks=100)
    bound = first_calls_bound(long_job().parse_task, "v1", options)
    # The bound StartJob admitted is the one of the prompts the run then sent: the first
    # two calls needed no top-up, only the corrective one did.
    assert [stage for stage, _ in tasks.admissions] == ["start", "further"]
    assert tasks.admissions[0][1] == bound
    assert len(fake.of("subtasks")) == 1 and len(fake.of("corrective")) == 1


async def test_a_job_granted_a_top_up_makes_its_corrective_call():
    tasks = FakeTasks()
    outcome, fake = await run_once(tasks)
    assert isinstance(outcome, Finished) and outcome.request.HasField("parse_task")
    assert len(fake.of("corrective")) == 1
    assert tasks.reserved["job-1"] >= fake.reported


async def test_a_start_without_room_makes_no_llm_call():
    tasks = FakeTasks(reservation=1000, room=0)
    outcome, fake = await run_once(tasks)
    assert isinstance(outcome, Finished)
    assert outcome.request.error.type == tasks_pb2.JOB_ERROR_TYPE_BUDGET_EXHAUSTED
    assert fake.calls == [] and outcome.request.usage.llm_calls == 0


async def test_tasks_down_at_a_top_up_retries_the_job_later_with_its_spend():
    class DownAtTopUp(FakeTasks):
        async def reserve_tokens(self, job_id, tokens_needed, request_id):  # type: ignore[no-untyped-def]
            raise errors.Unavailable("tasks down")

    outcome, fake = await run_once(DownAtTopUp())
    assert isinstance(outcome, Transient)
    assert outcome.usage.input_tokens + outcome.usage.output_tokens == fake.reported
