"""Real faults against real processes and services. Each test ends with a count check: every
accepted report is stored exactly once, or sits in the dead-letter queue with a reason."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import pika
import pytest

from adapters.rabbitmq import Publisher
from fakes.openai_server import FakeOpenAI
from ops.deadletters import DeadLetterQueue
from schemas.message import Provenance, ReportMessage, SubmitReport
from schemas.topology import HEADER_REASON, Topology
from tests.integration.conftest import (
    ROOT,
    finpipe_cli,
    one_sentence_reports,
    publish,
    queue_depth,
    wait_until,
)


def assert_each_stored_once(db: Any, msgs: list[ReportMessage]) -> None:
    ids = {m.report_id for m in msgs}
    assert db.reports.count_documents({"status": "done"}) == len(ids)
    per_report = list(
        db.financial_data.aggregate([{"$group": {"_id": "$report_id", "n": {"$sum": 1}}}])
    )
    assert {r["_id"] for r in per_report} == ids
    assert all(r["n"] == 1 for r in per_report)


def test_poison_messages_go_straight_to_the_dead_letter_queue_with_a_reason(
    settings, start_worker, db
) -> None:
    good = one_sentence_reports(1)[0]
    wrong_version = json.loads(good.to_body())
    wrong_version["schema_version"] = 99
    wrong_version["report_id"] = "f" * 64
    too_big = ReportMessage.build(
        SubmitReport(raw_text="Big Co reported revenue of $1 million for Q1 2024. " + "x" * 3000),
        Provenance(channel="api"),
    )
    conn = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    ch = conn.channel()
    from adapters.rabbitmq import declare_topology

    declare_topology(ch, Topology.for_settings(settings))
    bodies = {
        "not-json": b"\xff\xfe not json at all",
        "wrong-version": json.dumps(wrong_version).encode(),
        "too-big": too_big.to_body(),
        "good": good.to_body(),
    }
    for mid, body in bodies.items():
        ch.basic_publish("", settings.queue, body, pika.BasicProperties(message_id=mid))
    conn.close()

    worker = start_worker(FINPIPE_MAX_REPORT_BYTES="2000")
    wait_until(lambda: DeadLetterQueue(settings).count() == 3, 30, "three dead letters")
    wait_until(lambda: db.reports.count_documents({"status": "done"}) == 1, 30, "good report")
    assert worker.stop() == 0
    dead = {d.id: d for d in DeadLetterQueue(settings).letters()}
    assert set(dead) == {"not-json", "wrong-version", "too-big"}
    assert "undecodable" in dead["not-json"].reason
    assert "schema_version" in dead["wrong-version"].reason
    assert "FINPIPE_MAX_REPORT_BYTES" in dead["too-big"].reason
    assert all(d.attempts == 0 for d in dead.values())  # no retries for poison
    assert db.financial_data.count_documents({}) == 1

    listed = finpipe_cli(settings, "dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert {json.loads(line)["id"] for line in listed.stdout.splitlines()} == set(dead)
    shown = finpipe_cli(settings, "dlq", "show", "too-big")
    assert json.loads(shown.stdout)["headers"][HEADER_REASON] == dead["too-big"].reason


def test_replayed_dead_letter_is_processed_once_fixed(settings, start_worker, db) -> None:
    msg = ReportMessage.build(
        SubmitReport(
            raw_text="Replay Corp reported revenue of $7 million for Q1 2024. " + "y" * 900
        ),
        Provenance(channel="api"),
    )
    publish(settings, [msg])
    first = start_worker(FINPIPE_MAX_REPORT_BYTES="500")
    wait_until(lambda: DeadLetterQueue(settings).count() == 1, 30, "dead letter")
    assert first.stop() == 0
    assert db.reports.find_one({"_id": msg.report_id})["status"] == "dead"

    replay = finpipe_cli(settings, "dlq", "replay", msg.report_id)
    assert replay.returncode == 0, replay.stderr
    assert DeadLetterQueue(settings).count() == 0
    second = start_worker()  # default size limit: the report now fits
    wait_until(
        lambda: db.reports.find_one({"_id": msg.report_id, "status": "done"}), 30, "replayed"
    )
    assert second.stop() == 0
    assert db.financial_data.count_documents({"report_id": msg.report_id}) == 1


@pytest.mark.parametrize("workers", [2, 4])
def test_several_workers_on_one_queue_store_each_report_once(
    settings, start_worker, db, workers: int
) -> None:
    msgs = one_sentence_reports(2000, tag=f"w{workers}-")
    publish(settings, msgs)
    procs = [start_worker(FINPIPE_PREFETCH="50") for _ in range(workers)]
    wait_until(lambda: db.reports.count_documents({"status": "done"}) == 2000, 120, "2000 reports")
    wait_until(lambda: queue_depth(settings)[0] == 0, 30, "queue drained")
    codes = [p.stop() for p in procs]
    assert codes == [0] * workers
    acked = [int(p.log().split(" acked")[0].rsplit(" ", 1)[-1]) for p in procs]
    assert sum(acked) == 2000
    assert sum(1 for a in acked if a > 0) >= 2, f"work was not shared: {acked}"
    assert_each_stored_once(db, msgs)


def test_sigterm_during_a_batch_finishes_it_and_exits_zero(settings, start_worker, db) -> None:
    msgs = one_sentence_reports(600, tag="t-")
    publish(settings, msgs)
    with FakeOpenAI(base_ms=50) as model:  # 120 calls of 50 ms: the signal lands mid-run
        worker = start_worker(
            FINPIPE_BATCH_SNIPPETS="5",
            FINPIPE_LLM_CONCURRENCY="1",
            **model.worker_env(),
        )
        wait_until(lambda: db.financial_data.count_documents({}) >= 10, 60, "work in progress")
        assert worker.stop(signal.SIGTERM) == 0
    done = db.reports.count_documents({"status": "done"})
    ready, consumers = queue_depth(settings)
    assert consumers == 0
    assert done < 600, "the worker finished everything before the signal"
    # Nothing unacknowledged: what is not done is back on the queue, ready.
    assert done + ready == 600
    assert f"{done} acked" in worker.log()

    rest = start_worker("--burst")
    assert rest.proc.wait(timeout=90) == 0
    assert_each_stored_once(db, msgs)


def test_a_second_signal_exits_at_once_and_loses_nothing(settings, start_worker, db) -> None:
    msgs = one_sentence_reports(300, tag="s-")
    publish(settings, msgs)
    with FakeOpenAI(base_ms=4000) as slow_model:  # every batch takes 4 s
        worker = start_worker(
            FINPIPE_BATCH_SNIPPETS="5",
            FINPIPE_LLM_CONCURRENCY="1",
            **slow_model.worker_env(),
        )
        wait_until(lambda: slow_model.calls >= 1, 30, "a model call in flight")
        worker.proc.send_signal(signal.SIGTERM)
        wait_until(lambda: "finishing the batch in hand" in worker.log(), 10, "first signal")
        started = time.monotonic()
        worker.proc.send_signal(signal.SIGTERM)
        assert worker.proc.wait(timeout=10) == 130
        assert time.monotonic() - started < 2, "the second signal did not exit at once"
    wait_until(lambda: queue_depth(settings)[1] == 0, 10, "consumer gone")
    rest = start_worker("--burst")
    assert rest.proc.wait(timeout=90) == 0
    assert_each_stored_once(db, msgs)


def services(*args: str) -> None:
    out = subprocess.run(
        [str(ROOT / "scripts" / "services.sh"), *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert out.returncode == 0, f"services.sh {' '.join(args)} failed: {out.stderr}"


def test_rabbitmq_restart_while_publishing_and_consuming_loses_nothing(
    settings, start_worker, db
) -> None:
    msgs = one_sentence_reports(10_000, tag="r-")
    outage: list[threading.Thread] = []

    def restart_broker() -> None:
        services("rabbit-stop")
        time.sleep(2)  # the outage itself
        services("rabbit-start")

    def feed() -> Iterator[ReportMessage]:
        for i, m in enumerate(msgs):
            if i == 3000:  # pull the broker away in the middle of the publishing run
                t = threading.Thread(target=restart_broker)
                t.start()
                outage.append(t)
            yield m

    worker = start_worker(FINPIPE_PREFETCH="100")
    wait_until(lambda: "consuming" in worker.log(), 30, "the worker consuming")
    with Publisher.from_settings(settings) as pub:
        confirmed = pub.publish_many(feed())
    outage[0].join(timeout=120)
    assert confirmed >= 10_000
    wait_until(
        lambda: db.reports.count_documents({"status": "done"}) == 10_000, 240, "10,000 reports"
    )
    wait_until(lambda: queue_depth(settings)[0] == 0, 60, "queue drained")
    assert worker.stop() == 0
    assert "RabbitMQ connection lost" in worker.log()
    assert DeadLetterQueue(settings).count() == 0
    assert_each_stored_once(db, msgs)


def test_mongodb_down_for_30_seconds_delays_but_loses_nothing(settings, start_worker, db) -> None:
    msgs = one_sentence_reports(1000, tag="m-")
    publish(settings, msgs)
    # A model answering in 50 ms per call of 5 snippets keeps the worker busy for at least 10 s,
    # so the outage lands in the middle of the work however fast the machine is.
    with FakeOpenAI(base_ms=50) as model:
        worker = start_worker(
            FINPIPE_RETRY_DELAYS_S="1,2,4,8,16,32",
            FINPIPE_BATCH_SNIPPETS="5",
            FINPIPE_LLM_CONCURRENCY="1",
            **model.worker_env(),
        )
        wait_until(lambda: db.financial_data.count_documents({}) >= 10, 60, "work in progress")
        services("mongo-stop")
        try:
            time.sleep(30)  # the outage itself
        finally:
            services("mongo-start")
        wait_until(
            lambda: db.reports.count_documents({"status": "done"}) == 1000, 180, "all reports"
        )
        wait_until(lambda: queue_depth(settings)[0] == 0, 60, "queue drained")
        assert worker.stop() == 0
    assert "retrying in" in worker.log()
    assert DeadLetterQueue(settings).count() == 0
    assert_each_stored_once(db, msgs)


def test_same_file_dropped_three_times_and_same_text_posted_ten_times_store_one_set(
    settings, start_worker, db
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from ingest.app import create_app
    from ingest.inbox import Inbox
    from worker.rules import extract_facts

    feed = ROOT / "samples" / "feed.jsonl"
    box = Inbox.from_settings(settings, settle_s=0)
    box.root.mkdir(parents=True, exist_ok=True)
    with Publisher.from_settings(settings) as pub:
        for name in ("feed.jsonl", "feed.jsonl", "copy-of-feed.jsonl"):
            shutil.copyfile(feed, box.root / name)
            box.sweep(pub)
    assert not [p for p in box.root.iterdir() if p.is_file() and not p.name.startswith(".")]

    text = "Quillon Systems reported revenue of $88.2 million for Q3 2024."
    app = create_app(settings)
    try:
        with ThreadPoolExecutor(10) as pool:
            codes = list(
                pool.map(
                    lambda _: app.test_client().post("/submit", json={"raw_text": text}),
                    range(10),
                )
            )
    finally:
        app.extensions["finpipe.close"]()
    assert [r.status_code for r in codes] == [202] * 10
    assert len({r.get_json()["report_id"] for r in codes}) == 1

    texts = [json.loads(line)["raw_text"] for line in feed.read_text().splitlines()] + [text]
    expected = sum(len(extract_facts(t)) for t in texts)
    worker = start_worker()
    wait_until(
        lambda: db.reports.count_documents({"status": "done"}) == len(texts), 60, "all reports"
    )
    wait_until(lambda: queue_depth(settings)[0] == 0, 30, "queue drained")
    assert worker.stop() == 0
    assert db.financial_data.count_documents({}) == expected
    keys = {
        (d["report_id"], d["value_start"], d["metric"])
        for d in db.financial_data.find({}, {"report_id": 1, "value_start": 1, "metric": 1})
    }
    assert len(keys) == expected
