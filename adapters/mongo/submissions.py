"""Submissions: the reports ``/submit`` accepted, recorded before any worker has seen them, so
that ``GET /reports/<id>`` answers ``queued`` until the report's own record exists."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from adapters.mongo.client import Connection, insert_new
from adapters.mongo.names import SUBMISSIONS


def submission_documents(
    report_ids: Iterable[str], now: datetime, **fields: Any
) -> list[dict[str, Any]]:
    """The ``submissions`` documents: ``_id`` (the report id), ``received_at`` and ``fields``
    (``channel``); a report id given twice is recorded once."""
    return [{"_id": rid, "received_at": now, **fields} for rid in dict.fromkeys(report_ids)]


class Submissions:
    """The ``submissions`` collection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def mark_queued(self, report_ids: Iterable[str], now: datetime, **fields: Any) -> None:
        """Record reports accepted by ``/submit`` (insert-only, so a report submitted again keeps
        its first time)."""
        docs = submission_documents(report_ids, now, **fields)
        with self.conn.translated("submission record"):
            insert_new(self.conn.db[SUBMISSIONS], docs)

    def queued(self, report_id: str) -> dict[str, Any] | None:
        """The submission of ``report_id`` as a report ``queued``, or ``None``; the caller
        translates errors (it is in the middle of a lookup)."""
        doc: dict[str, Any] | None = self.conn.db[SUBMISSIONS].find_one({"_id": report_id})
        if doc is not None:
            doc["status"] = "queued"
        return doc
