"""The OpenAI extraction engine: many snippets per chat completion, checked before anything is kept.

For each batch of snippets:

1. the extraction cache is consulted; a snippet seen before (same text, model, prompt version and
   answer schema version) makes no call;
2. the rest go in one call with a strict JSON schema; the answer is read per snippet;
3. every proposed fact is grounded (:mod:`worker.model.grounding`); failures are counted, never
   stored;
4. snippets whose answer failed validation are asked again once, together, with the errors;
5. a truncated answer or a refusal splits the batch in halves; a single snippet that is still
   truncated or refused is recorded as such;
6. whatever still has no valid answer falls back to the rules extractor
   (``extractor: "rules-fallback"``).

Steps 3-6 are :mod:`worker.model.reask`; retries and the budget are :mod:`worker.model.calls`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pydantic import ValidationError

from schemas.message import ReportMessage
from schemas.settings import Settings
from worker.batching import pack
from worker.extract import FoundFact, ReportExtraction
from worker.model.cache import ExtractionCache, MemoryCache, cache_key
from worker.model.calls import Caller
from worker.model.client import ChatCompletion, ModelClient
from worker.model.grounding import (
    ExtractedFact,
    SnippetOutcome,
    SnippetRequest,
    fill_from_context,
    ground_all,
    rules_fallback,
)
from worker.model.ledger import CallUsage, CostLedger
from worker.model.prices import DEFAULT_PRICES, Price, estimate_cost_usd, price_for
from worker.model.prompt import PROMPT_VERSION, build_messages
from worker.model.reask import (
    EXTRACTOR_FALLBACK,
    EXTRACTOR_OPENAI,
    Final,
    Round,
    cut_off_reason,
    on_answer,
    on_cut_off,
    on_failed,
)
from worker.model.schema import LLMFact, parse_answer, response_format
from worker.snippets import Snippet, has_amount, split_snippets

log = logging.getLogger(__name__)

#: characters of report text before a snippet passed along as context (company named earlier)
CONTEXT_CHARS = 1500


class OpenAIExtractor:
    """Extraction through an OpenAI-compatible chat completions API. Thread-safe: the worker's
    extraction threads share one instance (one HTTP client, one ledger, one cache)."""

    name = EXTRACTOR_OPENAI

    def __init__(
        self,
        settings: Settings,
        *,
        cache: ExtractionCache | None = None,
        prices: Mapping[str, Price] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 20.0,
        max_wait_s: float = 60.0,
    ) -> None:
        self.settings = settings
        self.model = settings.model
        self.cache: ExtractionCache = cache if cache is not None else MemoryCache()
        self.ledger = CostLedger()
        self.price = price_for(self.model, DEFAULT_PRICES if prices is None else prices)
        self._client = ModelClient(settings)
        self._caller = Caller(
            self._client,
            settings,
            self.ledger,
            sleep=sleep,
            rand=rand,
            backoff_base_s=backoff_base_s,
            backoff_cap_s=backoff_cap_s,
            max_wait_s=max_wait_s,
        )
        if self.price is None:
            log.warning(
                "model %s is not in the price table: cost is not estimated%s",
                self.model,
                " and FINPIPE_MAX_COST_USD cannot be enforced" if settings.max_cost_usd else "",
            )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAIExtractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- reports

    def extract(self, reports: Sequence[ReportMessage]) -> dict[str, ReportExtraction]:
        """The :class:`worker.extract.Extractor` interface: facts per ``report_id``."""
        items = [(r.report_id, r.raw_text, r.company_hint) for r in reports]
        return self.extract_texts(items)

    def extract_texts(
        self, items: Sequence[tuple[str, str, str | None]], *, concurrency: int = 1
    ) -> dict[str, ReportExtraction]:
        """Facts per id for ``(id, text, company_hint)`` items. All their snippets with an
        amount are packed into calls of up to ``batch_snippets`` snippets and ``batch_chars``
        characters, run ``concurrency`` calls at a time."""
        out, requests, where = _requests_of(items)
        batches = pack(
            requests,
            max_items=self.settings.batch_snippets,
            max_chars=self.settings.batch_chars,
            size=lambda r: len(r.text),
        )
        outcomes: dict[str, SnippetOutcome] = {}
        if concurrency > 1 and len(batches) > 1:
            with ThreadPoolExecutor(concurrency, thread_name_prefix="llm") as pool:
                for result in pool.map(self.extract_batch, batches):
                    outcomes.update(result)
        else:
            for batch in batches:
                outcomes.update(self.extract_batch(batch))
        for rid, outcome in outcomes.items():
            item_id, snippet = where[rid]
            self._report(out[item_id], snippet, outcome)
        return out

    def _report(self, ext: ReportExtraction, snippet: Snippet, outcome: SnippetOutcome) -> None:
        for ef in outcome.facts:
            by_model = ef.extractor == EXTRACTOR_OPENAI
            ext.facts.append(
                FoundFact(
                    snippet,
                    ef.fact,
                    ef.extractor,
                    model=self.model if by_model else None,
                    prompt_version=PROMPT_VERSION if by_model else None,
                )
            )
        ext.rejected.extend(
            f"snippet {snippet.index}: {r.candidate.get('value_text')!r}: {r.reason}"
            for r in outcome.rejected
        )

    # ----------------------------------------------------------------- snippets

    def extract_batch(self, requests: Sequence[SnippetRequest]) -> dict[str, SnippetOutcome]:
        """One outcome per request id. Cached snippets make no call; identical texts in the
        batch are asked once. Raises :class:`ModelUnavailable` (retry later),
        :class:`ModelRejected` (bad input) or :class:`ModelConfigError` (stop the worker);
        answers already paid for are cached before the error propagates."""
        outcomes = {r.id: SnippetOutcome() for r in requests}
        keys = {r.id: cache_key(r.text, self.model) for r in requests}
        hits = self.cache.get_many(sorted(set(keys.values())))
        groups: dict[str, list[SnippetRequest]] = {}
        for r in requests:
            if keys[r.id] in hits:
                outcomes[r.id].cached = True
                self._apply(r, outcomes[r.id], _final_from_entry(hits[keys[r.id]]))
            else:
                groups.setdefault(keys[r.id], []).append(r)
        if hits:
            self.ledger.add_cache_hits(sum(1 for o in outcomes.values() if o.cached))
        if not groups:
            return outcomes
        leaders = [group[0] for group in groups.values()]
        finals: dict[str, Final] = {}
        try:
            self._run(Round.start(leaders, outcomes, finals))
        finally:
            if finals:
                self.cache.put_many(
                    {keys[rid]: _entry_from_final(final) for rid, final in finals.items()}
                )
        for group in groups.values():
            final = finals[group[0].id]
            for r in group:
                self._apply(r, outcomes[r.id], final)
        return outcomes

    def _apply(self, request: SnippetRequest, outcome: SnippetOutcome, final: Final) -> None:
        if final.status == EXTRACTOR_OPENAI:
            kept, rejected = ground_all(request, final.facts)
            facts = fill_from_context(request, [f for f, _ in kept])
            outcome.facts.extend(ExtractedFact(f, EXTRACTOR_OPENAI) for f in facts)
            outcome.rejected.extend(rejected)
        else:
            outcome.fallback_reason = final.reason
            outcome.facts.extend(
                ExtractedFact(f, EXTRACTOR_FALLBACK) for f in rules_fallback(request)
            )

    def _run(self, rnd: Round) -> None:
        """Ask the model until each snippet of the round has a final answer."""
        while rnd.queue:
            job = rnd.queue.popleft()
            messages = build_messages(
                rnd.snippets(job), reask=job.reask, previous_answer=job.previous_answer()
            )
            completion, call = self._call(messages, len(job.sids), job.purpose)
            rnd.charge(job, call)
            choice = completion.choices[0] if completion.choices else None
            why, refusal = cut_off_reason(choice)
            if why is not None:
                on_cut_off(rnd, job, why, refusal)
                continue
            content = choice.message.content if choice else None
            parsed = parse_answer(content, job.sids)
            failed = on_answer(rnd, job, parsed)
            if failed:
                on_failed(rnd, job, failed, parsed, content)

    # ----------------------------------------------------------------- one call

    def _call(
        self, messages: list[dict[str, str]], n_snippets: int, purpose: str
    ) -> tuple[ChatCompletion, CallUsage]:
        body: dict[str, Any] = {
            "model": self.model,
            "temperature": 0,
            "response_format": response_format(),
            "messages": messages,
        }
        started = time.monotonic()
        completion = self._caller.complete(body, n_snippets)
        return completion, self._usage(completion, n_snippets, purpose, started)

    def _usage(
        self, completion: ChatCompletion, n_snippets: int, purpose: str, started: float
    ) -> CallUsage:
        u = completion.usage
        prompt = int(u.prompt_tokens or 0) if u else 0
        out = int(u.completion_tokens or 0) if u else 0
        details = u.prompt_tokens_details if u else None
        cached = int(details.cached_tokens or 0) if details else 0
        choices = completion.choices
        call = CallUsage(
            model=self.model,
            purpose=purpose,
            snippets=n_snippets,
            prompt_tokens=prompt,
            completion_tokens=out,
            cached_tokens=cached,
            cost_usd=estimate_cost_usd(self.price, prompt, out, cached),
            latency_ms=int((time.monotonic() - started) * 1000),
            finish_reason=choices[0].finish_reason if choices else None,
        )
        self.ledger.add_call(call)
        self.cache.record_usage(call)
        log.info(
            "model call (%s): %d snippet(s), %d prompt + %d completion tokens (%d cached), "
            "cost %s, %d ms, finish %s",
            purpose,
            n_snippets,
            prompt,
            out,
            cached,
            "unknown" if call.cost_usd is None else f"${call.cost_usd:.6f}",
            call.latency_ms,
            call.finish_reason,
        )
        return call


def _requests_of(
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


def _final_from_entry(entry: Mapping[str, Any]) -> Final:
    if entry.get("status") == EXTRACTOR_OPENAI:
        facts = []
        for raw in entry.get("facts", []):
            try:
                facts.append(LLMFact.model_validate(raw))
            except ValidationError:
                continue
        return Final(EXTRACTOR_OPENAI, facts)
    return Final(EXTRACTOR_FALLBACK, reason=str(entry.get("reason") or "cached fallback"))


def _entry_from_final(final: Final) -> dict[str, Any]:
    if final.status == EXTRACTOR_OPENAI:
        return {"status": EXTRACTOR_OPENAI, "facts": [f.model_dump() for f in final.facts]}
    return {"status": EXTRACTOR_FALLBACK, "reason": final.reason}


def extract_reports(
    settings: Settings,
    texts: Sequence[tuple[str, str, str | None]],
    *,
    cache: ExtractionCache | None = None,
) -> dict[str, list[FoundFact]]:
    """Facts per id for ``(id, text, company_hint)`` items through the OpenAI provider, with the
    same batching and checks as the worker and an in-memory cache (``finpipe extract``)."""
    with OpenAIExtractor(settings, cache=cache) as engine:
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
