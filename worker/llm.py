"""The OpenAI extraction engine: many snippets per chat completion, checked before anything is kept.

The only module that imports ``openai``. The network call is an injected callable (by default the
SDK's ``chat.completions.create``), so everything around it is testable without a network.

For each batch of snippets:

1. the extraction cache is consulted; a snippet seen before (same text, model, prompt version and
   answer schema version) makes no call;
2. the rest go in one call with a strict JSON schema; the answer is read per snippet;
3. every proposed fact is grounded: its ``value_text`` must occur in its snippet and normalize
   (``worker.normalize``) to the value the model claims; failures are counted, never stored;
4. snippets whose answer failed validation are asked again once, together, with the errors;
5. a truncated answer (``finish_reason == "length"``) or a refusal splits the batch in halves;
   a single snippet that is still truncated or refused is recorded as such;
6. whatever still has no valid answer falls back to the rules extractor
   (``extractor: "rules-fallback"``).

Timeouts, 429 and 5xx are retried with backoff honouring ``Retry-After`` up to
``llm_max_retries``, then :class:`ModelUnavailable` is raised; 400 raises :class:`ModelRejected`;
401/403/404 raise :class:`ModelConfigError`. Token usage and an estimated price are recorded per
call, and ``max_cost_usd`` stops new calls once reached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, cast

import openai
from pydantic import ValidationError

from schemas.errors import (
    ModelConfigError,
    ModelRejected,
    ModelUnavailable,
    NormalizationError,
)
from schemas.fact import Fact
from schemas.message import ReportMessage
from schemas.settings import Settings
from worker.batching import backoff_s, pack
from worker.extract import FoundFact, ReportExtraction
from worker.llm_schema import (
    ANSWER_SCHEMA_VERSION,
    PROMPT_VERSION,
    LLMFact,
    ParsedAnswer,
    build_messages,
    parse_answer,
    response_format,
)
from worker.snippets import Snippet, has_amount, split_snippets

log = logging.getLogger(__name__)

EXTRACTOR_OPENAI = "openai"
EXTRACTOR_FALLBACK = "rules-fallback"
#: characters of report text before a snippet passed along as context (company named earlier)
CONTEXT_CHARS = 1500
#: relative tolerance between the value the model claims and the normalized ``value_text``
VALUE_TOLERANCE = Decimal("0.005")


# --------------------------------------------------------------------------- prices and usage


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million tokens."""

    input: Decimal
    cached_input: Decimal
    output: Decimal


#: Estimated list prices; pass ``prices=`` to the engine to override or extend. A dated snapshot
#: ("gpt-4o-mini-2024-07-18") takes the price of its longest listed prefix.
DEFAULT_PRICES: dict[str, Price] = {
    "gpt-4o-mini": Price(Decimal("0.15"), Decimal("0.075"), Decimal("0.60")),
    "gpt-4o": Price(Decimal("2.50"), Decimal("1.25"), Decimal("10.00")),
    "gpt-4.1-nano": Price(Decimal("0.10"), Decimal("0.025"), Decimal("0.40")),
    "gpt-4.1-mini": Price(Decimal("0.40"), Decimal("0.10"), Decimal("1.60")),
    "gpt-4.1": Price(Decimal("2.00"), Decimal("0.50"), Decimal("8.00")),
}


def price_for(model: str, prices: Mapping[str, Price]) -> Price | None:
    best = None
    for name in prices:
        if (model == name or model.startswith(name + "-")) and (
            best is None or len(name) > len(best)
        ):
            best = name
    return prices[best] if best is not None else None


def estimate_cost_usd(
    price: Price | None, prompt_tokens: int, completion_tokens: int, cached_tokens: int
) -> float | None:
    """Estimated price of one call; None when the model is not in the price table."""
    if price is None:
        return None
    uncached = max(prompt_tokens - cached_tokens, 0)
    total = (
        uncached * price.input
        + cached_tokens * price.cached_input
        + completion_tokens * price.output
    ) / Decimal(1_000_000)
    return float(total)


@dataclass(frozen=True, slots=True)
class CallUsage:
    """One chat completion as billed."""

    model: str
    purpose: str  # "batch", "reask" or "split"
    snippets: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost_usd: float | None
    latency_ms: int
    finish_reason: str | None


