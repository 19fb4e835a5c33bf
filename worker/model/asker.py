"""One call of the engine: its request body with the parameters in use now, sending it, and what
it cost.

The body is built again for each attempt (the output format or a refused parameter may change
between attempts); until an answer was measured, calls go one at a time, because the first sizes
the others' ``max_completion_tokens`` (a rate limit charges what a call asks for). Every answered
call is recorded in the ledger and the usage log, and logged in one line.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Literal

from worker.model.cache import ExtractionCache
from worker.model.calls import Caller, Tier
from worker.model.client import ChatCompletion
from worker.model.formats import Negotiator, Variant, response_format
from worker.model.ledger import CallUsage, CostLedger
from worker.model.params import RequestShape, optional_params, request_body
from worker.model.profiles import ModelProfile
from worker.model.prompt import PROMPT_VERSION, build_messages
from worker.model.reask import Job, Round
from worker.model.tiers import FLEX_TIER
from worker.model.usage import call_usage

log = logging.getLogger(__name__)


class Asker:
    """Asks the model about one job of a round through ``caller``; thread-safe (the engine's
    threads share one)."""

    def __init__(
        self,
        caller: Caller,
        *,
        model: str,
        profile: ModelProfile | None,
        effort: str | None,
        formats: Negotiator,
        shape: RequestShape,
        ledger: CostLedger,
        cache: ExtractionCache,
        worked_examples: bool,
    ) -> None:
        self.caller = caller
        self.model = model
        self.profile = profile
        self.price = profile.price if profile is not None else None
        self.effort = effort
        self.formats = formats
        self.shape = shape
        self.ledger = ledger
        self.cache = cache
        self.worked_examples = worked_examples
        self._warm_up = threading.Lock()

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

    def call(self, rnd: Round, job: Job, tier: Tier) -> tuple[ChatCompletion, Variant, CallUsage]:
        """The answer to ``job``, the output format it was asked in and what it cost."""
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
            completion, variant = self.caller.complete(build, len(job.sids), tier)
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
        call = call_usage(
            completion,
            model=self.model,
            price=self.price,
            purpose=purpose,
            snippets=n_snippets,
            latency_ms=int((time.monotonic() - started) * 1000),
            response_format=variant.mode,
            reasoning_effort=self.effort,
            tier=tier,
        )
        self.record(call)
        log.info(
            "model call (%s, %s): %d snippet(s), %d prompt + %d completion tokens "
            "(%d cached, %d reasoning), cost %s, %d ms, finish %s",
            purpose,
            variant.mode,
            n_snippets,
            call.prompt_tokens,
            call.completion_tokens,
            call.cached_tokens,
            call.reasoning_tokens,
            "unknown" if call.cost_usd is None else f"${call.cost_usd:.6f}",
            call.latency_ms,
            call.finish_reason,
        )
        return call

    def record(self, call: CallUsage) -> None:
        """Keep one billed call in the run's ledger and the usage log."""
        self.ledger.add_call(call)
        self.cache.record_usage(call)
