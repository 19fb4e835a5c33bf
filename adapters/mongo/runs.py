"""Runs and status: when the inbox sweep and the export last ran, and the totals an operator
reads (``finpipe status``, ``companies``, ``run_report.json``) through the running counts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from adapters.mongo.client import Connection
from adapters.mongo.counts import RunningCounts, report_counts_of
from adapters.mongo.names import FACTS, REPORT_STATUSES, REPORTS, RUNS


class RunsAndStatus:
    """The ``runs`` collection and the counts of facts and reports; ``count_facts`` is the facts'
    full count (``Reports.count_facts``)."""

    def __init__(self, conn: Connection, count_facts: Callable[[], int]) -> None:
        self.conn = conn
        self._count_facts = count_facts

    def record_run(self, name: str, now: datetime, **fields: Any) -> None:
        """Remember a run (``LAST_SWEEP``, ``LAST_EXPORT``) with its time and ``fields``."""
        with self.conn.translated("run record"):
            runs = self.conn.db[RUNS]
            runs.update_one({"_id": name}, {"$set": {"at": now, **fields}}, upsert=True)

    def last_run(self, name: str) -> dict[str, Any] | None:
        """The ``runs`` document ``name`` without its ``_id``, or ``None``."""
        with self.conn.translated("run lookup"):
            doc = self.conn.db[RUNS].find_one({"_id": name})
        if doc is None:
            return None
        doc.pop("_id", None)
        return dict(doc)

    def running_counts(self) -> RunningCounts:
        """Reports by status and facts in all and per company, read in one lookup."""
        return RunningCounts(self.conn, self)

    def count_facts(self) -> int:
        return self._count_facts()

    def company_counts(self) -> dict[str, int]:
        """Facts per company name as stored (one ``$group``); facts without a company are left
        out. What company folding, ``finpipe companies`` and the company filters start from."""
        groups = self.running_counts().counted(FACTS, "company")
        return {name: n for name, n in groups.items() if isinstance(name, str)}

    def report_counts(self) -> dict[str, int]:
        """Reports by status (every known status present, others as found) and ``received``."""
        groups = self.running_counts().counted(REPORTS, "status")
        return report_counts_of({"reports": groups}, REPORT_STATUSES)
