"""A real Prometheus scrapes a real worker, ``finpipe serve`` and the scheduler while reports go
through (the model path against the local OpenAI-compatible server); then every query of the
dashboard and every alert expression is run against its HTTP API and must return data, and the
facts Prometheus counted must be the facts MongoDB holds.

With ``FINPIPE_DASHBOARD_DATA=<file>`` the panels' series over the run are written there as JSON
(``scripts/dashboard_png.py`` draws the picture in ``docs/operating.md`` from them).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
import yaml

from adapters.mongo import FACTS
from fakes.openai_server import FakeOpenAI
from fakes.script import Status
from schemas.settings import Settings
from tests.integration.conftest import (
    ROOT,
    FinpipeProcess,
    WorkerProcess,
    settings_env,
    wait_until,
)

MONITORING = ROOT / "monitoring"
SAMPLES = ROOT / "samples"
SUBMITTED = 10
#: for the picture, reports come in waves 5 s apart (one wave otherwise: the test stays short)
WAVES = 8 if os.environ.get("FINPIPE_DASHBOARD_DATA") else 1
FROM_INBOX = 4  # samples/feed.jsonl


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Prometheus:
    """A Prometheus server of its own: temporary storage, its own port, finpipe's rules."""

    def __init__(self, tmp: Path, targets: dict[str, str]) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail("prometheus not found: scripts/services.sh up installs Debian's prometheus")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.started = time.time()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(MONITORING / "alerts.yml")],
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": [target]}]}
                for job, target in targets.items()
            ],
        }
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        self._log = open(tmp / "prometheus.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def api(self, path: str, **params: Any) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as answer:
            doc = json.load(answer)
        assert doc["status"] == "success", doc
        return doc["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        return list(data["result"])

    def number(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def as_bool(expr: str) -> str:
    """An alert expression that returns its series whether or not it fires: each comparison
    with a number becomes a ``bool`` comparison (0 or 1)."""
    return re.sub(r"\s(>=|<=|==|!=|>|<)\s", r" \1 bool ", expr)


@pytest.fixture
def model() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as srv:
        yield srv


@pytest.fixture
def night(settings: Settings, tmp_path: Path, model: FakeOpenAI) -> Iterator[Prometheus]:
    """The processes of a night, each serving its metrics, and Prometheus scraping them."""
    ports = {name: free_port() for name in ("worker", "serve", "scheduler")}
    env = settings_env(settings, FINPIPE_METRICS_HOST="127.0.0.1", FINPIPE_EXPORT_WAIT_S="60")
    settings.inbox.mkdir(parents=True, exist_ok=True)
    shutil.copy(SAMPLES / "feed.jsonl", settings.inbox / "feed.jsonl")
    model.script(Status(429, retry_after="1"))  # one rate-limited call, then answers
    worker = WorkerProcess(
        {
            **env,
            **model.worker_env(),
            "FINPIPE_METRICS_PORT": str(ports["worker"]),
            "FINPIPE_MAX_COST_USD": "5",
        },
        tmp_path / "worker.log",
    )
    serve = FinpipeProcess(
        env, tmp_path / "serve.log", "serve", "--port", str(ports["serve"]), "--threads", "2"
    )
    prom = Prometheus(
        tmp_path, {f"finpipe-{name}": f"127.0.0.1:{port}" for name, port in ports.items()}
    )
    processes: list[FinpipeProcess] = [worker, serve]
    try:
        wait_until(prom.ready, 30, "Prometheus ready")
        wait_until(lambda: "consuming" in worker.log(), 30, "the worker consuming")
        wait_until(lambda: http_ok(f"http://127.0.0.1:{ports['serve']}/healthz"), 30, "serve")
        # counters start at 0 in Prometheus too, so that the first event is an increase
        wait_until(
            lambda: prom.number('sum(up{job=~"finpipe-(worker|serve)"})') == 2,
            30,
            "Prometheus scraping the worker and serve",
        )
        scheduler = FinpipeProcess(
            {**env, "FINPIPE_METRICS_PORT": str(ports["scheduler"])},
            tmp_path / "scheduler.log",
            "schedule",
            "--run-now",
        )
        processes.append(scheduler)
        started = time.time()
        submit(ports["serve"], 0)
        dead_letter(settings)
        for wave in range(1, WAVES):
            time.sleep(5)
            submit(ports["serve"], wave)
        prom.started = started
        yield prom
    finally:
        prom.stop()
        for p in processes:
            if p.proc.poll() is None:
                p.proc.send_signal(signal.SIGTERM)
        for p in processes:
            try:
                p.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.proc.kill()
                p.proc.wait()
            p._log.close()


def submit(port: int, wave: int) -> None:
    reports = [
        {"raw_text": f"Night{wave}x{i} Corp reported revenue of ${i + 1}.75 million for Q3 2024."}
        for i in range(SUBMITTED)
    ]
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/submit",
        data=json.dumps(reports).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 202


def dead_letter(settings: Settings) -> None:
    """A message that is no report: the worker dead-letters it."""
    conn = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        conn.channel().basic_publish("", settings.queue, b"this is not a report")
    finally:
        conn.close()


def test_prometheus_sees_the_night_every_panel_and_alert_has_data_and_facts_match_mongodb(
    night: Prometheus, settings: Settings, mongo_client: Any
) -> None:
    prom = night
    stored = 'sum(finpipe_reports_total{outcome="stored"})'
    wait_until(
        lambda: prom.number(stored) == SUBMITTED * WAVES + FROM_INBOX,
        45,
        f"{SUBMITTED * WAVES + FROM_INBOX} reports counted as stored",
    )
    facts = mongo_client[settings.mongo_db][FACTS].count_documents({})
    assert facts >= SUBMITTED * WAVES + FROM_INBOX
    wait_until(
        lambda: prom.number("sum(finpipe_facts_stored_total)") == facts,
        15,
        f"Prometheus counting the {facts} facts MongoDB holds",
    )
    assert prom.number('sum(finpipe_reports_total{outcome="dead_lettered"})') == 1
    for name in ("inbox-sweep", "export"):
        wait_until(
            lambda n=name: prom.query(f'finpipe_job_last_success_timestamp_seconds{{name="{n}"}}'),
            30,
            f"the {name} job's success",
        )
    time.sleep(2)  # a few more scrapes, so that every rate has two samples after the last event

    dashboard = json.loads((MONITORING / "dashboard.json").read_text())
    empty = [
        f"{panel['title']}: {target['expr']}"
        for panel in dashboard["panels"]
        for target in panel["targets"]
        if not prom.query(target["expr"])
    ]
    assert not empty, "dashboard queries without data:\n" + "\n".join(empty)

    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    alerts = {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"]}
    silent = [
        f"{name}: {as_bool(expr)}" for name, expr in alerts.items() if not prom.query(as_bool(expr))
    ]
    assert not silent, "alert expressions without data:\n" + "\n".join(silent)
    # Prometheus evaluated every rule without an error; the dead letter fires its alert
    loaded = [r for g in prom.api("rules")["groups"] for r in g["rules"]]
    assert {r["name"] for r in loaded} == set(alerts)
    assert all(r["health"] == "ok" for r in loaded), loaded
    wait_until(
        lambda: any(
            a["labels"]["alertname"] == "FinpipeDeadLettersGrowing" and a["state"] == "firing"
            for a in prom.api("alerts")["alerts"]
        ),
        10,
        "the dead-letter alert firing",
    )

    if out := os.environ.get("FINPIPE_DASHBOARD_DATA"):
        save_panels(prom, dashboard, Path(out))


def save_panels(prom: Prometheus, dashboard: dict[str, Any], out: Path) -> None:
    end = time.time()
    start = prom.started - 5
    panels = []
    for panel in dashboard["panels"]:
        series = []
        for target in panel["targets"]:
            data = prom.api("query_range", query=target["expr"], start=start, end=end, step=1)
            for s in data["result"]:
                legend = re.sub(
                    r"\{\{\s*(\w+)\s*\}\}",
                    lambda m, labels=s["metric"]: str(labels.get(m.group(1), "")),
                    target.get("legendFormat", ""),
                )
                series.append({"legend": legend, "values": s["values"]})
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "")
        panels.append({"title": panel["title"], "unit": unit, "series": series})
    out.write_text(json.dumps({"start": start, "end": end, "panels": panels}))


def scraped(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return str(answer.read().decode())


def test_a_restarted_scheduler_shows_the_last_successes_mongodb_remembers(
    settings: Settings, tmp_path: Path
) -> None:
    from datetime import UTC, datetime

    from adapters.mongo import LAST_SWEEP, MongoStore

    # a sweep of this night (an older one would be caught up at start, and succeed now)
    swept = datetime.now(UTC).replace(microsecond=0)
    store = MongoStore.from_settings(settings)
    try:
        store.record_run(LAST_SWEEP, swept, files=1, reports=3, failed=0, left=0)
    finally:
        store.close()
    port = free_port()
    scheduler = FinpipeProcess(
        settings_env(settings, FINPIPE_METRICS_PORT=str(port)), tmp_path / "sched.log", "schedule"
    )
    line = 'finpipe_job_last_success_timestamp_seconds{name="inbox-sweep"} '

    def remembered() -> str | None:
        # /metrics answers as soon as the process starts; the runs are read from MongoDB then
        if not http_ok(f"http://127.0.0.1:{port}/metrics"):
            return None
        text = scraped(port)
        return text if line in text else None

    try:
        text = wait_until(remembered, 30, "the scheduler's /metrics with the last sweep")
    finally:
        scheduler.proc.send_signal(signal.SIGTERM)
        scheduler.proc.wait(timeout=20)
        scheduler._log.close()
    [value] = [row[len(line) :] for row in text.splitlines() if row.startswith(line)]
    assert float(value) == swept.timestamp()
    # never exported: no series, rather than a success at 1970
    assert 'finpipe_job_last_success_timestamp_seconds{name="export"}' not in text
    assert 'finpipe_queue_messages{queue="work"} 0.0' in text
