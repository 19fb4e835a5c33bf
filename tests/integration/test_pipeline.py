"""The walking skeleton on real services: /submit -> RabbitMQ -> worker process -> MongoDB."""

from __future__ import annotations

import hashlib
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pika
import pytest

from fakes.openai_server import FakeOpenAI
from ingest.app import create_app
from schemas.settings import Settings
from schemas.topology import Topology
from tests.integration.conftest import SEED, assert_seed_record, queue_depth, wait_until


@pytest.fixture
def make_client() -> Iterator[Callable[[Settings], Any]]:
    apps = []

    def make(settings: Settings) -> Any:
        app = create_app(settings)
        app.config["TESTING"] = True
        apps.append(app)
        return app.test_client()

    yield make
    for app in apps:
        app.extensions["finpipe.close"]()


@pytest.fixture
def client(settings: Settings, make_client: Callable[[Settings], Any]) -> Any:
    return make_client(settings)


def test_seed_example_is_stored_as_the_normalized_record(client, start_worker, db) -> None:
    worker = start_worker()
    resp = client.post("/submit", json={"raw_text": SEED})
    assert resp.status_code == 202
    report_id = hashlib.sha256(SEED.encode()).hexdigest()
    assert resp.get_json() == {"report_id": report_id, "status": "queued"}

    doc = wait_until(lambda: db.financial_data.find_one({"report_id": report_id}), 30, "the fact")
    assert_seed_record(doc)
    assert doc["extractor"] == "rules"
    assert doc["schema_version"] == 1
    assert doc["extracted_at"] is not None
    report = wait_until(
        lambda: (r := db.reports.find_one({"_id": report_id})) and r["status"] == "done" and r,
        10,
        "report status done",
    )
    assert report["fact_count"] == 1
    assert client.get(f"/reports/{report_id}").get_json()["status"] == "done"
    assert worker.stop() == 0


def test_array_form_queues_each_report(client, start_worker, db) -> None:
    texts = [
        "Acme Corp reported revenue of $12.4 million for Q2 2024.",
        "Globex reported a net loss of $3 million for Q2 2024.",
    ]
    resp = client.post("/submit", json=[{"raw_text": t, "source": "wire"} for t in texts])
    assert resp.status_code == 202
    body = resp.get_json()
    assert [r["report_id"] for r in body] == [hashlib.sha256(t.encode()).hexdigest() for t in texts]
    assert all(r["status"] == "queued" for r in body)
    start_worker()
    wait_until(lambda: db.financial_data.count_documents({}) == 2, 30, "two facts")
    by_company = {d["company"]: d for d in db.financial_data.find()}
    assert by_company["Acme Corp"]["value"] == 12400000
    assert by_company["Globex"]["value"] == -3000000
    assert by_company["Globex"]["metric"] == "net income"
    assert by_company["Acme Corp"]["source"] == "wire"


def test_array_with_a_bad_item_queues_the_good_ones_and_names_the_bad_field(client, settings):
    resp = client.post("/submit", json=[{"raw_text": SEED}, {"raw_txt": "typo"}])
    assert resp.status_code == 202
    good, bad = resp.get_json()
    assert good["status"] == "queued"
    assert bad["status"] == "rejected"
    fields = {e["field"] for e in bad["errors"]}
    assert fields == {"[1].raw_text", "[1].raw_txt"}
    assert queue_depth(settings)[0] == 1


@pytest.mark.parametrize(
    ("kwargs", "status", "field"),
    [
        ({"data": "{not json", "content_type": "application/json"}, 400, "body"),
        ({"json": {"source": "x"}}, 400, "raw_text"),
        ({"json": {"raw_text": "   "}}, 400, "raw_text"),
        ({"json": {"raw_text": SEED, "reported_at": "yesterday"}}, 400, "reported_at"),
        ({"json": []}, 400, "body"),
        ({"json": "just a string"}, 400, "body"),
        ({"data": SEED, "content_type": "text/plain"}, 415, None),
    ],
)
def test_bad_requests_get_a_clear_error_and_queue_nothing(
    client, settings, kwargs, status, field
) -> None:
    resp = client.post("/submit", **kwargs)
    assert resp.status_code == status
    body = resp.get_json()
    assert body["error"]
    if field:
        assert body["field"] == field
    assert "Traceback" not in resp.get_data(as_text=True)
    assert queue_depth(settings)[0] == 0


def test_body_over_the_limit_is_413(settings, make_client) -> None:
    small = settings.model_copy(update={"max_body_bytes": 200})
    client = make_client(small)
    resp = client.post("/submit", json={"raw_text": "x" * 500})
    assert resp.status_code == 413
    assert "FINPIPE_MAX_BODY_BYTES" in resp.get_json()["error"]


