"""Submissions: the reports ``/submit`` accepted, recorded before any worker has seen them, so
that ``GET /reports/<id>`` answers ``queued`` until the report's own record exists."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from adapters.mongo.client import Connection, insert_new
from adapters.mongo.names import SUBMISSIONS


def submission_documents(received: Mapping[str, datetime], **fields: Any) -> list[dict[str, Any]]:
    """The ``submissions`` documents: ``_id`` (the report id), ``received_at`` (its time in
    ``received``) and ``fields`` (``channel``); one document a report."""
    return [{"_id": rid, "received_at": at, **fields} for rid, at in received.items()]


class Submissions:
    """The ``submissions`` collection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def mark_queued(self, received: Mapping[str, datetime], **fields: Any) -> None:
        """Record reports accepted by ``/submit``, each with its time (insert-only, so a report
        submitted again keeps its first time); one insert for all of them."""
        docs = submission_documents(received, **fields)
        with self.conn.translated("submission record"):
            insert_new(self.conn.db[SUBMISSIONS], docs)

    def queued(self, report_id: str) -> dict[str, Any] | None:
        """The submission of ``report_id`` as a report ``queued``, or ``None``; the caller
        translates errors (it is in the middle of a lookup)."""
        doc: dict[str, Any] | None = self.conn.db[SUBMISSIONS].find_one({"_id": report_id})
        if doc is not None:
            doc["status"] = "queued"
        return doc
