"""The extraction cache (model answers by cache key) and the usage ledger (one document per
billed model call), with the cache-hit counter.

Sums are added up here: FerretDB v1 returns 0 for ``{"$sum": "$field"}``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TypedDict

from adapters.mongo.client import Connection, by_ids, increment, insert_new
from adapters.mongo.counts import usage_totals_of
from adapters.mongo.names import CACHE, CACHE_HITS_ID, COUNTERS, USAGE


class CacheDocument(TypedDict):
    """An ``extraction_cache`` document: ``_id`` is the cache key (snippet, model, format and
    prompt), ``entry`` the answer as the extraction engine keeps it."""

    _id: str
    entry: dict[str, Any]


def cache_documents(entries: Mapping[str, dict[str, Any]]) -> list[CacheDocument]:
    return [CacheDocument(_id=k, entry=v) for k, v in entries.items()]


class CacheAndUsage:
    """The ``extraction_cache`` and ``llm_usage`` collections and the cache-hit counter."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def cache_keys(self) -> Iterator[str]:
        """Every key in the extraction cache (one read of ``_id``s only; the worker's filter)."""
        with self.conn.translated("cache key read"):
            for doc in self.conn.db[CACHE].find({}, {"_id": 1}, batch_size=10_000):
                yield str(doc["_id"])

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """Cached model answers by cache key (the extraction engine's cache interface)."""
        if not keys:
            return {}
        with self.conn.translated("cache lookup"):
            stored = by_ids(self.conn.db[CACHE], keys, ["entry"])
            found = {k: d["entry"] for k, d in stored.items()}
            if found:
                increment(self.conn.db[COUNTERS], CACHE_HITS_ID, {"cache_hits": len(found)})
            return found

    def put_many(self, entries: Mapping[str, dict[str, Any]]) -> None:
        """Insert-only: an answer stored first for a key (by another worker) is kept, since a key
        names its snippet, model, format and prompt: either answer serves."""
        docs = cache_documents(entries)
        with self.conn.translated("cache write"):
            insert_new(self.conn.db[CACHE], docs)

    def record_usage(self, usage: Any) -> None:
        """One model call as billed (a dataclass such as ``worker.model.ledger.CallUsage``, whose
        fields are the document's, or a dict), stamped ``at`` when it has no time."""
        is_record = dataclasses.is_dataclass(usage) and not isinstance(usage, type)
        doc = dataclasses.asdict(usage) if is_record else dict(usage)
        doc.setdefault("at", datetime.now(UTC))
        with self.conn.translated("usage write"):
            self.conn.db[USAGE].insert_one(doc)

    def usage_totals(self) -> dict[str, Any]:
        """Model calls, tokens, cache hits and the cost where known (see ``usage_totals_of``)."""
        fields = ("prompt_tokens", "completion_tokens", "cached_tokens", "cost_usd")
        with self.conn.translated("usage query"):
            calls = list(self.conn.db[USAGE].find({}, {f: 1 for f in fields}, batch_size=5000))
            counters = (
                self.conn.db[COUNTERS].find_one({"_id": CACHE_HITS_ID}, {"cache_hits": 1}) or {}
            )
        return usage_totals_of(calls, counters.get("cache_hits"))