def test_unreachable_broker_is_503_never_202(settings, make_client) -> None:
    down = settings.model_copy(update={"amqp_url": "amqp://guest:guest@127.0.0.1:1/%2F"})
    client = make_client(down)
    resp = client.post("/submit", json={"raw_text": SEED})
    assert resp.status_code == 503
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.get_json()["broker"] == "unavailable"
    assert health.get_json()["database"] == "ok"


def test_healthz_reports_both_services(client) -> None:
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok", "broker": "ok", "database": "ok"}


def test_duplicate_submission_yields_one_record(client, settings, start_worker, db) -> None:
    for _ in range(3):
        assert client.post("/submit", json={"raw_text": SEED}).status_code == 202
    worker = start_worker()
    wait_until(
        lambda: queue_depth(settings)[0] == 0 and db.reports.find_one({"status": "done"}),
        30,
        "report done",
    )
    assert worker.stop() == 0
    assert "3 acked" in worker.log()
    assert db.financial_data.count_documents({}) == 1
    assert db.reports.count_documents({}) == 1


def test_worker_killed_before_acknowledging_stores_each_report_once(
    settings, start_worker, db
) -> None:
    from adapters.rabbitmq import Publisher
    from schemas.message import Provenance, ReportMessage, SubmitReport

    n = 1000
    msgs = [
        ReportMessage.build(
            SubmitReport(raw_text=f"Firm{i} reported revenue of ${i + 1}.5 million for Q3 2024."),
            Provenance(channel="api"),
        )
        for i in range(n)
    ]
    with Publisher.from_settings(settings) as pub:
        assert pub.publish_many(msgs) == n
    with FakeOpenAI(base_ms=50) as model:  # 200 calls of 50 ms: the kill lands mid-run
        first = start_worker(
            FINPIPE_BATCH_SNIPPETS="5",
            FINPIPE_LLM_CONCURRENCY="1",
            **model.worker_env(),
        )
        wait_until(lambda: db.financial_data.count_documents({}) >= 20, 60, "some facts stored")
        first.stop(signal.SIGKILL)
    stored_at_kill = db.financial_data.count_documents({})
    assert stored_at_kill < n, "the worker finished before it was killed; make the batch larger"

    second = start_worker()
    wait_until(lambda: db.reports.count_documents({"status": "done"}) == n, 90, "all reports")
    wait_until(lambda: queue_depth(settings)[0] == 0, 30, "queue drained")
    assert second.stop() == 0
    assert db.financial_data.count_documents({}) == n
    values = sorted(d["value"] for d in db.financial_data.find({}, {"value": 1}))
    assert values == [i * 1_000_000 + 1_500_000 for i in range(n)]
    conn = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    dead = conn.channel().queue_declare(Topology.for_settings(settings).dead_queue, passive=True)
    conn.close()
    assert dead.method.message_count == 0


def test_api_token_guards_submit_and_reports_but_not_healthz(settings, make_client) -> None:
    locked = Settings.from_env(
        {"FINPIPE_API_TOKEN": "s3cret-token"},
        **{k: getattr(settings, k) for k in ("amqp_url", "mongo_uri", "mongo_db", "queue")},
    )
    client = make_client(locked)
    assert client.post("/submit", json={"raw_text": SEED}).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.post("/submit", json={"raw_text": SEED}, headers=wrong).status_code == 401
    good = {"Authorization": "Bearer s3cret-token"}
    resp = client.post("/submit", json={"raw_text": SEED}, headers=good)
    assert resp.status_code == 202
    report_id = resp.get_json()["report_id"]
    assert client.get(f"/reports/{report_id}").status_code == 401
    queued = client.get(f"/reports/{report_id}", headers=good)
    assert queued.get_json()["status"] == "queued"
    health = client.get("/healthz")
    assert health.status_code == 200
    assert "s3cret" not in health.get_data(as_text=True)
    assert client.get("/reports/" + "0" * 64, headers=good).status_code == 404


def test_submissions_are_recorded_after_the_answer_and_read_back_meanwhile(
    settings: Settings, make_client: Callable[[Settings], Any], db: Any
) -> None:
    client = make_client(settings)
    texts = [
        f"Recorded{i} Corp reported revenue of ${i + 1} million for Q1 2024." for i in range(5)
    ]
    ids = [client.post("/submit", json={"raw_text": t}).get_json()["report_id"] for t in texts]
    for rid in ids:  # from memory or from the database: either way, queued at once
        assert client.get(f"/reports/{rid}").get_json()["status"] == "queued"
    assert client.application.extensions["finpipe.adapters"].submissions.flush(10)
    docs = {d["_id"]: d for d in db.submissions.find({"_id": {"$in": ids}})}
    assert set(docs) == set(ids)
    assert {d["channel"] for d in docs.values()} == {"api"}
    assert all(client.get(f"/reports/{rid}").get_json()["status"] == "queued" for rid in ids)
