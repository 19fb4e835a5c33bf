"""A batch job and its parts as stored, and the step each part takes next. Pure.

A job is one run's requests; it has one part per input file (the Batch API takes at most 50,000
requests and 200 MB per file). Each part moves through::

    building ──upload──▶ uploaded ──create──▶ submitted ──poll…──▶ collected
       │                    │                     │
       └──────────── cancel / refused ────────────┴──▶ collected (outcome cancelled / failed)

The state is saved *before* each call that changes the remote state, so after a crash the stored
state says which call may have happened: ``building`` → the input file may exist (found again by
its file name), ``uploaded`` → the batch may exist (found again by its metadata, which names the
job and the part), ``submitted`` → the batch id is known. ``collected`` is saved only after the
results were handed over, so a crash in between hands them over again (the receiver is
idempotent). The ``outcome`` of a collected part is the remote end state: ``completed``,
``expired``, ``failed`` or ``cancelled``; whatever did not come back is handed over as still to do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

#: Metadata keys naming the job and the part on the remote batch.
META_JOB = "finpipe_job"
META_PART = "finpipe_part"
META_REQUESTS = "finpipe_requests"
#: Version of the stored job document.
JOB_DOC_VERSION = 1


class PartState(StrEnum):
    BUILDING = "building"
    UPLOADED = "uploaded"
    SUBMITTED = "submitted"
    COLLECTED = "collected"


class Outcome(StrEnum):
    COMPLETED = "completed"
    EXPIRED = "expired"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: The remote batch statuses that end a job, and what each means here.
TERMINAL_STATUSES = {
    "completed": Outcome.COMPLETED,
    "expired": Outcome.EXPIRED,
    "failed": Outcome.FAILED,
    "cancelled": Outcome.CANCELLED,
}


class Step(StrEnum):
    """What a part needs next."""

    UPLOAD = "upload"
    CREATE = "create"
    POLL = "poll"
    COLLECT = "collect"
    NONE = "none"


@dataclass
class JobPart:
    """One input file and the batch made of it."""

    index: int
    requests: int
    bytes: int
    state: PartState = PartState.BUILDING
    file_id: str | None = None
    batch_id: str | None = None
    remote_status: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    #: the remote request counts when last seen (total, completed, failed)
    counts: dict[str, int] = field(default_factory=dict)
    cancel_requested: bool = False
    outcome: Outcome | None = None
    #: why the batch failed or was refused, as the server said
    error: str | None = None
    answered: int = 0
    failed: int = 0
    todo: int = 0
    #: the parts this one was split into after the organization's queue of batch tokens was
    #: full (``token_limit_exceeded``): its requests live on there
    split_into: list[int] = field(default_factory=list)
    #: made by such a split: created only while no other part of the job runs
    paced: bool = False

    @property
    def filename(self) -> str:
        return f"part{self.index}.jsonl"


@dataclass
class BatchJob:
    """The stored record of a job (document ``version`` goes up by one at every save)."""

    job_id: str
    created_at: float
    model: str
    endpoint: str
    parts: list[JobPart]
    completion_window: str = "24h"
    version: int = 0
    updated_at: float = 0.0

    @property
    def open(self) -> bool:
        return any(p.state is not PartState.COLLECTED for p in self.parts)

    @property
    def state(self) -> PartState:
        """The least advanced state of its parts (``collected`` once every part is)."""
        order = list(PartState)
        return min((p.state for p in self.parts), key=order.index, default=PartState.COLLECTED)

    @property
    def requests(self) -> int:
        return sum(p.requests for p in self.parts)

    def file_name(self, part: JobPart) -> str:
        """The input file's name: names the job, so a file uploaded before a crash is found."""
        return f"finpipe-{self.job_id}-{part.filename}"

    def metadata(self, part: JobPart) -> dict[str, str]:
        return {
            META_JOB: self.job_id,
            META_PART: str(part.index),
            META_REQUESTS: str(part.requests),
        }

    def to_doc(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["_id"] = self.job_id
        doc["doc_version"] = JOB_DOC_VERSION
        doc["open"] = self.open
        doc["state"] = self.state.value
        for part in doc["parts"]:
            part["state"] = str(part["state"])
            part["outcome"] = None if part["outcome"] is None else str(part["outcome"])
        return doc

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> BatchJob:
        parts = []
        for raw in doc["parts"]:
            fields = {k: v for k, v in raw.items() if k in JobPart.__dataclass_fields__}
            fields["state"] = PartState(fields["state"])
            outcome = fields.get("outcome")
            fields["outcome"] = None if outcome is None else Outcome(outcome)
            fields["counts"] = dict(fields.get("counts") or {})
            parts.append(JobPart(**fields))
        return cls(
            job_id=str(doc["job_id"]),
            created_at=float(doc["created_at"]),
            model=str(doc["model"]),
            endpoint=str(doc["endpoint"]),
            parts=parts,
            completion_window=str(doc.get("completion_window", "24h")),
            version=int(doc.get("version", 0)),
            updated_at=float(doc.get("updated_at", 0.0)),
        )


#: the error of a batch refused because the organization's queue of batch tokens is full
TOKEN_LIMIT = "token_limit_exceeded"


def refused_for_tokens(part: JobPart) -> bool:
    """A batch that failed because the organization's queue of batch tokens was full: nothing
    ran; its requests wait for room in smaller parts (they never take the synchronous path)."""
    return part.remote_status == "failed" and TOKEN_LIMIT in (part.error or "")


def split_part(
    job: BatchJob, part: JobPart, custom_ids: list[str]
) -> list[tuple[JobPart, list[str]]]:
    """Close ``part`` (refused for tokens) and add its requests to ``job`` as two new paced
    parts, halves of it (one when it holds a single request): the new parts and their ids."""
    middle = (len(custom_ids) + 1) // 2
    out = []
    for half in (custom_ids[:middle], custom_ids[middle:]):
        if half:
            new = JobPart(len(job.parts), len(half), 0, paced=True)
            job.parts.append(new)
            part.split_into.append(new.index)
            out.append((new, half))
    part.state = PartState.COLLECTED
    part.outcome = Outcome.FAILED
    return out


def other_part_running(job: BatchJob, part: JobPart) -> bool:
    """Another part of the job is uploaded or submitted and not finished yet."""
    return any(
        other is not part
        and other.state in (PartState.UPLOADED, PartState.SUBMITTED)
        and next_step(other) is not Step.COLLECT
        for other in job.parts
    )


def next_step(part: JobPart) -> Step:
    """The step ``part`` takes next, from its stored state alone."""
    if part.state is PartState.BUILDING:
        return Step.UPLOAD
    if part.state is PartState.UPLOADED:
        return Step.CREATE
    if part.state is PartState.SUBMITTED:
        return Step.COLLECT if part.remote_status in TERMINAL_STATUSES else Step.POLL
    return Step.NONE


def new_job_id(now_s: float, custom_ids: Iterable[str]) -> str:
    """``batch-20261130T020000Z-1a2b3c4d``: the time it was made and a digest of its requests."""
    digest = hashlib.sha256("\n".join(sorted(custom_ids)).encode("utf-8")).hexdigest()[:8]
    stamp = datetime.fromtimestamp(now_s, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"batch-{stamp}-{digest}"


def describe(job: BatchJob) -> str:
    """One line per job for logs and ``finpipe batch list``."""
    parts = ", ".join(
        f"part {p.index}: {p.outcome or p.remote_status or p.state} "
        f"({p.counts.get('completed', p.answered)}/{p.requests})"
        for p in job.parts
    )
    return f"{job.job_id} {job.state} {job.requests} request(s) [{parts}]"


def show(job: BatchJob) -> list[str]:
    """The lines of ``finpipe batch show``: the job, then one line per part."""
    lines = [
        f"job {job.job_id}: {job.state}, {job.requests} request(s), model {job.model}, "
        f"created {_stamp(job.created_at)}, updated {_stamp(job.updated_at)}"
    ]
    for p in job.parts:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(p.counts.items()))
        lines.append(
            f"  part {p.index}: {p.state}"
            + (f" ({p.outcome})" if p.outcome else "")
            + f", {p.requests} request(s), {p.bytes} bytes"
            + (f", batch {p.batch_id} {p.remote_status}" if p.batch_id else "")
            + (f", remote counts: {counts}" if counts else "")
            + (f", {p.answered} answered, {p.todo} to do" if p.state is PartState.COLLECTED else "")
            + (", cancel requested" if p.cancel_requested else "")
            + (f", error: {p.error}" if p.error else "")
        )
    return lines


def _stamp(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
