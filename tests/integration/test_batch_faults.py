"""Batch mode's faults with real processes: ``finpipe schedule --once`` (the nightly sweep, which
first fills the extraction cache through the Batch API) killed between its steps and started
again, a job that expires with partial output, per-request errors and a failed job; then a
``finpipe worker --burst``. Each ends with every report stored once, no request batched twice,
and the workers answering from the cache with no synchronous call.

The model and its Batch API are the local fake server (in this process), reached through the
real ``openai`` SDK; RabbitMQ and the MongoDB-compatible server are the real ones.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fakes.openai_server import FakeOpenAI
from schemas.settings import Settings
from tests.integration.conftest import FinpipeProcess, WorkerProcess, settings_env, wait_until

REPORTS = 6
#: two snippets per request: three request lines
SNIPPETS_PER_CALL = "2"


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as s:
        yield s
        s.release()


@pytest.fixture
def batch_env(server: FakeOpenAI) -> dict[str, str]:
    return {
        **server.worker_env(),
        "FINPIPE_LLM_MODE": "batch",
        "FINPIPE_BATCH_POLL_S": "0.05",
        "FINPIPE_BATCH_SNIPPETS": SNIPPETS_PER_CALL,
        "FINPIPE_BATCH_CANCEL_MARGIN_S": "60",
        "FINPIPE_EXPORT_CRON": "0 0 1 1 *",
        "FINPIPE_EXPORT_WAIT_S": "0",
        "FINPIPE_LLM_MAX_RETRIES": "0",
    }


@pytest.fixture
def inbox(settings: Settings) -> Path:
    settings.inbox.mkdir(parents=True, exist_ok=True)
    path = settings.inbox / "reports.jsonl"
    path.write_text(
        "".join(
            json.dumps(
                {"raw_text": f"Firm{i} reported revenue of ${i + 1}.25 million for Q2 2024."}
            )
            + "\n"
            for i in range(REPORTS)
        )
    )
    return path


class Scheduler(FinpipeProcess):
    """A real ``finpipe schedule --once`` process."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        super().__init__(env, log_path, "schedule", "--once")

    def wait(self, timeout_s: float = 90) -> int:
        try:
            return self.proc.wait(timeout=timeout_s)
        finally:
            self._log.close()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.wait(10)


@pytest.fixture
def scheduler(
    settings: Settings, batch_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[[], Scheduler]]:
    started: list[Scheduler] = []

    def start() -> Scheduler:
        env = settings_env(settings, **batch_env)
        s = Scheduler(env, tmp_path / f"schedule{len(started)}.log")
        started.append(s)
        return s

    yield start
    for s in started:
        if s.proc.poll() is None:
            s.kill()


def run_schedule(start: Callable[[], Scheduler]) -> Scheduler:
    s = start()
    assert s.wait() == 0, s.log()
    return s


def run_workers(
    start_worker: Callable[..., WorkerProcess], batch_env: dict[str, str], server: FakeOpenAI
) -> int:
    """A burst worker over what the sweep published; the synchronous calls it made."""
    before = server.calls
    worker = start_worker("--burst", **batch_env)
    assert worker.proc.wait(timeout=90) == 0, worker.log()
    return server.calls - before


@pytest.fixture
def burst_stores_all(
    start_worker: Callable[..., WorkerProcess],
    batch_env: dict[str, str],
    server: FakeOpenAI,
    db: Any,
    inbox: Path,
) -> Callable[[], None]:
    """Checks that a burst worker after the sweep makes no synchronous call and leaves every
    report stored once."""

    def check() -> None:
        assert run_workers(start_worker, batch_env, server) == 0
        assert_every_report_stored_once(db, inbox)

    return check


def assert_every_report_stored_once(db: Any, inbox: Path) -> None:
    assert not inbox.exists()  # published, moved to processed/
    reports = list(db.reports.find({}, {"status": 1}))
    assert len(reports) == REPORTS
    assert {r["status"] for r in reports} == {"done"}
    facts = list(db.financial_data.find({}, {"report_id": 1, "extractor": 1}))
    assert sorted(f["report_id"] for f in facts) == sorted(r["_id"] for r in reports)
    assert {f["extractor"] for f in facts} == {"openai"}


def assert_nothing_batched_twice(server: FakeOpenAI) -> None:
    assert len(server.batches.created) == 1
    assert server.batches.answered and set(server.batches.answered.values()) == {1}


