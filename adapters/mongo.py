"""MongoDB: the only pymongo import. Every collection name, the client, the write concern, and
every read and write: the pipeline's store, the export's reads, ``finpipe status`` and ``runs``.

Facts, reports and cache answers are inserted unordered, keyed by their content-derived ``_id``;
a duplicate key is the idempotency signal (an insert costs no read on FerretDB v1, where every
read scans), so concurrent workers and redeliveries converge on one document per fact. A
re-processed report replaces its facts (the ones a new extraction no longer yields are deleted).
No multi-document transactions are used, so the same code runs on MongoDB and on
MongoDB-compatible servers without them (FerretDB v1).

Reads put filters and projections into the query, not into Python. Only operations that MongoDB and
FerretDB v1 both answer correctly are used: ``find`` with projections, ``count_documents`` and
``$group`` with ``{"$sum": 1}``; sums of fields are added up here because FerretDB v1 returns 0 for
``{"$sum": "$field"}``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import pymongo
import pymongo.errors
from pymongo import UpdateOne
from pymongo.write_concern import WriteConcern

from adapters.mongo_queries import facts_query, sort_key, split_in, unassigned_query
from adapters.mongo_summary import Changes, RunningCounts, report_counts_of, usage_totals_of
from schemas.errors import ConfigError, StaleJob, StoreUnavailable
from schemas.message import report_date_kept
from schemas.settings import Settings, redact_secrets, redact_url

log = logging.getLogger(__name__)

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

REPORT_STATUSES = ("queued", "processing", "done", "failed", "dead")


def one_line(exc: BaseException) -> str:
    """An error's text on one short line, without pymongo's topology description."""
    text = str(exc).split(", Timeout: ")[0].split("Topology Description:")[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    return first[:300].rstrip(" ,")


def write_concern_of(text: str) -> WriteConcern:
    """``majority`` or a number of nodes (``FINPIPE_WRITE_CONCERN``)."""
    return WriteConcern(w=int(text) if text.isdigit() else text)


class MongoStore:
    """Lazy client, one per store and shared by the threads that use it (pymongo's client is
    thread-safe and pools its connections); every pymongo error leaves as ``StoreUnavailable``."""

    def __init__(
        self,
        uri: str,
        db_name: str,
        *,
        write_concern: str = "majority",
        timeout_ms: int = 5000,
    ) -> None:
        self.uri = uri
        self.db_name = db_name
        self._write_concern = write_concern_of(write_concern)
        self._timeout_ms = timeout_ms
        self._client: pymongo.MongoClient[dict[str, Any]] | None = None
        # threads meeting an unopened client must not each open one (all but one would leak)
        self._client_lock = threading.Lock()
        self._indexed = False

    @classmethod
    def from_settings(cls, settings: Settings, *, timeout_ms: int = 5000) -> MongoStore:
        return cls(
            settings.mongo_uri,
            settings.mongo_db,
            write_concern=settings.write_concern,
            timeout_ms=timeout_ms,
        )

    @property
    def db(self) -> Any:
        client = self._client
        if client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = self._new_client()
                client = self._client
        return client.get_database(self.db_name, write_concern=self._write_concern)

    def _new_client(self) -> pymongo.MongoClient[dict[str, Any]]:
        """The client (no connection yet; a ``mongodb+srv`` host is looked up in DNS). What
        pymongo refuses in the URL leaves as one-line ``ConfigError`` naming the variable."""
        try:
            return pymongo.MongoClient(
                self.uri,
                serverSelectionTimeoutMS=self._timeout_ms,
                connectTimeoutMS=self._timeout_ms,
                socketTimeoutMS=max(30_000, self._timeout_ms),
                tz_aware=True,
            )
        except (pymongo.errors.ConfigurationError, ValueError, TypeError, OSError) as exc:
            # ConfigurationError covers InvalidURI and an unresolvable mongodb+srv host; a
            # non-numeric port is a ValueError, a missing tlsCAFile an OSError
            raise ConfigError(
                f"FINPIPE_MONGO_URI={redact_url(self.uri)!r} is invalid: "
                f"{redact_secrets(one_line(exc), self.uri)}"
            ) from exc

    def validate(self) -> None:
        """Raise ``ConfigError`` now if the URL is unusable, instead of at the first query."""
        _ = self.db

    def close(self) -> None:
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _fail(self, what: str, exc: Exception) -> StoreUnavailable:
        why = redact_secrets(one_line(exc), self.uri)
        return StoreUnavailable(f"MongoDB {what} failed at {redact_url(self.uri)}: {why}")

    @contextlib.contextmanager
    def translated(self, what: str) -> Iterator[None]:
        """pymongo's errors inside leave as ``StoreUnavailable``."""
        try:
            yield
        except pymongo.errors.PyMongoError as exc:
            raise self._fail(what, exc) from exc

    def ping(self) -> None:
        try:
            self.db.command("ping")
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("ping", exc) from exc

    def ensure_indexes(self) -> None:
        """Idempotent; ``_id`` is the unique fact key and the unique report key."""
        if self._indexed:
            return
        try:
            self.db[FACTS].create_index([("report_id", 1)], name="report_id")
            self.db[FACTS].create_index(
                [("company", 1), ("quarter", 1), ("metric", 1)], name="company_period_metric"
            )
            self.db[FACTS].create_index([("extracted_at", 1)], name="extracted_at")
            self.db[REPORTS].create_index([("status", 1)], name="status")
            self.db[BATCH_JOBS].create_index([("open", 1), ("created_at", -1)], name="open_created")
            self.db[BATCH_REQUESTS].create_index(
                [("job_id", 1), ("part", 1), ("seq", 1)], name="job_part_seq"
            )
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("index creation", exc) from exc
        self._indexed = True

    # -- facts and reports -----------------------------------------------------------------------
    def _insert_new(self, collection: str, docs: list[dict[str, Any]]) -> set[str]:
        """Insert ``docs`` unordered; return the ``_id``s that were already there.

        Inserting and reading duplicate-key errors is the fast path on every server: MongoDB
        compatible servers without pushed-down filters (FerretDB v1 on SQLite) scan a collection
        for every upsert, but look up a primary key on insert.
        """
        if not docs:
            return set()
        try:
            self.db[collection].insert_many(docs, ordered=False)
            return set()
        except pymongo.errors.BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if exc.details.get("writeConcernErrors") or any(e.get("code") != 11000 for e in errors):
                raise
            return {docs[e["index"]]["_id"] for e in errors}

    def save_results(
        self,
        facts_by_report: Mapping[str, list[dict[str, Any]]],
        report_fields: Mapping[str, Mapping[str, Any]],
        now: datetime,
    ) -> int:
        """Store the facts of processed reports and mark the reports ``done``; idempotent.

        A fact that already exists (redelivery, a second worker, re-processing) is updated only
        where its content changed. A report processed before has the facts its new extraction
        no longer yields deleted. Returns the number of facts written or confirmed.
        """
        fact_docs = [
            {**doc, "first_stored_at": doc["extracted_at"]}
            for docs in facts_by_report.values()
            for doc in docs
        ]
        report_docs = [
            {
                "_id": rid,
                "status": "done",
                "received_at": now,
                "updated_at": now,
                "fact_count": len(docs),
                "fact_ids": [d["_id"] for d in docs],
                **report_fields.get(rid, {}),
            }
            for rid, docs in facts_by_report.items()
        ]
        changes = Changes()
        try:
            existed = self._insert_new(FACTS, fact_docs)
            changes.facts_added(d for d in fact_docs if d["_id"] not in existed)
            if existed:
                self._refresh_facts([d for d in fact_docs if d["_id"] in existed], changes)
            seen = self._insert_new(REPORTS, report_docs)
            for _ in range(len(report_docs) - len(seen)):
                changes.status_changed(None, "done")
            if seen:
                reps = [r for r in report_docs if r["_id"] in seen]
                self._reprocessed(reps, facts_by_report, changes)
            self.running_counts().apply(changes)
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("fact write", exc) from exc
        return len(fact_docs)

    def _stored(
        self, collection: str, ids: Iterable[str], fields: Sequence[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        """The stored documents of ``ids``, one ``_id`` lookup each: FerretDB v1 hands an ``_id``
        equality to PostgreSQL, but answers ``$in`` by reading the whole collection itself (an
        order of magnitude slower at 20,000 documents); on MongoDB each is an index lookup."""
        projection = {f: 1 for f in fields} if fields is not None else None
        found = {}
        for _id in ids:
            doc = self.db[collection].find_one({"_id": _id}, projection)
            if doc is not None:
                found[_id] = doc
        return found

    def _refresh_facts(self, docs: list[dict[str, Any]], changes: Changes) -> None:
        # Only facts stored before (redelivery, re-processing) are read.
        old = self._stored(FACTS, [d["_id"] for d in docs])
        for doc in docs:
            stored = old.get(doc["_id"], {})
            kept = ("_id", "extracted_at", "first_stored_at", *report_date_kept(stored, doc))
            changed = {k: v for k, v in doc.items() if k not in kept and stored.get(k) != v}
            if changed:
                changes.company_changed(stored.get("company"), doc.get("company"))
                changed["extracted_at"] = doc["extracted_at"]
                self.db[FACTS].update_one({"_id": doc["_id"]}, {"$set": changed})

    def _reprocessed(
        self,
        reps: list[dict[str, Any]],
        facts_by_report: Mapping[str, list[dict[str, Any]]],
        changes: Changes,
    ) -> None:
        # The reports' previous facts are listed on them, so finding the stale ones is a set
        # difference and deleting them a primary-key write each. A record that would not change
        # but for ``updated_at`` (a redelivery) is not written: ``updated_at`` is its last change.
        old = self._stored(REPORTS, [r["_id"] for r in reps])
        for rep in reps:
            rid = rep["_id"]
            stored = old.get(rid, {})
            keep = {d["_id"] for d in facts_by_report[rid]}
            stale = set(stored.get("fact_ids") or ()) - keep
            for fact_id in sorted(stale):
                gone = self.db[FACTS].find_one_and_delete({"_id": fact_id})
                changes.facts_added([gone] if gone else [], sign=-1)
            changes.status_changed(stored.get("status"), "done")
            if stale:
                log.info(
                    "report %s: removed %d fact(s) its new extraction no longer yields",
                    rid[:12],
                    len(stale),
                )
            fields = {k: v for k, v in rep.items() if k not in ("_id", "received_at")}
            if any(stored.get(k) != v for k, v in fields.items() if k != "updated_at"):
                self.db[REPORTS].update_one({"_id": rid}, {"$set": fields})

    def mark_reports(
        self,
        report_ids: Sequence[str],
        status: str,
        now: datetime,
        **fields: Any,
    ) -> None:
        """Set the status (and ``fields``) of reports; used for the rare outcomes (dead letters)."""
        assert status in REPORT_STATUSES, status
        ops = [
            UpdateOne(
                {"_id": rid},
                {
                    "$set": {"status": status, "updated_at": now, **fields},
                    "$setOnInsert": {"received_at": now},
                },
                upsert=True,
            )
            for rid in report_ids
        ]
        if not ops:
            return
        changes = Changes()
        try:
            old = self._stored(REPORTS, report_ids, ["status"])
            self._bulk(REPORTS, ops)
            for rid in dict.fromkeys(report_ids):
                changes.status_changed(old.get(rid, {}).get("status"), status)
            self.running_counts().apply(changes)
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("report status update", exc) from exc

    def _bulk(self, collection: str, ops: list[UpdateOne]) -> None:
        # Two processes upserting the same new _id at once may see one duplicate-key error; the
        # document exists then, so a second pass turns every upsert into an update.
        for attempt in (1, 2):
            try:
                self.db[collection].bulk_write(ops, ordered=False)
                return
            except pymongo.errors.BulkWriteError as exc:
                dup_only = all(e.get("code") == 11000 for e in exc.details.get("writeErrors", []))
                if not dup_only or attempt == 2 or exc.details.get("writeConcernErrors"):
                    raise

    def mark_queued(self, received: Mapping[str, datetime], **fields: Any) -> None:
        """Record reports accepted by ``/submit``, each with its time (in ``submissions``; insert-
        only, so a report submitted again keeps its first time); one insert for all of them."""
        docs = [{"_id": rid, "received_at": at, **fields} for rid, at in received.items()]
        try:
            self._insert_new(SUBMISSIONS, docs)
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("submission record", exc) from exc

    def report(self, report_id: str) -> dict[str, Any] | None:
        try:
            doc: dict[str, Any] | None = self.db[REPORTS].find_one({"_id": report_id})
            if doc is None:
                doc = self.db[SUBMISSIONS].find_one({"_id": report_id})
                if doc is not None:
                    doc["status"] = "queued"
            if doc is not None:
                doc["facts"] = list(
                    self.db[FACTS]
                    .find({"report_id": report_id}, {"snippet": 0})
                    .sort("value_start", 1)
                )
            return doc
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("report lookup", exc) from exc

    def report_statuses(self, report_ids: Sequence[str]) -> dict[str, str]:
        """The status of each stored report of ``report_ids`` (others are absent)."""
        try:
            found = self._stored(REPORTS, report_ids, ["status"])
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("report status read", exc) from exc
        return {rid: str(doc.get("status")) for rid, doc in found.items()}

    def facts(self, query: Mapping[str, Any] | None = None, limit: int = 0) -> list[dict[str, Any]]:
        """Sorted facts; a ``$in`` of companies is asked as one equality each (FerretDB v1 hands
        those to PostgreSQL, but reads the whole collection for ``$in``), and merged."""
        order = [("company", 1), ("quarter", 1), ("metric", 1), ("_id", 1)]
        parts = split_in(dict(query or {}), "company")
        try:
            found = [d for q in parts for d in self.db[FACTS].find(q).sort(order).limit(limit)]
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("fact query", exc) from exc
        if len(parts) > 1:
            found.sort(key=lambda d: tuple(sort_key(d.get(f)) for f, _ in order))
        return found[:limit] if limit else found

    def count_facts(self) -> int:
        try:
            return int(self.db[FACTS].count_documents({}))
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("count", exc) from exc

    # -- extraction cache and usage ledger --------------------------------------------------------
    def cache_keys(self) -> Iterator[str]:
        """Every key in the extraction cache (one read of ``_id``s only; the worker's filter)."""
        try:
            for doc in self.db[CACHE].find({}, {"_id": 1}, batch_size=10_000):
                yield str(doc["_id"])
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("cache key read", exc) from exc

    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """Cached model answers by cache key (the extraction engine's cache interface)."""
        if not keys:
            return {}
        try:
            found = {k: d["entry"] for k, d in self._stored(CACHE, keys, ["entry"]).items()}
            if found:
                self._count_cache_hits(len(found))
            return found
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("cache lookup", exc) from exc

    def _count_cache_hits(self, n: int) -> None:
        """Two threads creating the counter at once: one upsert wins, the other sees a duplicate
        key and adds its hits to the document that now exists."""
        inc = {"$inc": {"cache_hits": n}}
        try:
            self.db[COUNTERS].update_one({"_id": "counters"}, inc, upsert=True)
        except pymongo.errors.DuplicateKeyError:
            self.db[COUNTERS].update_one({"_id": "counters"}, inc)

    def put_many(self, entries: Mapping[str, dict[str, Any]]) -> None:
        """Insert-only: an answer stored first for a key (by another worker) is kept, since a key
        names its snippet, model, format and prompt: either answer serves."""
        docs = [{"_id": k, "entry": v} for k, v in entries.items()]
        try:
            self._insert_new(CACHE, docs)
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("cache write", exc) from exc

    def record_usage(self, usage: Any) -> None:
        """One model call as billed (a dataclass such as ``worker.llm.CallUsage``, or a dict)."""
        is_record = dataclasses.is_dataclass(usage) and not isinstance(usage, type)
        doc = dataclasses.asdict(usage) if is_record else dict(usage)
        doc.setdefault("at", datetime.now(UTC))
        try:
            self.db[USAGE].insert_one(doc)
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("usage write", exc) from exc

    # -- batch jobs (``worker.batch_api.jobstore.JobStore``) -------------------------------------
    def save_job(self, doc: dict[str, Any]) -> None:
        """Insert (version 1) or replace the job document, compare-and-set on ``version``;
        :class:`StaleJob` when another process saved it meanwhile."""
        job_id, version = str(doc["_id"]), int(doc["version"])
        try:
            if version == 1:
                if self._insert_new(BATCH_JOBS, [doc]):
                    raise StaleJob(job_id, self._job_version(job_id))
                return
            result = self.db[BATCH_JOBS].replace_one({"_id": job_id, "version": version - 1}, doc)
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("batch job write", exc) from exc
        if result.matched_count == 0:
            raise StaleJob(job_id, self._job_version(job_id))

    def _job_version(self, job_id: str) -> int:
        doc = self.load_job(job_id)
        return int(doc["version"]) if doc is not None else 0

    def load_job(self, job_id: str) -> dict[str, Any] | None:
        try:
            doc = self.db[BATCH_JOBS].find_one({"_id": job_id})
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("batch job lookup", exc) from exc
        return dict(doc) if doc is not None else None

    def find_jobs(self, *, open_only: bool = False, limit: int = 50) -> list[dict[str, Any]]:
        """Job documents, newest first (open ones only with ``open_only``)."""
        query = {"open": True} if open_only else {}
        try:
            cursor = self.db[BATCH_JOBS].find(query).sort("created_at", -1).limit(limit)
            return [dict(d) for d in cursor]
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("batch job query", exc) from exc

    def save_requests(self, job_id: str, part: int, lines: Sequence[tuple[str, str]]) -> None:
        """Store the ``(custom_id, line)`` pairs of one part in order; saving them again changes
        nothing (inserted by ``_id``, duplicates ignored: the same id always has the same line)."""
        docs = [
            {"_id": f"{job_id}:{cid}", "job_id": job_id, "part": part}
            | {"seq": seq, "custom_id": cid, "line": line}
            for seq, (cid, line) in enumerate(lines)
        ]
        try:
            for start in range(0, len(docs), 1000):
                self._insert_new(BATCH_REQUESTS, docs[start : start + 1000])
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("batch request write", exc) from exc

    def load_requests(self, job_id: str, part: int) -> list[tuple[str, str]]:
        try:
            docs = list(
                self.db[BATCH_REQUESTS].find(
                    {"job_id": job_id, "part": part}, {"custom_id": 1, "line": 1, "seq": 1}
                )
            )
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("batch request query", exc) from exc
        docs.sort(key=lambda d: int(d["seq"]))
        return [(str(d["custom_id"]), str(d["line"])) for d in docs]

    # -- runs, status and export reads ----------------------------------------------------------
    def record_run(self, name: str, now: datetime, **fields: Any) -> None:
        """Remember a run (``LAST_SWEEP``, ``LAST_EXPORT``) with its time and ``fields``."""
        try:
            self.db[RUNS].update_one({"_id": name}, {"$set": {"at": now, **fields}}, upsert=True)
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("run record", exc) from exc

    def last_run(self, name: str) -> dict[str, Any] | None:
        """The ``runs`` document ``name`` without its ``_id``, or ``None``."""
        try:
            doc = self.db[RUNS].find_one({"_id": name})
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("run lookup", exc) from exc
        if doc is None:
            return None
        doc.pop("_id", None)
        return dict(doc)

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
        """The facts ``facts_query`` selects, with only ``fields``."""
        query = facts_query(
            since=since,
            until=until,
            company=company,
            companies=companies,
            without_extractors=without_extractors,
        )
        try:
            docs = list(self.db[FACTS].find(query, {f: 1 for f in fields}, batch_size=2000))
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("fact query", exc) from exc
        log.debug("read %d fact(s) matching %s", len(docs), query)
        return docs

    def company_counts(self) -> dict[str, int]:
        """Facts per company name as stored (one ``$group``); facts without a company are left
        out. What company folding, ``finpipe companies`` and the company filters start from."""
        groups = self.running_counts().counted(FACTS, "company")
        return {name: n for name, n in groups.items() if isinstance(name, str)}

    def unassigned_amounts(
        self,
        *,
        since: date | datetime | None = None,
        until: date | datetime | None = None,
        report_ids: Sequence[str] | None = None,
    ) -> dict[str, int]:
        """Amounts the rules left unassigned over the reports ``unassigned_query`` selects:
        ``total`` and ``reports_with_any``. One read; added up here (FerretDB v1 sums fields to
        0). Reports without the count (the model path) add nothing."""
        query = unassigned_query(since=since, until=until, report_ids=report_ids)
        try:
            docs = list(self.db[REPORTS].find(query, {"unassigned_amounts": 1}))
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("unassigned amounts query", exc) from exc
        counts = [
            int(n)
            for n in (d.get("unassigned_amounts") for d in docs)
            if isinstance(n, int | float) and not isinstance(n, bool) and n > 0
        ]
        return {"total": sum(counts), "reports_with_any": len(counts)}

    def report_counts(self) -> dict[str, int]:
        """Reports by status (every known status present, others as found) and ``received``."""
        groups = self.running_counts().counted(REPORTS, "status")
        return report_counts_of({"reports": groups}, REPORT_STATUSES)

    def running_counts(self) -> RunningCounts:
        """Reports by status and facts in all and per company, read in one lookup."""
        return RunningCounts(self, COUNTERS)

    def usage_totals(self) -> dict[str, Any]:
        """Model calls, tokens, cache hits and the cost where known (see ``usage_totals_of``)."""
        fields = ("prompt_tokens", "completion_tokens", "cached_tokens", "cost_usd")
        try:
            calls = list(self.db[USAGE].find({}, {f: 1 for f in fields}, batch_size=5000))
            counters = self.db[COUNTERS].find_one({"_id": "counters"}, {"cache_hits": 1}) or {}
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("usage query", exc) from exc
        return usage_totals_of(calls, counters.get("cache_hits"))

    def pipeline_counts(self) -> dict[str, Any]:
        """Everything ``run_report.json`` says about the pipeline as a whole."""
        return {
            "reports": self.report_counts(),
            "facts_stored": self.count_facts(),
            **self.usage_totals(),
        }
