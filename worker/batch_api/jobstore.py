"""Where batch jobs are kept between runs: the :class:`JobStore` protocol and a memory store.

The MongoDB implementation lives with the other collections in the MongoDB adapter; this module
says what it must do. Two collections:

``batch_jobs``, one document per job, ``_id`` = the job id (the dict of
:meth:`worker.batch_api.jobs.BatchJob.to_doc`)::

    {"_id": "batch-20261130T020000Z-1a2b3c4d", "job_id": ..., "created_at": <epoch s>,
     "updated_at": <epoch s>, "model": ..., "endpoint": "/v1/chat/completions",
     "completion_window": "24h", "version": <int>, "doc_version": 1,
     "open": <bool>, "state": "building|uploaded|submitted|collected",
     "parts": [{"index", "requests", "bytes", "state", "file_id", "batch_id", "remote_status",
                "output_file_id", "error_file_id", "counts", "cancel_requested", "outcome",
                "error", "answered", "failed", "todo"}]}

  ``save_job`` is a compare-and-set on ``version``: insert when ``version`` is 1, otherwise
  ``replace_one({"_id": id, "version": version - 1}, doc)``; no match means another process saved
  the job meanwhile: raise :class:`StaleJob` (the runner stops and the next run reloads it).
  Index ``{"open": 1, "created_at": -1}`` for ``find_jobs``.

``batch_requests``, one document per request line of a part, ``_id`` = ``"<job id>:<custom id>"``::

    {"_id": ..., "job_id": ..., "part": <int>, "seq": <int>, "custom_id": "fp-...",
     "line": "<the JSONL line, as sent>"}

  The line is stored as a string: request bodies hold JSON schema keys such as ``$defs`` that a
  document field name cannot start with. ``save_requests`` is an idempotent upsert by ``_id``
  (``bulk_write`` of ``ReplaceOne(..., upsert=True)``), so saving the same part twice after a crash
  changes nothing; ``load_requests`` sorts by ``seq``. Index ``{"job_id": 1, "part": 1, "seq": 1}``.
  Requests are saved before their job document; requests of a job that was never saved are
  orphans (a crash in between) and can be deleted after a day.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from schemas.errors import StaleJob
from worker.batch_api.jobs import BatchJob, JobPart
from worker.batch_api.requests import BatchRequest

__all__ = ["JobStore", "MemoryJobStore", "StaleJob", "load_part", "save_part"]


class JobStore(Protocol):
    def save_job(self, doc: dict[str, Any]) -> None:
        """Insert or replace the job document, compare-and-set on ``version``."""
        ...

    def load_job(self, job_id: str) -> dict[str, Any] | None: ...

    def find_jobs(self, *, open_only: bool = False, limit: int = 50) -> list[dict[str, Any]]:
        """Job documents, newest ``created_at`` first."""
        ...

    def save_requests(self, job_id: str, part: int, lines: Sequence[tuple[str, str]]) -> None:
        """Store ``(custom_id, line)`` pairs of one part, in order; idempotent."""
        ...

    def load_requests(self, job_id: str, part: int) -> list[tuple[str, str]]:
        """The ``(custom_id, line)`` pairs of one part, in the order saved."""
        ...


def save_part(store: JobStore, job_id: str, index: int, requests: Iterable[BatchRequest]) -> int:
    """Store the request lines of part ``index`` of a job, in order; the part's size in bytes."""
    lines = [(r.custom_id, r.line().decode("utf-8")) for r in requests]
    store.save_requests(job_id, index, lines)
    return sum(len(line.encode("utf-8")) for _, line in lines)


def load_part(store: JobStore, job: BatchJob, part: JobPart) -> dict[str, BatchRequest]:
    """The stored requests of one part of ``job`` by custom id, in order; RuntimeError when
    they are not as many as the part says (the store lost some)."""
    out: dict[str, BatchRequest] = {}
    for custom_id, line in store.load_requests(job.job_id, part.index):
        doc = json.loads(line)
        out[custom_id] = BatchRequest(custom_id, doc["body"], doc.get("url", job.endpoint))
    if len(out) != part.requests:
        raise RuntimeError(
            f"batch job {job.job_id} part {part.index}: {len(out)} stored request(s), "
            f"expected {part.requests}"
        )
    return out


class MemoryJobStore:
    """A :class:`JobStore` in memory, with the same compare-and-set rule as the real one. Keeps
    deep copies, so a caller mutating its objects never changes what is stored."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.requests: dict[tuple[str, int], dict[str, str]] = {}
        self.saves = 0

    def save_job(self, doc: dict[str, Any]) -> None:
        with self._lock:
            job_id = str(doc["_id"])
            version = int(doc["version"])
            current = self.jobs.get(job_id)
            expected = 0 if current is None else int(current["version"])
            if version != expected + 1:
                raise StaleJob(job_id, expected)
            self.jobs[job_id] = copy.deepcopy(doc)
            self.saves += 1

    def load_job(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            doc = self.jobs.get(job_id)
            return copy.deepcopy(doc) if doc is not None else None

    def find_jobs(self, *, open_only: bool = False, limit: int = 50) -> list[dict[str, Any]]:
        with self._lock:
            docs = [d for d in self.jobs.values() if d["open"] or not open_only]
            docs.sort(key=lambda d: d["created_at"], reverse=True)
            return copy.deepcopy(docs[:limit])

    def save_requests(self, job_id: str, part: int, lines: Sequence[tuple[str, str]]) -> None:
        with self._lock:
            stored = self.requests.setdefault((job_id, part), {})
            for custom_id, line in lines:
                stored[custom_id] = line

    def load_requests(self, job_id: str, part: int) -> list[tuple[str, str]]:
        with self._lock:
            return list(self.requests.get((job_id, part), {}).items())
