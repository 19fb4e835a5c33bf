"""Scenario 1: ``finpipe ingest`` of a JSONL file with publisher confirms, against a bare pika loop
publishing the same bodies without confirms (the ceiling), both into the same quorum queue."""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pika

from adapters.rabbitmq import declare_topology
from bench.common import (
    Proc,
    Row,
    amqp_connection,
    bench_settings,
    cleaned,
    delete_queues,
    process_env,
    queue_depth,
    report_texts,
    say,
    write_jsonl,
)
from ingest.inbox import ReadLimits, load_file, parse
from schemas.settings import Settings
from schemas.topology import Topology

NAME = "ingest"


def bare_publish(settings: Settings, bodies: list[tuple[str, bytes]]) -> float:
    """Seconds to publish ``bodies`` with a plain pika loop: persistent, no confirms. A final
    round trip on the same channel makes sure the broker has read every message."""
    conn = amqp_connection(settings)
    try:
        ch = conn.channel()
        declare_topology(ch, Topology.for_settings(settings))
        started = time.perf_counter()
        for message_id, body in bodies:
            ch.basic_publish(
                "",
                settings.queue,
                body,
                pika.BasicProperties(
                    delivery_mode=pika.DeliveryMode.Persistent,
                    content_type="application/json",
                    message_id=message_id,
                ),
            )
        ch.queue_declare(settings.queue, passive=True)
        return time.perf_counter() - started
    finally:
        conn.close()


def run(quick: bool) -> list[Row]:
    n = 10_000 if quick else 100_000
    settings = bench_settings(NAME)
    with tempfile.TemporaryDirectory() as tmp, cleaned(settings):
        path = Path(tmp) / "reports.jsonl"
        write_jsonl(path, report_texts(n, salt=NAME))
        limits = ReadLimits.from_settings(settings)
        data, sha = load_file(path, limits)
        messages = parse(data, sha, path.name, limits, datetime.now(UTC)).messages
        bodies = [(m.report_id, m.to_body()) for m in messages]
        assert len(bodies) == n

        ceilings = []
        for attempt in (1, 2):
            delete_queues(settings)
            seconds = bare_publish(settings, bodies)
            ceilings.append(n / seconds)
            say(f"  ingest ceiling run {attempt}: {n / seconds:,.0f} msg/s")
        delete_queues(settings)

        started = time.perf_counter()
        proc = Proc(
            "ingest",
            ["ingest", str(path)],
            process_env(settings, FINPIPE_INBOX=str(Path(tmp) / "inbox")),
        )
        code = proc.wait(timeout_s=1800)
        seconds = time.perf_counter() - started
        proc.stop()
        if code != 0:
            raise RuntimeError(f"finpipe ingest exited {code}: {proc.tail()}")
        queued = queue_depth(settings)
        rate = n / seconds
        say(f"  finpipe ingest: {rate:,.0f} msg/s ({seconds:.1f} s, {queued} queued)")
    ceiling = max(ceilings)
    return [
        Row(
            "1 ingest",
            f"{n:,} single-sentence reports, JSONL, confirms (whole command incl. start-up)",
            "reports/s",
            rate,
            "msg/s",
            ceiling,
            "bare pika loop, no confirms (best of 2)",
            "≥ 40% of ceiling",
            rate / ceiling >= 0.40 and queued == n,
            note=f"{queued:,} of {n:,} in the queue afterwards",
        )
    ]
