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

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any, Literal

from schemas.message import ReportMessage
from schemas.settings import Settings
from worker.batching import pack
from worker.batchmode.jobstore import JobStore
from worker.batchmode.mode import FLEX_TIER, LLMMode, parse_llm_mode
from worker.batchmode.runner import BatchRunner, ResultSink
from worker.extract import FoundFact, ReportExtraction
from worker.model.cache import (
    ExtractionCache,
    MemoryCache,
    cache_key,
    entry_from_final,
    final_from_entry,
)
from worker.model.calls import Caller, Tier
from worker.model.client import BATCH_TRANSIENT, ChatCompletion, ModelClient, token_counts
from worker.model.formats import Negotiator, Variant, looks_like_json, response_format
from worker.model.grounding import (
    ExtractedFact,
    SnippetOutcome,
    SnippetRequest,
    fill_from_context,
    ground_all,
    grounded_fallback,
)
from worker.model.ledger import CallUsage, CostLedger
from worker.model.pacing import Pacer
from worker.model.params import RequestShape, effort_for, optional_params, request_body
from worker.model.prefill import finals_of, format_mode, read_completion
from worker.model.profiles import (
    ProfileTable,
    estimate_cost_usd,
    load_table,
    start_up_warnings,
)
from worker.model.prompt import PROMPT_VERSION, build_messages
from worker.model.reask import (
    EXTRACTOR_FALLBACK,
    EXTRACTOR_OPENAI,
    Final,
    Job,
    Round,
    cut_off_reason,
    on_answer,
    on_cut_off,
    on_failed,
)
from worker.model.reports import add_outcome, requests_of
from worker.model.schema import parse_answer

log = logging.getLogger(__name__)


