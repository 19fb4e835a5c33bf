"""Reports in, snippets out, and back: what the engine asks about and how answers become a
report's facts. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from worker.extract import FoundFact, ReportExtraction
from worker.model.grounding import SnippetOutcome, SnippetRequest
from worker.model.prompt import PROMPT_VERSION
from worker.model.reask import EXTRACTOR_OPENAI
from worker.snippets import Snippet, has_amount, split_snippets

#: characters of report text before a snippet passed along as context (company named earlier)
CONTEXT_CHARS = 1500


def requests_of(
    items: Sequence[tuple[str, str, str | None]],
) -> tuple[dict[str, ReportExtraction], list[SnippetRequest], dict[str, tuple[str, Snippet]]]:
    """Each item's snippets with an amount as requests; the others are only counted."""
    out: dict[str, ReportExtraction] = {}
    requests: list[SnippetRequest] = []
    where: dict[str, tuple[str, Snippet]] = {}
    for item_id, text, hint in items:
        if item_id in out:
            continue
        snippets = split_snippets(text)
        ext = out[item_id] = ReportExtraction(snippets=len(snippets))
        for s in snippets:
            if not has_amount(s):
                ext.snippets_without_amount += 1
                continue
            rid = f"{item_id}:{s.index}"
            context = text[max(0, s.start - CONTEXT_CHARS) : s.start]
            requests.append(SnippetRequest(rid, s.text, hint, context))
            where[rid] = (item_id, s)
    return out, requests, where


def add_outcome(
    ext: ReportExtraction, snippet: Snippet, outcome: SnippetOutcome, model: str
) -> None:
    """A snippet's facts and rejections into its report's extraction."""
    for ef in outcome.facts:
        by_model = ef.extractor == EXTRACTOR_OPENAI
        ext.facts.append(
            FoundFact(
                snippet,
                ef.fact,
                ef.extractor,
                model=model if by_model else None,
                prompt_version=PROMPT_VERSION if by_model else None,
            )
        )
    ext.rejected.extend(
        f"snippet {snippet.index}: {r.candidate.get('value_text')!r}: {r.reason}"
        for r in outcome.rejected
    )
