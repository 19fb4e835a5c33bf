"""Turning an extraction into stored documents: a fact's identity key and provenance, a report's
account of its extraction (shapes in ``schemas.documents``). Pure."""

from __future__ import annotations

import hashlib
from datetime import datetime

from schemas.documents import FactDocument, ReportFields
from schemas.fact import FACT_SCHEMA_VERSION
from schemas.message import ReportMessage
from schemas.numbers import plain_decimal
from worker.extract import FoundFact, ReportExtraction


def fact_key(report_id: str, found: FoundFact) -> str:
    """Identity of a fact: the report's content hash, where the amount stands in the report,
    and what it is a value of. The same text processed again yields the same key."""
    f = found.fact
    start = found.snippet.start + (f.start or 0)
    end = found.snippet.start + (f.end if f.end is not None else len(found.snippet.text))
    ident = "|".join(
        [report_id, str(start), str(end), f.metric, f.unit.value, f.currency or "", f.quarter or ""]
    )
    return hashlib.sha256(ident.encode("utf-8")).hexdigest()


def fact_document(message: ReportMessage, found: FoundFact, now: datetime) -> FactDocument:
    """The ``financial_data`` document for one fact (``_id`` is the fact key)."""
    f = found.fact
    snip = found.snippet
    prov = message.provenance
    value_start = snip.start + (f.start or 0)
    report_date, report_date_source = message.report_date()
    return FactDocument(
        _id=fact_key(message.report_id, found),
        report_id=message.report_id,
        company=f.company or message.company_hint,
        metric=f.metric,
        metric_known=f.metric_known,
        value=f.json_value(),
        value_decimal=plain_decimal(f.value),
        currency=f.currency,
        unit=f.unit.value,
        quarter=f.quarter,
        value_text=f.value_text,
        value_start=value_start,
        snippet=snip.text,
        snippet_start=snip.start,
        snippet_end=snip.end,
        page=message.page_of(value_start),
        source=message.source,
        file_name=prov.file_name,
        file_sha256=prov.file_sha256,
        line=prov.line,
        row=prov.row,
        channel=prov.channel,
        report_date=report_date,
        report_date_source=report_date_source,
        extractor=found.extractor,
        model=found.model,
        prompt_version=found.prompt_version,
        confidence=found.confidence,
        evidence=found.evidence,
        extracted_at=now,
        schema_version=FACT_SCHEMA_VERSION,
    )


#: rejected snippets and unassigned amounts kept on a report's record
_KEPT = 50


def report_fields(message: ReportMessage, extraction: ReportExtraction) -> ReportFields:
    """What a report's record says about its extraction (the store adds status and facts)."""
    return ReportFields(
        snippets=extraction.snippets,
        snippets_without_amount=extraction.snippets_without_amount,
        rejected=extraction.rejected[:_KEPT],
        unassigned_amounts=extraction.unassigned_amounts,
        unassigned_detail=extraction.unassigned_detail[:_KEPT],
        source=message.source,
        file_name=message.provenance.file_name,
        error=None,
    )
