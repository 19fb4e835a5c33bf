"""The model path's entry points, for the CLI and tests; the code is in :mod:`worker.model`."""

from __future__ import annotations

from worker.model.cache import ExtractionCache, MemoryCache, cache_key
from worker.model.engine import OpenAIExtractor, extract_reports
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
