"""A Batch API job refused because the organization's queue of batch tokens is full
(``token_limit_exceeded``): split and sent as room frees up, never the synchronous path."""

from __future__ import annotations

import openai

from fakes.batches import FakeBatches, FakeBatchesServer
from fakes.limits import charge_of
from fakes.script import echo_answer
from tests.unit.test_batch_api_runner import Collector, make_requests, no_sleep, runner_for
from worker.batch_api.jobs import Outcome
from worker.batch_api.jobstore import MemoryJobStore


def test_a_job_over_the_batch_token_queue_is_split_and_sent_as_room_frees_up() -> None:
    requests = make_requests(per_call=1)
    per_request = max(charge_of(r.body) for r in requests)
    fake = FakeBatches(echo_answer, advance_on_retrieve=True, enqueued_token_limit=per_request * 2)
    with FakeBatchesServer(fake) as server:
        sdk = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        sink, store = Collector(), MemoryJobStore()
        report = runner_for(sdk, store, sink).run(requests, sleep=no_sleep, poll_s=0)
        sdk.close()
    ids = {r.custom_id for r in requests}
    assert set(fake.answered) == ids and all(n == 1 for n in fake.answered.values())
    assert set(sink.answers) == ids
    assert report.todo == []  # nothing for the synchronous path
    (job,) = report.jobs
    assert not job.open
    split = [p for p in job.parts if p.split_into]
    assert split and all(p.outcome is Outcome.FAILED and p.todo == 0 for p in split)
    refused = [b for b in fake.batches.values() if b.status == "failed"]
    assert refused and all(b.errors[0]["code"] == "token_limit_exceeded" for b in refused)
    assert max(len(b.lines) for b in fake.batches.values()) <= 2
