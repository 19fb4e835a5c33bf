"""MongoDB storage: the only pymongo import of the project's runtime code.

Facts are upserted unordered, keyed by their content-derived ``_id``, so concurrent workers and
redeliveries converge on one document per fact; a re-processed report replaces its facts (the ones a
new extraction no longer yields are deleted). No multi-document transactions are used, so the same
code runs on MongoDB and on MongoDB-compatible servers without them (FerretDB v1).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
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

    # -- facts ----------------------------------------------------------------------------------
    def replace_report_facts(self, facts_by_report: Mapping[str, list[dict[str, Any]]]) -> int:
        """Upsert every fact, then delete the facts of those reports that were not upserted now.
        Returns the number of fact documents written."""
        ops = [
            UpdateOne(
                {"_id": doc["_id"]},
                {
                    "$set": {k: v for k, v in doc.items() if k != "_id"},
                    "$setOnInsert": {"first_stored_at": doc["extracted_at"]},
                },
                upsert=True,
            )
            for docs in facts_by_report.values()
            for doc in docs
        ]
        try:
            if ops:
                self._bulk(FACTS, ops)
            for report_id, docs in facts_by_report.items():
                keep = [d["_id"] for d in docs]
                stale = self.db[FACTS].delete_many({"report_id": report_id, "_id": {"$nin": keep}})
                if stale.deleted_count:
                    log.info(
                        "report %s: removed %d fact(s) the new extraction no longer yields",
                        report_id[:12],
                        stale.deleted_count,
                    )
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("fact upsert", exc) from exc
        return len(ops)

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

    # -- reports --------------------------------------------------------------------------------
    def mark_reports(
        self, report_ids: Iterable[str], status: str, now: datetime, **fields: Any
    ) -> None:
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

    def mark_queued(self, report_ids: Iterable[str], now: datetime, **fields: Any) -> None:
        """Record accepted reports without moving a finished one back to ``queued``."""
        ops = [
            UpdateOne(
                {"_id": rid},
                {
                    "$setOnInsert": {
                        "status": "queued",
                        "received_at": now,
                        "updated_at": now,
                        **fields,
                    }
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

    def report(self, report_id: str) -> dict[str, Any] | None:
        try:
            doc: dict[str, Any] | None = self.db[REPORTS].find_one({"_id": report_id})
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
            return list(self.db[FACTS].find(dict(query or {})).sort("_id", 1).limit(limit))
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("fact query", exc) from exc

    def count_facts(self) -> int:
        try:
            return int(self.db[FACTS].count_documents({}))
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("count", exc) from exc

    # -- extraction cache and usage ledger --------------------------------------------------------
    def get_many(self, keys: list[str]) -> dict[str, list[dict[str, Any]]]:
        if not keys:
            return {}
        try:
            docs = self.db[CACHE].find({"_id": {"$in": keys}})
            found = {d["_id"]: d["facts"] for d in docs}
            if found:
                self.db[COUNTERS].update_one(
                    {"_id": "counters"}, {"$inc": {"cache_hits": len(found)}}, upsert=True
                )
            return found
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("cache lookup", exc) from exc

    def put_many(self, entries: Mapping[str, list[dict[str, Any]]]) -> None:
        if not entries:
            return
        ops = [
            UpdateOne({"_id": k}, {"$set": {"facts": v}}, upsert=True) for k, v in entries.items()
        ]
        try:
            self.db[CACHE].bulk_write(ops, ordered=False)
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("cache write", exc) from exc

    def record_usage(self, usage: Mapping[str, Any]) -> None:
        try:
            self.db[USAGE].insert_one(dict(usage))
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("usage write", exc) from exc

    def record_run(self, name: str, now: datetime, **fields: Any) -> None:
        try:
            self.db[RUNS].update_one({"_id": name}, {"$set": {"at": now, **fields}}, upsert=True)
        except pymongo.errors.PyMongoError as exc:
            raise self._fail("run record", exc) from exc
