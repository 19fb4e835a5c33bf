"""The model path's entry points, for the CLI and tests; the code is in :mod:`worker.model`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from schemas.settings import Settings
from worker.batch_api.nightly import prefill_in_memory
from worker.extract import FoundFact
from worker.model.cache import ExtractionCache, MemoryCache, cache_key
from worker.model.engine import OpenAIExtractor
from worker.model.grounding import (
    ExtractedFact,
    Rejection,
    SnippetOutcome,
    SnippetRequest,
    ground,
    ground_all,
)
from worker.model.ledger import CallUsage, CostLedger, Usage
from worker.model.profiles import ModelProfile, Price, ProfileTable, estimate_cost_usd, load_table
from worker.model.reask import EXTRACTOR_FALLBACK, EXTRACTOR_OPENAI
from worker.model.reports import CONTEXT_CHARS
from worker.model.tiers import LLMMode

__all__ = [
    "CONTEXT_CHARS",
    "EXTRACTOR_FALLBACK",
    "EXTRACTOR_OPENAI",
    "CallUsage",
    "CostLedger",
    "ExtractedFact",
    "ExtractionCache",
    "MemoryCache",
    "ModelProfile",
    "OpenAIExtractor",
    "Price",
    "ProfileTable",
    "Rejection",
    "SnippetOutcome",
    "SnippetRequest",
    "Usage",
    "cache_key",
    "estimate_cost_usd",
    "extract_reports",
    "ground",
    "ground_all",
    "load_table",
]


log = logging.getLogger(__name__)


def extract_reports(
    settings: Settings,
    texts: Sequence[tuple[str, str, str | None]],
    *,
    cache: ExtractionCache | None = None,
    progress: Callable[[list[Any]], None] | None = None,
) -> dict[str, list[FoundFact]]:
    """Facts per id for ``(id, text, company_hint)`` items through the OpenAI provider, with the
    same batching and checks as the worker and an in-memory cache (``finpipe extract``). In
    batch mode the snippets go in a Batch API job first (kept in memory; ``progress`` sees it
    after each status check), and the engine then answers from the cache."""
    with OpenAIExtractor(settings, cache=cache) as engine:
        if engine.mode is LLMMode.BATCH:
            prefill_in_memory(engine, texts, poll_s=settings.batch_poll_s, progress=progress)
        result = engine.extract_texts(texts, concurrency=settings.llm_concurrency)
        totals = engine.ledger.totals()
    log.info(
        "openai extraction: %d call(s), %d prompt + %d completion tokens, %d cache hit(s), "
        "estimated cost %s",
        totals.calls,
        totals.prompt_tokens,
        totals.completion_tokens,
        totals.cache_hits,
        "unknown" if totals.cost_usd is None else f"${totals.cost_usd:.4f}",
    )
    return {item_id: ext.facts for item_id, ext in result.items()}
