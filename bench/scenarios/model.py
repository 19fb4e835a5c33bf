"""Scenarios 3 and 4: a realistic model (each answer after 400 ms + 10 ms per snippet).

3. 2,000 single-sentence reports with the default settings, against finpipe configured as the
   naive design (``FINPIPE_BATCH_SNIPPETS=1``, ``FINPIPE_LLM_CONCURRENCY=1``: one report per call,
   one call at a time). At 0.41 s a report the naive run over 2,000 reports would take 14 minutes,
   so the baseline is measured on a smaller sample of other reports, in the same run.
4. The same 2,000 reports published again: every snippet is in the extraction cache, so no call.

With one snippet per report, the arithmetic ceiling of the default design is ``concurrency x
batch / (400 ms + 10 ms x batch)`` reports per second (4 x 20 / 0.6 s = 133 reports/s) and that of
the naive one 1 / 0.41 s = 2.44 reports/s: the best ratio possible is 54.7x, so the 50x target
needs 91% of the ceiling. Both ceilings are printed beside the measured rates.
"""

from __future__ import annotations

from typing import Any

from bench.common import (
    Row,
    clean,
    fake_model,
    model_settings,
    preload,
    report_texts,
    say,
    stored_reports,
    wait_for_count,
    worker,
)
from schemas.settings import Settings

NAME = "model"
BASE_MS = 400.0
PER_SNIPPET_MS = 10.0


def drain(settings: Settings, texts: list[str], label: str, server: Any) -> tuple[float, int]:
    """(reports per second, model calls) for one worker draining ``texts`` from the queue."""
    preload(settings, texts)
    calls_before = server.calls
    proc = worker(label, settings, "--burst")
    try:
        started = proc.wait_for_log(r"consuming ")
        count = stored_reports([proc])
        done = wait_for_count(count, len(texts), timeout_s=1800, procs=[proc], poll_s=0.05)
    finally:
        proc.stop()
    return len(texts) / (done - started), server.calls - calls_before


def ceiling_reports_s(batch: int, in_flight: int) -> float:
    """Reports per second at best: ``in_flight`` calls of ``batch`` one-snippet reports each."""
    return in_flight * batch / ((BASE_MS + PER_SNIPPET_MS * batch) / 1000)


def run(quick: bool, *, rerun_only: bool = False) -> list[Row]:
    n = 400 if quick else 2_000
    sample = 30 if quick else 100
    rows: list[Row] = []
    with fake_model(BASE_MS, PER_SNIPPET_MS) as server:
        settings = model_settings(NAME, server)
        naive = model_settings(f"{NAME}_naive", server, batch_snippets=1, llm_concurrency=1)
        texts = report_texts(n, salt=NAME)
        clean(settings)
        clean(naive)
        try:
            rate, calls = drain(settings, texts, "model-default", server)
            say(f"  realistic model, defaults: {rate:,.1f} reports/s, {calls} calls")
            if not rerun_only:
                base_rate, base_calls = drain(
                    naive, report_texts(sample, salt="naive"), "model-naive", server
                )
                say(f"  realistic model, naive: {base_rate:,.2f} reports/s, {base_calls} calls")
                params = (
                    f"{n:,} single-sentence reports, model 400 ms + 10 ms/snippet, defaults "
                    "(batch 20 snippets, 4 calls in flight)"
                )
                naive_label = (
                    f"naive: 1 report per call, 1 call at a time ({sample} reports, a sample)"
                )
                ceiling = ceiling_reports_s(settings.batch_snippets, settings.llm_concurrency)
                naive_ceiling = ceiling_reports_s(1, 1)
                say(
                    f"  arithmetic ceilings: {ceiling:,.1f} reports/s (defaults), "
                    f"{naive_ceiling:,.2f} (naive): {ceiling / naive_ceiling:.1f}x at best"
                )
                rows += [
                    Row(
                        "3 realistic model",
                        params,
                        "reports/s",
                        rate,
                        "reports/s",
                        base_rate,
                        naive_label,
                        "≥ 50x baseline",
                        rate / base_rate >= 50,
                        ratio_unit="x",
                    ),
                    Row(
                        "3 realistic model",
                        params,
                        "reports/s",
                        rate,
                        "reports/s",
                        ceiling,
                        f"arithmetic ceiling: {settings.llm_concurrency} calls in flight of "
                        f"{settings.batch_snippets} snippets at 400 ms + 10 ms/snippet",
                        "-",
                        None,
                        note=(
                            f"naive measured at {base_rate / naive_ceiling:.0%} of its own "
                            f"ceiling ({naive_ceiling:.2f}/s); best possible ratio "
                            f"{ceiling / naive_ceiling:.1f}x"
                        ),
                    ),
                    Row(
                        "3 realistic model",
                        params,
                        "model calls/report",
                        calls / n,
                        "calls/report",
                        base_calls / sample,
                        naive_label,
                        "≤ 0.05",
                        calls / n <= 0.05,
                        note=f"{calls} calls for {n:,} reports",
                    ),
                ]
            again, again_calls = drain(settings, texts, "model-rerun", server)
            say(f"  realistic model, re-run: {again:,.1f} reports/s, {again_calls} calls")
        finally:
            clean(settings)
            clean(naive)
    params = f"the same {n:,} reports published again"
    rows += [
        Row(
            "4 re-run",
            params,
            "model calls",
            again_calls,
            "calls",
            calls,
            "first run's calls",
            "= 0",
            again_calls == 0,
            ratio=0.0 if calls else None,
        ),
        Row(
            "4 re-run",
            params,
            "reports/s",
            again,
            "reports/s",
            rate,
            "first run (scenario 3)",
            "-",
            None,
            ratio_unit="x",
        ),
    ]
    return rows
