"""Batch API jobs and their request lines (``worker.batch_api.jobstore.JobStore``, which
describes both collections; a job document is ``worker.batch_api.jobs.BatchJob.to_doc``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

from adapters.mongo.client import Connection, insert_new
from adapters.mongo.names import BATCH_JOBS, BATCH_REQUESTS
from schemas.errors import StaleJob

#: request lines inserted per call
_CHUNK = 1000


class BatchRequestDocument(TypedDict):
    """A ``batch_requests`` document: one request line of a job's part, in order (``seq``)."""

    _id: str
    job_id: str
    part: int
    seq: int
    custom_id: str
    line: str


def batch_request_documents(
    job_id: str, part: int, lines: Sequence[tuple[str, str]]
) -> list[BatchRequestDocument]:
    """``_id`` is ``"<job id>:<custom id>"``: the same id always has the same line."""
    return [
        BatchRequestDocument(
            _id=f"{job_id}:{cid}", job_id=job_id, part=part, seq=seq, custom_id=cid, line=line
        )
        for seq, (cid, line) in enumerate(lines)
    ]


class BatchJobs:
    """The ``batch_jobs`` and ``batch_requests`` collections."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def save_job(self, doc: dict[str, Any]) -> None:
        """Insert (version 1) or replace the job document, compare-and-set on ``version``;
        :class:`StaleJob` when another process saved it meanwhile."""
        job_id, version = str(doc["_id"]), int(doc["version"])
        with self.conn.translated("batch job write"):
            if version == 1:
                if insert_new(self.conn.db[BATCH_JOBS], [doc]):
                    raise StaleJob(job_id, self._job_version(job_id))
                return
            jobs = self.conn.db[BATCH_JOBS]
            result = jobs.replace_one({"_id": job_id, "version": version - 1}, doc)
        if result.matched_count == 0:
            raise StaleJob(job_id, self._job_version(job_id))

    def _job_version(self, job_id: str) -> int:
        doc = self.load_job(job_id)
        return int(doc["version"]) if doc is not None else 0

    def load_job(self, job_id: str) -> dict[str, Any] | None:
        with self.conn.translated("batch job lookup"):
            doc = self.conn.db[BATCH_JOBS].find_one({"_id": job_id})
        return dict(doc) if doc is not None else None

    def find_jobs(self, *, open_only: bool = False, limit: int = 50) -> list[dict[str, Any]]:
        """Job documents, newest first (open ones only with ``open_only``)."""
        query = {"open": True} if open_only else {}
        with self.conn.translated("batch job query"):
            cursor = self.conn.db[BATCH_JOBS].find(query).sort("created_at", -1).limit(limit)
            return [dict(d) for d in cursor]

    def save_requests(self, job_id: str, part: int, lines: Sequence[tuple[str, str]]) -> None:
        """Store the ``(custom_id, line)`` pairs of one part in order; saving them again changes
        nothing (inserted by ``_id``, duplicates ignored)."""
        docs = batch_request_documents(job_id, part, lines)
        with self.conn.translated("batch request write"):
            for start in range(0, len(docs), _CHUNK):
                insert_new(self.conn.db[BATCH_REQUESTS], docs[start : start + _CHUNK])

    def load_requests(self, job_id: str, part: int) -> list[tuple[str, str]]:
        with self.conn.translated("batch request query"):
            docs = list(
                self.conn.db[BATCH_REQUESTS].find(
                    {"job_id": job_id, "part": part}, {"custom_id": 1, "line": 1, "seq": 1}
                )
            )
        docs.sort(key=lambda d: int(d["seq"]))
        return [(str(d["custom_id"]), str(d["line"])) for d in docs]
