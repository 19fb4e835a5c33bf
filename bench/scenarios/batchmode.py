"""Scenario 8: what ``FINPIPE_LLM_MODE`` costs, and batch mode end to end.

- Estimated US$ per 1,000 single-sentence reports at ``gpt-6-luna`` prices in ``sync``, ``flex``
  and ``batch`` modes, from the same token counts: one synchronous run at the default batch
  (20 snippets per call) against the local server (characters / 4, prompt cache as OpenAI's),
  each call priced at the standard tier, the flex tier and the batch tier of the model's profile.
- One nightly run in batch mode against the local server's Batch API, through the real ``openai``
  SDK and real processes: reports in the inbox, ``finpipe schedule --once`` (the batch job
  fills the extraction cache, then the sweep publishes, then the export waits for the queue to
  drain), one ``finpipe worker`` answering from the cache. Counts: batch jobs, synchronous calls
  (0 when every request succeeds), facts stored, wall time of the scheduler process.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import (
    Proc,
    Row,
    cleaned,
    count_facts,
    fake_model,
    model_settings,
    process_env,
    report_texts,
    say,
    worker,
    write_jsonl,
)
from worker.llm import MemoryCache, OpenAIExtractor, estimate_cost_usd
from worker.model.profiles import Tier

NAME = "batchmode"
MODEL = "gpt-6-luna"
TIERS: tuple[Tier, ...] = ("standard", "flex", "batch")
MODES = {"standard": "sync", "flex": "flex", "batch": "batch"}


def costs_per_1000(n: int) -> tuple[dict[str, float], int]:
    """US$ per 1,000 reports for each tier, from one run's calls; and the number of calls."""
    texts = report_texts(n, salt=NAME)
    items: list[tuple[str, str, None]] = [(f"r{i}", t, None) for i, t in enumerate(texts)]
    with fake_model() as server:
        settings = model_settings(NAME, server, model=MODEL)
        cache = MemoryCache()
        with OpenAIExtractor(settings, cache=cache) as engine:
            engine.extract_texts(items, concurrency=4)
            price = engine.price
    if price is None:
        raise RuntimeError(f"no price for {MODEL}")
    out = {}
    for tier in TIERS:
        total = 0.0
        for u in cache.usages:
            cost = estimate_cost_usd(
                price,
                u.prompt_tokens,
                u.completion_tokens,
                u.cached_tokens,
                u.cache_write_tokens,
                tier=tier,
            )
            total += cost or 0.0
        out[tier] = total / n * 1_000
    return out, len(cache.usages)


def end_to_end(n: int) -> dict[str, float]:
    """The nightly run in batch mode (see the module's docstring)."""
    texts = report_texts(n, salt=NAME + "-e2e")
    with fake_model() as server, tempfile.TemporaryDirectory(prefix="finpipe-bench-") as tmp:
        inbox = Path(tmp) / "inbox"
        inbox.mkdir()
        write_jsonl(inbox / "reports.jsonl", texts)
        settings = model_settings(
            NAME,
            server,
            model=MODEL,
            llm_mode="batch",
            batch_poll_s=0.2,
            inbox=inbox,
            export_dir=Path(tmp) / "exports",
            export_cron="0 0 1 1 *",
            export_wait_s=600.0,
        )
        with cleaned(settings):
            consumer = worker(f"{NAME}-worker", settings)
            try:
                consumer.wait_for_log(r"consuming ")
                started = time.monotonic()
                nightly = Proc(f"{NAME}-schedule", ["schedule", "--once"], process_env(settings))
                code = nightly.wait(timeout_s=1800)
                wall_s = time.monotonic() - started
                if code != 0:
                    raise RuntimeError(f"finpipe schedule --once exited {code}: {nightly.tail()}")
            finally:
                consumer.stop()
            facts = count_facts(settings)
        return {
            "wall_s": wall_s,
            "jobs": len(server.batches.created),
            "lines": server.batch_lines,
            "sync_calls": server.calls,
            "facts": facts,
        }


def run(quick: bool) -> list[Row]:
    n = 200 if quick else 1_000
    per_1000, calls = costs_per_1000(n)
    say(
        "  US$ per 1,000 reports: "
        + ", ".join(f"{MODES[t]} ${per_1000[t]:.4f}" for t in TIERS)
        + f" ({calls} calls)"
    )
    e2e = end_to_end(n)
    say(
        f"  batch mode end to end: {e2e['jobs']:.0f} batch job(s), {e2e['lines']:.0f} request "
        f"lines, {e2e['sync_calls']:.0f} synchronous calls, {e2e['facts']:.0f} facts, "
        f"{e2e['wall_s']:.1f} s"
    )
    params = f"{n:,} single-sentence reports, batch 20, {MODEL} prices, same token counts"
    rows = [
        Row(
            "8 llm mode",
            f"{params}, FINPIPE_LLM_MODE={MODES[tier]}",
            "US$ per 1,000 reports",
            per_1000[tier],
            "$",
            per_1000["standard"],
            "sync",
            "batch ≤ 50% of sync" if tier == "batch" else "-",
            per_1000[tier] <= 0.5 * per_1000["standard"] + 1e-12 if tier == "batch" else None,
            note=f"{calls} calls priced at the {tier} tier",
        )
        for tier in TIERS
    ]
    rows.append(
        Row(
            "8 llm mode",
            f"{n:,} reports in the inbox, FINPIPE_LLM_MODE=batch, local Batch API (one status step "
            "per poll, polled every 0.2 s), 1 worker: schedule --once (batch, sweep, export)",
            "wall time",
            e2e["wall_s"],
            "s",
            None,
            "",
            "0 synchronous calls, every report stored",
            e2e["sync_calls"] == 0 and e2e["facts"] == n,
            note=f"{e2e['jobs']:.0f} batch job(s) of {e2e['lines']:.0f} request lines, "
            f"{e2e['sync_calls']:.0f} synchronous calls, {e2e['facts']:.0f} facts stored",
        )
    )
    return rows
