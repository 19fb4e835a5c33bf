"""Facts and reports: the worker's writes (``save_results``, ``mark_reports``) and the reads of
one report, of facts and of the reports' unassigned amounts.

A re-processed report replaces its facts (the ones a new extraction no longer yields are
deleted). Every write applies its change to the running counts (``counts.Changes``). Reads put
filters and projections into the query, not into Python.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from adapters.mongo.client import Connection, by_ids, insert_new, upsert_all
from adapters.mongo.counts import Changes, apply_changes
from adapters.mongo.names import FACTS, REPORT_STATUSES, REPORTS
from adapters.mongo.queries import facts_query, sort_key, split_in, unassigned_query
from adapters.mongo.submissions import Submissions
from schemas.documents import (
    FactDocument,
    ReportDocument,
    ReportFields,
    StoredFact,
    report_document,
    stored_fact,
)
from schemas.message import report_date_kept

log = logging.getLogger(__name__)


class Reports:
    """The ``financial_data`` and ``reports`` collections (and a report still only submitted)."""

    def __init__(self, conn: Connection, submissions: Submissions) -> None:
        self.conn = conn
        self.submissions = submissions

    # -- writes ----------------------------------------------------------------------------------
    def save_results(
        self,
        facts_by_report: Mapping[str, Sequence[FactDocument]],
        report_fields: Mapping[str, ReportFields],
        now: datetime,
    ) -> int:
        """Store the facts of processed reports and mark the reports ``done``; idempotent.

        A fact that already exists (redelivery, a second worker, re-processing) is updated only
        where its content changed. A report processed before has the facts its new extraction
        no longer yields deleted. Returns the number of facts written or confirmed.
        """
        fact_docs = [stored_fact(doc) for docs in facts_by_report.values() for doc in docs]
        report_docs = [
            report_document(rid, [d["_id"] for d in docs], report_fields.get(rid, {}), now)
            for rid, docs in facts_by_report.items()
        ]
        changes = Changes()
        db = self.conn.db
        with self.conn.translated("fact write"):
            existed = insert_new(db[FACTS], fact_docs)
            changes.facts_added(d for d in fact_docs if d["_id"] not in existed)
            if existed:
                self._refresh_facts([d for d in fact_docs if d["_id"] in existed], changes)
            seen = insert_new(db[REPORTS], report_docs)
            for _ in range(len(report_docs) - len(seen)):
                changes.status_changed(None, "done")
            if seen:
                reps = [r for r in report_docs if r["_id"] in seen]
                self._reprocessed(reps, facts_by_report, changes)
            apply_changes(self.conn, changes)
        return len(fact_docs)

    def _refresh_facts(self, docs: list[StoredFact], changes: Changes) -> None:
        # Only facts stored before (redelivery, re-processing) are read.
        old = by_ids(self.conn.db[FACTS], [d["_id"] for d in docs])
        for doc in docs:
            stored = old.get(doc["_id"], {})
            kept = ("_id", "extracted_at", "first_stored_at", *report_date_kept(stored, doc))
            changed = {k: v for k, v in doc.items() if k not in kept and stored.get(k) != v}
            if changed:
                changes.company_changed(stored.get("company"), doc.get("company"))
                changed["extracted_at"] = doc["extracted_at"]
                self.conn.db[FACTS].update_one({"_id": doc["_id"]}, {"$set": changed})

    def _reprocessed(
        self,
        reps: list[ReportDocument],
        facts_by_report: Mapping[str, Sequence[FactDocument]],
        changes: Changes,
    ) -> None:
        # The reports' previous facts are listed on them, so finding the stale ones is a set
        # difference and deleting them a primary-key write each. A record that would not change
        # but for ``updated_at`` (a redelivery) is not written: ``updated_at`` is its last change.
        old = by_ids(self.conn.db[REPORTS], [r["_id"] for r in reps])
        for rep in reps:
            rid = rep["_id"]
            stored = old.get(rid, {})
            keep = {d["_id"] for d in facts_by_report[rid]}
            stale = set(stored.get("fact_ids") or ()) - keep
            for fact_id in sorted(stale):
                gone = self.conn.db[FACTS].find_one_and_delete({"_id": fact_id})
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
                self.conn.db[REPORTS].update_one({"_id": rid}, {"$set": fields})

    def mark_reports(
        self,
        report_ids: Sequence[str],
        status: str,
        now: datetime,
        **fields: Any,
    ) -> None:
        """Set the status (and ``fields``) of reports; used for the rare outcomes (dead letters)."""
        assert status in REPORT_STATUSES, status
        updates = [
            (
                {"_id": rid},
                {
                    "$set": {"status": status, "updated_at": now, **fields},
                    "$setOnInsert": {"received_at": now},
                },
            )
            for rid in report_ids
        ]
        if not updates:
            return
        changes = Changes()
        with self.conn.translated("report status update"):
            old = by_ids(self.conn.db[REPORTS], report_ids, ["status"])
            upsert_all(self.conn.db[REPORTS], updates)
            for rid in dict.fromkeys(report_ids):
                changes.status_changed(old.get(rid, {}).get("status"), status)
            apply_changes(self.conn, changes)

    # -- reads -----------------------------------------------------------------------------------
    def report(self, report_id: str) -> dict[str, Any] | None:
        """A report's record with its facts; a report only submitted so far reads ``queued``."""
        with self.conn.translated("report lookup"):
            doc: dict[str, Any] | None = self.conn.db[REPORTS].find_one({"_id": report_id})
            if doc is None:
                doc = self.submissions.queued(report_id)
            if doc is not None:
                doc["facts"] = list(
                    self.conn.db[FACTS]
                    .find({"report_id": report_id}, {"snippet": 0})
                    .sort("value_start", 1)
                )
            return doc

    def report_statuses(self, report_ids: Sequence[str]) -> dict[str, str]:
        """The status of each stored report of ``report_ids`` (others are absent)."""
        with self.conn.translated("report status read"):
            found = by_ids(self.conn.db[REPORTS], report_ids, ["status"])
        return {rid: str(doc.get("status")) for rid, doc in found.items()}

    def facts(self, query: Mapping[str, Any] | None = None, limit: int = 0) -> list[dict[str, Any]]:
        """Sorted facts; a ``$in`` of companies is asked as one equality each (FerretDB v1 hands
        those to PostgreSQL, but reads the whole collection for ``$in``), and merged."""
        order = [("company", 1), ("quarter", 1), ("metric", 1), ("_id", 1)]
        parts = split_in(dict(query or {}), "company")
        with self.conn.translated("fact query"):
            facts = self.conn.db[FACTS]
            found = [d for q in parts for d in facts.find(q).sort(order).limit(limit)]
        if len(parts) > 1:
            found.sort(key=lambda d: tuple(sort_key(d.get(f)) for f, _ in order))
        return found[:limit] if limit else found

    def count_facts(self) -> int:
        with self.conn.translated("count"):
            return int(self.conn.db[FACTS].count_documents({}))

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
        with self.conn.translated("fact query"):
            projection = {f: 1 for f in fields}
            docs = list(self.conn.db[FACTS].find(query, projection, batch_size=2000))
        log.debug("read %d fact(s) matching %s", len(docs), query)
        return docs

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
        with self.conn.translated("unassigned amounts query"):
            docs = list(self.conn.db[REPORTS].find(query, {"unassigned_amounts": 1}))
        counts = [
            int(n)
            for n in (d.get("unassigned_amounts") for d in docs)
            if isinstance(n, int | float) and not isinstance(n, bool) and n > 0
        ]
        return {"total": sum(counts), "reports_with_any": len(counts)}
