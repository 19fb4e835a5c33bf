"""Which extractor a worker uses: the OpenAI-compatible model (its answers cached in the store,
the offline rules as its fallback) or the offline rules alone, as the settings ask, announced
loudly in the log."""

from __future__ import annotations

import logging
from typing import Any

from schemas.settings import Settings, redact_url

log = logging.getLogger(__name__)


def build_extractor(settings: Settings, store: Any = None) -> Any:
    """The extraction provider the settings ask for. With the model, answers are cached in
    ``store``, behind a filter of its keys read once here: a snippet not seen before costs no
    read of the store. The model path is imported only when it is used."""
    if settings.effective_provider == "openai":
        from worker.llm import OpenAIExtractor
        from worker.model.cache import FilteredCache

        log.warning(
            "EXTRACTOR: OpenAI-compatible model %s at %s (offline rules as fallback)",
            settings.model,
            redact_url(settings.openai_base_url or "https://api.openai.com/v1"),
        )
        cache = None
        if store is not None:
            cache = FilteredCache(store)
            cache.load()
        return OpenAIExtractor(settings, cache=cache)
    from worker.extract import RulesExtractor

    log.warning("EXTRACTOR: offline rules (no OPENAI_API_KEY set, or FINPIPE_PROVIDER=rules)")
    return RulesExtractor(min_confidence=settings.min_confidence)
