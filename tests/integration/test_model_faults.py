"""Model faults against real worker processes: the local OpenAI-compatible server rate-limits,
fails, hangs and answers garbage, then recovers. Each test ends with a count check: every report
stored exactly once, or in the dead-letter queue with its reason."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fakes.openai_server import FakeOpenAI
from fakes.script import Delay, Garbage, Snippets, Status, malformed
from ops.deadletters import DeadLetterQueue
from schemas.message import Provenance, ReportMessage, SubmitReport
from tests.integration.conftest import (
    WorkerProcess,
    one_sentence_reports,
    publish,
    queue_depth,
    wait_until,
)

#: delayed retries of a second or two, so the test sees them happen
FAST_RETRIES = {"FINPIPE_RETRY_DELAYS_S": "1,1,2,2,4", "FINPIPE_LLM_TIMEOUT_S": "1"}


def start_openai_worker(
    start_worker: Callable[..., WorkerProcess], server: FakeOpenAI, key: str = "test", **env: str
) -> WorkerProcess:
    return start_worker(
        **server.worker_env(key),
        **env,
    )


def assert_each_stored_once(db: Any, msgs: list[ReportMessage]) -> None:
    ids = {m.report_id for m in msgs}
    done = {r["_id"] for r in db.reports.find({"status": "done"}, {"_id": 1})}
    assert done == ids
    per_report: dict[str, list[int]] = {}
    for d in db.financial_data.find({}, {"report_id": 1, "value": 1}):
        per_report.setdefault(d["report_id"], []).append(d["value"])
    assert set(per_report) == ids
    assert all(len(v) == 1 for v in per_report.values())
    expected = {m.report_id: _value_of(m.raw_text) for m in msgs}
    assert {rid: v[0] for rid, v in per_report.items()} == expected


def _value_of(text: str) -> int:
    m = re.search(r"\$(\d+)\.25 million", text)
    assert m is not None
    return int(m.group(1)) * 1_000_000 + 250_000


def test_model_outage_of_rate_limits_errors_timeouts_and_garbage_loses_nothing(
    settings, start_worker, db
) -> None:
    msgs = one_sentence_reports(40, "o")
    publish(settings, msgs)
    with FakeOpenAI() as server:
        server.script(
            Status(429, retry_after="1"),
            Status(500),
            Delay(3.0),  # longer than FINPIPE_LLM_TIMEOUT_S
            Garbage(),  # a proxy's HTML page with status 200
            malformed(),  # a completion whose content is not JSON
            Status(503),
            Delay(3.0),
            Garbage('{"id": "chatcmpl-cut", "choi', "application/json"),
            Status(429, retry_after="1"),
            Status(502),
        )
        worker = start_openai_worker(
            start_worker,
            server,
            FINPIPE_LLM_MAX_RETRIES="2",
            FINPIPE_BATCH_SNIPPETS="10",
            FINPIPE_LLM_CONCURRENCY="2",
            **FAST_RETRIES,
        )
        wait_until(lambda: db.reports.count_documents({"status": "done"}) == 40, 90, "40 reports")
        wait_until(lambda: queue_depth(settings)[0] == 0, 30, "queue drained")
        assert worker.stop() == 0
        calls = server.calls

    log = worker.log()
    assert "retry 1/2" in log  # retried inside the worker with backoff...
    assert "retrying in" in log  # ...and then through the delayed-retry queues
    assert "not a chat completion" in log
    assert "failed unexpectedly" not in log
    assert calls >= 10 + 4  # the ten faults, then the four batches answered
    assert DeadLetterQueue(settings).count() == 0
    assert_each_stored_once(db, msgs)
    # Billed calls only: the faults left no usage behind, the answers did.
    assert 4 <= db.llm_usage.count_documents({}) < calls


def test_report_the_model_always_fails_on_is_dead_lettered_and_the_others_stored(
    settings, start_worker, db
) -> None:
    good = one_sentence_reports(12, "g")
    doomed = ReportMessage.build(
        SubmitReport(raw_text="Doomed Corp reported revenue of $6.25 million for Q2 2024."),
        Provenance(channel="api"),
    )
    publish(settings, [*good[:6], doomed, *good[6:]])

    def has_doomed(snippets: Snippets) -> bool:
        return any("Doomed" in s["text"] for s in snippets)

    with FakeOpenAI() as server:
        server.always(has_doomed, Status(500, message="internal error on this input"))
        worker = start_openai_worker(
            start_worker, server, FINPIPE_LLM_MAX_RETRIES="1", **FAST_RETRIES
        )
        wait_until(
            lambda: (
                DeadLetterQueue(settings).count() + db.reports.count_documents({"status": "done"})
                == 13
            ),
            90,
            "every report stored or dead-lettered",
        )
        wait_until(lambda: queue_depth(settings)[0] == 0, 30, "queue drained")
        assert worker.stop() == 0
        doomed_calls = sum(1 for r in server.requests if has_doomed(r.snippets))

    [letter] = DeadLetterQueue(settings).letters()
    assert letter.id == doomed.report_id
    assert letter.kind == "retries_exhausted"
    assert letter.attempts == 5
    assert "gave up after 5 delayed retries" in letter.reason
    assert "500" in letter.reason
    # One first delivery and five delayed retries, each with one retry inside the worker.
    assert doomed_calls == 6 * 2
    assert db.reports.find_one({"_id": doomed.report_id})["status"] == "dead"
    assert db.financial_data.count_documents({"report_id": doomed.report_id}) == 0
    assert_each_stored_once(db, good)


def test_rejected_api_key_stops_the_worker_and_keeps_the_messages(
    settings, start_worker, db
) -> None:
    msgs = one_sentence_reports(3, "k")
    publish(settings, msgs)
    with FakeOpenAI(api_key="the-right-key") as server:
        worker = start_openai_worker(start_worker, server, key="sk-a-wrong-key")
        assert worker.proc.wait(timeout=60) == 3
        worker.stop()
        log = worker.log()
        assert re.search(r"ERROR .*stopping the worker: model API answered 401", log), log
        assert "OPENAI_API_KEY" in log
        assert "sk-a-wrong-key" not in log
        assert queue_depth(settings) == (3, 0)  # back in the queue, ready for a fixed worker
        assert DeadLetterQueue(settings).count() == 0
        assert db.financial_data.count_documents({}) == 0

        fixed = start_openai_worker(start_worker, server, key="the-right-key")
        wait_until(lambda: db.reports.count_documents({"status": "done"}) == 3, 30, "3 reports")
        assert fixed.stop() == 0
    assert_each_stored_once(db, msgs)


def test_a_server_refusing_temperature_costs_one_warning_and_no_dead_letter(
    settings, start_worker, db
) -> None:
    msgs = one_sentence_reports(24, "t")
    publish(settings, msgs)
    with FakeOpenAI(reject_params=("temperature",)) as server:
        # a classic model, so finpipe sends temperature=0 and the server refuses it
        worker = start_openai_worker(
            start_worker,
            server,
            FINPIPE_MODEL="gpt-4o-mini",
            FINPIPE_BATCH_SNIPPETS="8",
            FINPIPE_LLM_CONCURRENCY="2",
            **FAST_RETRIES,
        )
        wait_until(lambda: db.reports.count_documents({"status": "done"}) == 24, 60, "24 reports")
        wait_until(lambda: queue_depth(settings)[0] == 0, 30, "queue drained")
        assert worker.stop() == 0
        refused = [r for r in server.requests if "temperature" in r.body]

    log = worker.log()
    warnings = re.findall(r"WARNING .*refused 'temperature'.*", log)
    assert len(warnings) == 1, warnings
    assert "2027-01-14" in log  # the start-up warning of a retiring model, names its date
    assert len(refused) == 1  # the first call goes alone; later ones leave temperature out
    assert DeadLetterQueue(settings).count() == 0
    assert "0 dead-lettered" in log
    assert_each_stored_once(db, msgs)
    assert db.financial_data.count_documents({"extractor": "openai"}) == 24


def test_an_output_format_the_server_refuses_stops_the_worker_and_keeps_the_reports(
    settings, start_worker, db
) -> None:
    msgs = one_sentence_reports(5, "f")
    publish(settings, msgs)
    with FakeOpenAI(mode="json_object") as server:
        worker = start_openai_worker(start_worker, server, FINPIPE_RESPONSE_FORMAT="json_schema")
        assert worker.proc.wait(timeout=60) == 3
        worker.stop()
        log = worker.log()
        assert re.search(r"ERROR .*stopping the worker: .*FINPIPE_RESPONSE_FORMAT=auto", log), log
        assert queue_depth(settings) == (5, 0)
        assert DeadLetterQueue(settings).count() == 0

        fixed = start_openai_worker(start_worker, server)  # FINPIPE_RESPONSE_FORMAT=auto
        wait_until(lambda: db.reports.count_documents({"status": "done"}) == 5, 30, "5 reports")
        assert fixed.stop() == 0
    assert len(re.findall(r"output format: json_schema does not work here", fixed.log())) == 1
    assert_each_stored_once(db, msgs)
    usage = list(db.llm_usage.find())
    assert usage and all(u["response_format"] == "json_object" for u in usage)


def test_insufficient_quota_stops_the_worker_and_keeps_the_reports(
    settings, start_worker, db
) -> None:
    msgs = one_sentence_reports(3, "q")
    publish(settings, msgs)
    with FakeOpenAI() as server:
        server.always(
            lambda _: True,
            Status(429, message="You exceeded your current quota", error_code="insufficient_quota"),
        )
        worker = start_openai_worker(start_worker, server, **FAST_RETRIES)
        assert worker.proc.wait(timeout=60) == 3
        worker.stop()
        assert server.calls == 1
    log = worker.log()
    assert re.search(r"ERROR .*stopping the worker: .*no quota left", log), log
    assert queue_depth(settings) == (3, 0)
    assert DeadLetterQueue(settings).count() == 0
    assert db.financial_data.count_documents({}) == 0
