"""A batch refused because the organization's queue of batch tokens is full.

OpenAI fails such a batch at validation with ``token_limit_exceeded`` (nothing ran): the queue
holds the tokens of the batches still running, and frees up as they finish. The part's requests
then wait for room in two smaller parts (:func:`worker.batch_api.jobs.split_part`), created one
at a time while no other part of the job runs, and split again if still refused. They never take
the synchronous path for it: a night under the batch limit stays at the batch price.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from worker.batch_api.jobs import BatchJob, JobPart, split_part
from worker.batch_api.jobstore import JobStore, save_part
from worker.batch_api.requests import BatchRequest

log = logging.getLogger(__name__)


def wait_for_room(
    store: JobStore, job: BatchJob, part: JobPart, requests: Mapping[str, BatchRequest]
) -> None:
    """Close ``part`` and store its requests as the new parts of ``job`` (the caller saves the
    job)."""
    for new, ids in split_part(job, part, list(requests)):
        new.bytes = save_part(store, job.job_id, new.index, (requests[cid] for cid in ids))
    log.warning(
        "batch job %s part %d: %s; its %d request(s) wait for room as part(s) %s",
        job.job_id,
        part.index,
        (part.error or "token_limit_exceeded")[:300],
        part.requests,
        ", ".join(str(i) for i in part.split_into),
    )
