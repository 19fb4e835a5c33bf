"""The OpenAI extraction engine: many snippets per chat completion, checked before anything is kept.

For a set of snippets:

1. the extraction cache is consulted; a snippet seen before (same text, model, prompt version and
   answer schema version) makes no call; the rest are packed into calls, each text once
   (:mod:`worker.model.plan`, the same plan the Batch API path sends as request lines);
2. each call has a strict JSON schema; the answer is read per snippet;
3. every proposed fact is grounded (:mod:`worker.model.grounding`); failures are counted, never
   stored;
4. snippets whose answer failed validation are asked again once, together, with the errors;
5. a truncated answer or a refusal splits the batch in halves; a single snippet that is still
   truncated or refused is recorded as such;
6. whatever still has no valid answer falls back to the rules extractor
   (``extractor: "rules-fallback"``).

Steps 3-6 are :mod:`worker.model.reask`; one call (its body, sending, its usage) is
:mod:`worker.model.asker`; retries and the budget are :mod:`worker.model.calls`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from functools import partial
from typing import Any

from schemas.message import ReportMessage
from schemas.settings import Settings
from worker.extract import ReportExtraction
from worker.model.asker import Asker
from worker.model.cache import (
    ExtractionCache,
    MemoryCache,
    cache_key,
    entry_from_final,
    final_from_entry,
    lookup,
)
from worker.model.calls import Caller, Tier
from worker.model.client import ChatCompletion, ModelClient
from worker.model.formats import Negotiator, Variant, looks_like_json
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
from worker.model.params import RequestShape, effort_for
from worker.model.plan import CallPlan, plan_calls
from worker.model.prefill import (
    batch_usage,
    cache_entries,
    model_of,
    read_completion,
    this_prompt,
    variant_of,
)
from worker.model.profiles import (
    ProfileTable,
    load_table,
    start_up_warnings,
)
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
from worker.model.tiers import parse_llm_mode

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
        self._profiles = table
        self.profile = table.lookup(self.model)
        self.price = self.profile.price if self.profile is not None else None
        self.effort = effort_for(self.profile, settings.reasoning_effort)
        self.formats = Negotiator(settings.response_format)
        self.mode = parse_llm_mode(settings.llm_mode)
        self.shape = RequestShape(self.model)
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
        self._asker = Asker(
            self._caller,
            model=self.model,
            profile=self.profile,
            effort=self.effort,
            formats=self.formats,
            shape=self.shape,
            ledger=self.ledger,
            cache=self.cache,
            worked_examples=worked_examples,
        )
        #: the request body of a call with the parameters in use now (``Asker.request``)
        self.request = self._asker.request
        for warning in start_up_warnings(
            self.model,
            self.profile,
            today or date.today(),
            effort=self.effort,
            wanted_effort=settings.reasoning_effort,
            budget=settings.max_cost_usd is not None,
        ):
            log.warning("%s", warning)

    @property
    def client(self) -> ModelClient:
        """The HTTP client: Batch API jobs go over the same one."""
        return self._client

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

    def extract(
        self, reports: Sequence[ReportMessage], *, prefilled: Collection[str] = frozenset()
    ) -> dict[str, ReportExtraction]:
        """The :class:`worker.extract.Extractor` interface: facts per ``report_id``."""
        items = [(r.report_id, r.raw_text, r.company_hint) for r in reports]
        return self.extract_texts(items, prefilled=prefilled)

    def extract_texts(
        self,
        items: Sequence[tuple[str, str, str | None]],
        *,
        concurrency: int = 1,
        prefilled: Collection[str] = frozenset(),
    ) -> dict[str, ReportExtraction]:
        """Facts per id for ``(id, text, company_hint)`` items: :meth:`extract_batch` for all
        their snippets with an amount, ``concurrency`` calls at a time. The answers for the items
        in ``prefilled`` are looked up in the cache even when it did not know them."""
        out, requests, where = requests_of(items)
        stored = frozenset(r.id for r in requests if where[r.id][0] in prefilled)
        outcomes = self.extract_batch(requests, stored=stored, concurrency=concurrency)
        for rid, outcome in outcomes.items():
            item_id, snippet = where[rid]
            add_outcome(out[item_id], snippet, outcome, self.model)
        return out

    # ----------------------------------------------------------------- snippets

    def plan(
        self, requests: Sequence[SnippetRequest], *, stored: Collection[str] = frozenset()
    ) -> CallPlan:
        """The calls that answer ``requests`` (:mod:`worker.model.plan`), for the synchronous
        path and the Batch API path alike: an answer cached in any output format this run may
        use is as good as a new one; ``stored``: requests whose answers another process cached
        (read even when the worker's filter does not know them)."""
        keys = {
            r.id: [cache_key(r.text, self.model, m) for m in self.formats.modes] for r in requests
        }
        wanted = sorted({k for ks in keys.values() for k in ks})
        found = lookup(self.cache, wanted, [keys[r.id] for r in requests if r.id in stored])
        return plan_calls(
            requests,
            keys,
            found,
            max_items=self.settings.batch_snippets,
            max_chars=self.settings.batch_chars,
        )

    def extract_batch(
        self,
        requests: Sequence[SnippetRequest],
        *,
        stored: Collection[str] = frozenset(),
        concurrency: int = 1,
    ) -> dict[str, SnippetOutcome]:
        """One outcome per request id, following :meth:`plan`: cached snippets make no call,
        identical texts are asked once, the rest in calls of up to ``batch_snippets`` snippets
        and ``batch_chars`` characters, ``concurrency`` at a time. Raises
        :class:`ModelUnavailable` (retry later), :class:`ModelRejected` (bad input) or
        :class:`ModelConfigError` (stop the worker); answers already paid for are cached
        before the error propagates."""
        plan = self.plan(requests, stored=stored)
        outcomes = {r.id: SnippetOutcome() for r in requests}
        for r in requests:
            if r.id in plan.hits:
                outcomes[r.id].cached = True
                self._apply(r, outcomes[r.id], final_from_entry(plan.hits[r.id]))
        if plan.hits:
            self.ledger.add_cache_hits(plan.cached)
        ask = partial(self._ask, plan, outcomes)
        if concurrency > 1 and len(plan.calls) > 1:
            with ThreadPoolExecutor(concurrency, thread_name_prefix="llm") as pool:
                list(pool.map(ask, plan.calls))
        else:
            for leaders in plan.calls:
                ask(leaders)
        return outcomes

    def _ask(
        self, plan: CallPlan, outcomes: dict[str, SnippetOutcome], leaders: list[SnippetRequest]
    ) -> None:
        """One call of ``plan`` until each of its ``leaders`` has a final answer, applied to
        every request with the same text."""
        finals: dict[str, Final] = {}
        try:
            self._run(Round.start(leaders, outcomes, finals))
        finally:
            self._keep(leaders, finals)
        for leader in leaders:
            for r in plan.same[leader.id]:
                self._apply(r, outcomes[r.id], finals[leader.id])

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

    def _keep(self, leaders: Sequence[SnippetRequest], finals: Mapping[str, Final]) -> None:
        """Cache the final answers (by request id) of ``leaders``."""
        if finals:
            text = {r.id: r.text for r in leaders}
            self.cache.put_many(
                {
                    cache_key(text[rid], self.model, final.mode): entry_from_final(final)
                    for rid, final in finals.items()
                }
            )

    def _run(self, rnd: Round) -> None:
        """Ask the model until each snippet of the round has a final answer (in flex mode at the
        flex tier, until it has no capacity: then at the standard tier for the rest of the
        round)."""
        tier = Tier.for_mode(self.mode, self.settings.llm_timeout_s)
        while rnd.queue:
            job = rnd.queue.popleft()
            completion, variant, call = self._asker.call(rnd, job, tier)
            rnd.charge(job, call)
            self._read(rnd, job, completion, variant)

    def _read(self, rnd: Round, job: Job, completion: ChatCompletion, variant: Variant) -> None:
        """Settle the snippets the answer to ``job`` settles; queue what it calls for next (a
        split, a re-ask, the same job in another output format)."""
        rnd.mode = variant.mode
        choice = completion.choices[0] if completion.choices else None
        why, refusal = cut_off_reason(choice)
        if why is not None:
            on_cut_off(rnd, job, why, refusal)
            return
        content = choice.message.content if choice else None
        if self._format_ignored(variant, content):
            rnd.queue.appendleft(job)  # ask again in the next output format
            return
        parsed = parse_answer(content, job.sids)
        failed = on_answer(rnd, job, parsed)
        if failed:
            on_failed(rnd, job, failed, parsed, content)

    def _format_ignored(self, variant: Variant, content: str | None) -> bool:
        """An answer that is not JSON at all although a JSON format was asked for: the server
        ignores the format; True when the run moved to another one (else the answer is read as
        an invalid one: a format that has worked is not dropped for one prose answer)."""
        if variant.mode == "prompt" or looks_like_json(content):
            self.formats.worked(variant)
            return False
        moved = self.formats.fall_back(variant, "the answer is not JSON")
        return moved and self.formats.current != variant

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
        reads its own first answer. The other snippets get no entry and are asked synchronously.
        The entries belong to the model and prompt of ``body`` (a job resumed after
        ``FINPIPE_MODEL`` changed, or after an upgrade of the prompt, answers for those)."""
        if not this_prompt(body):
            log.info("a batch answer asked with an older prompt: not cached")
            return {}
        return cache_entries(group, body, completion, self.model)

    def settle_batch_answer(
        self,
        group: Sequence[SnippetRequest],
        body: Mapping[str, Any],
        completion: Mapping[str, Any],
    ) -> bool:
        """Go on from a batch answer to ``body`` (the first call for ``group``) as from the
        engine's own: snippets that failed validation are asked again once, a truncated answer
        is split, and every final answer is cached. False when the answer is not this engine's
        to go on from (another model or prompt, no chat completion)."""
        read = read_completion(completion)
        if read is None or model_of(body, self.model) != self.model or not this_prompt(body):
            return False
        finals: dict[str, Final] = {}
        rnd = Round.start(list(group), {r.id: SnippetOutcome() for r in group}, finals)
        try:
            self._read(rnd, rnd.queue.popleft(), read, variant_of(body))
            self._run(rnd)
        finally:
            self._keep(group, finals)
        return True

    def record_batch_usage(
        self, body: Mapping[str, Any], completion: Mapping[str, Any], n_snippets: int
    ) -> CallUsage | None:
        """Record one answered batch request (``body`` and its ``completion``) in the ledger and
        the usage log, priced at the batch rate; None when the answer is no chat completion."""
        call = batch_usage(
            body, completion, n_snippets, default_model=self.model, profiles=self._profiles
        )
        if call is not None:
            self._asker.record(call)
        return call


def numbered(group: Sequence[SnippetRequest]) -> list[tuple[str, str]]:
    """``(s1, text)``, ``(s2, text)``...: the snippets of a first call as the model sees them."""
    return [(f"s{i}", r.text) for i, r in enumerate(group, 1)]
