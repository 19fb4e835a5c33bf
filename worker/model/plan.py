"""Which calls answer a set of snippet requests: the one plan that the synchronous path and the
Batch API path both follow. Pure.

A request whose answer the cache holds under any of its keys (one key per output format the run
may use) makes no call. The others are asked once per distinct text: the first request with a
text leads, the later ones take its answer. The leaders are packed in order into calls of at most
``max_items`` snippets and ``max_chars`` characters (:func:`worker.packing.pack`).

The synchronous path (:meth:`~worker.model.engine.OpenAIExtractor.extract_batch`) makes each call;
the Batch API path sends the body of each call as one request line
(:meth:`~worker.model.engine.OpenAIExtractor.first_body`), so a batch answer is the answer to a
call the synchronous path would have made, and lands under the same cache keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from worker.model.grounding import SnippetRequest
from worker.packing import pack


@dataclass(frozen=True, slots=True)
class CallPlan:
    """The cached answers of a set of requests and the calls for the rest."""

    #: request id -> the cache entry that answers it
    hits: dict[str, dict[str, Any]]
    #: the leaders asked in each call, in order
    calls: list[list[SnippetRequest]]
    #: leader id -> every request its answer settles (the leader first)
    same: dict[str, list[SnippetRequest]]
    #: how many requests were planned
    snippets: int

    @property
    def cached(self) -> int:
        return len(self.hits)


def plan_calls(
    requests: Sequence[SnippetRequest],
    keys: Mapping[str, Sequence[str]],
    found: Mapping[str, dict[str, Any]],
    *,
    max_items: int,
    max_chars: int,
) -> CallPlan:
    """The plan for ``requests``, given each one's cache keys (by request id; the first output
    format's first) and the cache entries ``found`` under those keys."""
    hits: dict[str, dict[str, Any]] = {}
    by_text: dict[str, list[SnippetRequest]] = {}  # by the first key: text, model and prompt
    for r in requests:
        hit = next((found[k] for k in keys[r.id] if k in found), None)
        if hit is not None:
            hits[r.id] = hit
        else:
            by_text.setdefault(keys[r.id][0], []).append(r)
    leaders = [group[0] for group in by_text.values()]
    calls = pack(leaders, max_items=max_items, max_chars=max_chars, size=lambda r: len(r.text))
    return CallPlan(hits, calls, {g[0].id: g for g in by_text.values()}, len(requests))
