"""The shape of the documents the store keeps about reports, written once (pure).

A fact is built by the worker (``worker.records.fact_document``); a report's record is the
extraction's account of it (:class:`ReportFields`, built by ``worker.records.report_fields``)
under what the store adds (:func:`report_document`). The MongoDB adapter writes them as they
are; readers (the HTTP API, the export, ``finpipe facts``) read these fields. The documents only
the store builds (submissions, cache answers, Batch API request lines) are typed beside their
builders in ``adapters.mongo``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypedDict


class FactDocument(TypedDict):
    """A ``financial_data`` document; ``_id`` is the fact key (``worker.records.fact_key``)."""

    _id: str
    report_id: str
    company: str | None
    metric: str
    metric_known: bool
    value: int | float
    value_decimal: str
    currency: str | None
    unit: str
    quarter: str | None
    value_text: str | None
    value_start: int
    snippet: str
    snippet_start: int
    snippet_end: int
    page: int | None
    source: str | None
    file_name: str | None
    file_sha256: str | None
    line: int | None
    row: int | None
    channel: str
    report_date: datetime
    report_date_source: str
    extractor: str
    model: str | None
    prompt_version: str | None
    confidence: float | None
    evidence: dict[str, str] | None
    extracted_at: datetime
    schema_version: int


class StoredFact(FactDocument):
    """A fact as inserted: when it was first stored (kept when it is stored again)."""

    first_stored_at: datetime


def stored_fact(doc: FactDocument) -> StoredFact:
    return StoredFact(**doc, first_stored_at=doc["extracted_at"])


class ReportFields(TypedDict, total=False):
    """What the extraction tells about one report (the worker's part of its record)."""

    snippets: int
    snippets_without_amount: int
    rejected: list[str]
    unassigned_amounts: int | None
    unassigned_detail: list[dict[str, object]]
    source: str | None
    file_name: str | None
    error: str | None


class ReportDocument(ReportFields, total=False):
    """A ``reports`` document: the store's part; a dead letter's record has the status, times
    and the reason only (``MongoStore.mark_reports``)."""

    _id: str
    status: str
    received_at: datetime
    updated_at: datetime
    fact_count: int
    fact_ids: list[str]


def report_document(
    report_id: str, fact_ids: Sequence[str], fields: ReportFields, now: datetime
) -> ReportDocument:
    """The record of a report whose facts were stored (``done``)."""
    doc = ReportDocument(
        _id=report_id,
        status="done",
        received_at=now,
        updated_at=now,
        fact_count=len(fact_ids),
        fact_ids=list(fact_ids),
    )
    doc.update(fields)
    return doc
