"""What to do with an answer, one small function per case. Pure: no network, no clock.

A :class:`Round` asks the model about some snippets until each has a :class:`Final` answer:

- :func:`on_cut_off`: a truncated, refused or filtered answer splits the call in halves; a single
  snippet still cut off falls back to the rules extractor;
- :func:`on_answer`: each snippet's facts are validated and grounded; a snippet whose facts all
  stand is final;
- :func:`on_failed`: the snippets that failed are asked again once, together, with the errors;
  after the re-ask they fall back to the rules extractor.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from schemas.fact import EXTRACTOR_FALLBACK, EXTRACTOR_OPENAI
from worker.model.grounding import SnippetOutcome, SnippetRequest, ground_all
from worker.model.ledger import CallUsage, shares
from worker.model.schema import LLMFact, ParsedAnswer

log = logging.getLogger(__name__)


@dataclass
class Job:
    """One call to make: these snippet ids, first ask / re-ask / split."""

    sids: list[str]
    purpose: str  # "batch", "reask" or "split"
    reask: dict[str, str] | None = None
    previous: ParsedAnswer | None = None
    previous_raw: str | None = None

    @property
    def attempt(self) -> int:
        return 2 if self.reask is not None else 1

    def previous_answer(self) -> str | None:
        """What the model answered before for these snippets (shown in a re-ask)."""
        if not self.reask:
            return None
        answered = self.previous is not None and any(s in self.previous.facts for s in self.sids)
        if self.previous is not None and answered:
            return self.previous.answer_for(self.sids)
        return self.previous_raw


@dataclass
class Final:
    status: str  # "openai" or "rules-fallback"
    facts: list[LLMFact] = field(default_factory=list)
    reason: str | None = None
    #: the output format of the answer (part of the cache key)
    mode: str = "json_schema"


@dataclass
class Round:
    """The snippets of one engine call, by the short ids the model sees (``s1``, ``s2``...)."""

    by_sid: dict[str, SnippetRequest]
    outcomes: dict[str, SnippetOutcome]
    finals: dict[str, Final]
    queue: deque[Job] = field(default_factory=deque)
    #: the output format of the answer being read
    mode: str = "json_schema"

    @classmethod
    def start(
        cls,
        leaders: list[SnippetRequest],
        outcomes: dict[str, SnippetOutcome],
        finals: dict[str, Final],
    ) -> Round:
        by_sid = {f"s{i}": r for i, r in enumerate(leaders, 1)}
        return cls(by_sid, outcomes, finals, deque([Job(list(by_sid), "batch")]))

    def outcome(self, sid: str) -> SnippetOutcome:
        return self.outcomes[self.by_sid[sid].id]

    def finish(self, sid: str, final: Final) -> None:
        final.mode = self.mode
        self.finals[self.by_sid[sid].id] = final

    def snippets(self, job: Job) -> list[tuple[str, str]]:
        return [(sid, self.by_sid[sid].text) for sid in job.sids]

    def charge(self, job: Job, call: CallUsage) -> None:
        """Each snippet's share of the call, by length."""
        weights = [len(self.by_sid[s].text) for s in job.sids]
        for sid, share in zip(job.sids, shares(call, weights), strict=True):
            self.outcome(sid).usage.add(share)


def cut_off_reason(choice: Any) -> tuple[str | None, str | None]:
    """(why the answer is unusable as a whole, the refusal text) or (None, None)."""
    if choice is None:
        return None, None
    refusal = getattr(choice.message, "refusal", None)
    if refusal:
        return f"refused: {refusal}", refusal
    if choice.finish_reason == "length":
        return "answer truncated", None
    if choice.finish_reason == "content_filter":
        return "answer withheld by the content filter", None
    return None, None


def on_cut_off(rnd: Round, job: Job, why: str, refusal: str | None) -> None:
    """Split the call in halves; a single snippet falls back to the rules extractor."""
    if len(job.sids) > 1:
        half = len(job.sids) // 2
        log.info("call for %d snippets: %s; splitting in halves", len(job.sids), why)
        for part in (job.sids[:half], job.sids[half:]):
            reask = None if job.reask is None else {s: job.reask[s] for s in part}
            rnd.queue.append(Job(part, "split", reask, job.previous, job.previous_raw))
        return
    sid = job.sids[0]
    if refusal:
        rnd.outcome(sid).refusal = refusal
    log.info("snippet %s: %s; falling back to rules", rnd.by_sid[sid].id, why)
    rnd.finish(sid, Final(EXTRACTOR_FALLBACK, reason=why))


def on_answer(rnd: Round, job: Job, parsed: ParsedAnswer) -> dict[str, str]:
    """Ground each snippet's facts; finish the snippets that stand. Returns the failed ones
    with their errors."""
    failed: dict[str, str] = {}
    for sid in job.sids:
        if sid in parsed.errors:
            failed[sid] = parsed.errors[sid]
            continue
        kept, rejected = ground_all(rnd.by_sid[sid], parsed.facts[sid], job.attempt)
        rnd.outcome(sid).rejected.extend(rejected)
        if not rejected:
            rnd.finish(sid, Final(EXTRACTOR_OPENAI, [c for _, c in kept]))
        elif job.reask is None:
            failed[sid] = "; ".join(
                f"value_text {r.candidate['value_text']!r}: {r.reason}" for r in rejected
            )
        elif kept:
            # second answer: keep what is grounded, the rest stays rejected
            rnd.finish(sid, Final(EXTRACTOR_OPENAI, [c for _, c in kept]))
        else:
            failed[sid] = "no grounded fact after re-ask"
    return failed


def on_failed(
    rnd: Round, job: Job, failed: dict[str, str], parsed: ParsedAnswer, content: str | None
) -> None:
    """Ask the failed snippets again once, together; after a re-ask, fall back to rules."""
    if job.reask is None:
        log.info(
            "call for %d snippets: %d failed validation; asking again", len(job.sids), len(failed)
        )
        rnd.queue.append(Job(list(failed), "reask", failed, parsed, (content or "")[:4000]))
        return
    for sid, err in failed.items():
        log.info(
            "snippet %s: still invalid after re-ask (%s); falling back to rules",
            rnd.by_sid[sid].id,
            err,
        )
        rnd.finish(sid, Final(EXTRACTOR_FALLBACK, reason=err))
