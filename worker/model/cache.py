"""Answers kept between runs: the protocol the engine needs, an in-memory implementation, and the
worker's filter in front of the stored one (reads only keys known to be stored)."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Protocol

from pydantic import ValidationError

from worker.model.ledger import CallUsage
from worker.model.membership import KeySet
from worker.model.prompt import PROMPT_VERSION
from worker.model.reask import EXTRACTOR_FALLBACK, EXTRACTOR_OPENAI, Final
from worker.model.schema import ANSWER_SCHEMA_VERSION, LLMFact

log = logging.getLogger(__name__)


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


class StoredCache(ExtractionCache, Protocol):
    """A cache that can list its keys (``adapters.mongo.MongoStore``)."""

    def cache_keys(self) -> Iterable[str]: ...


class FilteredCache:
    """An :class:`ExtractionCache` in front of a stored one that reads only keys it knows are
    there: the worker's, so that a batch of new snippets costs no read of the store.

    The keys are loaded once (one keys-only read, :meth:`load`) and kept current with what this
    process writes. A key another worker wrote since is a miss: the snippet is asked again (one
    more model call) and the store keeps its first answer; never a wrong answer. The keys the
    nightly batch step wrote are read for the reports it marked (``also``), so its answers are
    never paid for twice.
    """

    def __init__(self, store: StoredCache) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._known: KeySet | None = None

    def load(self) -> KeySet:
        """Read the stored keys (once; later calls return them)."""
        with self._lock:
            if self._known is None:
                started = time.monotonic()
                self._known = KeySet(self._store.cache_keys())
                log.info(
                    "extraction cache: %d key(s) known, %.1f MB, read in %.1f s",
                    len(self._known),
                    self._known.nbytes / 1e6,
                    time.monotonic() - started,
                )
            return self._known

    def likely(self, keys: Iterable[str]) -> list[str]:
        """The ``keys`` the store is known to hold."""
        known = self.load()
        with self._lock:
            return [k for k in keys if k in known]

    def get_many(self, keys: list[str], *, also: Collection[str] = ()) -> dict[str, dict[str, Any]]:
        """The stored answers of the ``keys`` known to be there, and of the keys in ``also``
        (written by another process since the load: the nightly batch step's, for the reports
        it marked), which are known from then on when found."""
        likely = self.likely(keys)
        seen = set(likely)
        fresh = [k for k in dict.fromkeys(also) if k not in seen]
        found = self._store.get_many(likely + fresh) if likely or fresh else {}
        if fresh:
            known = self.load()
            with self._lock:
                known.update(k for k in fresh if k in found)
        return found

    def put_many(self, entries: dict[str, dict[str, Any]]) -> None:
        known = self.load()
        self._store.put_many(entries)
        with self._lock:
            known.update(entries)

    def record_usage(self, usage: CallUsage) -> None:
        self._store.record_usage(usage)


#: cache keys per read (one query each)
LOOKUP_CHUNK = 1_000


def lookup(
    cache: ExtractionCache, keys: list[str], elsewhere: Sequence[Sequence[str]] = ()
) -> dict[str, dict[str, Any]]:
    """The answers ``cache`` holds for ``keys``, :data:`LOOKUP_CHUNK` keys a read. Through the
    worker's :class:`FilteredCache`, the keys of each snippet in ``elsewhere`` are read even when
    the filter does not know them (the batch step wrote them after the worker started): the first
    output format's first, the others only when it is not there."""
    if not elsewhere or not isinstance(cache, FilteredCache):
        return in_chunks(cache.get_many, keys)
    filtered = cache
    firsts = {ks[0] for ks in elsewhere}
    hits = in_chunks(lambda ks: filtered.get_many(ks, also=[k for k in ks if k in firsts]), keys)
    rest = [k for ks in elsewhere if not any(k in hits for k in ks) for k in ks[1:]]
    if rest:
        hits.update(in_chunks(lambda ks: filtered.get_many(ks, also=ks), rest))
    return hits


def in_chunks(
    get: Callable[[list[str]], dict[str, dict[str, Any]]], keys: list[str]
) -> dict[str, dict[str, Any]]:
    """``get`` for ``keys``, :data:`LOOKUP_CHUNK` at a time."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(keys), LOOKUP_CHUNK):
        found.update(get(keys[start : start + LOOKUP_CHUNK]))
    return found


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
