"""MongoDB storage: the only pymongo import of the project's runtime code.

Facts are upserted unordered, keyed by their content-derived ``_id``, so concurrent workers and
redeliveries converge on one document per fact; a re-processed report replaces its facts (the ones a
new extraction no longer yields are deleted). No multi-document transactions are used, so the same
code runs on MongoDB and on MongoDB-compatible servers without them (FerretDB v1).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pymongo
import pymongo.errors
from pymongo import UpdateOne
from pymongo.write_concern import WriteConcern

from schemas.errors import StoreUnavailable
from schemas.settings import Settings, redact_url

log = logging.getLogger(__name__)

FACTS = "financial_data"
REPORTS = "reports"
SUBMISSIONS = "submissions"
CACHE = "extraction_cache"
USAGE = "llm_usage"
COUNTERS = "counters"
RUNS = "runs"

REPORT_STATUSES = ("queued", "processing", "done", "failed", "dead")


class MongoStore:
    """Lazy client; every pymongo error leaves as ``StoreUnavailable``."""

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
        wc: str | int = int(write_concern) if write_concern.isdigit() else write_concern
        self._write_concern = WriteConcern(w=wc)
        self._timeout_ms = timeout_ms
        self._client: pymongo.MongoClient[dict[str, Any]] | None = None
        self._indexed = False

    @classmethod
    def from_settings(cls, settings: Settings) -> MongoStore:
        return cls(settings.mongo_uri, settings.mongo_db, write_concern=settings.write_concern)

    @property
    def db(self) -> Any:
        if self._client is None:
            self._client = pymongo.MongoClient(
                self.uri,
                serverSelectionTimeoutMS=self._timeout_ms,
                connectTimeoutMS=self._timeout_ms,
                socketTimeoutMS=max(30_000, self._timeout_ms),
                tz_aware=True,
            )
        return self._client.get_database(self.db_name, write_concern=self._write_concern)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _fail(self, what: str, exc: Exception) -> StoreUnavailable:
        return StoreUnavailable(f"MongoDB {what} failed at {redact_url(self.uri)}: {exc}")

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
        try:
            existed = self._insert_new(FACTS, fact_docs)
            for doc in fact_docs:
                if doc["_id"] in existed:
                    self._refresh_fact(doc)
            seen = self._insert_new(REPORTS, report_docs)
            for rep in report_docs:
                if rep["_id"] in seen:
                    self._reprocessed(rep, [d["_id"] for d in facts_by_report[rep["_id"]]])
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("fact write", exc) from exc
        return len(fact_docs)

    def _refresh_fact(self, doc: dict[str, Any]) -> None:
        old = self.db[FACTS].find_one({"_id": doc["_id"]}) or {}
        changed = {
            k: v
            for k, v in doc.items()
            if k not in ("_id", "extracted_at", "first_stored_at") and old.get(k) != v
        }
        if changed:
            changed["extracted_at"] = doc["extracted_at"]
            self.db[FACTS].update_one({"_id": doc["_id"]}, {"$set": changed})

    def _reprocessed(self, rep: dict[str, Any], keep: list[str]) -> None:
        # The report's previous facts are listed on it, so finding the stale ones is a set
        # difference and deleting them a primary-key lookup each (no collection scan).
        rid = rep["_id"]
        old = self.db[REPORTS].find_one({"_id": rid}, {"fact_ids": 1}) or {}
        stale = set(old.get("fact_ids") or ()) - set(keep)
        for fact_id in sorted(stale):
            self.db[FACTS].delete_one({"_id": fact_id})
        if stale:
            log.info(
                "report %s: removed %d fact(s) its new extraction no longer yields",
                rid[:12],
                len(stale),
            )
        fields = {k: v for k, v in rep.items() if k not in ("_id", "received_at")}
        self.db[REPORTS].update_one({"_id": rid}, {"$set": fields})

    def mark_reports(
        self,
        report_ids: Iterable[str],
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
        try:
            self._bulk(REPORTS, ops)
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

    def mark_queued(self, report_ids: Iterable[str], now: datetime, **fields: Any) -> None:
        """Record reports accepted by ``/submit`` (in ``submissions``; insert-only, so a report
        submitted again keeps its first time)."""
        docs = [{"_id": rid, "received_at": now, **fields} for rid in dict.fromkeys(report_ids)]
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

    def facts(self, query: Mapping[str, Any] | None = None, limit: int = 0) -> list[dict[str, Any]]:
        try:
            cursor = self.db[FACTS].find(dict(query or {}))
            order = [("company", 1), ("quarter", 1), ("metric", 1), ("_id", 1)]
            return list(cursor.sort(order).limit(limit))
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("fact query", exc) from exc

    def count_facts(self) -> int:
        try:
            return int(self.db[FACTS].count_documents({}))
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("count", exc) from exc

    # -- extraction cache and usage ledger --------------------------------------------------------
    def get_many(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """Cached model answers by cache key (the extraction engine's cache interface)."""
        if not keys:
            return {}
        try:
            docs = self.db[CACHE].find({"_id": {"$in": keys}})
            found = {d["_id"]: d["entry"] for d in docs}
            if found:
                self.db[COUNTERS].update_one(
                    {"_id": "counters"}, {"$inc": {"cache_hits": len(found)}}, upsert=True
                )
            return found
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("cache lookup", exc) from exc

    def put_many(self, entries: Mapping[str, dict[str, Any]]) -> None:
        if not entries:
            return
        ops = [
            UpdateOne({"_id": k}, {"$set": {"entry": v}}, upsert=True) for k, v in entries.items()
        ]
        try:
            self.db[CACHE].bulk_write(ops, ordered=False)
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

    def record_run(self, name: str, now: datetime, **fields: Any) -> None:
        try:
            self.db[RUNS].update_one({"_id": name}, {"$set": {"at": now, **fields}}, upsert=True)
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("run record", exc) from exc
