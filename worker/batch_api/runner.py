"""Running batch jobs: submit, resume, poll, collect and cancel, over a client and a job store.

Every outside thing is passed in: the OpenAI client (:class:`~worker.batch_api.client.
BatchClient`), the job store (:class:`~worker.batch_api.jobstore.JobStore`), the clock ``now``
(epoch seconds), ``sleep`` when waiting, and ``sink``, which receives the results of each part once
it is collected. The runner keeps no state of its own between calls: everything it knows is in
the store, so a new runner (a new process after a kill) carries on where the last one stopped.

Rules it keeps:

- The job is saved before each call that changes the remote state (upload, create, cancel), so a
  restart knows which call may have happened and checks before repeating it: an input file is
  looked up by its name, a batch by its metadata (``finpipe_job``, ``finpipe_part``). A batch is
  never created twice for the same part, so no request is paid for twice.
- Requests already in an open job are not submitted again.
- ``sink`` gets every request of a part exactly once per collection: the answers, and the rest as
  still to do (per-request errors, and whatever an expired, failed or cancelled batch did not
  run), to be run through the synchronous path. A crash after ``sink`` returns and before the part
  is saved as collected calls it again for that part after the restart, so ``sink`` must be
  idempotent (writing cache entries by key is).
- Waiting is a loop of :meth:`BatchRunner.advance` calls; a scheduler can call ``advance`` every
  few minutes instead of keeping a process waiting for up to 24 hours.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Unpack

from worker.batch_api.client import BatchClient, is_refusal, read_batch, read_bytes
from worker.batch_api.delivery import (
    PartResult,
    ResultSink,
    RunReport,
    Submitted,
    WaitOptions,
    collected,
    not_submitted,
)
from worker.batch_api.jobs import (
    TERMINAL_STATUSES,
    BatchJob,
    JobPart,
    Outcome,
    PartState,
    Step,
    describe,
    new_job_id,
    next_step,
    other_part_running,
    refused_for_tokens,
)
from worker.batch_api.jobstore import JobStore, load_part, save_part
from worker.batch_api.remote import find_batch, find_file, observe
from worker.batch_api.requests import (
    CHAT_COMPLETIONS_URL,
    MAX_FILE_BYTES,
    MAX_REQUESTS_PER_FILE,
    BatchRequest,
    split_files,
)
from worker.batch_api.results import ParsedResults, parse_result_lines
from worker.batch_api.tokens import wait_for_room

log = logging.getLogger(__name__)


class BatchRunner:
    def __init__(
        self,
        client: BatchClient,
        store: JobStore,
        sink: ResultSink,
        *,
        now: Callable[[], float],
        endpoint: str = CHAT_COMPLETIONS_URL,
        completion_window: str = "24h",
        max_requests: int = MAX_REQUESTS_PER_FILE,
        max_bytes: int = MAX_FILE_BYTES,
        transient: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.client = client
        #: errors :meth:`wait` rides out (a dropped connection, a 5xx): it logs them and polls
        #: again at the next interval; the composition root names the SDK's classes here
        self.transient = transient
        self.store = store
        self.sink = sink
        self._now = now
        self.endpoint = endpoint
        self.completion_window = completion_window
        self.max_requests = max_requests
        self.max_bytes = max_bytes

    # ------------------------------------------------------------------ reading jobs

    def job(self, job_id: str) -> BatchJob | None:
        doc = self.store.load_job(job_id)
        return BatchJob.from_doc(doc) if doc is not None else None

    def jobs(self, *, open_only: bool = False, limit: int = 50) -> list[BatchJob]:
        return [
            BatchJob.from_doc(d) for d in self.store.find_jobs(open_only=open_only, limit=limit)
        ]

    def open_jobs(self) -> list[BatchJob]:
        return self.jobs(open_only=True, limit=1000)

    # ------------------------------------------------------------------ submitting

    def submit(self, requests: Sequence[BatchRequest]) -> Submitted:
        """Store a new job for the ``requests`` that no open job has, then upload and create
        its batches. Returns without waiting; :meth:`advance` or :meth:`wait` follow it.

        A request that an open job holds is never submitted again: it is waited for when its
        part is still running, and passed back for the synchronous path when its part was
        collected already (by an earlier run, which handed its result to its sink)."""
        running, collected = self._custom_ids_in_open_jobs()
        fresh = [r for r in requests if r.custom_id not in running | collected]
        passed_back = list({r.custom_id: r for r in requests if r.custom_id in collected}.values())
        already_open = len({r.custom_id for r in requests}) - len({r.custom_id for r in fresh})
        plan = split_files(fresh, max_requests=self.max_requests, max_bytes=self.max_bytes)
        if plan.too_large:
            log.warning(
                "%d request(s) too large for a batch input file; they take the synchronous path",
                len(plan.too_large),
            )
        to_sync = passed_back + plan.too_large
        if not plan.files:
            return Submitted(None, [], already_open, to_sync)
        now = self._now()
        job_id = base_id = new_job_id(now, (r.custom_id for f in plan.files for r in f))
        for n in range(2, 100):  # the same requests again within the same second
            if self.store.load_job(job_id) is None:
                break
            job_id = f"{base_id}-{n}"
        parts = []
        for index, file in enumerate(plan.files):
            parts.append(JobPart(index, len(file), save_part(self.store, job_id, index, file)))
        models = sorted({r.model for f in plan.files for r in f})
        job = BatchJob(job_id, now, ",".join(models), self.endpoint, parts, self.completion_window)
        self._save(job)
        log.info(
            "batch job %s: %d request(s) in %d file(s)%s",
            job_id,
            job.requests,
            len(parts),
            f", {already_open} already in an open job" if already_open else "",
        )
        job, delivered = self.advance(job_id)
        return Submitted(job, delivered, already_open, to_sync)

    def _custom_ids_in_open_jobs(self) -> tuple[set[str], set[str]]:
        """The requests of open jobs: in parts still running, and in parts collected."""
        running: set[str] = set()
        collected: set[str] = set()
        for job in self.open_jobs():
            for part in job.parts:
                if part.split_into:
                    continue  # its requests are in the parts it was split into
                into = collected if part.state is PartState.COLLECTED else running
                into.update(cid for cid, _ in self.store.load_requests(job.job_id, part.index))
        return running, collected

    # ------------------------------------------------------------------ advancing

    def advance(self, job_id: str) -> tuple[BatchJob, list[PartResult]]:
        """Take every open part of the job as far as it goes without waiting: upload, create,
        one status check, collect when finished. Returns the job and the parts collected now."""
        job = self.job(job_id)
        if job is None:
            raise KeyError(f"no batch job {job_id}")
        delivered: list[PartResult] = []
        for part in list(job.parts):
            step = next_step(part)
            if step in (Step.UPLOAD, Step.CREATE) and part.paced and other_part_running(job, part):
                continue  # the organization's batch queue was full: one part at a time
            if step is Step.UPLOAD:
                self._upload(job, part, delivered)
                step = next_step(part)
            if step is Step.CREATE:
                self._create(job, part, delivered)
                step = next_step(part)
            if step is Step.POLL:
                self._poll(job, part)
                step = next_step(part)
            if step is Step.COLLECT and refused_for_tokens(part):
                wait_for_room(self.store, job, part, load_part(self.store, job, part))
                self._save(job)
            elif step is Step.COLLECT:
                delivered.append(self._collect(job, part))
        return job, delivered

    def _upload(self, job: BatchJob, part: JobPart, delivered: list[PartResult]) -> None:
        requests = load_part(self.store, job, part)
        data = b"".join(r.line() for r in requests.values())
        name = job.file_name(part)
        file_id = find_file(self.client, job, name, len(data))
        if file_id is not None:
            log.info(
                "batch job %s part %d: input file %s found again", job.job_id, part.index, file_id
            )
        else:
            try:
                uploaded = self.client.files.create(
                    file=(name, data, "application/jsonl"), purpose="batch"
                )
            except Exception as exc:
                if not is_refusal(exc):
                    raise
                delivered.append(self._refused(job, part, requests, f"upload refused: {exc}"))
                return
            file_id = str(uploaded.id)
            log.info(
                "batch job %s part %d: uploaded %d request(s), %d bytes as %s",
                job.job_id,
                part.index,
                part.requests,
                len(data),
                file_id,
            )
        part.file_id = file_id
        part.state = PartState.UPLOADED
        self._save(job)

    def _create(self, job: BatchJob, part: JobPart, delivered: list[PartResult]) -> None:
        remote = find_batch(self.client, job, part)
        if remote is not None:
            log.info(
                "batch job %s part %d: batch %s found again (%s); not submitted twice",
                job.job_id,
                part.index,
                remote.id,
                remote.status,
            )
        else:
            try:
                created = self.client.batches.create(
                    input_file_id=str(part.file_id),
                    endpoint=job.endpoint,
                    completion_window=job.completion_window,
                    metadata=job.metadata(part),
                )
            except Exception as exc:
                if not is_refusal(exc):
                    raise
                requests = load_part(self.store, job, part)
                delivered.append(self._refused(job, part, requests, f"batch refused: {exc}"))
                return
            remote = read_batch(created)
            log.info("batch job %s part %d: submitted as %s", job.job_id, part.index, remote.id)
        part.batch_id = remote.id
        part.state = PartState.SUBMITTED
        observe(part, remote)
        self._save(job)

    def _poll(self, job: BatchJob, part: JobPart) -> None:
        remote = read_batch(self.client.batches.retrieve(str(part.batch_id)))
        before = (part.remote_status, part.counts)
        observe(part, remote)
        if (part.remote_status, part.counts) != before:
            log.info(
                "batch job %s part %d: %s %s",
                job.job_id,
                part.index,
                part.remote_status,
                part.counts or "",
            )
            self._save(job)

    def _collect(self, job: BatchJob, part: JobPart) -> PartResult:
        requests = load_part(self.store, job, part)
        parsed = ParsedResults()
        for file_id in (part.output_file_id, part.error_file_id):
            if file_id:
                parsed.add(parse_result_lines(read_bytes(self.client.files.content(file_id))))
        outcome = TERMINAL_STATUSES[str(part.remote_status)]
        result = collected(job.job_id, part.index, outcome, requests, parsed, part.error)
        self._deliver(job, part, result)
        return result

    def _refused(
        self, job: BatchJob, part: JobPart, requests: dict[str, BatchRequest], reason: str
    ) -> PartResult:
        part.error = reason[:1000]
        log.warning(
            "batch job %s part %d: %s; its %d request(s) take the synchronous path",
            job.job_id,
            part.index,
            reason,
            part.requests,
        )
        result = not_submitted(job.job_id, part.index, Outcome.FAILED, requests, reason, reason)
        self._deliver(job, part, result, outcome=Outcome.FAILED)
        return result

    def _deliver(
        self, job: BatchJob, part: JobPart, result: PartResult, outcome: Outcome | None = None
    ) -> None:
        self.sink(result)
        part.state = PartState.COLLECTED
        part.outcome = outcome or result.outcome
        part.answered = len(result.answers)
        part.failed = sum(1 for e in result.errors.values() if e.code != "not_run")
        part.todo = len(result.todo)
        self._save(job)
        level = logging.INFO if not part.todo else logging.WARNING
        log.log(
            level,
            "batch job %s part %d: %s, %d answered, %d still to do%s",
            job.job_id,
            part.index,
            part.outcome,
            part.answered,
            part.todo,
            f" ({part.error})" if part.error else "",
        )

    # ------------------------------------------------------------------ cancelling

    def cancel(self, job_id: str) -> BatchJob:
        """Ask the server to cancel every running batch of the job. A part not submitted yet is
        closed at once (its requests are handed over as still to do); a cancelled batch is
        collected by the next :meth:`advance` with what it answered before it stopped."""
        job = self.job(job_id)
        if job is None:
            raise KeyError(f"no batch job {job_id}")
        for part in job.parts:
            if part.state is PartState.UPLOADED:
                remote = find_batch(self.client, job, part)
                if remote is not None:
                    part.batch_id = remote.id
                    part.state = PartState.SUBMITTED
                    observe(part, remote)
            if part.state in (PartState.BUILDING, PartState.UPLOADED):
                requests = load_part(self.store, job, part)
                why = "job cancelled before submission"
                result = not_submitted(job.job_id, part.index, Outcome.CANCELLED, requests, why)
                self._deliver(job, part, result)
                continue
            if part.state is not PartState.SUBMITTED or part.remote_status in TERMINAL_STATUSES:
                continue
            part.cancel_requested = True
            self._save(job)
            try:
                remote = read_batch(self.client.batches.cancel(str(part.batch_id)))
            except Exception as exc:
                if not is_refusal(exc):
                    raise
                log.warning("batch job %s part %d: cancel refused: %s", job.job_id, part.index, exc)
                continue
            observe(part, remote)
            self._save(job)
            log.info("batch job %s part %d: %s", job.job_id, part.index, part.remote_status)
        return job

    # ------------------------------------------------------------------ waiting

    def wait(
        self,
        job_ids: Iterable[str],
        *,
        sleep: Callable[[float], None],
        poll_s: float,
        cancel_at: float | None = None,
        give_up_at: float | None = None,
        progress: Callable[[list[BatchJob]], None] | None = None,
    ) -> RunReport:
        """Advance the jobs every ``poll_s`` until none is open. At ``cancel_at`` (epoch s) the
        open ones are cancelled, so their partial results still come back in time; at
        ``give_up_at`` the wait stops with the jobs still open (the next run resumes them).
        ``progress`` sees the jobs after each round (a progress line for ``finpipe extract``)."""
        report = RunReport()
        pending = list(dict.fromkeys(job_ids))
        latest: dict[str, BatchJob] = {}
        cancelled: set[str] = set()
        while True:
            for job_id in pending:
                try:
                    job, results = self.advance(job_id)
                except self.transient as exc:
                    self._ride_out(job_id, exc, poll_s)
                    continue
                latest[job_id] = job
                report.delivered.extend(results)
            pending = [i for i in pending if i not in latest or latest[i].open]
            report.jobs = list(latest.values())
            if progress is not None:
                progress(report.jobs)
            if not pending:
                return report
            now = self._now()
            if give_up_at is not None and now >= give_up_at:
                log.warning("stopped waiting for batch job(s) %s", ", ".join(pending))
                return report
            if cancel_at is not None and now >= cancel_at:
                for job_id in pending:
                    if job_id in cancelled:
                        continue
                    log.warning("batch job %s is past its deadline: cancelling", job_id)
                    try:
                        self.cancel(job_id)
                    except self.transient as exc:
                        self._ride_out(job_id, exc, poll_s)
                        continue
                    cancelled.add(job_id)
            sleep(poll_s)

    def _ride_out(self, job_id: str, exc: BaseException, poll_s: float) -> None:
        log.warning(
            "batch job %s: %s: %s; trying again in %.0f s", job_id, type(exc).__name__, exc, poll_s
        )

    def run(
        self,
        requests: Sequence[BatchRequest],
        *,
        sleep: Callable[[float], None],
        poll_s: float,
        **options: Unpack[WaitOptions],
    ) -> RunReport:
        """Resume the open jobs, submit the ``requests`` they do not hold, and wait for all."""
        open_jobs = self.open_jobs()
        for job in open_jobs:
            log.info("resuming batch job %s", describe(job))
        open_ids = [j.job_id for j in open_jobs]
        submitted = self.submit(requests)
        ids = open_ids + ([submitted.job.job_id] if submitted.job is not None else [])
        report = self.wait(ids, sleep=sleep, poll_s=poll_s, **options)
        report.delivered[:0] = submitted.delivered
        report.to_sync = submitted.to_sync
        return report

    def _save(self, job: BatchJob) -> None:
        job.version += 1
        job.updated_at = self._now()
        self.store.save_job(job.to_doc())
