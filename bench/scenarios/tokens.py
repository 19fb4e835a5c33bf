"""Scenario 7: tokens per stored fact and what they cost, from the model server's usage
accounting (``fakes/openai_server.py`` counts characters / 4 and caches a static prefix of 1,024
tokens or more, as OpenAI does).

- prompt and completion tokens per fact for batch sizes 1, 5, 20 and 50 snippets per call;
- at the default batch (20), tokens per fact (prompt, cached, completion) and the estimated
  US$ per 1,000 single-sentence reports at ``gpt-6-luna`` prices, with the cacheable prefix
  (the worked examples: over 1,024 tokens, so every call after the first reads it from the
  prompt cache) and without it (the short prompt of before: under 1,024 tokens, never cached).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.common import Row, fake_model, model_settings, report_texts, say
from worker.llm import MemoryCache, OpenAIExtractor

NAME = "tokens"
SIZES = (1, 5, 20, 50)
MODEL = "gpt-6-luna"


@dataclass(frozen=True)
class Measured:
    prompt: float  # tokens per fact
    cached: float
    completion: float
    calls: int
    facts: int
    cost_usd: float | None  # the whole run


def measure(
    server: Any, items: list[tuple[str, str, None]], size: int, *, examples: bool = True
) -> Measured:
    settings = model_settings(NAME, server, batch_snippets=size, model=MODEL)
    server.prefixes.clear()  # each run starts with a cold prompt cache
    with OpenAIExtractor(settings, cache=MemoryCache(), worked_examples=examples) as engine:
        result = engine.extract_texts(items, concurrency=4)
        totals = engine.ledger.totals()
    facts = sum(len(ext.facts) for ext in result.values())
    return Measured(
        totals.prompt_tokens / facts,
        totals.cached_tokens / facts,
        totals.completion_tokens / facts,
        totals.calls,
        facts,
        totals.cost_usd,
    )


def run(quick: bool) -> list[Row]:
    n = 200 if quick else 1_000
    texts = report_texts(n, salt=NAME)
    items: list[tuple[str, str, None]] = [(f"r{i}", t, None) for i, t in enumerate(texts)]
    with fake_model() as server:
        by_size = {size: measure(server, items, size) for size in SIZES}
        short = measure(server, items, 20, examples=False)
    for size, m in by_size.items():
        say(
            f"  tokens, batch {size}: {m.prompt:.1f} prompt ({m.cached:.1f} cached) + "
            f"{m.completion:.1f} completion per fact, {m.calls} calls"
        )
    return _size_rows(n, by_size) + _cost_rows(n, by_size[20], short)


def _size_rows(n: int, by_size: dict[int, Measured]) -> list[Row]:
    one = by_size[1].prompt + by_size[1].completion
    return [
        Row(
            "7 tokens",
            f"{n:,} single-sentence reports, batch {size} snippet(s)/call"
            + (" (default)" if size == 20 else ""),
            "tokens/fact",
            m.prompt + m.completion,
            "tokens",
            one,
            "batch size 1",
            "-",
            None,
            note=f"{m.prompt:.1f} prompt ({m.cached:.1f} cached) + {m.completion:.1f} "
            f"completion; {m.calls} calls, {m.facts} facts",
        )
        for size, m in by_size.items()
    ]


def _per_1000(m: Measured, n: int) -> float:
    return (m.cost_usd or 0.0) / n * 1_000


def _cost_rows(n: int, cached: Measured, short: Measured) -> list[Row]:
    params = f"{n:,} single-sentence reports, batch 20, {MODEL} prices (per 1M: $0.10 in, "
    params += "$0.01 cached, $0.125 cache write, $0.50 out)"
    say(
        f"  cost per 1,000 reports: ${_per_1000(cached, n):.4f} with the cacheable prefix, "
        f"${_per_1000(short, n):.4f} without"
    )
    return [
        Row(
            "7 tokens",
            params + ", cacheable prefix (worked examples, over 1,024 tokens)",
            "tokens/fact",
            cached.prompt + cached.completion,
            "tokens",
            short.prompt + short.completion,
            "without the prefix (under 1,024 tokens, never cached)",
            "-",
            None,
            ratio_unit="x",
            note=f"{cached.prompt:.1f} prompt of which {cached.cached:.1f} cached + "
            f"{cached.completion:.1f} completion; without: {short.prompt:.1f} prompt, "
            f"{short.cached:.1f} cached, {short.completion:.1f} completion",
        ),
        Row(
            "7 tokens",
            params,
            "US$ per 1,000 reports",
            _per_1000(cached, n),
            "$",
            _per_1000(short, n),
            "without the prefix",
            "-",
            None,
            ratio_unit="x",
            note="with the cacheable prefix; cost estimated from the server's token counts",
        ),
    ]
