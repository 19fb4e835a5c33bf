"""Finding what a job may have created on the server before a restart, and reading a batch's
state into the stored part.

A restart does not know whether its last upload or create call happened: it looks for an input
file by its name and size, a batch by its metadata (``finpipe_job``, ``finpipe_part``), among the
newest ones (lists are newest first, so listing stops at the first one older than the job).
"""

from __future__ import annotations

from worker.batch_api.client import BatchClient, RemoteBatch, is_refusal, read_batch
from worker.batch_api.jobs import META_JOB, META_PART, BatchJob, JobPart

#: How far before a job's creation a listed file or batch may be dated and still be looked at
#: (clocks differ); listing stops at the first older one (lists are newest first).
LIST_SLACK_S = 3600.0


def find_file(client: BatchClient, job: BatchJob, name: str, size: int) -> str | None:
    """The id of an input file of this name and size uploaded for the job, if any."""
    try:
        for obj in client.files.list(purpose="batch"):
            created = float(getattr(obj, "created_at", 0) or 0)
            if created and created < job.created_at - LIST_SLACK_S:
                break
            if getattr(obj, "filename", None) == name and getattr(obj, "bytes", None) == size:
                return str(obj.id)
    except Exception as exc:
        if not is_refusal(exc):
            raise
    return None


def find_batch(client: BatchClient, job: BatchJob, part: JobPart) -> RemoteBatch | None:
    """The batch created for this part of the job, if one was (found by its metadata)."""
    for obj in client.batches.list(limit=100):
        remote = read_batch(obj)
        if remote.created_at and remote.created_at < job.created_at - LIST_SLACK_S:
            break
        meta = remote.metadata
        if meta.get(META_JOB) == job.job_id and meta.get(META_PART) == str(part.index):
            return remote
    return None


def observe(part: JobPart, remote: RemoteBatch) -> None:
    """Read what the server says of a part's batch into the part."""
    part.remote_status = remote.status
    part.counts = dict(remote.counts)
    part.output_file_id = remote.output_file_id or part.output_file_id
    part.error_file_id = remote.error_file_id or part.error_file_id
    if remote.errors:
        part.error = "; ".join(remote.errors[:5])[:1000]
