"""One billed chat completion: retries with backoff, the run's budget, and what to stop on.

The retry loop is tenacity's; the decisions stay ours: which failures are worth another attempt
(:func:`worker.model.failures.classify`), the cost budget checked before every attempt, and a wait
longer than ``max_wait_s`` handed to the broker (a delayed retry of the message) instead of
holding a worker thread.

The account's rate limit is no failure: every attempt waits for room first
(:class:`worker.model.pacing.Pacer`), and a 429 ``rate_limit_exceeded`` sends the same attempt
again once the server's pause is over; it counts no retry and never reaches the broker (unless
the server asks for a pause longer than ``MAX_HOLD_S``, a daily limit).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from adapters import metrics
from schemas.errors import ModelConfigError, ModelRejected, ModelUnavailable
from schemas.settings import Settings
from worker.model.client import ChatCompletion, ModelClient
from worker.model.failures import ApiFailure, Decision, classify, outcome_of, rate_limited
from worker.model.formats import Negotiator, Variant
from worker.model.ledger import CostLedger
from worker.model.pacing import Pacer
from worker.model.params import HINTS, RequestShape
from worker.model.prefill import format_mode
from worker.model.ratelimit import Budget, estimate_charge
from worker.model.tiers import FLEX_TIER, LLMMode, TierDecision, call_options, next_tier
from worker.packing import backoff_s

#: a rate-limit pause longer than this (a daily limit) goes to the broker's delayed retries
MAX_HOLD_S = 900.0

#: builds the request for the variant and the parameters in use now
BuildRequest = Callable[[], tuple[dict[str, Any], Variant]]


@dataclass
class Tier:
    """The service tier of the calls for one batch of snippets, and their timeout: in flex mode
    ``service_tier="flex"`` and a long timeout until the flex tier has no capacity (a 429
    "resource unavailable"), then the standard tier for the rest of that batch."""

    service_tier: str | None = None
    timeout_s: float | None = None

    @classmethod
    def for_mode(cls, mode: LLMMode, timeout_s: float) -> Tier:
        options = call_options(mode, timeout_s)
        return cls(options.get("service_tier"), options.get("timeout"))

    @property
    def billed(self) -> Literal["standard", "flex"]:
        return "flex" if self.service_tier == FLEX_TIER else "standard"


def _flex_refused(failure: ApiFailure, body: dict[str, Any]) -> TierDecision:
    tier = body.get("service_tier")
    error = {"code": failure.code, "message": failure.message}
    return next_tier(tier if isinstance(tier, str) else None, failure.status, error)


log = logging.getLogger(__name__)


def _transient(exc: BaseException, body: dict[str, Any]) -> bool:
    if not isinstance(exc, ApiFailure) or _flex_refused(exc, body).fell_back:
        return False
    return classify(exc, body).verdict == "transient"


class Caller:
    """Makes calls for one engine; thread-safe (the client and the ledger are)."""

    def __init__(
        self,
        client: ModelClient,
        settings: Settings,
        ledger: CostLedger,
        shape: RequestShape,
        formats: Negotiator,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float],
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 20.0,
        max_wait_s: float = 60.0,
        pacer: Pacer | None = None,
    ) -> None:
        self.client = client
        self.pacer = pacer or Pacer(
            Budget(settings.tpm, settings.rpm),
            on_wait=lambda seconds, _reason: metrics.rate_limit_waited(settings.model, seconds),
        )
        self.settings = settings
        self.ledger = ledger
        self.shape = shape
        self.formats = formats
        self._sleep = sleep
        self._rand = rand
        self._backoff_base_s = backoff_base_s
        self._backoff_cap_s = backoff_cap_s
        self._max_wait_s = max_wait_s

    def complete(
        self, build: BuildRequest, n_snippets: int, tier: Tier | None = None
    ) -> tuple[ChatCompletion, Variant]:
        """The completion of the request ``build`` makes, and the output format it was asked
        in. Transient failures are retried; a refused optional parameter is left out and a
        refused output format replaced, each once per run; a flex call the flex tier has no
        capacity for moves ``tier`` to the standard tier (logged) and is asked again; anything
        else raises :class:`ModelUnavailable`, :class:`ModelRejected` or
        :class:`ModelConfigError`."""
        tier = tier or Tier()
        with self.formats.probing():
            while True:
                body, variant = build()
                try:
                    completion = self._with_retries(body, tier.timeout_s)
                except ApiFailure as failure:
                    fallback = _flex_refused(failure, body)
                    if fallback.fell_back:
                        log.warning("model call of %d snippet(s): %s", n_snippets, fallback.reason)
                        tier.service_tier, tier.timeout_s = fallback.service_tier, None
                        continue
                    decision = classify(failure, body)
                    if not self._adapt(decision, failure, variant, body):
                        raise self._final_error(failure, decision, variant, n_snippets) from failure
                    continue
                self.formats.settle()
                return completion, variant

    def _adapt(
        self, decision: Decision, failure: ApiFailure, variant: Variant, body: dict[str, Any]
    ) -> bool:
        """Leave out a refused parameter or move past a refused output format, once per run;
        False when there is nothing to change."""
        if decision.verdict == "param" and decision.param is not None:
            return self.shape.drop(decision.param, _short(failure), body)
        if decision.verdict == "format":
            return self.formats.fall_back(variant, _short(failure))
        return False

    def _with_retries(self, body: dict[str, Any], timeout_s: float | None) -> ChatCompletion:
        retries = self.settings.llm_max_retries
        retrying = Retrying(
            retry=retry_if_exception(lambda exc: _transient(exc, body)),
            stop=stop_after_attempt(retries + 1),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=self._log_retry,
            retry_error_callback=self._give_up,
        )
        completion: ChatCompletion = retrying(self._attempt, body, timeout_s)
        return completion

    def _attempt(self, body: dict[str, Any], timeout_s: float | None) -> ChatCompletion:
        budget = self.settings.max_cost_usd
        if budget is not None and self.ledger.known_cost_usd >= budget:
            raise ModelUnavailable(
                f"cost budget reached: ${self.ledger.known_cost_usd:.4f} of ${budget:.4f} "
                "(FINPIPE_MAX_COST_USD); no new calls this run"
            )
        charge = estimate_charge(body)
        mode = format_mode(body)
        while True:
            ticket = self.pacer.acquire(charge)
            started = time.monotonic()
            try:
                completion, headers = self.client.send(body, timeout_s)
            except ApiFailure as failure:
                metrics.model_call(self.settings.model, mode, outcome_of(failure), 0.0)
                if not rate_limited(failure):
                    self.pacer.answered(ticket, failure.headers)
                    raise
                pause_s = self.pacer.refused(ticket, failure.headers, failure.message)
                if pause_s > MAX_HOLD_S:
                    raise ModelUnavailable(
                        f"model API rate limit asks for a pause of {pause_s:.0f} s: {failure}",
                        retry_after_s=pause_s,
                    ) from failure
                continue
            metrics.model_call(self.settings.model, mode, "ok", time.monotonic() - started)
            self.pacer.answered(ticket, headers)
            return completion

    def _wait(self, state: RetryCallState) -> float:
        failure = _failure_of(state)
        delay = backoff_s(
            state.attempt_number - 1,
            rand=self._rand,
            base_s=self._backoff_base_s,
            cap_s=self._backoff_cap_s,
            retry_after_s=failure.retry_after_s,
        )
        if delay > self._max_wait_s:
            # not worth a worker thread: the broker's delayed retry takes it from here
            raise ModelUnavailable(
                f"model API asks us to wait {delay:.0f} s: {failure}", retry_after_s=delay
            ) from failure
        return delay

    def _log_retry(self, state: RetryCallState) -> None:
        failure = _failure_of(state)
        log.warning(
            "model call failed (%s); retry %d/%d in %.2f s",
            failure,
            state.attempt_number,
            self.settings.llm_max_retries,
            state.upcoming_sleep,
        )

    def _give_up(self, state: RetryCallState) -> ChatCompletion:
        failure = _failure_of(state)
        raise ModelUnavailable(
            f"model API unavailable after {state.attempt_number} attempt(s): {failure}",
            retry_after_s=failure.retry_after_s,
        ) from failure

    def _final_error(
        self, failure: ApiFailure, decision: Decision, variant: Variant, n_snippets: int
    ) -> Exception:
        model = self.settings.model
        where = self.settings.openai_base_url or "api.openai.com"
        if decision.verdict == "param":
            change = HINTS.get(decision.param or "", "FINPIPE_MODEL or OPENAI_BASE_URL")
            return ModelConfigError(
                f"model API at {where} still refuses the request for model {model!r} after "
                f"leaving out {decision.param!r}: {failure}; change {change}"
            )
        if decision.verdict == "format":
            return ModelConfigError(
                f"model API at {where} refuses the output format {variant} for model "
                f"{model!r}: {_short(failure)}; set FINPIPE_RESPONSE_FORMAT=auto (or "
                "json_object, or prompt)"
            )
        if decision.verdict == "config":
            return ModelConfigError(
                f"model API answered {failure.status} for model {model!r} at {where}: "
                f"{failure.message} ({decision.hint})"
            )
        if decision.verdict == "rejected":
            return ModelRejected(
                f"model API answered {failure.status} for a call of {n_snippets} snippet(s): "
                f"{failure.message}"
            )
        # "later": the server asked not to be retried now; the broker retries the message
        return ModelUnavailable(
            f"model API unavailable: {failure}", retry_after_s=failure.retry_after_s
        )


def _short(failure: ApiFailure) -> str:
    return str(failure).replace("\n", " ")[:300]


def _failure_of(state: RetryCallState) -> ApiFailure:
    exc = state.outcome.exception() if state.outcome is not None else None
    assert isinstance(exc, ApiFailure)
    return exc
