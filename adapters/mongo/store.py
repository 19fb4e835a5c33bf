"""``MongoStore``: the one object the composition root builds (``finpipe.context``) and every
consumer is given. It is the client (:class:`~adapters.mongo.client.Mongo`) with its repositories
over it, and answers their methods, so that a caller names the store, never a repository. A
subclass that wraps :attr:`db` sees every operation any repository issues.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from adapters.mongo.batch_jobs import BatchJobs
from adapters.mongo.cache import CacheAndUsage
from adapters.mongo.client import Mongo
from adapters.mongo.counts import RunningCounts
from adapters.mongo.reports import Reports
from adapters.mongo.runs import RunsAndStatus
from adapters.mongo.submissions import Submissions
from schemas.documents import FactDocument, ReportFields
from schemas.settings import Settings


class MongoStore(Mongo):
    """The client and its repositories: facts and reports (with submissions), cache and usage,
    batch jobs, runs and status."""

    def __init__(
        self,
        uri: str,
        db_name: str,
        *,
        write_concern: str = "majority",
        timeout_ms: int = 5000,
    ) -> None:
        super().__init__(uri, db_name, write_concern=write_concern, timeout_ms=timeout_ms)
        self.submissions = Submissions(self)
        self.reports = Reports(self, self.submissions)
        self.cache = CacheAndUsage(self)
        self.batch_jobs = BatchJobs(self)
        self.runs = RunsAndStatus(self, self.reports.count_facts)

    @classmethod
    def from_settings(cls, settings: Settings, *, timeout_ms: int = 5000) -> MongoStore:
        return cls(
            settings.mongo_uri,
            settings.mongo_db,
            write_concern=settings.write_concern,
            timeout_ms=timeout_ms,
        )

    # -- submissions (``/submit``): ``adapters.mongo.submissions`` -------------------------------
    def mark_queued(self, received: Mapping[str, datetime], **fields: Any) -> None:
        self.submissions.mark_queued(received, **fields)

    # -- facts and reports: ``adapters.mongo.reports`` -------------------------------------------
    def save_results(
        self,
        facts_by_report: Mapping[str, Sequence[FactDocument]],
        report_fields: Mapping[str, ReportFields],
        now: datetime,
    ) -> int:
        return self.reports.save_results(facts_by_report, report_fields, now)

    def mark_reports(
        self, report_ids: Sequence[str], status: str, now: datetime, **fields: Any
    ) -> None:
        self.reports.mark_reports(report_ids, status, now, **fields)

    def report(self, report_id: str) -> dict[str, Any] | None:
        return self.reports.report(report_id)

    def report_statuses(self, report_ids: Sequence[str]) -> dict[str, str]:
        return self.reports.report_statuses(report_ids)

    def facts(self, query: Mapping[str, Any] | None = None, limit: int = 0) -> list[dict[str, Any]]:
        return self.reports.facts(query, limit)

    def count_facts(self) -> int:
        return self.reports.count_facts()

    def fact_documents(
        self,
        *,
        since: date | datetime | None = None,
        until: date | datetime | None = None,
        company: str | None = None,
        companies: Sequence[str] | None = None,
        without_extractors: Sequence[str] = (),
        fields: Sequence[str],
    ) -> list[dict[str, Any]]:
        return self.reports.fact_documents(
            since=since,
            until=until,
            company=company,
            companies=companies,
            without_extractors=without_extractors,
            fields=fields,
        )

    def unassigned_amounts(
        self,
        *,
        since: date | datetime | None = None,
        until: date | datetime | None = None,
        report_ids: Sequence[str] | None = None,
    ) -> dict[str, int]:
        return self.reports.unassigned_amounts(since=since, until=until, report_ids=report_ids)

    # -- extraction cache and usage ledger: ``adapters.mongo.cache`` -----------------------------
    def cache_keys(self) -> Iterator[str]:
        return self.cache.cache_keys()

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        return self.cache.get_many(keys)

    def put_many(self, entries: Mapping[str, dict[str, Any]]) -> None:
        self.cache.put_many(entries)

    def record_usage(self, usage: Any) -> None:
        self.cache.record_usage(usage)

    def usage_totals(self) -> dict[str, Any]:
        return self.cache.usage_totals()

    # -- batch jobs (``worker.batch_api.jobstore.JobStore``): ``adapters.mongo.batch_jobs`` -------
    def save_job(self, doc: dict[str, Any]) -> None:
        self.batch_jobs.save_job(doc)

    def load_job(self, job_id: str) -> dict[str, Any] | None:
        return self.batch_jobs.load_job(job_id)

    def find_jobs(self, *, open_only: bool = False, limit: int = 50) -> list[dict[str, Any]]:
        return self.batch_jobs.find_jobs(open_only=open_only, limit=limit)

    def save_requests(self, job_id: str, part: int, lines: Sequence[tuple[str, str]]) -> None:
        self.batch_jobs.save_requests(job_id, part, lines)

    def load_requests(self, job_id: str, part: int) -> list[tuple[str, str]]:
        return self.batch_jobs.load_requests(job_id, part)

    # -- runs and status: ``adapters.mongo.runs`` ------------------------------------------------
    def record_run(self, name: str, now: datetime, **fields: Any) -> None:
        self.runs.record_run(name, now, **fields)

    def last_run(self, name: str) -> dict[str, Any] | None:
        return self.runs.last_run(name)

    def running_counts(self) -> RunningCounts:
        return self.runs.running_counts()

    def company_counts(self) -> dict[str, int]:
        return self.runs.company_counts()

    def report_counts(self) -> dict[str, int]:
        return self.runs.report_counts()

    def pipeline_counts(self) -> dict[str, Any]:
        """Everything ``run_report.json`` says about the pipeline as a whole."""
        return {
            "reports": self.report_counts(),
            "facts_stored": self.count_facts(),
            **self.usage_totals(),
        }
