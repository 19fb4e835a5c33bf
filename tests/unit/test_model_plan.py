"""The plan of the calls for a set of snippets (cache lookup, one ask per text, packing), shared by
the synchronous path and the Batch API path. Pure: keys and cache entries are made here."""

from __future__ import annotations

import pytest

from worker.model.grounding import SnippetRequest
from worker.model.plan import plan_calls

ENTRY = {"status": "openai", "facts": []}


def requests(*texts: str) -> list[SnippetRequest]:
    return [SnippetRequest(f"r{i}", text) for i, text in enumerate(texts)]


def keys_of(reqs: list[SnippetRequest]) -> dict[str, list[str]]:
    """Two output formats: ``json_schema`` first."""
    return {r.id: [f"{r.text}|json_schema", f"{r.text}|prompt"] for r in reqs}


def texts(calls: list[list[SnippetRequest]]) -> list[list[str]]:
    return [[r.text for r in call] for call in calls]


@pytest.mark.parametrize(
    ("snippets", "cached", "max_items", "max_chars", "calls"),
    [
        (["a", "b", "c"], [], 2, 100, [["a", "b"], ["c"]]),
        # a cached snippet takes no place in a call
        (["a", "b", "c"], ["a|json_schema"], 2, 100, [["b", "c"]]),
        # an answer in another output format is as good
        (["a", "b", "c"], ["b|prompt"], 2, 100, [["a", "c"]]),
        # a text asked once, wherever it repeats
        (["a", "b", "a", "c", "a"], [], 2, 100, [["a", "b"], ["c"]]),
        # characters bound a call too; a text longer than the bound goes alone
        (["aaa", "bbb", "cccccc", "d"], [], 10, 6, [["aaa", "bbb"], ["cccccc"], ["d"]]),
        (["a", "b"], ["a|json_schema", "b|prompt"], 2, 100, []),
    ],
)
def test_the_calls_hold_the_uncached_texts_once_packed_in_order(
    snippets: list[str],
    cached: list[str],
    max_items: int,
    max_chars: int,
    calls: list[list[str]],
) -> None:
    reqs = requests(*snippets)
    plan = plan_calls(
        reqs, keys_of(reqs), dict.fromkeys(cached, ENTRY), max_items=max_items, max_chars=max_chars
    )
    assert texts(plan.calls) == calls
    assert plan.snippets == len(snippets)
    assert plan.cached == sum(
        1 for s in snippets if f"{s}|json_schema" in cached or f"{s}|prompt" in cached
    )


def test_every_request_is_either_cached_or_settled_by_one_leader() -> None:
    reqs = requests("a", "b", "a", "c", "b")
    plan = plan_calls(reqs, keys_of(reqs), {"c|prompt": ENTRY}, max_items=20, max_chars=1000)
    assert plan.hits == {"r3": ENTRY}
    assert {leader: [r.id for r in same] for leader, same in plan.same.items()} == {
        "r0": ["r0", "r2"],
        "r1": ["r1", "r4"],
    }
    assert [[r.id for r in call] for call in plan.calls] == [["r0", "r1"]]