class OpenAIExtractor:
    """Extraction through an OpenAI-compatible chat completions API. Thread-safe: the worker's
    extraction threads share one instance (one HTTP client, one ledger, one cache)."""

    name = EXTRACTOR_OPENAI

    def __init__(
        self,
        settings: Settings,
        *,
        cache: ExtractionCache | None = None,
        profiles: ProfileTable | None = None,
        today: date | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 20.0,
        max_wait_s: float = 60.0,
        worked_examples: bool = True,
    ) -> None:
        self.settings = settings
        #: False leaves the worked examples out of the prompt (to measure what they cost)
        self.worked_examples = worked_examples
        self.model = settings.model
        self.cache: ExtractionCache = cache if cache is not None else MemoryCache()
        self.ledger = CostLedger()
        table = profiles if profiles is not None else load_table(settings.prices_file)
        self.profile = table.lookup(self.model)
        self.price = self.profile.price if self.profile is not None else None
        self.effort = effort_for(self.profile, settings.reasoning_effort)
        self.formats = Negotiator(settings.response_format)
        self.mode = parse_llm_mode(settings.llm_mode)
        self.shape = RequestShape(self.model)
        self._warm_up = threading.Lock()
        self._client = ModelClient(settings)
        self._caller = Caller(
            self._client,
            settings,
            self.ledger,
            self.shape,
            self.formats,
            sleep=sleep,
            rand=rand,
            backoff_base_s=backoff_base_s,
            backoff_cap_s=backoff_cap_s,
            max_wait_s=max_wait_s,
        )
        for warning in start_up_warnings(
            self.model,
            self.profile,
            today or date.today(),
            effort=self.effort,
            wanted_effort=settings.reasoning_effort,
            budget=settings.max_cost_usd is not None,
        ):
            log.warning("%s", warning)

    def batch_runner(
        self, store: JobStore, sink: ResultSink, *, now: Callable[[], float]
    ) -> BatchRunner:
        """A Batch API runner over this engine's client, keeping its jobs in ``store``."""
        return BatchRunner(
            self._client.batch_api(), store, sink, now=now, transient=BATCH_TRANSIENT
        )

    @property
    def pacer(self) -> Pacer:
        """The gate of this engine's calls before the account's rate limit (``on_wait`` is where
        a metric of the waits hooks in)."""
        return self._caller.pacer

    def interrupt(self) -> None:
        """The worker is stopping: calls waiting for the rate limit give up (their reports go
        back to the queue unchanged); calls already sent finish."""
        self._caller.pacer.interrupt()

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
        out, requests, where = requests_of(items)
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
            add_outcome(out[item_id], snippet, outcome, self.model)
        return out

    # ----------------------------------------------------------------- snippets

    def extract_batch(self, requests: Sequence[SnippetRequest]) -> dict[str, SnippetOutcome]:
        """One outcome per request id. Cached snippets make no call; identical texts in the
        batch are asked once. Raises :class:`ModelUnavailable` (retry later),
        :class:`ModelRejected` (bad input) or :class:`ModelConfigError` (stop the worker);
        answers already paid for are cached before the error propagates."""
        outcomes = {r.id: SnippetOutcome() for r in requests}
        # an answer in any output format this run may use is as good as a new one
        keys = {
            r.id: [cache_key(r.text, self.model, m) for m in self.formats.modes] for r in requests
        }
        hits = self.cache.get_many(sorted({k for ks in keys.values() for k in ks}))
        groups: dict[str, list[SnippetRequest]] = {}
        for r in requests:
            hit = next((hits[k] for k in keys[r.id] if k in hits), None)
            if hit is not None:
                outcomes[r.id].cached = True
                self._apply(r, outcomes[r.id], final_from_entry(hit))
            else:
                groups.setdefault(keys[r.id][0], []).append(r)
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
                text = {r.id: r.text for r in leaders}
                self.cache.put_many(
                    {
                        cache_key(text[rid], self.model, final.mode): entry_from_final(final)
                        for rid, final in finals.items()
                    }
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
            fallback, refused = grounded_fallback(request)
            outcome.facts.extend(ExtractedFact(f, EXTRACTOR_FALLBACK) for f in fallback)
            outcome.rejected.extend(refused)

    def _run(self, rnd: Round) -> None:
        """Ask the model until each snippet of the round has a final answer (in flex mode at the
        flex tier, until it has no capacity: then at the standard tier for the rest of the
        round)."""
        tier = Tier.for_mode(self.mode, self.settings.llm_timeout_s)
        while rnd.queue:
            job = rnd.queue.popleft()
            completion, variant, call = self._call(rnd, job, tier)
            rnd.charge(job, call)
            rnd.mode = variant.mode
            choice = completion.choices[0] if completion.choices else None
            why, refusal = cut_off_reason(choice)
            if why is not None:
                on_cut_off(rnd, job, why, refusal)
                continue
            content = choice.message.content if choice else None
            if self._format_ignored(variant, content):
                rnd.queue.appendleft(job)  # ask again in the next output format
                continue
            parsed = parse_answer(content, job.sids)
            failed = on_answer(rnd, job, parsed)
            if failed:
                on_failed(rnd, job, failed, parsed, content)

    def _format_ignored(self, variant: Variant, content: str | None) -> bool:
        """An answer that is not JSON at all although a JSON format was asked for: the server
        ignores the format; True when the run moved to the next one."""
        if variant.mode == "prompt" or looks_like_json(content):
            return False
        return self.formats.fall_back(variant, "the answer is not JSON")

    # ----------------------------------------------------------------- answers from a batch job

    def first_body(self, group: Sequence[SnippetRequest]) -> dict[str, Any]:
        """The exact body of the first call :meth:`extract_batch` makes for ``group`` (same
        prompt, schema, output format and parameters; no ``service_tier``): one request line of
        a Batch API job, whose answer is then as good as the synchronous one."""
        return self.request(numbered(group), self.formats.current)

    def batch_entries(
        self,
        group: Sequence[SnippetRequest],
        body: Mapping[str, Any],
        completion: Mapping[str, Any],
    ) -> dict[str, dict[str, Any]]:
        """Cache entries (by cache key) for the snippets of ``group`` that the ``completion`` of
        ``body`` (a batch request line and its answer) settles: read and grounded as the engine
        reads its own first answer. The other snippets get no entry and are asked synchronously."""
        mode = format_mode(body)
        finals = finals_of(completion, group, mode)
        return {
            cache_key(r.text, self.model, mode): entry_from_final(finals[r.id])
            for r in group
            if r.id in finals
        }

    def record_batch_usage(
        self, body: Mapping[str, Any], completion: Mapping[str, Any], n_snippets: int
    ) -> CallUsage | None:
        """Record one answered batch request (``body`` and its ``completion``) in the ledger and
        the usage log, priced at the batch rate; None when the answer is no chat completion."""
        read = read_completion(completion)
        if read is None:
            return None
        t = token_counts(read)
        choices = read.choices
        call = CallUsage(
            model=self.model,
            purpose="batch-api",
            snippets=n_snippets,
            prompt_tokens=t.prompt,
            completion_tokens=t.completion,
            cached_tokens=t.cached,
            cost_usd=estimate_cost_usd(
                self.price, t.prompt, t.completion, t.cached, t.cache_write, tier="batch"
            ),
            latency_ms=0,
            finish_reason=choices[0].finish_reason if choices else None,
            reasoning_tokens=t.reasoning,
            cache_write_tokens=t.cache_write,
            response_format=format_mode(body),
            reasoning_effort=self.effort,
            tier="batch",
        )
        self.ledger.add_call(call)
        self.cache.record_usage(call)
        return call

    # ----------------------------------------------------------------- one call

    def request(
        self,
        snippets: Sequence[tuple[str, str]],
        variant: Variant,
        *,
        service_tier: str | None = None,
        **ask: Any,
    ) -> dict[str, Any]:
        """The request for ``snippets`` (``(id, text)`` pairs) in ``variant`` with the
        parameters in use now; ``ask`` takes ``reask`` and ``previous_answer``."""
        messages = build_messages(
            snippets,
            schema_in_prompt=variant.mode != "json_schema",
            examples=self.worked_examples,
            **ask,
        )
        params = optional_params(
            self.profile,
            n_snippets=len(snippets),
            effort=self.effort,
            cache_key=f"finpipe-{PROMPT_VERSION}-{variant.mode}",
            dropped=self.shape.dropped,
            service_tier=service_tier,
            per_snippet=self.ledger.answer_tokens_per_snippet(),
        )
        return request_body(self.model, messages, response_format(variant), params)

    def _call(self, rnd: Round, job: Job, tier: Tier) -> tuple[ChatCompletion, Variant, CallUsage]:
        sent: dict[str, Any] = {}

        def build() -> tuple[dict[str, Any], Variant]:
            variant = self.formats.current
            body = self.request(
                rnd.snippets(job),
                variant,
                service_tier=tier.service_tier,
                reask=job.reask,
                previous_answer=job.previous_answer(),
            )
            sent["tier"] = body.get("service_tier")
            return body, variant

        started = time.monotonic()
        # until an answer was measured, one call at a time: the first sizes the others'
        # max_completion_tokens (a rate limit charges what a call asks for)
        warming = self.ledger.answer_tokens_per_snippet() is None
        with self._warm_up if warming else contextlib.nullcontext():
            completion, variant = self._caller.complete(build, len(job.sids), tier)
        billed: Literal["standard", "flex"] = (
            "flex" if sent.get("tier") == FLEX_TIER else "standard"
        )
        call = self._usage(completion, len(job.sids), job.purpose, started, variant, billed)
        return completion, variant, call

    def _usage(
        self,
        completion: ChatCompletion,
        n_snippets: int,
        purpose: str,
        started: float,
        variant: Variant,
        tier: Literal["standard", "flex"] = "standard",
    ) -> CallUsage:
        t = token_counts(completion)
        choices = completion.choices
        call = CallUsage(
            model=self.model,
            purpose=purpose,
            snippets=n_snippets,
            prompt_tokens=t.prompt,
            completion_tokens=t.completion,
            cached_tokens=t.cached,
            cost_usd=estimate_cost_usd(
                self.price, t.prompt, t.completion, t.cached, t.cache_write, tier=tier
            ),
            latency_ms=int((time.monotonic() - started) * 1000),
            finish_reason=choices[0].finish_reason if choices else None,
            reasoning_tokens=t.reasoning,
            cache_write_tokens=t.cache_write,
            response_format=variant.mode,
            reasoning_effort=self.effort,
            tier=tier,
        )
        self.ledger.add_call(call)
        self.cache.record_usage(call)
        log.info(
            "model call (%s, %s): %d snippet(s), %d prompt + %d completion tokens "
            "(%d cached, %d reasoning), cost %s, %d ms, finish %s",
            purpose,
            variant.mode,
            n_snippets,
            t.prompt,
            t.completion,
            t.cached,
            t.reasoning,
            "unknown" if call.cost_usd is None else f"${call.cost_usd:.6f}",
            call.latency_ms,
            call.finish_reason,
        )
        return call


def numbered(group: Sequence[SnippetRequest]) -> list[tuple[str, str]]:
    """``(s1, text)``, ``(s2, text)``...: the snippets of a first call as the model sees them."""
    return [(f"s{i}", r.text) for i, r in enumerate(group, 1)]


def extract_reports(
    settings: Settings,
    texts: Sequence[tuple[str, str, str | None]],
    *,
    cache: ExtractionCache | None = None,
    progress: Callable[[list[Any]], None] | None = None,
) -> dict[str, list[FoundFact]]:
    """Facts per id for ``(id, text, company_hint)`` items through the OpenAI provider, with the
    same batching and checks as the worker and an in-memory cache (``finpipe extract``). In
    batch mode the snippets go in a Batch API job first (kept in memory; ``progress`` sees it
    after each status check), and the engine then answers from the cache."""
    with OpenAIExtractor(settings, cache=cache) as engine:
        if engine.mode is LLMMode.BATCH:
            from worker.batchmode.nightly import prefill_in_memory

            prefill_in_memory(engine, texts, poll_s=settings.batch_poll_s, progress=progress)
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
