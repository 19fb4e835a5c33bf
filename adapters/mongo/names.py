"""Every collection name of the store, the ``runs`` documents and the report statuses, in one
place (pure; no client here)."""

from __future__ import annotations

FACTS = "financial_data"
REPORTS = "reports"
SUBMISSIONS = "submissions"
CACHE = "extraction_cache"
USAGE = "llm_usage"
COUNTERS = "counters"
RUNS = "runs"
BATCH_JOBS = "batch_jobs"
BATCH_REQUESTS = "batch_requests"

#: ``runs`` documents: the last inbox sweep and the last export
LAST_SWEEP = "last_sweep"
LAST_EXPORT = "last_export"

#: ``_id`` of the cache-hit counter in ``COUNTERS`` (the running counts are ``counts.SUMMARY_ID``)
CACHE_HITS_ID = "counters"

REPORT_STATUSES = ("queued", "processing", "done", "failed", "dead")