@dataclass
class Usage:
    """Tokens and cost summed over calls (or a snippet's share of them) and cache hits."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float | None = 0.0
    cache_hits: int = 0

    def add(self, other: Usage) -> None:
        self.calls += other.calls
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cached_tokens += other.cached_tokens
        self.cache_hits += other.cache_hits
        if self.cost_usd is None or other.cost_usd is None:
            self.cost_usd = None
        else:
            self.cost_usd += other.cost_usd


class CostLedger:
    """Run totals, shared by the threads of one worker."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals = Usage()
        self._known_cost = 0.0

    def add_call(self, call: CallUsage) -> None:
        with self._lock:
            self._totals.add(
                Usage(
                    1, call.prompt_tokens, call.completion_tokens, call.cached_tokens, call.cost_usd
                )
            )
            self._known_cost += call.cost_usd or 0.0

    def add_cache_hits(self, n: int) -> None:
        with self._lock:
            self._totals.cache_hits += n

    def totals(self) -> Usage:
        with self._lock:
            return replace(self._totals)

    @property
    def known_cost_usd(self) -> float:
        """Cost of the calls whose price is known (what a budget can be checked against)."""
        with self._lock:
            return self._known_cost


def _shares(usage: CallUsage, weights: Sequence[int]) -> list[Usage]:
    """Split one call's usage over its snippets in proportion to their length."""
    total = sum(weights) or 1
    out = []
    for w in weights:
        frac = w / total
        out.append(
            Usage(
                calls=0,
                prompt_tokens=round(usage.prompt_tokens * frac),
                completion_tokens=round(usage.completion_tokens * frac),
                cached_tokens=round(usage.cached_tokens * frac),
                cost_usd=None if usage.cost_usd is None else usage.cost_usd * frac,
            )
        )
    return out


# --------------------------------------------------------------------------- cache


class ExtractionCache(Protocol):
    """Where answers are kept between runs (MongoDB in the worker, memory for ``finpipe extract``).

    Entries are JSON-able dicts: ``{"status": "openai", "facts": [<LLMFact>...]}`` for a snippet the
    model answered (only its grounded facts), or ``{"status": "rules-fallback", "reason": ...}``.
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


def cache_key(text: str, model: str) -> str:
    """sha256 of (snippet text, model, prompt version, answer schema version)."""
    ident = json.dumps([text, model, PROMPT_VERSION, ANSWER_SCHEMA_VERSION], ensure_ascii=False)
    return hashlib.sha256(ident.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- snippets in and out


@dataclass(frozen=True, slots=True)
class SnippetRequest:
    """A snippet to extract. ``id`` is unique within a batch; ``context`` is the report text just
    before the snippet (a company named earlier in the report)."""

    id: str
    text: str
    company_hint: str | None = None
    context: str = ""


@dataclass(frozen=True, slots=True)
class ExtractedFact:
    fact: Fact
    extractor: str  # "openai" or "rules-fallback"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A fact the model proposed that was not kept, and why."""

    candidate: dict[str, Any]
    reason: str
    attempt: int = 1


@dataclass
class SnippetOutcome:
    facts: list[ExtractedFact] = field(default_factory=list)
    #: ungrounded or invalid candidates, with reasons (never stored)
    rejected: list[Rejection] = field(default_factory=list)
    cached: bool = False
    refusal: str | None = None
    #: why the snippet fell back to the rules extractor, if it did
    fallback_reason: str | None = None
    #: this snippet's share of the calls made for it
    usage: Usage = field(default_factory=Usage)


def ground(request: SnippetRequest, candidate: LLMFact) -> Fact:
    """The normalized fact for a candidate, or :class:`NormalizationError` saying why it is not
    grounded: ``value_text`` absent from the snippet (``build_fact`` locates it, tolerating
    only differences in spacing, and records its offsets), not normalizable, or normalizing to
    another value than the model claims."""
    from worker.normalize import build_fact

    value_text = candidate.value_text
    if not value_text.strip():
        raise NormalizationError(value_text, "empty value_text")
    try:
        fact = build_fact(
            snippet=request.text,
            value_text=value_text,
            metric_text=candidate.metric,
            period_text=candidate.period,
            company=candidate.company,
            currency_hint=candidate.currency,
            company_hint=request.company_hint,
            context=request.context,
        )
    except ValidationError as exc:
        reason = "; ".join(e["msg"] for e in exc.errors()[:3])
        raise NormalizationError(value_text, reason) from exc
    if candidate.value is not None and not _same_value(Decimal(str(candidate.value)), fact.value):
        raise NormalizationError(
            value_text,
            f"the model claims {candidate.value:g} but the text normalizes to {fact.value}",
        )
    return fact


def _same_value(claimed: Decimal, actual: Decimal) -> bool:
    """Equal within the tolerance, sign included: when the model reads a loss that the
    normalization does not see (or the reverse), neither is trusted."""
    if actual == 0:
        return claimed == 0
    return abs(claimed - actual) <= VALUE_TOLERANCE * abs(actual)


