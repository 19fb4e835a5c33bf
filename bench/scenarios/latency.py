"""Scenario 5: latency of one report posted to ``/submit`` on an idle system until its facts are
stored, with the instant model and the default batch wait. The same-run baseline is the same
measurement with ``FINPIPE_BATCH_WAIT_MS=0`` (no batching delay at all)."""

from __future__ import annotations

import http.client
import json
import statistics
import time

from bench.common import (
    Proc,
    Row,
    cleaned,
    fake_model,
    free_port,
    model_settings,
    mongo,
    process_env,
    report_texts,
    say,
    worker,
)
from fakes.soak import wait_listening
from schemas.settings import Settings

NAME = "latency"
WARM_UP = 5


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def wait_http(port: int, api: Proc, timeout_s: float = 60.0) -> None:
    """Until ``GET /healthz`` answers at all (the server listens)."""
    try:
        wait_listening(port, timeout_s, gone=lambda: api.proc.poll() is not None)
    except OSError:
        raise RuntimeError(f"finpipe serve did not answer: {api.tail()}") from None


def measure(settings: Settings, texts: list[str], label: str) -> list[float]:
    """Seconds from each POST until the report is marked done (after its facts were written)."""
    port = free_port()
    with cleaned(settings), mongo(settings) as client:
        reports = client[settings.mongo_db]["reports"]
        proc = worker(f"{label}-worker", settings)
        api = Proc(f"{label}-serve", ["serve", "--port", str(port)], process_env(settings))
        try:
            proc.wait_for_log(r"consuming ")
            wait_http(port, api)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            out = []
            for i, text in enumerate(texts):
                body = json.dumps({"raw_text": text})
                started = time.perf_counter()
                conn.request("POST", "/submit", body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                answer = json.loads(resp.read())
                if resp.status != 202:
                    raise RuntimeError(f"/submit answered {resp.status}: {answer}")
                report_id = (
                    answer[0]["report_id"] if isinstance(answer, list) else answer["report_id"]
                )
                # one key, ``_id``: the filter the MongoDB-compatible server pushes down
                while (reports.find_one({"_id": report_id}, {"status": 1}) or {}).get(
                    "status"
                ) != "done":
                    if time.perf_counter() - started > 60:
                        raise TimeoutError(f"report {report_id[:12]} not stored after 60 s")
                    time.sleep(0.002)
                if i >= WARM_UP:
                    out.append(time.perf_counter() - started)
            conn.close()
            return out
        finally:
            api.stop()
            proc.stop()


def run(quick: bool) -> list[Row]:
    n = 40 if quick else 200
    with fake_model() as server:
        settings = model_settings(NAME, server)
        default = measure(settings, report_texts(n + WARM_UP, salt=NAME), "latency")
        floor = measure(
            settings.model_copy(update={"batch_wait_ms": 0}),
            report_texts(n + WARM_UP, salt="latency0"),
            "latency-nowait",
        )
    p50, p99 = statistics.median(default), percentile(default, 0.99)
    f50, f99 = statistics.median(floor), percentile(floor, 0.99)
    say(f"  latency p50 {p50:.3f} s p99 {p99:.3f} s; without batch wait p50 {f50:.3f} s")
    params = (
        f"{n} posts one at a time, idle system, instant model, "
        f"default batch wait {settings.batch_wait_ms} ms"
    )
    ref = "same with FINPIPE_BATCH_WAIT_MS=0"
    return [
        Row(
            "5 latency",
            params,
            "p50 post→stored",
            p50,
            "s",
            f50,
            ref,
            "≤ 1 s",
            p50 <= 1.0,
            ratio_unit="x",
        ),
        Row("5 latency", params, "p99 post→stored", p99, "s", f99, ref, "-", None, ratio_unit="x"),
    ]
