"""Scenario 9 (``ratelimit``): a night under an account's rate limit. N one-sentence reports,
W real worker processes, the local model server enforcing a tokens-per-minute limit as OpenAI
does (charged at admission: prompt estimate plus ``max_completion_tokens``; continuous refill;
429 ``rate_limit_exceeded`` with "Please try again in Xs." and no ``retry-after``).

Figures per W: wall time (first worker consuming to the last report stored) against the ideal
time the limit allows for the tokens admitted (admitted tokens / TPM, in minutes), 429s per
admitted call, reports stored, dead-lettered, still waiting (in the work or retry queues), broker
retries; then, with a second set of reports published and the workers waiting for the limit,
how long ``SIGTERM`` takes and whether every unfinished report is back in the queue unchanged.
"""

from __future__ import annotations

import re
import time
from typing import Any

from bench.common import (
    Proc,
    Row,
    amqp_connection,
    cleaned,
    model_settings,
    preload,
    report_texts,
    say,
    stored_reports,
    wait_for_count,
    worker,
)
from schemas.settings import Settings
from schemas.topology import HEADER_ATTEMPT, Topology

NAME = "ratelimit"
TPM = 200_000
#: reports published before the SIGTERM measurement
MORE = 3_000


def _waiting(settings: Settings) -> int:
    """Messages ready in the work queue and the delayed-retry queues."""
    conn = amqp_connection(settings)
    try:
        ch = conn.channel()
        topology = Topology.for_settings(settings)
        names = [settings.queue] + [
            topology.retry_queue(i) for i in range(len(topology.retry_delays_s))
        ]
        total = 0
        for name in names:
            try:
                total += int(ch.queue_declare(name, passive=True).method.message_count)
            except Exception:  # a retry queue nobody declared
                ch = conn.channel()
        return total
    finally:
        conn.close()


def _dead(settings: Settings) -> int:
    conn = amqp_connection(settings)
    try:
        topology = Topology.for_settings(settings)
        return int(
            conn.channel().queue_declare(topology.dead_queue, passive=True).method.message_count
        )
    finally:
        conn.close()


def _attempts_of_waiting(settings: Settings) -> tuple[int, int]:
    """(messages in the work queue, of which with an attempt or a delivery count), browsed and
    put back."""
    conn = amqp_connection(settings)
    try:
        ch = conn.channel()
        seen = spent = 0
        tags = []
        while True:
            method, props, _ = ch.basic_get(settings.queue)
            if method is None:
                break
            headers = props.headers or {}
            seen += 1
            spent += bool(headers.get(HEADER_ATTEMPT) or headers.get("x-delivery-count"))
            tags.append(method.delivery_tag)
        for tag in tags:
            ch.basic_nack(tag, requeue=True)
        return seen, spent
    finally:
        conn.close()


def _stop_all(procs: list[Proc]) -> float:
    """SIGTERM every worker at once; seconds until the last one exited."""
    started = time.monotonic()
    for p in procs:
        if p.proc.poll() is None:
            p.proc.send_signal(15)
    for p in procs:
        p.wait(timeout_s=60)  # once: a second signal makes a worker exit at once
    return time.monotonic() - started


def night(n: int, workers: int) -> dict[str, Any]:
    from fakes.openai_server import FakeOpenAI

    label = f"{NAME}-{workers}w"
    with FakeOpenAI(tpm=TPM) as server:
        settings = model_settings(label.replace("-", "_"), server)
        with cleaned(settings):
            preload(settings, report_texts(n, salt=label))
            procs = [worker(f"{label}-{i}", settings) for i in range(workers)]
            try:
                started = max(p.wait_for_log(r"consuming ", timeout_s=600) for p in procs)
                count = stored_reports(procs)
                done = wait_for_count(count, n, timeout_s=1800, procs=procs, poll_s=0.2)
                limits = server.limits
                assert limits is not None
                wall = done - started
                admitted, refused = limits.admitted, limits.refused
                tokens = limits.admitted_tokens
                stored = count()
                say(f"   {label}: {n} stored in {wall:.1f} s, {admitted} calls, {refused} refused")
                # a second set, more than the limit serves at once: the workers are waiting for
                # the limit when SIGTERM comes
                preload(settings, report_texts(MORE, salt=label + "-more"))
                time.sleep(8)
                sigterm_s = _stop_all(procs)
            finally:
                for p in procs:
                    p.stop(timeout_s=5)
            logs = "".join(p.log() for p in procs)
            say(f"   {label}: SIGTERM took {sigterm_s:.1f} s")
            waiting, spent = _attempts_of_waiting(settings)
            return {
                "wall_s": wall,
                "ideal_s": tokens / TPM * 60,
                "burst_ideal_s": max(tokens - TPM, 0) / TPM * 60,
                "admitted": admitted,
                "refused": refused,
                "tokens": tokens,
                "stored": stored,
                "dead": _dead(settings),
                "waiting": _waiting(settings),
                "retries": len(re.findall(r"retrying in \d+ s", logs)),
                "sigterm_s": sigterm_s,
                "handed_back_waiting": waiting,
                "handed_back_spent": spent,
            }


def rows_for(n: int, workers: int, r: dict[str, Any]) -> list[Row]:
    params = f"{n:,} one-sentence reports, {workers} worker(s), {TPM:,} TPM"
    scenario = "9 rate limit"
    per_call = r["refused"] / max(r["admitted"], 1)
    note = (
        f"{r['admitted']} calls admitted, {r['tokens']:,} tokens; burst-aware ideal "
        f"{r['burst_ideal_s']:.0f} s"
    )
    return [
        Row(
            scenario,
            params,
            "wall time",
            r["wall_s"],
            "s",
            r["ideal_s"],
            "ideal: admitted tokens / TPM",
            "<= 1.25x",
            r["wall_s"] <= 1.25 * r["ideal_s"],
            note,
            ratio_unit="x",
        ),
        Row(
            scenario,
            params,
            "429s per admitted call",
            per_call,
            "",
            target="<= 0.1",
            holds=per_call <= 0.1,
            note=f"{r['refused']} refused",
        ),
        Row(
            scenario,
            params,
            "stored / dead / still waiting / broker retries",
            r["stored"],
            "",
            target=f"{n} / 0 / 0 / 0",
            holds=r["stored"] >= n and r["dead"] == 0 and r["retries"] == 0,
            note=f"{r['stored']} / {r['dead']} / {r['waiting'] - r['handed_back_waiting']} / "
            f"{r['retries']}",
        ),
        Row(
            scenario,
            params,
            "SIGTERM while waiting for the limit",
            r["sigterm_s"],
            "s",
            target="<= 10 s, reports back unchanged",
            holds=r["sigterm_s"] <= 10 and r["handed_back_spent"] == 0,
            note=f"{r['handed_back_waiting']} reports back in the queue, "
            f"{r['handed_back_spent']} with an attempt spent",
        ),
    ]


def run(quick: bool) -> list[Row]:
    n = 300 if quick else 2_000
    rows: list[Row] = []
    for workers in (4, 1):
        rows += rows_for(n, workers, night(n, workers))
    return rows