def ground_all(
    request: SnippetRequest, candidates: Sequence[LLMFact], attempt: int = 1
) -> tuple[list[tuple[Fact, LLMFact]], list[Rejection]]:
    """Ground every candidate; duplicates (same metric, value, period, place) are kept once."""
    kept: list[tuple[Fact, LLMFact]] = []
    rejected: list[Rejection] = []
    seen: set[tuple[object, ...]] = set()
    for cand in candidates:
        try:
            fact = ground(request, cand)
        except (NormalizationError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, NormalizationError) else str(exc)
            rejected.append(Rejection(cand.model_dump(), reason, attempt))
            continue
        ident = (fact.metric, fact.value, fact.quarter, fact.start, fact.company)
        if ident not in seen:
            seen.add(ident)
            kept.append((fact, cand))
    return kept, rejected


def rules_fallback(request: SnippetRequest) -> list[Fact]:
    """The rules extractor's facts for one snippet (read with its context, kept only when they
    stand in the snippet), offsets relative to the snippet."""
    from worker.rules import extract_facts

    sep = "\n\n" if request.context else ""
    base = len(request.context) + len(sep)
    found = extract_facts(request.context + sep + request.text, company_hint=request.company_hint)
    out = []
    for rf in found:
        if rf.snippet.start < base:
            continue
        offset = rf.snippet.start - base
        fact = rf.fact
        if fact.start is not None and fact.end is not None:
            fact = fact.model_copy(update={"start": fact.start + offset, "end": fact.end + offset})
        out.append(fact)
    return out


def fill_from_context(request: SnippetRequest, facts: list[Fact]) -> list[Fact]:
    """Company and period for grounded facts whose snippet does not name them ("The board
    proposes a dividend of 4 cents per share."): the model sees the snippet alone, so they are
    taken from the rules extractor's reading of the same amount with the report text before it.
    What the model did give is never replaced."""
    if all(f.company is not None and f.quarter is not None for f in facts):
        return facts
    by_span = {(r.start, r.end): r for r in rules_fallback(request)}
    out = []
    for f in facts:
        r = by_span.get((f.start, f.end))
        if r is not None and (f.company is None or f.quarter is None):
            f = f.model_copy(
                update={"company": f.company or r.company, "quarter": f.quarter or r.quarter}
            )
        out.append(f)
    return out


# --------------------------------------------------------------------------- the engine


CreateFn = Callable[..., Any]


@dataclass
class _Job:
    sids: list[str]
    purpose: str
    reask: dict[str, str] | None = None
    previous: ParsedAnswer | None = None
    previous_raw: str | None = None


@dataclass
class _Final:
    status: str  # "openai" or "rules-fallback"
    facts: list[LLMFact] = field(default_factory=list)
    reason: str | None = None


