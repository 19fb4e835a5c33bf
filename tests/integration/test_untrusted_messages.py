"""Whatever a worker or an operator tool reads from the broker is untrusted input: a bad header,
property or body dead-letters that message alone, with a reason, and the tools show it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pika

from adapters.rabbitmq import declare_topology
from ops.deadletters import DeadLetterQueue
from schemas.message import Provenance, ReportMessage, SubmitReport
from schemas.settings import Settings
from schemas.topology import HEADER_ATTEMPT, HEADER_REASON, Topology
from tests.integration.conftest import (
    SEED,
    finpipe_cli,
    one_sentence_reports,
    publish,
    queue_depth,
    wait_until,
)


def publish_raw(settings: Settings, queue: str, body: bytes, **properties: Any) -> None:
    """One message exactly as given, as a careless or hostile publisher would send it."""
    conn = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        ch = conn.channel()
        declare_topology(ch, Topology.for_settings(settings))
        ch.confirm_delivery()
        ch.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2, **properties))
    finally:
        conn.close()


def report(text: str) -> ReportMessage:
    return ReportMessage.build(SubmitReport(raw_text=text), Provenance(channel="api"))


def test_a_malformed_attempt_header_dead_letters_that_message_alone_and_the_tools_show_it(
    settings: Settings, start_worker: Any, db: Any
) -> None:
    good = one_sentence_reports(3, tag="hdr")
    bad = report("Badhdr Inc reported revenue of $9 million for Q3 2024.")
    publish(settings, good[:2])
    publish_raw(
        settings,
        settings.queue,
        bad.to_body(),
        message_id=bad.report_id,
        headers={HEADER_ATTEMPT: "abc"},
    )
    publish(settings, good[2:])
    # a dead letter whose every header is odd, as another tool or an old version may leave one
    publish_raw(
        settings,
        f"{settings.queue}.dead",
        b"[" * 50_000,
        message_id="odd-one",
        headers={
            HEADER_ATTEMPT: "x",
            "x-death": "not a list",
            "x-finpipe-dead-at": datetime(2024, 5, 1, tzinfo=UTC),
        },
    )

    worker = start_worker()
    wait_until(lambda: DeadLetterQueue(settings).count() == 2, 30, "the bad message dead")
    wait_until(lambda: db.reports.count_documents({"status": "done"}) == 3, 30, "good reports")
    assert worker.proc.poll() is None, worker.log()  # the worker is still consuming
    assert worker.stop() == 0
    assert "Traceback" not in worker.log()
    assert {f["report_id"] for f in db.financial_data.find()} == {m.report_id for m in good}

    listed = finpipe_cli(settings, "dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["id"]: r for r in map(json.loads, listed.stdout.splitlines())}
    assert set(rows) == {bad.report_id, "odd-one"}
    assert rows[bad.report_id]["kind"] == "invalid_message"
    assert "x-finpipe-attempt is 'abc'" in rows[bad.report_id]["reason"]
    assert "x-finpipe-attempt is 'x'" in rows["odd-one"]["reason"]
    assert finpipe_cli(settings, "dlq", "list").returncode == 0
    shown = finpipe_cli(settings, "dlq", "show", bad.report_id[:12])
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["headers"][HEADER_ATTEMPT] == "abc"
    assert finpipe_cli(settings, "dlq", "show", "odd-one").returncode == 0

    # replayed without our verdict headers (the bad counter included), it is processed
    replayed = finpipe_cli(settings, "dlq", "replay", bad.report_id)
    assert replayed.returncode == 0, replayed.stderr
    again = start_worker("--burst")
    assert again.proc.wait(timeout=60) == 0, again.log()
    again.stop()
    assert db.reports.find_one({"_id": bad.report_id})["status"] == "done"
    assert DeadLetterQueue(settings).count() == 1
    assert queue_depth(settings) == (0, 0)


def test_reports_within_the_size_limit_are_stored_and_a_forged_report_id_replaces_nothing(
    settings: Settings, start_worker: Any, db: Any
) -> None:
    lines = "Acme reported revenue of $1 million for Q1 2024.\n"
    lines += "Q1\t$1.2m\n" * ((899_999 - len(lines)) // 9)
    lines += "x" * (899_999 - len(lines))
    quotes = SEED + '"' * (1_000_000 - len(SEED))
    victim = report("Victim Co reported revenue of $4 million for Q2 2024.")
    large = [report(lines), report(quotes)]
    assert [len(m.raw_text.encode()) for m in large] == [899_999, 1_000_000]
    publish(settings, [*large, victim])

    worker = start_worker()
    wait_until(lambda: db.reports.count_documents({"status": "done"}) == 3, 90, "three reports")
    forged = json.loads(report("HIJACK reported revenue of $666 million for Q2 2024.").to_body())
    forged["report_id"] = victim.report_id
    publish_raw(settings, settings.queue, json.dumps(forged).encode(), message_id="forged")
    wait_until(lambda: DeadLetterQueue(settings).count() == 1, 30, "the forged message dead")
    assert worker.stop() == 0

    (dead,) = DeadLetterQueue(settings).letters()
    assert dead.id == "forged"
    assert dead.kind == "invalid_message"
    assert "does not match the hash of its text" in dead.reason
    assert db.reports.find_one({"_id": victim.report_id})["status"] == "done"
    facts = list(db.financial_data.find({"report_id": victim.report_id}))
    assert [f["company"] for f in facts] == ["Victim Co"]
    assert db.financial_data.count_documents({"company": "HIJACK"}) == 0
    assert {d["_id"] for d in db.reports.find()} == {m.report_id for m in [*large, victim]}
    assert dead.headers[HEADER_REASON] == dead.reason
