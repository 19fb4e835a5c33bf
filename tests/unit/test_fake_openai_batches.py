"""The fake OpenAI server's Batch API, through the real ``openai`` SDK: request lines get the
answers a synchronous call would get, and no synchronous call is recorded."""

from __future__ import annotations

import json

import openai

from fakes.openai_server import FakeOpenAI
from fakes.script import Echo, Status
from worker.model.prompt import build_messages


def _line(cid: str, text: str) -> bytes:
    body = {"model": "gpt-6-luna", "messages": build_messages([("s1", text)])}
    doc = {"custom_id": cid, "method": "POST", "url": "/v1/chat/completions", "body": body}
    return (json.dumps(doc) + "\n").encode()


def test_a_batch_job_is_answered_by_the_chat_echo_without_a_synchronous_call() -> None:
    with FakeOpenAI() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        data = _line("a", "Company ABC reported revenue of $5.3 million for Q1 2024.")
        data += _line("b", "Company DEF reported a net loss of $1.2 million for Q2 2024.")
        f = client.files.create(file=("in.jsonl", data, "application/jsonl"), purpose="batch")
        batch = client.batches.create(
            input_file_id=f.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={"finpipe_job": "j1"},
        )
        statuses = []
        while batch.status not in ("completed", "failed", "expired", "cancelled"):
            batch = client.batches.retrieve(batch.id)
            statuses.append(batch.status)
        assert statuses == ["in_progress", "finalizing", "completed"]
        assert batch.output_file_id is not None
        lines = client.files.content(batch.output_file_id).text.splitlines()
        answers = {d["custom_id"]: d["response"]["body"] for d in map(json.loads, lines)}
        content = json.loads(answers["a"]["choices"][0]["message"]["content"])
        assert content["snippets"][0]["facts"][0]["value_text"] == "$5.3 million"
        listed = [b.id for b in client.batches.list(limit=10)]
        assert listed == [batch.id]
        client.close()
        assert server.calls == 0 and server.batch_lines == 2


def test_rules_set_for_chat_calls_apply_to_batch_lines_and_the_script_does_not() -> None:
    with FakeOpenAI() as server:
        server.script(Status(500))
        server.always(lambda snippets: "DEF" in snippets[0]["text"], Status(429, message="slow"))
        status, body = server.batches.answer(
            {
                "model": "gpt-6-luna",
                "messages": build_messages([("s1", "Company DEF had revenue of $1 million.")]),
            }
        )
        assert status == 429 and body["error"]["message"] == "slow"
        status, body = server.batch_answer(
            {"model": "gpt-6-luna", "messages": build_messages([("s1", "ABC made $2 million.")])}
        )
        assert status == 200 and body["object"] == "chat.completion"
        assert isinstance(server.next_action(), Status)  # the scripted action is still queued
        assert isinstance(server.next_action(), Echo)
