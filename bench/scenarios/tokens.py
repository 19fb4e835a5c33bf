"""Scenario 7: prompt and completion tokens per stored fact, from the model server's usage
accounting, for batch sizes 1, 5, 20 and 50 snippets per call (the default is 20)."""

from __future__ import annotations

from bench.common import Row, fake_model, model_settings, report_texts, say
from worker.llm import MemoryCache, OpenAIExtractor

NAME = "tokens"
SIZES = (1, 5, 20, 50)


def run(quick: bool) -> list[Row]:
    n = 200 if quick else 1_000
    texts = report_texts(n, salt=NAME)
    items = [(f"r{i}", t, None) for i, t in enumerate(texts)]
    measured: dict[int, tuple[float, float, int, int]] = {}
    with fake_model() as server:
        for size in SIZES:
            settings = model_settings(NAME, server, batch_snippets=size)
            with OpenAIExtractor(settings, cache=MemoryCache()) as engine:
                result = engine.extract_texts(items, concurrency=4)
                totals = engine.ledger.totals()
            facts = sum(len(ext.facts) for ext in result.values())
            measured[size] = (
                totals.prompt_tokens / facts,
                totals.completion_tokens / facts,
                totals.calls,
                facts,
            )
            say(
                f"  tokens, batch {size}: {totals.prompt_tokens / facts:.1f} prompt + "
                f"{totals.completion_tokens / facts:.1f} completion per fact, {totals.calls} calls"
            )
    one = sum(measured[1][:2])
    rows = []
    for size in SIZES:
        prompt, completion, calls, facts = measured[size]
        rows.append(
            Row(
                "7 tokens",
                f"{n:,} single-sentence reports, batch {size} snippet(s)/call"
                + (" (default)" if size == 20 else ""),
                "tokens/fact",
                prompt + completion,
                "tokens",
                one,
                "batch size 1",
                "-",
                None,
                note=f"{prompt:.1f} prompt + {completion:.1f} completion; {calls} calls, "
                f"{facts} facts",
            )
        )
    return rows
