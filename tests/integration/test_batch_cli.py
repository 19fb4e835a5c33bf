"""``finpipe batch list|show|cancel`` and ``finpipe status`` on a job kept in MongoDB, with the
fake server's Batch API holding the batch until it is told to move."""

from __future__ import annotations

import time
from collections.abc import Iterator

import openai
import pytest

from adapters.mongo import MongoStore
from fakes.openai_server import FakeOpenAI
from schemas.settings import Settings
from tests.integration.conftest import finpipe_cli
from worker.batch_api.requests import BatchRequest
from worker.batch_api.runner import BatchRunner


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(batch_options={"advance_on_retrieve": False}) as s:
        yield s


def test_an_operator_sees_an_open_job_and_cancels_it(
    settings: Settings, server: FakeOpenAI
) -> None:
    store = MongoStore.from_settings(settings)
    client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
    runner = BatchRunner(client, store, lambda _r: None, now=time.time)
    bodies = [
        {"model": "gpt-6-luna", "messages": [{"role": "user", "content": str(i)}]} for i in range(3)
    ]
    submitted = runner.submit([BatchRequest.of(b) for b in bodies])
    client.close()
    store.close()
    assert submitted.job is not None
    job_id = submitted.job.job_id
    cli_settings = settings.model_copy(
        update={"openai_api_key": "test", "openai_base_url": server.base_url, "provider": "openai"}
    )

    listed = finpipe_cli(cli_settings, "batch", "list", "--open", check=True).stdout
    assert listed.startswith(f"{job_id} submitted 3 request(s) [part 0: validating (0/3)]")
    status = finpipe_cli(cli_settings, "status").stdout
    assert "batch jobs    1 open" in status and job_id in status

    cancelled = finpipe_cli(cli_settings, "batch", "cancel", job_id, check=True).stdout
    assert "cancelling" in cancelled
    assert server.batches.created[0].status == "cancelling"
    shown = finpipe_cli(cli_settings, "batch", "show", job_id, check=True).stdout
    assert "cancel requested" in shown and "batch batch_" in shown

    missing = finpipe_cli(cli_settings, "batch", "show", "nope")
    assert missing.returncode != 0 and "no batch job nope" in missing.stderr
