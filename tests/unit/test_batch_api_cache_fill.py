"""What batch mode is for, end to end with today's engine: answers of a batch job fill the
extraction cache, and the engine then extracts the same reports with no synchronous call.

The sink here (``fill_cache``) is the reference for the wiring: the same snippets and packing as
``OpenAIExtractor.extract_texts``, the same body as its first call, and for each answered snippet
the grounded facts written under the engine's cache key. A snippet whose answer does not ground
is left out of the cache, so the engine asks about it synchronously (with its re-ask).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import openai
import pytest

from fakes.batches import FakeBatches, FakeBatchesServer
from fakes.openai_server import FakeOpenAI
from fakes.script import echo_answer
from schemas.settings import Settings
from worker.batch_api.delivery import PartResult
from worker.batch_api.jobstore import MemoryJobStore
from worker.batch_api.requests import build_requests
from worker.batch_api.runner import BatchRunner
from worker.llm import (
    CONTEXT_CHARS,
    EXTRACTOR_OPENAI,
    MemoryCache,
    OpenAIExtractor,
    SnippetRequest,
    cache_key,
    ground_all,
)
from worker.model.formats import VARIANTS
from worker.model.formats import response_format as format_of
from worker.model.prompt import build_messages
from worker.model.schema import parse_answer
from worker.packing import pack
from worker.snippets import has_amount, split_snippets

REPORTS = [
    ("r1", "Company ABC reported a net income of $5.3 million for Q1 2024. Staff grew.", None),
    ("r2", "Company DEF reported revenue of $48.1 million for Q2 2024.", None),
    ("r3", "Company GHI reported a net loss of $1.2 million for Q3 2024. Outlook is fine.", None),
]


def snippet_requests(items: Sequence[tuple[str, str, str | None]]) -> list[SnippetRequest]:
    """The snippets ``extract_texts`` would ask about."""
    out = []
    for item_id, text, hint in items:
        for s in split_snippets(text):
            if has_amount(s):
                context = text[max(0, s.start - CONTEXT_CHARS) : s.start]
                out.append(SnippetRequest(f"{item_id}:{s.index}", s.text, hint, context))
    return out


def body_for(settings: Settings, group: Sequence[SnippetRequest]) -> dict[str, Any]:
    """The body of the engine's first call for ``group``."""
    return {
        "model": settings.model,
        "temperature": 0,
        "response_format": format_of(VARIANTS[0]),
        "messages": build_messages([(f"s{i}", r.text) for i, r in enumerate(group, 1)]),
    }


def fill_cache(
    result: PartResult,
    groups: dict[str, list[Sequence[SnippetRequest]]],
    model: str,
    cache: MemoryCache,
) -> None:
    entries = {}
    for custom_id, completion in result.answers.items():
        choice = completion["choices"][0]
        if choice.get("finish_reason") != "stop" or choice["message"].get("refusal"):
            continue
        for group in groups.get(custom_id, []):
            sids = [f"s{i}" for i in range(1, len(group) + 1)]
            parsed = parse_answer(choice["message"]["content"], sids)
            for sid, request in zip(sids, group, strict=True):
                if sid not in parsed.facts:
                    continue
                kept, rejected = ground_all(request, parsed.facts[sid])
                if not rejected:
                    entries[cache_key(request.text, model)] = {
                        "status": EXTRACTOR_OPENAI,
                        "facts": [c.model_dump() for _, c in kept],
                    }
    cache.put_many(entries)


@pytest.fixture
def sync_server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def test_a_batch_job_fills_the_cache_and_the_engine_makes_no_call(
    sync_server: FakeOpenAI,
) -> None:
    settings = Settings(
        openai_api_key="test",
        openai_base_url=sync_server.base_url,
        provider="openai",
        batch_snippets=2,
    )
    snippets = snippet_requests(REPORTS)
    groups = pack(
        snippets, max_items=settings.batch_snippets, max_chars=settings.batch_chars, size=_len
    )
    planned = build_requests(groups, lambda g: body_for(settings, g))
    cache = MemoryCache()

    fake = FakeBatches(echo_answer, advance_on_retrieve=True)
    with FakeBatchesServer(fake) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
        runner = BatchRunner(
            client,
            MemoryJobStore(),
            lambda result: fill_cache(result, planned.groups, settings.model, cache),
            now=time.time,
        )
        report = runner.run(planned.requests, sleep=lambda _: None, poll_s=0)
        client.close()
    assert report.todo == [] and len(cache.entries) == len(snippets)

    with OpenAIExtractor(settings, cache=cache) as engine:
        from_cache = engine.extract_texts(REPORTS)
    assert sync_server.calls == 0
    with OpenAIExtractor(settings, cache=MemoryCache()) as engine:
        synchronous = engine.extract_texts(REPORTS)
    assert sync_server.calls > 0
    for item_id, _, _ in REPORTS:
        assert from_cache[item_id].facts
        assert [f.fact for f in from_cache[item_id].facts] == [
            f.fact for f in synchronous[item_id].facts
        ]
        assert all(f.extractor == EXTRACTOR_OPENAI for f in from_cache[item_id].facts)


def _len(request: SnippetRequest) -> int:
    return len(request.text)
