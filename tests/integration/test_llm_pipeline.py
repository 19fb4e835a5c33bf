"""The OpenAI provider through the whole pipeline: /submit or ``finpipe ingest`` -> RabbitMQ ->
worker process -> MongoDB, with the model played by the local OpenAI-compatible server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fakes.openai_server import FakeOpenAI
from fakes.script import Echo
from ingest.app import create_app
from schemas.message import Provenance, ReportMessage, SubmitReport, report_id_for
from schemas.settings import Settings
from schemas.topology import Topology
from tests.conftest import delete_topology
from tests.integration.conftest import (
    ROOT,
    SEED,
    WorkerProcess,
    assert_seed_record,
    finpipe_cli,
    one_sentence_reports,
    publish,
    wait_until,
)
from worker.model.prompt import PROMPT_VERSION
from worker.snippets import has_amount, split_snippets

SAMPLES = ROOT / "samples"


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as s:
        yield s


@pytest.fixture
def openai_worker(
    start_worker: Callable[..., WorkerProcess], server: FakeOpenAI
) -> Callable[..., WorkerProcess]:
    """Start a worker that extracts through the local server."""

    def start(*args: str, **extra_env: str) -> WorkerProcess:
        return start_worker(
            *args,
            **server.worker_env(),
            **extra_env,
        )

    return start


@pytest.fixture
def client(settings: Settings) -> Iterator[Any]:
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app.test_client()
    app.extensions["finpipe.close"]()


def run_burst(worker: WorkerProcess) -> None:
    """Wait for a ``--burst`` worker to drain the queue and exit 0."""
    assert worker.proc.wait(timeout=90) == 0, worker.log()


def fact_key(doc: dict[str, Any]) -> tuple[str, ...]:
    fields = ("report_id", "company", "metric", "value", "currency", "quarter", "value_text")
    return tuple(str(doc[f]) for f in fields)


def test_seed_example_goes_through_the_model_and_is_stored_normalized(
    client, server, openai_worker, db
) -> None:
    worker = openai_worker()
    resp = client.post("/submit", json={"raw_text": SEED})
    assert resp.status_code == 202
    report_id = resp.get_json()["report_id"]
    assert report_id == report_id_for(SEED)

    doc = wait_until(lambda: db.financial_data.find_one({"report_id": report_id}), 30, "the fact")
    assert_seed_record(doc)
    assert doc["extractor"] == "openai"
    assert doc["model"] == "gpt-6-luna"
    assert doc["prompt_version"] == PROMPT_VERSION
    assert doc["value_text"] == "$5.3 million"
    assert SEED[doc["value_start"] : doc["value_start"] + len(doc["value_text"])] == "$5.3 million"
    wait_until(lambda: db.reports.find_one({"_id": report_id, "status": "done"}), 10, "report done")
    assert worker.stop() == 0

    assert server.calls == 1
    body = server.requests[0].body
    assert body["model"] == "gpt-6-luna"
    assert "temperature" not in body  # a reasoning model takes reasoning_effort instead
    assert body["reasoning_effort"] == "none"
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    assert [s["text"] for s in server.requests[0].snippets] == [SEED]
    assert db.financial_data.count_documents({}) == 1


def test_twenty_one_sentence_reports_make_a_single_call(
    settings, server, openai_worker, db
) -> None:
    msgs = one_sentence_reports(20, "b")
    publish(settings, msgs)
    worker = openai_worker(FINPIPE_BATCH_WAIT_MS="2000")
    wait_until(lambda: db.reports.count_documents({"status": "done"}) == 20, 30, "20 reports")
    assert worker.stop() == 0

    assert server.snippets_per_call == [20]
    assert db.financial_data.count_documents({}) == 20
    assert db.financial_data.count_documents({"extractor": "openai"}) == 20
    values = sorted(d["value"] for d in db.financial_data.find({}, {"value": 1}))
    assert values == [i * 1_000_000 + 1_250_000 for i in range(20)]


def test_samples_are_extracted_in_few_calls_and_a_rerun_makes_none(
    settings, server, openai_worker, db, mongo_client
) -> None:
    before = sorted(p.relative_to(SAMPLES) for p in SAMPLES.rglob("*"))
    finpipe_cli(settings, "ingest", str(SAMPLES), check=True)
    run_burst(openai_worker("--burst", FINPIPE_BATCH_WAIT_MS="2000"))
    assert sorted(p.relative_to(SAMPLES) for p in SAMPLES.rglob("*")) == before

    facts = list(db.financial_data.find())
    by_value_text = {(d["company"], d["metric"], d["value_text"]): d for d in facts}
    known = {
        ("XYZ", "net income", "$5.3 million"): (5_300_000, "Q1 2024"),
        ("Harbor Bank", "net income", "$61 million"): (61_000_000, "Q1 2024"),
        ("Acme Corp", "revenue", "$12.4 million"): (12_400_000, "Q2 2024"),
        ("Northwind Robotics", "revenue", "$48.2 million"): (48_200_000, "Q2 2024"),
        ("Northwind Robotics", "net income", "$4.1 million"): (4_100_000, "Q2 2024"),
    }
    for key, (value, quarter) in known.items():
        assert key in by_value_text, f"missing {key}; stored {sorted(by_value_text)}"
        assert (by_value_text[key]["value"], by_value_text[key]["quarter"]) == (value, quarter)
    assert all(d["extractor"] == "openai" for d in facts), Counter(d["extractor"] for d in facts)

    # The same facts the offline rules find in these reports, report by report.
    rules_settings = settings.model_copy(
        update={"queue": f"{settings.queue}.rules", "mongo_db": f"{settings.mongo_db}_rules"}
    )
    try:
        finpipe_cli(rules_settings, "ingest", str(SAMPLES), check=True)
        finpipe_cli(rules_settings, "worker", "--burst", check=True)
        rules_facts = list(mongo_client[rules_settings.mongo_db].financial_data.find())
    finally:
        delete_topology(settings.amqp_url, Topology.for_settings(rules_settings))
        mongo_client.drop_database(rules_settings.mongo_db)
    ours, theirs = Counter(map(fact_key, facts)), Counter(map(fact_key, rules_facts))
    assert ours == theirs, f"model only: {ours - theirs}; rules only: {theirs - ours}"

    # Each snippet with an amount asked once, in calls of at most 20 snippets. The worker takes
    # whole messages into a batch, so a multi-sentence report can leave one short call over.
    reports = list(db.reports.find())
    assert reports and all(r["status"] == "done" for r in reports)
    with_amount = sum(r["snippets"] - r["snippets_without_amount"] for r in reports)
    asked = sum(server.snippets_per_call)
    assert asked <= with_amount
    assert max(server.snippets_per_call) <= 20
    assert server.calls <= -(-asked // 20) + 1, server.snippets_per_call
    first_calls, first_ids = server.calls, sorted(d["_id"] for d in facts)

    # Second run over the same input: everything comes from the cache in MongoDB.
    finpipe_cli(settings, "ingest", str(SAMPLES), check=True)
    run_burst(openai_worker("--burst", FINPIPE_BATCH_WAIT_MS="2000"))
    assert server.calls == first_calls
    assert sorted(d["_id"] for d in db.financial_data.find({}, {"_id": 1})) == first_ids
    assert db.reports.count_documents({}) == len(reports)


def test_ungrounded_answer_is_not_stored_and_the_snippet_falls_back_to_rules(
    settings, server, openai_worker, db
) -> None:
    bad = "Quill Ltd reported revenue of $8.8 million for Q4 2023."
    good = "Rowan Inc reported revenue of $2.2 million for Q4 2023."
    # The model misreads the Quill sentence on the first answer and on the re-ask.
    server.script(Echo(corrupt=lambda text: "Quill" in text), Echo(corrupt=lambda _: True))
    msgs = [
        ReportMessage.build(SubmitReport(raw_text=t), Provenance(channel="api"))
        for t in (bad, good)
    ]
    publish(settings, msgs)
    worker = openai_worker(FINPIPE_BATCH_WAIT_MS="2000")
    wait_until(lambda: db.reports.count_documents({"status": "done"}) == 2, 30, "both reports")
    assert worker.stop() == 0

    # One batch call, then a re-ask of the failed snippet alone.
    assert server.snippets_per_call == [2, 1]
    assert "Quill" in server.requests[1].snippets[0]["text"]
    assert db.financial_data.count_documents({"value": 987_600_000}) == 0
    quill = db.financial_data.find_one({"company": "Quill Ltd"})
    assert (quill["value"], quill["value_text"]) == (8_800_000, "$8.8 million")
    assert quill["extractor"] == "rules-fallback"
    assert quill["model"] is None
    rowan = db.financial_data.find_one({"company": "Rowan Inc"})
    assert (rowan["value"], rowan["extractor"]) == (2_200_000, "openai")
    rejected = db.reports.find_one({"_id": msgs[0].report_id})["rejected"]
    assert rejected and all("$987.6 million" in r for r in rejected)
    assert db.financial_data.count_documents({}) == 2


def test_every_call_is_in_the_usage_ledger_and_the_run_report(
    settings, server, openai_worker, db, tmp_path: Path
) -> None:
    msgs = one_sentence_reports(45, "u")
    publish(settings, msgs)
    run_burst(openai_worker("--burst", FINPIPE_BATCH_WAIT_MS="2000"))
    assert db.financial_data.count_documents({}) == 45
    assert server.snippets_per_call == [20, 20, 5]

    usage = list(db.llm_usage.find())
    assert len(usage) == server.calls == 3
    assert sorted(u["snippets"] for u in usage) == [5, 20, 20]
    for u in usage:
        assert u["model"] == "gpt-6-luna"
        assert u["response_format"] == "json_schema"
        assert u["reasoning_tokens"] == 0
        assert u["purpose"] == "batch"
        assert u["prompt_tokens"] > 0 and u["completion_tokens"] > 0
        assert u["cost_usd"] > 0
    prompt_tokens = sum(u["prompt_tokens"] for u in usage)
    completion_tokens = sum(u["completion_tokens"] for u in usage)

    # The same snippets again: cache hits, no call, nothing new in the ledger.
    publish(settings, one_sentence_reports(5, "u"))
    run_burst(openai_worker("--burst"))
    assert server.calls == 3
    assert db.llm_usage.count_documents({}) == 3

    out = tmp_path / "exports"
    finpipe_cli(settings, "export", "--out", str(out), check=True)
    report = json.loads((out / "latest" / "run_report.json").read_text())
    pipeline = report["pipeline"]
    assert pipeline["model_calls"] == 3
    assert pipeline["prompt_tokens"] == prompt_tokens
    assert pipeline["completion_tokens"] == completion_tokens
    assert pipeline["cache_hits"] == 5
    assert pipeline["estimated_cost_usd"] > 0


def test_snippets_without_an_amount_are_never_sent(settings, server, openai_worker, db) -> None:
    text = (
        "Tern Air held its annual meeting in Oslo. "
        "Tern Air reported revenue of $3.1 million for Q2 2024. "
        "The board thanked its staff."
    )
    assert sum(1 for s in split_snippets(text) if has_amount(s)) == 1
    publish(settings, [ReportMessage.build(SubmitReport(raw_text=text), Provenance(channel="api"))])
    run_burst(openai_worker("--burst"))
    assert [[s["text"] for s in r.snippets] for r in server.requests] == [
        ["Tern Air reported revenue of $3.1 million for Q2 2024."]
    ]
    report = db.reports.find_one({})
    assert (report["fact_count"], report["snippets_without_amount"]) == (1, 2)


def test_finpipe_extract_against_a_json_object_only_server_answers_every_input(
    tmp_path: Path,
) -> None:
    """A llama.cpp-style server (``json_object`` only): exit 0, every input answered by the
    model, only grounded facts, one answered call per snippet."""
    texts = [
        f"Firm{i} reported {metric} of ${i + 2}.{i % 10} million for Q{i % 4 + 1} 2024."
        for i, metric in enumerate(["revenue", "net income", "operating income"] * 10)
    ]
    lines = [json.dumps({"id": i, "text": t}) for i, t in enumerate(texts)]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with FakeOpenAI(mode="json_object") as server:
        env = Settings().process_env()
        env.update(server.worker_env(), FINPIPE_LOG_LEVEL="INFO")
        done = subprocess.run(
            [sys.executable, "-m", "finpipe", "extract", "--provider", "openai", str(path)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        requests = list(server.requests)
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert [o["id"] for o in out] == list(range(30))
    for o, text in zip(out, texts, strict=True):
        [fact] = o["facts"]
        assert fact["value_text"] in text
    assert "falling back to rules" not in done.stderr
    assert len(re.findall("output format: json_schema does not work", done.stderr)) == 1
    # one refused request (json_schema), then each snippet in exactly one answered call
    refused, answered = requests[0], requests[1:]
    assert refused.body["response_format"]["type"] == "json_schema"
    assert all(r.body["response_format"]["type"] == "json_object" for r in answered)
    asked = Counter(s["text"] for r in answered for s in r.snippets)
    assert set(asked) == set(texts) and max(asked.values()) == 1


def test_a_llama_cpp_python_server_gets_every_report_stored_by_the_model(
    settings, start_worker, db
) -> None:
    msgs = one_sentence_reports(25, "l")
    publish(settings, msgs)
    with FakeOpenAI(mode="llama-cpp-python") as llama:
        worker = start_worker(**llama.worker_env(), FINPIPE_BATCH_WAIT_MS="1000")
        wait_until(lambda: db.reports.count_documents({"status": "done"}) == 25, 60, "25 reports")
        assert worker.stop() == 0
        statuses = Counter(r.body["response_format"]["type"] for r in llama.requests)
    assert db.financial_data.count_documents({"extractor": "openai"}) == 25
    assert statuses["json_schema"] == 1  # refused once, then never asked again
    log = worker.log()
    assert "retry 1/" not in log  # a 500 naming response_format is not retried
    assert len(re.findall("output format: json_schema does not work", log)) == 1
