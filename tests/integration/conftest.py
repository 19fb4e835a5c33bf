"""Fixtures for tests against the real services: worker processes, the Flask app, polling."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pika
import pytest

from adapters.rabbitmq import Publisher, declare_topology
from schemas.message import Provenance, ReportMessage, SubmitReport
from schemas.settings import Settings
from schemas.topology import Topology

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.integration)


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a finpipe process needs to act exactly like ``settings``."""
    env = settings.process_env()
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def wait_until(predicate: Callable[[], Any], timeout_s: float = 30.0, what: str = "") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what or predicate}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


class FinpipeProcess:
    """A real ``finpipe ARGS`` process, its output in ``log_path``."""

    def __init__(self, env: dict[str, str], log_path: Path, *args: str) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed when the process is waited for
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "finpipe", *args],
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class WorkerProcess(FinpipeProcess):
    """A real ``finpipe worker`` process."""

    def __init__(self, env: dict[str, str], log_path: Path, *args: str) -> None:
        super().__init__(env, log_path, "worker", *args)

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._log.close()
        return code


@pytest.fixture
def start_worker(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(*args: str, settings_: Settings | None = None, **extra_env: str) -> WorkerProcess:
        env = settings_env(settings_ or settings, **extra_env)
        w = WorkerProcess(env, tmp_path / f"worker{len(started)}.log", *args)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop(signal.SIGKILL if w.proc.poll() is None else signal.SIGTERM, timeout_s=5)


@pytest.fixture
def db(settings: Settings, mongo_client: Any) -> Any:
    return mongo_client[settings.mongo_db]


SEED = "Company XYZ reported a net income of $5.3 million for Q1 2024."


def assert_seed_record(doc: dict[str, Any]) -> None:
    """The seed example's stored fact: the five fields, exactly, and where its amount stands."""
    assert {k: doc[k] for k in ("company", "metric", "value", "currency", "quarter")} == {
        "company": "XYZ",
        "metric": "net income",
        "value": 5300000,
        "currency": "USD",
        "quarter": "Q1 2024",
    }
    assert isinstance(doc["value"], int)
    assert doc["value_text"] == "$5.3 million"
    assert doc["snippet"] == SEED
    assert SEED[doc["value_start"] : doc["value_start"] + len("$5.3 million")] == "$5.3 million"


def one_sentence_reports(n: int, tag: str = "") -> list[ReportMessage]:
    """``n`` distinct one-fact reports: revenue of $(i + 1).25 million for Q2 2024."""
    return [
        ReportMessage.build(
            SubmitReport(
                raw_text=f"Firm{tag}{i} reported revenue of ${i + 1}.25 million for Q2 2024."
            ),
            Provenance(channel="api"),
        )
        for i in range(n)
    ]


def publish(settings: Settings, msgs: list[ReportMessage]) -> None:
    with Publisher.from_settings(settings) as pub:
        assert pub.publish_many(msgs) == len(msgs)


def queue_depth(settings: Settings, queue: str | None = None) -> tuple[int, int]:
    """(ready messages, consumers) of the work queue or another queue of the topology, which is
    declared first (an unused queue counts 0)."""
    conn = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        ch = conn.channel()
        declare_topology(ch, Topology.for_settings(settings))
        ok = ch.queue_declare(queue or settings.queue, passive=True)
        return int(ok.method.message_count), int(ok.method.consumer_count)
    finally:
        conn.close()


def finpipe_cli(
    settings: Settings, *args: str, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run ``finpipe ARGS`` as the user would, configured like ``settings``."""
    done = subprocess.run(
        [sys.executable, "-m", "finpipe", *args],
        env=settings_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert done.returncode == 0, done.stderr
    return done
