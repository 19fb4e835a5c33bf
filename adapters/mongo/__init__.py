"""MongoDB: every collection name, the client, the write concern, and every read and write: the
pipeline's store, the export's reads, ``finpipe status`` and ``runs``.

- ``names``: every collection name, the ``runs`` documents, the report statuses.
- ``client``: the only pymongo import: the lazy client, the one error translation
  (``Mongo.translated``) and the write primitives (insert by ``_id``, upserts, ``_id`` lookups).
- the repositories, each given the client: ``reports`` (facts and reports), ``submissions``,
  ``cache`` (extraction cache and usage ledger), ``batch_jobs`` (Batch API jobs and request
  lines), ``runs`` (runs and status, over the running counts of ``counts``).
- ``queries``: the read filters (pure); ``counts``: the running counts.
- ``store``: :class:`MongoStore`, the client with its repositories, what callers are given.

Only operations that MongoDB and FerretDB v1 both answer correctly are used: ``find`` with
projections, ``count_documents`` and ``$group`` with ``{"$sum": 1}``; sums of fields are added up
here because FerretDB v1 returns 0 for ``{"$sum": "$field"}``.
"""

from adapters.mongo.client import one_line, write_concern_of
from adapters.mongo.names import (
    BATCH_JOBS,
    BATCH_REQUESTS,
    CACHE,
    COUNTERS,
    FACTS,
    LAST_EXPORT,
    LAST_SWEEP,
    REPORT_STATUSES,
    REPORTS,
    RUNS,
    SUBMISSIONS,
    USAGE,
)
from adapters.mongo.store import MongoStore

__all__ = [
    "BATCH_JOBS",
    "BATCH_REQUESTS",
    "CACHE",
    "COUNTERS",
    "FACTS",
    "LAST_EXPORT",
    "LAST_SWEEP",
    "REPORTS",
    "REPORT_STATUSES",
    "RUNS",
    "SUBMISSIONS",
    "USAGE",
    "MongoStore",
    "one_line",
    "write_concern_of",
]