class OpenAIExtractor:
    """Extraction through an OpenAI-compatible chat completions API. Thread-safe: the worker's
    extraction threads share one instance (one HTTP client, one ledger, one cache)."""

    name = EXTRACTOR_OPENAI

    def __init__(
        self,
        settings: Settings,
        *,
        cache: ExtractionCache | None = None,
        create: CreateFn | None = None,
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
        self._sleep = sleep
        self._rand = rand
        self._backoff_base_s = backoff_base_s
        self._backoff_cap_s = backoff_cap_s
        self._max_wait_s = max_wait_s
        self._client: openai.OpenAI | None = None
        if create is None:
            key = settings.openai_api_key
            self._client = openai.OpenAI(
                api_key=key.get_secret_value() if key is not None else "unset",
                base_url=settings.openai_base_url,
                timeout=settings.llm_timeout_s,
                max_retries=0,
            )
            create = cast(CreateFn, self._client.chat.completions.create)
        self._create = create
        if self.price is None:
            log.warning(
                "model %s is not in the price table: cost is not estimated%s",
                self.model,
                " and FINPIPE_MAX_COST_USD cannot be enforced" if settings.max_cost_usd else "",
            )

    def close(self) -> None:
        if self._client is not None:
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
            ext = out[item_id]
            for ef in outcome.facts:
                openai_fact = ef.extractor == EXTRACTOR_OPENAI
                ext.facts.append(
                    FoundFact(
                        snippet,
                        ef.fact,
                        ef.extractor,
                        model=self.model if openai_fact else None,
                        prompt_version=PROMPT_VERSION if openai_fact else None,
                    )
                )
            ext.rejected.extend(
                f"snippet {snippet.index}: {r.candidate.get('value_text')!r}: {r.reason}"
                for r in outcome.rejected
            )
        return out

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
        finals: dict[str, _Final] = {}
        try:
            self._run(leaders, outcomes, finals)
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

    def _apply(self, request: SnippetRequest, outcome: SnippetOutcome, final: _Final) -> None:
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

    def _run(
        self,
        leaders: list[SnippetRequest],
        outcomes: dict[str, SnippetOutcome],
        finals: dict[str, _Final],
    ) -> None:
        """Ask the model about ``leaders`` until each has a final answer in ``finals``."""
        by_sid = {f"s{i}": r for i, r in enumerate(leaders, 1)}
        rid = {sid: r.id for sid, r in by_sid.items()}

        def finish(sid: str, final: _Final) -> None:
            finals[rid[sid]] = final

        queue: deque[_Job] = deque([_Job(list(by_sid), "batch")])
        while queue:
            job = queue.popleft()
            previous = None
            if job.reask:
                answered = job.previous is not None and any(
                    s in job.previous.facts for s in job.sids
                )
                previous = (
                    job.previous.answer_for(job.sids)
                    if job.previous is not None and answered
                    else job.previous_raw
                )
            messages = build_messages(
                [(sid, by_sid[sid].text) for sid in job.sids],
                reask=job.reask,
                previous_answer=previous,
            )
            completion, call = self._call(messages, len(job.sids), job.purpose)
            for sid, share in zip(
                job.sids, _shares(call, [len(by_sid[s].text) for s in job.sids]), strict=True
            ):
                outcomes[rid[sid]].usage.add(share)
            attempt = 2 if job.reask is not None else 1

            choice = completion.choices[0] if completion.choices else None
            refusal = getattr(choice.message, "refusal", None) if choice else None
            finish_reason = choice.finish_reason if choice else None
            if refusal or finish_reason in ("length", "content_filter"):
                why = (
                    f"refused: {refusal}"
                    if refusal
                    else "answer truncated"
                    if finish_reason == "length"
                    else "answer withheld by the content filter"
                )
                if len(job.sids) > 1:
                    half = len(job.sids) // 2
                    log.info("call for %d snippets: %s; splitting in halves", len(job.sids), why)
                    for part in (job.sids[:half], job.sids[half:]):
                        queue.append(
                            _Job(
                                part,
                                "split",
                                None if job.reask is None else {s: job.reask[s] for s in part},
                                job.previous,
                                job.previous_raw,
                            )
                        )
                    continue
                sid = job.sids[0]
                if refusal:
                    outcomes[rid[sid]].refusal = refusal
                log.info("snippet %s: %s; falling back to rules", rid[sid], why)
                finish(sid, _Final(EXTRACTOR_FALLBACK, reason=why))
                continue

            content = choice.message.content if choice else None
            parsed = parse_answer(content, job.sids)
            failed: dict[str, str] = {}
            for sid in job.sids:
                if sid in parsed.errors:
                    failed[sid] = parsed.errors[sid]
                    continue
                kept, rejected = ground_all(by_sid[sid], parsed.facts[sid], attempt)
                outcomes[rid[sid]].rejected.extend(rejected)
                if not rejected:
                    finish(sid, _Final(EXTRACTOR_OPENAI, [c for _, c in kept]))
                elif job.reask is None:
                    failed[sid] = "; ".join(
                        f"value_text {r.candidate['value_text']!r}: {r.reason}" for r in rejected
                    )
                elif kept:
                    # second answer: keep what is grounded, the rest stays rejected
                    finish(sid, _Final(EXTRACTOR_OPENAI, [c for _, c in kept]))
                else:
                    failed[sid] = "no grounded fact after re-ask"
            if not failed:
                continue
            if job.reask is None:
                log.info(
                    "call for %d snippets: %d failed validation; asking again",
                    len(job.sids),
                    len(failed),
                )
                queue.append(_Job(list(failed), "reask", failed, parsed, (content or "")[:4000]))
            else:
                for sid, err in failed.items():
                    log.info(
                        "snippet %s: still invalid after re-ask (%s); falling back to rules",
                        rid[sid],
                        err,
                    )
                    finish(sid, _Final(EXTRACTOR_FALLBACK, reason=err))

    # ----------------------------------------------------------------- one call

    def _call(
        self, messages: list[dict[str, str]], n_snippets: int, purpose: str
    ) -> tuple[Any, CallUsage]:
        """One chat completion with our own retries; translates the SDK's errors into ours."""
        retries = self.settings.llm_max_retries
        for attempt in range(retries + 1):
            budget = self.settings.max_cost_usd
            if budget is not None and self.ledger.known_cost_usd >= budget:
                raise ModelUnavailable(
                    f"cost budget reached: ${self.ledger.known_cost_usd:.4f} of ${budget:.4f} "
                    "(FINPIPE_MAX_COST_USD); no new calls this run"
                )
            started = time.monotonic()
            try:
                completion = self._create(
                    model=self.model,
                    temperature=0,
                    response_format=response_format(),
                    messages=messages,
                )
            except openai.APIStatusError as exc:
                status = exc.status_code
                if status in (401, 403, 404):
                    raise ModelConfigError(
                        f"model API answered {status} for model {self.model!r} at "
                        f"{self.settings.openai_base_url or 'api.openai.com'}: {exc.message} "
                        "(check OPENAI_API_KEY, OPENAI_BASE_URL and FINPIPE_MODEL)"
                    ) from exc
                if status == 429 or status >= 500 or status == 408:
                    error: Exception = exc
                    retry_after = _retry_after_s(exc.response.headers)
                elif status == 400 and _about_request_shape(exc):
                    raise ModelConfigError(
                        f"model API rejected the request shape for model {self.model!r} "
                        f"(does it support strict json_schema output?): {exc.message}"
                    ) from exc
                else:
                    raise ModelRejected(
                        f"model API answered {status} for a call of {n_snippets} snippet(s): "
                        f"{exc.message}"
                    ) from exc
            except (openai.APITimeoutError, openai.APIConnectionError) as exc:
                error, retry_after = exc, None
            except (json.JSONDecodeError, openai.APIResponseValidationError) as exc:
                # a 200 whose body is cut off or not the expected document
                error, retry_after = _unreadable(exc), None
            else:
                if isinstance(getattr(completion, "choices", None), list):
                    call = self._usage(completion, n_snippets, purpose, started)
                    return completion, call
                # a 200 that is no chat completion at all (a proxy's HTML page)
                error, retry_after = _unreadable(completion), None
            if attempt >= retries:
                raise ModelUnavailable(
                    f"model API unavailable after {attempt + 1} attempt(s): "
                    f"{type(error).__name__}: {error}",
                    retry_after_s=retry_after,
                ) from error
            delay = backoff_s(
                attempt,
                rand=self._rand,
                base_s=self._backoff_base_s,
                cap_s=self._backoff_cap_s,
                retry_after_s=retry_after,
            )
            if delay > self._max_wait_s:
                raise ModelUnavailable(
                    f"model API asks us to wait {delay:.0f} s: {error}", retry_after_s=delay
                ) from error
            log.warning(
                "model call failed (%s: %s); retry %d/%d in %.2f s",
                type(error).__name__,
                error,
                attempt + 1,
                retries,
                delay,
            )
            self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _usage(self, completion: Any, n_snippets: int, purpose: str, started: float) -> CallUsage:
        u = getattr(completion, "usage", None)
        prompt = int(getattr(u, "prompt_tokens", 0) or 0)
        out = int(getattr(u, "completion_tokens", 0) or 0)
        details = getattr(u, "prompt_tokens_details", None)
        cached = int(getattr(details, "cached_tokens", 0) or 0)
        choices = getattr(completion, "choices", None) or []
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


def _final_from_entry(entry: Mapping[str, Any]) -> _Final:
    if entry.get("status") == EXTRACTOR_OPENAI:
        facts = []
        for raw in entry.get("facts", []):
            try:
                facts.append(LLMFact.model_validate(raw))
            except ValidationError:
                continue
        return _Final(EXTRACTOR_OPENAI, facts)
    return _Final(EXTRACTOR_FALLBACK, reason=str(entry.get("reason") or "cached fallback"))


def _entry_from_final(final: _Final) -> dict[str, Any]:
    if final.status == EXTRACTOR_OPENAI:
        return {"status": EXTRACTOR_OPENAI, "facts": [f.model_dump() for f in final.facts]}
    return {"status": EXTRACTOR_FALLBACK, "reason": final.reason}


def _unreadable(answer: object) -> ModelUnavailable:
    shown = str(answer).replace("\n", " ")[:200]
    return ModelUnavailable(f"the model API's answer is not a chat completion: {shown!r}")


def _retry_after_s(headers: Mapping[str, str]) -> float | None:
    """``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date), if the server sent one."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(float(raw_ms) / 1000.0, 0.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(float(raw), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _about_request_shape(exc: openai.APIStatusError) -> bool:
    """A 400 about ``response_format`` or the model is a configuration problem, not bad input."""
    if getattr(exc, "param", None) in ("response_format", "model"):
        return True
    text = exc.message.lower()
    return "response_format" in text or "json_schema" in text


# --------------------------------------------------------------------------- finpipe extract


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
