"""Scenario 6: resident memory of one worker over 100,000 reports: the peak (``VmHWM``) against a
300 MB ceiling, and ``VmRSS`` at 10%, 50% and 100% of the reports to show that it does not grow
after warm-up.

The worker runs the offline rules provider here: with the model provider every batch looks up the
extraction cache, and the MongoDB-compatible server used here (FerretDB v1 on SQLite) answers such
a lookup by reading the whole cache collection, which makes 100,000 reports take hours. The
consumer, batching, pipeline and store code paths are the same."""

from __future__ import annotations

from bench.common import (
    Row,
    bench_settings,
    cleaned,
    preload,
    report_texts,
    say,
    status_value,
    stored_reports,
    wait_for_count,
    worker,
)

NAME = "memory"
LIMIT_MB = 300.0
#: RSS at the end may exceed RSS at 10% of the reports by at most this share
GROWTH_LIMIT = 0.10


def run(quick: bool) -> list[Row]:
    n = 10_000 if quick else 100_000
    texts = report_texts(n, salt=NAME)
    settings = bench_settings(NAME, provider="rules")
    with cleaned(settings):
        say(f"  memory: publishing {n:,} reports")
        preload(settings, texts)
        proc = worker("memory", settings, "--burst")
        count = stored_reports([proc])
        marks = {0.10: 0.0, 0.50: 0.0, 1.00: 0.0}

        def sample(done: int) -> None:
            for share in marks:
                if not marks[share] and done >= share * n:
                    marks[share] = status_value(proc.pid, "VmRSS") / 1024

        try:
            proc.wait_for_log(r"consuming ")
            wait_for_count(count, n, timeout_s=3600, procs=[proc], poll_s=0.2, on_progress=sample)
            peak = status_value(proc.pid, "VmHWM") / 1024
        finally:
            proc.stop()
    at10, at50, at100 = marks[0.10], marks[0.50], marks[1.00]
    say(f"  memory: RSS {at10:.0f} / {at50:.0f} / {at100:.0f} MB, peak {peak:.0f} MB")
    params = f"one worker, {n:,} reports, rules provider"
    rss = f"RSS at 10% / 50% / 100%: {at10:.0f} / {at50:.0f} / {at100:.0f} MB"
    return [
        Row(
            "6 memory",
            params,
            "peak RSS (VmHWM)",
            peak,
            "MB",
            LIMIT_MB,
            "limit",
            "< 300 MB",
            peak < LIMIT_MB,
            note=rss,
        ),
        Row(
            "6 memory",
            params,
            "RSS at 100%",
            at100,
            "MB",
            at10,
            "RSS at 10% (after warm-up)",
            f"≤ {1 + GROWTH_LIMIT:.2f}x (no growth)",
            at100 <= at10 * (1 + GROWTH_LIMIT),
            ratio_unit="x",
            note=rss,
        ),
    ]
