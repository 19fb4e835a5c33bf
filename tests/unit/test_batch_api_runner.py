"""The batch runner through the real ``openai`` SDK against the local Batch API (a real socket)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest

from fakes.batches import FakeBatches, FakeBatchesServer
from fakes.openai_server import FakeOpenAI
from fakes.script import echo_answer
from worker.batch_api.delivery import PartResult
from worker.batch_api.jobs import Outcome, PartState, describe, show
from worker.batch_api.jobstore import MemoryJobStore
from worker.batch_api.requests import BatchRequest, build_requests
from worker.batch_api.runner import BatchRunner
from worker.model.formats import VARIANTS
from worker.model.formats import response_format as format_of
from worker.model.prompt import build_messages, request_snippets
from worker.model.schema import parse_answer
from worker.packing import pack

MODEL = "gpt-6-luna"
TEXTS = [
    "Acme Corp reported revenue of $5.3 million for Q1 2024.",
    "Beta Ltd posted net income of $1.2 million in Q2 2024.",
    "Gamma Inc reported revenue of $48.1 million for fiscal 2023.",
    "Delta plc said operating profit was £3.4 million in H1 2024.",
    "Epsilon AG reported revenue of €12.5 million for Q3 2024.",
]


def build_body(group: list[str]) -> dict[str, Any]:
    """The body the synchronous path sends for a group of snippets."""
    return {
        "model": MODEL,
        "response_format": format_of(VARIANTS[0]),
        "messages": build_messages([(f"s{i}", text) for i, text in enumerate(group, 1)]),
    }


def make_requests(per_call: int = 1) -> list[BatchRequest]:
    groups = pack(TEXTS, max_items=per_call, max_chars=10_000, size=len)
    return build_requests(groups, build_body).requests


class Killed(Exception):
    """The process dies here."""


class Kill:
    """Counts step boundaries and dies at number ``at`` (0: never)."""

    def __init__(self, at: int = 0) -> None:
        self.at = at
        self.events: list[str] = []

    def boundary(self, what: str) -> None:
        self.events.append(what)
        if len(self.events) == self.at:
            raise Killed(what)


class Collector:
    """A result sink: what each part handed over, and how often each request came back."""

    def __init__(self, kill: Kill | None = None) -> None:
        self.kill = kill
        self.results: list[PartResult] = []
        self.answers: dict[str, dict[str, Any]] = {}
        self.deliveries: Counter[str] = Counter()

    def __call__(self, result: PartResult) -> None:
        if self.kill is not None:
            self.kill.boundary(f"sink part {result.part}")
        self.results.append(result)
        self.answers.update(result.answers)
        self.deliveries.update(list(result.requests))


class KillingStore(MemoryJobStore):
    """Dies before a write."""

    def __init__(self, kill: Kill) -> None:
        super().__init__()
        self.kill = kill

    def save_job(self, doc: dict[str, Any]) -> None:
        self.kill.boundary(f"save {doc['state']}")
        super().save_job(doc)

    def save_requests(self, job_id: str, part: int, lines: Any) -> None:
        self.kill.boundary("save requests")
        super().save_requests(job_id, part, lines)


class _Proxy:
    """Calls through to ``target``; a call that changes the remote state dies just after it is
    done (the answer is lost), any other call dies before it is made."""

    def __init__(self, target: Any, name: str, kill: Kill, changing: set[str]) -> None:
        self._target, self._name, self._kill, self._changing = target, name, kill, changing

    def __getattr__(self, attr: str) -> Callable[..., Any]:
        method = getattr(self._target, attr)

        def call(*args: Any, **kwargs: Any) -> Any:
            what = f"{self._name}.{attr}"
            if attr not in self._changing:
                self._kill.boundary(what)
                return method(*args, **kwargs)
            out = method(*args, **kwargs)
            self._kill.boundary(what + " (done)")
            return out

        return call


class KillingClient:
    def __init__(self, client: openai.OpenAI, kill: Kill) -> None:
        self.files = _Proxy(client.files, "files", kill, {"create"})
        self.batches = _Proxy(client.batches, "batches", kill, {"create", "cancel"})


@pytest.fixture
def fake() -> FakeBatches:
    return FakeBatches(echo_answer, advance_on_retrieve=True)


@pytest.fixture
def client(fake: FakeBatches) -> Iterator[openai.OpenAI]:
    with FakeBatchesServer(fake) as server:
        sdk = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        yield sdk
        sdk.close()


def no_sleep(_: float) -> None:
    pass


def runner_for(client: Any, store: Any, sink: Collector, **kwargs: Any) -> BatchRunner:
    return BatchRunner(client, store, sink, now=time.time, **kwargs)


def assert_every_request_answered_once(
    fake: FakeBatches, sink: Collector, requests: list[BatchRequest], parts: int
) -> None:
    ids = {r.custom_id for r in requests}
    assert set(fake.answered) == ids
    assert all(n == 1 for n in fake.answered.values()), fake.answered
    assert len(fake.batches) == parts, "a part was submitted twice"
    inputs = [f for f in fake.files.values() if f.purpose == "batch"]
    assert len(inputs) == parts, "an input file was uploaded twice"
    assert set(sink.answers) == ids


# --------------------------------------------------------------------------- happy path


def test_every_request_is_answered_by_one_batch(fake: FakeBatches, client: openai.OpenAI) -> None:
    requests = make_requests(per_call=2)
    sink, store = Collector(), MemoryJobStore()
    report = runner_for(client, store, sink).run(requests, sleep=no_sleep, poll_s=0)
    assert_every_request_answered_once(fake, sink, requests, parts=1)
    assert report.todo == [] and report.open_jobs == []
    (job,) = report.jobs
    assert job.state is PartState.COLLECTED and job.parts[0].outcome is Outcome.COMPLETED
    assert job.parts[0].answered == len(requests)
    (batch,) = fake.batches.values()
    assert batch.metadata == {
        "finpipe_job": job.job_id,
        "finpipe_part": "0",
        "finpipe_requests": str(len(requests)),
    }
    for request in requests:
        completion = report.answers[request.custom_id]
        ids = [s["id"] for s in request_snippets(request.body["messages"])]
        parsed = parse_answer(completion["choices"][0]["message"]["content"], ids)
        assert not parsed.errors and all(parsed.facts[i] for i in ids)


def test_progress_is_reported_after_each_round(fake: FakeBatches, client: openai.OpenAI) -> None:
    seen: list[str] = []
    runner = runner_for(client, MemoryJobStore(), Collector())
    runner.run(
        make_requests(),
        sleep=no_sleep,
        poll_s=0,
        progress=lambda jobs: seen.append(str(jobs[0].parts[0].remote_status)),
    )
    assert seen == ["finalizing", "completed"]


def test_the_batch_goes_through_every_status(fake: FakeBatches, client: openai.OpenAI) -> None:
    fake.advance_on_retrieve = False
    runner = runner_for(client, MemoryJobStore(), Collector())
    job = runner.submit(make_requests()).job
    assert job is not None and job.parts[0].remote_status == "validating"
    seen = []
    for _ in range(3):
        fake.advance()
        job, delivered = runner.advance(job.job_id)
        seen.append(job.parts[0].remote_status)
    assert seen == ["in_progress", "finalizing", "completed"]
    assert not job.open and delivered[0].outcome is Outcome.COMPLETED


def test_requests_in_an_open_job_are_not_submitted_again(
    fake: FakeBatches, client: openai.OpenAI
) -> None:
    fake.advance_on_retrieve = False
    runner = runner_for(client, MemoryJobStore(), Collector())
    requests = make_requests()
    first = runner.submit(requests[:3])
    again = runner.submit(requests)
    assert first.job is not None and again.job is not None
    assert again.already_open == 3 and again.job.requests == len(requests) - 3
    assert runner.submit(requests).job is None
    assert len(fake.batches) == 2


# --------------------------------------------------------------------------- kills


def boundary_events() -> list[str]:
    fake = FakeBatches(echo_answer, advance_on_retrieve=True)
    kill = Kill()
    with FakeBatchesServer(fake) as server:
        sdk = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        runner = runner_for(KillingClient(sdk, kill), KillingStore(kill), Collector(kill))
        runner.max_requests = 3
        runner.run(make_requests(), sleep=no_sleep, poll_s=0)
        sdk.close()
    return kill.events


#: The step boundaries of a two-part job (3 + 2 requests) from start to end, in order: a store
#: write (the job's least advanced state), a client call ("(done)": the call changed the remote
#: state and its answer is lost), or the sink. A retrieve moves the fake batch one status on.
BOUNDARY_EVENTS = [
    "save requests",
    "save requests",
    "save building",
    "files.list",
    "files.create (done)",
    "save building",
    "batches.list",
    "batches.create (done)",
    "save building",
    "batches.retrieve",
    "save building",
    "files.list",
    "files.create (done)",
    "save uploaded",
    "batches.list",
    "batches.create (done)",
    "save submitted",
    "batches.retrieve",
    "save submitted",
    "batches.retrieve",
    "save submitted",
    "batches.retrieve",
    "save submitted",
    "batches.retrieve",
    "save submitted",
    "files.content",
    "sink part 0",
    "save submitted",
    "batches.retrieve",
    "save submitted",
    "files.content",
    "sink part 1",
    "save collected",
]
BOUNDARIES = len(BOUNDARY_EVENTS)


def test_the_kill_tests_cover_every_step_boundary() -> None:
    assert boundary_events() == BOUNDARY_EVENTS


@pytest.mark.parametrize("at", range(1, BOUNDARIES + 1))
def test_a_kill_at_any_step_is_resumed_without_submitting_twice(
    at: int, fake: FakeBatches, client: openai.OpenAI
) -> None:
    requests = make_requests()
    kill = Kill(at)
    store, sink = KillingStore(kill), Collector(kill)
    first = runner_for(KillingClient(client, kill), store, sink, max_requests=3)
    with pytest.raises(Killed):
        first.run(requests, sleep=no_sleep, poll_s=0)
    # a new process: same store and server, new runner, no kills; it asks for what the cache
    # (the sink) does not have yet
    kill.at = 0
    again = runner_for(client, store, sink, max_requests=3)
    missing = [r for r in requests if r.custom_id not in sink.answers]
    report = again.run(missing, sleep=no_sleep, poll_s=0)
    assert_every_request_answered_once(fake, sink, requests, parts=2)
    assert report.todo == [] and again.open_jobs() == []
    assert max(sink.deliveries.values()) <= 2  # handed over again only after a kill mid-sink


# --------------------------------------------------------------------------- partial results


def test_an_expired_job_gives_its_partial_output_and_the_rest_goes_synchronous(
    fake: FakeBatches, client: openai.OpenAI
) -> None:
    requests = make_requests()
    fake.expire_next(after_requests=2)
    sink = Collector()
    report = runner_for(client, MemoryJobStore(), sink).run(requests, sleep=no_sleep, poll_s=0)
    (result,) = report.delivered
    assert result.outcome is Outcome.EXPIRED
    assert len(result.answers) == 2 and len(report.todo) == 3
    assert {e.code for e in result.errors.values()} == {"batch_expired"}
    # the rest through the synchronous endpoint, exactly as a synchronous call would send it
    with FakeOpenAI() as server:
        sync = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        for request in report.todo:
            sync.chat.completions.create(**request.body)
        sync.close()
        assert server.calls == 3
    answered_by_batch = set(report.answers)
    assert answered_by_batch.isdisjoint(r.custom_id for r in report.todo)
    assert answered_by_batch | {r.custom_id for r in report.todo} == {r.custom_id for r in requests}


def test_per_request_errors_are_handed_over_with_their_reason(
    fake: FakeBatches, client: openai.OpenAI
) -> None:
    fake.fail_requests(lambda body: "Beta Ltd" in json.dumps(body), 500, "overloaded")
    requests = make_requests()
    report = runner_for(client, MemoryJobStore(), Collector()).run(
        requests, sleep=no_sleep, poll_s=0
    )
    (result,) = report.delivered
    assert result.outcome is Outcome.COMPLETED
    assert len(result.answers) == 4
    ((cid, error),) = result.errors.items()
    assert (error.status_code, error.message) == (500, "overloaded")
    assert [r.custom_id for r in report.todo] == [cid]
    assert "Beta Ltd" in json.dumps(report.todo[0].body)
    assert report.jobs[0].parts[0].failed == 1


def test_a_failed_job_sends_everything_synchronous_with_the_reason(
    fake: FakeBatches, client: openai.OpenAI
) -> None:
    fake.fail_next("the input file is not valid")
    requests = make_requests()
    report = runner_for(client, MemoryJobStore(), Collector()).run(
        requests, sleep=no_sleep, poll_s=0
    )
    (result,) = report.delivered
    assert result.outcome is Outcome.FAILED and not result.answers
    assert [r.custom_id for r in report.todo] == [r.custom_id for r in requests]
    part = report.jobs[0].parts[0]
    assert part.outcome is Outcome.FAILED and "the input file is not valid" in (part.error or "")


def test_a_cancelled_job_keeps_what_was_answered(fake: FakeBatches, client: openai.OpenAI) -> None:
    fake.advance_on_retrieve = False
    fake.requests_per_step = 2
    runner = runner_for(client, MemoryJobStore(), Collector())
    requests = make_requests()
    job = runner.submit(requests).job
    assert job is not None
    fake.advance(steps=2)  # validated, two requests answered
    runner.cancel(job.job_id)
    assert fake.status(job.parts[0].batch_id or "") == "cancelling"
    fake.advance()
    job, (result,) = runner.advance(job.job_id)
    assert result.outcome is Outcome.CANCELLED and len(result.answers) == 2
    assert len(result.todo) == 3 and {e.code for e in result.errors.values()} == {"not_run"}
    assert not job.open


def test_the_deadline_cancels_and_collects_in_time() -> None:
    now = [1_796_000_000.0]

    def tick() -> float:
        return now[0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    fake = FakeBatches(echo_answer, step_s=60, clock=tick, requests_per_step=1)
    with FakeBatchesServer(fake) as server:
        sdk = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        sink = Collector()
        runner = BatchRunner(sdk, MemoryJobStore(), sink, now=tick)
        start = now[0]
        report = runner.run(make_requests(), sleep=sleep, poll_s=60, cancel_at=start + 150)
        sdk.close()
    (result,) = report.delivered
    # validating 60 s, then one request a minute; cancelled at 150 s, cancelled a minute later
    assert result.outcome is Outcome.CANCELLED
    assert 1 <= len(result.answers) <= 2 and len(report.todo) == 5 - len(result.answers)
    assert now[0] - start <= 300


def test_a_server_without_the_batch_api_sends_everything_synchronous() -> None:
    with FakeOpenAI(batch_api=False) as server:
        sdk = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        requests = make_requests()
        report = runner_for(sdk, MemoryJobStore(), Collector()).run(
            requests, sleep=no_sleep, poll_s=0
        )
        sdk.close()
    assert [r.custom_id for r in report.todo] == [r.custom_id for r in requests]
    assert "upload refused" in (report.jobs[0].parts[0].error or "")
    assert not report.jobs[0].open


# --------------------------------------------------------------------------- limits


@pytest.mark.parametrize(("max_requests", "files"), [(2, 3), (5, 1), (1, 5)])
def test_jobs_are_split_under_the_request_count_limit(
    max_requests: int, files: int, fake: FakeBatches, client: openai.OpenAI
) -> None:
    requests = make_requests()
    sink = Collector()
    runner = runner_for(client, MemoryJobStore(), sink, max_requests=max_requests)
    report = runner.run(requests, sleep=no_sleep, poll_s=0)
    assert_every_request_answered_once(fake, sink, requests, parts=files)
    assert all(len(b.lines) <= max_requests for b in fake.batches.values())
    assert len(report.jobs[0].parts) == files


def test_jobs_are_split_under_the_size_limit(fake: FakeBatches, client: openai.OpenAI) -> None:
    requests = make_requests()
    line = max(len(r.line()) for r in requests)
    sink = Collector()
    runner = runner_for(client, MemoryJobStore(), sink, max_bytes=2 * line)
    runner.run(requests, sleep=no_sleep, poll_s=0)
    assert_every_request_answered_once(fake, sink, requests, parts=3)
    assert all(len(fake.files[b.input_file_id].data) <= 2 * line for b in fake.batches.values())


def test_a_request_of_a_part_collected_before_a_kill_is_passed_back_not_resubmitted(
    fake: FakeBatches, client: openai.OpenAI
) -> None:
    requests = make_requests()
    kill = Kill(at=BOUNDARY_EVENTS.index("sink part 0") + 3)
    assert BOUNDARY_EVENTS[kill.at - 1] == "batches.retrieve"  # after part 0 was saved collected
    store, sink = KillingStore(kill), Collector(kill)
    first = runner_for(KillingClient(client, kill), store, sink, max_requests=3)
    with pytest.raises(Killed):
        first.run(requests, sleep=no_sleep, poll_s=0)
    kill.at = 0
    # the caller lost its cache and asks for everything again
    report = runner_for(client, store, Collector(), max_requests=3).run(
        requests, sleep=no_sleep, poll_s=0
    )
    assert len(fake.batches) == 2 and all(n == 1 for n in fake.answered.values())
    part0 = {r.custom_id for r in requests[:3]}
    assert {r.custom_id for r in report.to_sync} == part0
    assert {r.custom_id for r in report.todo} == part0
    assert set(report.answers) == {r.custom_id for r in requests[3:]}


@pytest.mark.parametrize("at", range(1, 4))
def test_a_kill_around_a_cancel_is_resumed_and_the_batch_collected(
    at: int, fake: FakeBatches, client: openai.OpenAI
) -> None:
    fake.advance_on_retrieve = False
    fake.requests_per_step = 2
    store, sink = KillingStore(Kill()), Collector()
    job = runner_for(client, store, sink).submit(make_requests()).job
    assert job is not None
    fake.advance(steps=2)  # validated, two requests answered
    # 1: before the cancel is saved, 2: just after the cancel call, 3: after it is saved
    kill = store.kill = Kill(at)
    with pytest.raises(Killed):
        runner_for(KillingClient(client, kill), store, sink).cancel(job.job_id)
        kill.boundary("after cancel")
    store.kill = Kill()
    again = runner_for(client, store, sink)
    if at == 1:  # the cancel was never asked for: the operator asks again
        again.cancel(job.job_id)
    fake.advance()
    report = again.wait([job.job_id], sleep=no_sleep, poll_s=0)
    (result,) = report.delivered
    assert result.outcome is Outcome.CANCELLED and len(result.answers) == 2
    assert len(fake.batches) == 1 and all(n == 1 for n in fake.answered.values())


class Flaky(Exception):
    """A dropped connection."""


def test_waiting_rides_out_a_transient_error(fake: FakeBatches, client: openai.OpenAI) -> None:
    calls = {"retrieve": 0}

    class FlakyBatches:
        def __getattr__(self, name: str) -> Any:
            return getattr(client.batches, name)

        def retrieve(self, batch_id: str) -> Any:
            calls["retrieve"] += 1
            if calls["retrieve"] == 2:
                raise Flaky("connection reset")
            return client.batches.retrieve(batch_id)

    class FlakyClient:
        files = client.files
        batches = FlakyBatches()

    sink = Collector()
    runner = BatchRunner(FlakyClient(), MemoryJobStore(), sink, now=time.time, transient=(Flaky,))
    requests = make_requests()
    report = runner.run(requests, sleep=no_sleep, poll_s=0)
    assert set(report.answers) == {r.custom_id for r in requests} and report.todo == []
    assert calls["retrieve"] >= 4


def test_an_operator_sees_each_part(fake: FakeBatches, client: openai.OpenAI) -> None:
    fake.expire_next(after_requests=1)
    runner = runner_for(client, MemoryJobStore(), Collector(), max_requests=3)
    runner.run(make_requests(), sleep=no_sleep, poll_s=0)
    (job,) = runner.jobs()
    lines = show(job)
    assert lines[0].startswith(f"job {job.job_id}: collected, 5 request(s), model gpt-6-luna")
    assert "part 0: collected (expired), 3 request(s)" in lines[1]
    assert "1 answered, 2 to do" in lines[1]
    assert "part 1: collected (completed)" in lines[2] and "2 answered, 0 to do" in lines[2]
    assert describe(job).startswith(f"{job.job_id} collected 5 request(s)")


def test_the_same_requests_again_after_a_finished_job_make_a_new_job(
    fake: FakeBatches, client: openai.OpenAI
) -> None:
    runner = BatchRunner(client, MemoryJobStore(), Collector(), now=lambda: 1_796_000_000.0)
    requests = make_requests()
    first = runner.run(requests, sleep=no_sleep, poll_s=0).jobs[0]
    second = runner.run(requests, sleep=no_sleep, poll_s=0).jobs[0]
    assert second.job_id == first.job_id + "-2" and not second.open
    assert len(fake.batches) == 2