#: where the first scheduler is killed: (method, a part of the path) of the request the server
#: has acted on but not answered yet, and the job's stored state at that moment
KILL_POINTS = {
    "upload": ("POST", "/files"),  # building: the input file exists, its id is not stored
    "create": ("POST", "/batches"),  # uploaded: the batch exists, its id is not stored
    "poll": ("GET", "/batches/"),  # submitted: running
    "collect": ("GET", "/content"),  # submitted: completed, output being read
}


@pytest.mark.parametrize("step", list(KILL_POINTS))
def test_a_scheduler_killed_at_a_step_is_resumed_without_submitting_twice(
    step: str,
    server: FakeOpenAI,
    scheduler: Callable[[], Scheduler],
    burst_stores_all: Callable[[], None],
    inbox: Path,
    db: Any,
) -> None:
    held = server.hold(*KILL_POINTS[step])
    first = scheduler()
    wait_until(held.is_set, 60, f"the scheduler at its {step} step")
    first.kill()
    server.release()
    assert inbox.exists() and db.reports.count_documents({}) == 0

    second = run_schedule(scheduler)
    assert "resuming batch job" in second.log()
    assert server.calls == 0
    burst_stores_all()
    assert_nothing_batched_twice(server)


def test_a_scheduler_killed_after_collecting_asks_the_rest_synchronously_once_resumed(
    server: FakeOpenAI,
    scheduler: Callable[[], Scheduler],
    burst_stores_all: Callable[[], None],
) -> None:
    server.batches.fail_requests(lambda body: "Firm0 " in json.dumps(body), 500, "boom")
    held = server.hold("POST", "/chat/completions")
    first = scheduler()
    wait_until(held.is_set, 60, "the synchronous call after the collection")
    first.kill()
    server.release()

    second = run_schedule(scheduler)
    assert "were in a batch job collected before; asked synchronously" in second.log()
    assert server.calls == 2  # the killed call, asked again
    burst_stores_all()
    assert_nothing_batched_twice(server)


def test_an_expired_job_keeps_its_partial_output_and_the_rest_is_asked_synchronously(
    server: FakeOpenAI,
    scheduler: Callable[[], Scheduler],
    burst_stores_all: Callable[[], None],
) -> None:
    server.batches.expire_next(after_requests=1)
    run_schedule(scheduler)
    assert server.calls == 2  # two of three request lines never ran
    burst_stores_all()
    assert (server.batches.created[0].status, server.batch_lines) == ("expired", 1)


def test_per_request_errors_are_asked_synchronously(
    server: FakeOpenAI,
    scheduler: Callable[[], Scheduler],
    burst_stores_all: Callable[[], None],
) -> None:
    server.batches.fail_requests(lambda body: "Firm2 " in json.dumps(body), 500, "boom")
    run_schedule(scheduler)
    assert server.calls == 1
    burst_stores_all()


def test_a_failed_job_is_asked_synchronously_with_its_reason_logged(
    server: FakeOpenAI,
    scheduler: Callable[[], Scheduler],
    burst_stores_all: Callable[[], None],
    db: Any,
) -> None:
    server.batches.fail_next("input file invalid")
    s = run_schedule(scheduler)
    assert "input file invalid" in s.log()
    assert server.calls == 3
    burst_stores_all()
    job = db.batch_jobs.find_one({})
    assert job["open"] is False and job["parts"][0]["outcome"] == "failed"


def test_a_worker_running_before_during_and_after_the_nightly_job_asks_nothing_it_answered(
    server: FakeOpenAI,
    scheduler: Callable[[], Scheduler],
    start_worker: Callable[..., WorkerProcess],
    batch_env: dict[str, str],
    inbox: Path,
    db: Any,
) -> None:
    # the usual deployment: the worker runs beside the scheduler, its cache keys read at its
    # start, before the batch job wrote its answers (it used to ask every snippet again)
    worker = start_worker(**batch_env)
    wait_until(lambda: "consuming " in worker.log(), 60, "the worker to consume")
    run_schedule(scheduler)
    wait_until(
        lambda: db.reports.count_documents({"status": "done"}) == REPORTS, 60, "every report"
    )
    assert server.calls == 0, worker.log()
    assert_every_report_stored_once(db, inbox)
    assert worker.proc.poll() is None  # and it goes on consuming
