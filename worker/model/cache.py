"""Answers kept between runs: the protocol the engine needs, and an in-memory implementation."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from pydantic import ValidationError

from worker.model.ledger import CallUsage
from worker.model.prompt import PROMPT_VERSION
from worker.model.reask import EXTRACTOR_FALLBACK, EXTRACTOR_OPENAI, Final
from worker.model.schema import ANSWER_SCHEMA_VERSION, LLMFact


class ExtractionCache(Protocol):
    """Where answers are kept between runs (MongoDB in the worker, memory for ``finpipe extract``).

    Entries are JSON-able dicts: ``{"status": "openai", "facts": [<LLMFact>...]}`` for a snippet the
    model answered (only its grounded facts), or ``{"status": "rules-fallback", "reason": ...}``.
    ``record_usage`` keeps one billed call (the usage ledger).
    """

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]: ...

    def put_many(self, entries: dict[str, dict[str, Any]]) -> None: ...

    def record_usage(self, usage: CallUsage) -> None: ...


class MemoryCache:
    """An :class:`ExtractionCache` in memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: dict[str, dict[str, Any]] = {}
        self.usages: list[CallUsage] = []

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: self.entries[k] for k in keys if k in self.entries}

    def put_many(self, entries: dict[str, dict[str, Any]]) -> None:
        with self._lock:
            self.entries.update(entries)

    def record_usage(self, usage: CallUsage) -> None:
        with self._lock:
            self.usages.append(usage)


def cache_key(text: str, model: str, mode: str = "json_schema") -> str:
    """sha256 of (snippet text, model, output format, prompt version, answer schema version)."""
    ident = json.dumps(
        [text, model, mode, PROMPT_VERSION, ANSWER_SCHEMA_VERSION], ensure_ascii=False
    )
    return hashlib.sha256(ident.encode("utf-8")).hexdigest()


def final_from_entry(entry: Mapping[str, Any]) -> Final:
    if entry.get("status") == EXTRACTOR_OPENAI:
        facts = []
        for raw in entry.get("facts", []):
            try:
                facts.append(LLMFact.model_validate(raw))
            except ValidationError:
                continue
        return Final(EXTRACTOR_OPENAI, facts)
    return Final(EXTRACTOR_FALLBACK, reason=str(entry.get("reason") or "cached fallback"))


def entry_from_final(final: Final) -> dict[str, Any]:
    if final.status == EXTRACTOR_OPENAI:
        return {
            "status": EXTRACTOR_OPENAI,
            "facts": [f.model_dump() for f in final.facts],
            "response_format": final.mode,
        }
    return {"status": EXTRACTOR_FALLBACK, "reason": final.reason, "response_format": final.mode}
