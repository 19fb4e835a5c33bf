"""What the runner hands over: the result of one part of a job (every request answered or
with why not) and the report of a run. Pure data; the runner builds them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from worker.batch_api.jobs import BatchJob, Outcome
from worker.batch_api.requests import BatchRequest
from worker.batch_api.results import ParsedResults, RequestError


@dataclass
class PartResult:
    """What one part of a job returned: every request of the part is either in ``answers`` or
    in ``errors`` (with why it has no answer)."""

    job_id: str
    part: int
    outcome: Outcome
    requests: dict[str, BatchRequest]
    answers: dict[str, dict[str, Any]]
    errors: dict[str, RequestError]
    #: why the whole batch failed, as the server said
    reason: str | None = None
    #: answer lines whose custom_id is not a request of this part
    unknown_lines: int = 0

    @property
    def todo(self) -> list[BatchRequest]:
        """The requests without an answer, in their order: for the synchronous path."""
        return [r for cid, r in self.requests.items() if cid not in self.answers]


ResultSink = Callable[[PartResult], None]


class WaitOptions(TypedDict, total=False):
    """When the runner's ``wait`` cancels the open jobs or stops waiting (epoch s), and who sees
    the jobs after each round; the runner's ``run`` and the nightly prefill pass them on."""

    cancel_at: float | None
    give_up_at: float | None
    progress: Callable[[list[BatchJob]], None] | None


@dataclass
class Submitted:
    """A new job (None when nothing was left to submit) and the parts it already collected;
    how many requests were left out because an open job has them; the requests for the
    synchronous path: too large for any input file, or in a part of an open job that was
    collected before (its results went to the sink of an earlier run)."""

    job: BatchJob | None
    delivered: list[PartResult] = field(default_factory=list)
    already_open: int = 0
    to_sync: list[BatchRequest] = field(default_factory=list)


@dataclass
class RunReport:
    """What one ``wait`` or ``run`` of :class:`~worker.batch_api.runner.BatchRunner` did."""

    jobs: list[BatchJob] = field(default_factory=list)
    delivered: list[PartResult] = field(default_factory=list)
    #: requests that were never in a batch of this run (see :class:`Submitted`)
    to_sync: list[BatchRequest] = field(default_factory=list)

    @property
    def open_jobs(self) -> list[str]:
        """Jobs still running when the wait gave up."""
        return [j.job_id for j in self.jobs if j.open]

    @property
    def answers(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for result in self.delivered:
            out.update(result.answers)
        return out

    @property
    def todo(self) -> list[BatchRequest]:
        """Requests for the synchronous path: without an answer, or never batched."""
        done = self.answers
        out = {r.custom_id: r for res in self.delivered for r in res.todo}
        out.update((r.custom_id, r) for r in self.to_sync)
        return [r for cid, r in out.items() if cid not in done]


def collected(
    job_id: str,
    part: int,
    outcome: Outcome,
    requests: dict[str, BatchRequest],
    parsed: ParsedResults,
    reason: str | None,
) -> PartResult:
    """The result of a finished batch from its ``parsed`` output and error files: a request
    with neither an answer nor an error was not run before the batch ended."""
    answers = {cid: body for cid, body in parsed.answers.items() if cid in requests}
    errors: dict[str, RequestError] = {}
    for cid in requests:
        if cid in answers:
            continue
        errors[cid] = parsed.errors.get(cid) or RequestError(
            "not_run", f"batch {outcome.value} before this request was answered"
        )
    seen = set(parsed.answers) | set(parsed.errors)
    unknown = len(seen) - len(seen & set(requests))
    return PartResult(job_id, part, outcome, requests, answers, errors, reason, unknown)


def not_submitted(
    job_id: str,
    part: int,
    outcome: Outcome,
    requests: Mapping[str, BatchRequest],
    why: str,
    reason: str | None = None,
) -> PartResult:
    """The result of a part whose batch was never created: every request still to do, ``why``
    on each; ``reason``: why the whole part failed, when it did."""
    return PartResult(
        job_id,
        part,
        outcome,
        dict(requests),
        {},
        dict.fromkeys(requests, RequestError("not_submitted", why)),
        reason,
    )
