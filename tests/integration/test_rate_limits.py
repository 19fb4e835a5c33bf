"""Real worker processes under an account's rate limit, and stopped on a configuration problem:
nothing is punished for a busy limit or a bad key (no broker retry, no delivery attempt spent,
no dead letter)."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable
from typing import Any

import pika

from fakes.openai_server import FakeOpenAI
from ops.deadletters import DeadLetterQueue
from schemas.settings import Settings
from schemas.topology import HEADER_ATTEMPT
from tests.integration.conftest import (
    WorkerProcess,
    one_sentence_reports,
    publish,
    queue_depth,
    wait_until,
)


def _held_headers(settings: Settings) -> list[dict[str, Any]]:
    """The headers of every message ready in the work queue (taken and put back: which counts
    a delivery)."""
    conn = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        ch = conn.channel()
        out, tags = [], []
        while True:
            method, props, _body = ch.basic_get(settings.queue)
            if method is None:
                break
            out.append(dict(props.headers or {}))
            tags.append(method.delivery_tag)
        for tag in tags:
            ch.basic_nack(tag, requeue=True)
        return out
    finally:
        conn.close()


def test_a_worker_restarted_on_a_refused_key_never_dead_letters_a_report(
    settings: Settings, start_worker: Callable[..., WorkerProcess], db: Any
) -> None:
    # a delivery limit of 2: four restarts are more than enough to exhaust it by nacking
    strict = settings.model_copy(update={"delivery_limit": 2})
    msgs = one_sentence_reports(6, "c")
    publish(strict, msgs)
    with FakeOpenAI(api_key="the-right-key") as server:
        for restart in range(4):
            worker = start_worker(settings_=strict, **server.worker_env("sk-wrong"))
            assert worker.proc.wait(timeout=60) == 3
            assert "model API answered 401" in worker.log()
            assert (DeadLetterQueue(strict).count(), queue_depth(strict)) == (0, (6, 0)), restart
        assert all(HEADER_ATTEMPT not in h for h in _held_headers(strict))
        fixed = start_worker(settings_=strict, **server.worker_env("the-right-key"))
        wait_until(lambda: db.reports.count_documents({"status": "done"}) == 6, 60, "6 reports")
        assert fixed.stop() == 0
    assert DeadLetterQueue(strict).count() == 0


def test_sigterm_while_waiting_for_the_limit_exits_fast_and_hands_the_reports_back(
    settings: Settings, start_worker: Callable[..., WorkerProcess], db: Any
) -> None:
    msgs = one_sentence_reports(60, "w")
    publish(settings, msgs)
    # room for about one call, then a wait of many seconds for each next one
    with FakeOpenAI(tpm=9_000) as server:
        worker = start_worker(**server.worker_env(), FINPIPE_BATCH_SNIPPETS="5")
        wait_until(lambda: "holding calls" in worker.log(), 60, "a wait for the rate limit")
        started = time.monotonic()
        assert worker.stop(signal.SIGTERM, timeout_s=30) == 0
        took = time.monotonic() - started
    log = worker.log()
    assert took <= 10, log
    stored = db.reports.count_documents({"status": "done"})
    assert stored < 60
    assert queue_depth(settings)[0] == 60 - stored
    held = _held_headers(settings)
    spent = [h for h in held if HEADER_ATTEMPT in h or h.get("x-delivery-count", 0)]
    assert not spent, (spent, log)
    assert DeadLetterQueue(settings).count() == 0
    assert "retrying in" not in log
    assert re.search(r"worker stopped: \d+ acked, 0 retried, 0 dead-lettered, \d+ handed back", log)


def test_workers_sharing_one_limit_store_everything_without_broker_retries(
    settings: Settings, start_worker: Callable[..., WorkerProcess], db: Any
) -> None:
    msgs = one_sentence_reports(150, "s")
    publish(settings, msgs)
    with FakeOpenAI(tpm=60_000) as server:
        workers = [
            start_worker(**server.worker_env(), FINPIPE_BATCH_SNIPPETS="5") for _ in range(3)
        ]
        wait_until(
            lambda: db.reports.count_documents({"status": "done"}) == 150, 120, "150 reports"
        )
        for w in workers:
            assert w.stop() == 0
        limits = server.limits
        assert limits is not None
        admitted, refused = limits.admitted, limits.refused
    logs = "".join(w.log() for w in workers)
    assert "holding calls" in logs  # the limit did bind
    assert "retrying in" not in logs  # no broker retry
    assert DeadLetterQueue(settings).count() == 0
    assert refused <= max(2, 0.1 * admitted), (admitted, refused)
