"""The night with real services: the nightly jobs of ``finpipe schedule`` (the sweep, then the
export) beside a real worker process whose model is slow, so it holds the night's reports
unacknowledged while the export looks."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pika

from adapters.rabbitmq import declare_topology
from fakes.openai_server import FakeOpenAI
from finpipe.context import Context
from ops.nightly import nightly_jobs
from schemas.settings import Settings
from schemas.topology import Topology
from tests.integration.conftest import (
    FinpipeProcess,
    WorkerProcess,
    finpipe_cli,
    one_sentence_reports,
    queue_depth,
    settings_env,
    wait_until,
)

REPORTS = 12


def fill_inbox(settings: Settings) -> None:
    settings.inbox.mkdir(parents=True, exist_ok=True)
    lines = (
        json.dumps({"raw_text": f"Night{i} reported revenue of ${i + 1}.25 million for Q2 2024."})
        for i in range(REPORTS)
    )
    (settings.inbox / "night.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def night(settings: Settings, export_wait_s: float) -> tuple[Callable[[], Any], Callable[[], Any]]:
    """The sweep and the export as ``finpipe schedule`` runs them."""
    ctx = Context(settings.model_copy(update={"export_wait_s": export_wait_s}))
    sweep, export = nightly_jobs(ctx, ctx.company_aliases("schedule"))
    return sweep.func, export.func


def run_report(settings: Settings) -> dict[str, Any]:
    return json.loads((settings.export_dir / "latest" / "run_report.json").read_text())


def test_the_export_waits_for_the_reports_a_running_worker_holds(
    settings: Settings, start_worker: Callable[..., WorkerProcess]
) -> None:
    with FakeOpenAI(base_ms=6000) as server:  # every model answer takes 6 s
        start_worker(**server.worker_env())
        wait_until(lambda: queue_depth(settings)[1] == 1, what="the worker consuming")
        fill_inbox(settings)
        sweep, export = night(settings, export_wait_s=0)
        sweep()
        # the worker took every report: none is ready in the queue, none is stored yet
        wait_until(lambda: queue_depth(settings) == (0, 1), what="the worker holding them")

        line = export()  # no time to wait: it says what it did not wait for
        report = run_report(settings)
        assert report["queue_drained"] is False, line
        assert report["covers"]["facts"] == 0
        left = report["outstanding"]
        assert left["reports_not_stored"] == REPORTS and len(left["report_ids"]) == REPORTS
        assert left["summary"] == f"{REPORTS} report(s) of the sweep neither stored nor dead"
        assert f"outstanding: {left['summary']}" in line
        page = (settings.export_dir / "latest" / "index.html").read_text()
        assert f"<td>{left['summary']}</td>" in page

        _, export = night(settings, export_wait_s=60)
        line = export()  # time to wait: it waits for the worker to store them all
        report = run_report(settings)
        assert report["queue_drained"] is True, line
        assert report["covers"]["facts"] == REPORTS
        assert report["outstanding"]["summary"] == "nothing"


def test_the_export_counts_reports_waiting_in_a_delayed_retry_queue(settings: Settings) -> None:
    topo = Topology.for_settings(settings)
    conn = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        ch = conn.channel()
        declare_topology(ch, topo)
        (msg,) = one_sentence_reports(1, "retry")
        ch.basic_publish("", topo.retry_queue(0), msg.to_body())
    finally:
        conn.close()
    _, export = night(settings, export_wait_s=0)
    export()
    left = run_report(settings)["outstanding"]
    assert left["queues"] == {topo.retry_queue(0): 1}
    assert left["summary"] == f"1 message(s) in {topo.retry_queue(0)}"


def test_a_scheduler_started_after_the_nights_fire_time_catches_up_once_and_status_showed_it(
    settings: Settings, db: Any, tmp_path: Path
) -> None:
    two_nights_ago = datetime.now(UTC) - timedelta(days=2)
    for name in ("last_sweep", "last_export"):
        db["runs"].insert_one({"_id": name, "at": two_nights_ago})
    status = finpipe_cli(settings, "status")
    assert "  missed        the sweep due at " in status.stdout, status.stdout
    assert "  missed        the export due at " in status.stdout
    fill_inbox(settings)

    env = settings_env(settings, FINPIPE_EXPORT_WAIT_S="0")
    sched = FinpipeProcess(env, tmp_path / "schedule.log", "schedule")
    try:
        wait_until(lambda: "job export (catch-up) done" in sched.log(), 60, "the catch-up export")
    finally:
        sched.proc.send_signal(signal.SIGTERM)
        sched.proc.wait(timeout=30)
        sched._log.close()
    log = sched.log()
    order = [
        "job inbox-sweep missed its run due at",
        "job export missed its run due at",
        "job inbox-sweep (catch-up) starting",
        "job inbox-sweep (catch-up) done",
        "job export (catch-up) starting",
        "job export (catch-up) done",
    ]
    at = [log.index(line) for line in order]
    assert at == sorted(at), log
    assert log.count("(catch-up) starting") == 2
    assert queue_depth(settings) == (REPORTS, 0)  # the sweep published the night's reports
    assert db["runs"].find_one({"_id": "last_sweep"})["at"] > two_nights_ago.replace(tzinfo=None)
    assert "missed" not in finpipe_cli(settings, "status").stdout
