"""The report message: what intake publishes and workers consume, one per report."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

SCHEMA_VERSION = 1

#: Metadata key a reader fills with the document's own date (ISO 8601) where the file states one
#: (a PDF's creation date): the report's date when the report carries no ``reported_at``.
DOCUMENT_DATE = "document_date"

#: Where a report's date comes from, most trusted first (``ReportMessage.report_date``).
DATE_REPORTED = "reported"
DATE_DOCUMENT = "document"
DATE_RECEIVED = "received"

#: JSON escaping can grow a text at most six-fold (a control character becomes ``\u00XX``)
JSON_ESCAPE_GROWTH = 6
#: room in a message body for everything but the text: ids, provenance, metadata
ENVELOPE_OVERHEAD_BYTES = 1_000_000


def text_bytes(text: str) -> int:
    """The size a report's text is limited by (``FINPIPE_MAX_REPORT_BYTES``): its UTF-8 bytes.
    Intake and workers measure this same quantity."""
    return len(text.encode("utf-8"))


def max_envelope_bytes(max_report_bytes: int) -> int:
    """The largest message body a worker decodes: a text at the limit, escaped at worst, plus
    the envelope. A guard against absurd bodies, not the report limit itself."""
    return JSON_ESCAPE_GROWTH * max_report_bytes + ENVELOPE_OVERHEAD_BYTES


def _has_text(value: str) -> str:
    if not value.split():  # Python's idea of whitespace, the one report ids are computed with
        raise ValueError("must contain text, not only whitespace or separators")
    return value


NonBlank = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1), AfterValidator(_has_text)
]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


def _parse_when(value: object) -> date | None:
    """An ISO 8601 date ("2024-05-01") or date-time ("2024-05-01T08:00:00Z")."""
    if value is None or isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return date.fromisoformat(text)
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            pass
    raise ValueError("must be an ISO 8601 date (2024-05-01) or date-time (2024-05-01T08:00:00Z)")


#: ``date`` or ``datetime``, read from ISO 8601 and written back the same way
When = Annotated[
    date | None,
    PlainValidator(_parse_when),
    PlainSerializer(lambda v: v.isoformat() if v is not None else None, return_type=str | None),
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}),
]


def as_utc(when: date) -> datetime:
    """A date as midnight UTC, a date-time without a zone as UTC, any other in UTC."""
    if not isinstance(when, datetime):
        return datetime(when.year, when.month, when.day, tzinfo=UTC)
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def report_date_kept(stored: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[str, ...]:
    """The report-date fields a fact document stored again keeps: both when the date is the same
    instant (a store may keep milliseconds only) or both are receipt times (a report received
    again is dated by its first receipt, so re-running an old report never makes it the newest);
    none when the report's date changed."""
    old, again = stored.get("report_date"), new.get("report_date")
    source = stored.get("report_date_source")
    if not isinstance(old, datetime) or not isinstance(again, datetime):
        return ()
    if source != new.get("report_date_source"):
        return ()
    old = as_utc(old)
    if abs(old - again) < timedelta(milliseconds=1) or (source == DATE_RECEIVED and old <= again):
        return ("report_date", "report_date_source")
    return ()


def normalize_text(text: str) -> str:
    """Canonical form for identity: Unicode NFC, whitespace runs folded to one space, trimmed."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def report_id_for(text: str) -> str:
    """sha256 of the normalized text: the same text from any channel is the same report."""
    return hashlib.sha256(normalize_text(text).encode("utf-8")).hexdigest()


class SubmitReport(BaseModel):
    """One report as posted to ``/submit`` or read from a JSONL line."""

    model_config = ConfigDict(extra="forbid")

    raw_text: NonBlank
    source: ShortText | None = None
    company_hint: ShortText | None = None
    reported_at: When = None


class Provenance(BaseModel):
    """Where a report came from, carried to every fact extracted from it."""

    model_config = ConfigDict(frozen=True)

    channel: Literal["api", "file"]
    file_name: str | None = None
    file_sha256: str | None = None
    line: int | None = Field(None, ge=1, description="JSONL line or CSV physical line, 1-based")
    row: int | None = Field(None, ge=1, description="CSV data row, 1-based")
    page_offsets: list[int] | None = Field(
        None, description="PDF: character offset in raw_text where each page (1-based) starts"
    )
    ingested_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class ReportMessage(BaseModel):
    """The body of one queue message (JSON, UTF-8)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = SCHEMA_VERSION
    report_id: str = Field(pattern=r"^[0-9a-f]{64}$")
    raw_text: NonBlank
    source: str | None = None
    company_hint: str | None = None
    reported_at: When = None
    metadata: dict[str, str] = Field(default_factory=dict)
    provenance: Provenance

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v != SCHEMA_VERSION:
            raise ValueError(f"unsupported schema_version {v}, this worker reads {SCHEMA_VERSION}")
        return v

    @classmethod
    def build(
        cls,
        report: SubmitReport,
        provenance: Provenance,
        metadata: dict[str, str] | None = None,
    ) -> ReportMessage:
        return cls(
            report_id=report_id_for(report.raw_text),
            raw_text=report.raw_text,
            source=report.source,
            company_hint=report.company_hint,
            reported_at=report.reported_at,
            metadata=metadata or {},
            provenance=provenance,
        )

    def to_body(self) -> bytes:
        return self.model_dump_json().encode("utf-8")

    @classmethod
    def from_body(cls, body: bytes) -> ReportMessage:
        """Decode a queue body; raises ``pydantic.ValidationError`` or ``ValueError``."""
        return cls.model_validate_json(body)

    def report_date(self) -> tuple[datetime, str]:
        """The report's own date, what decides which of two disagreeing reports is the newer:
        ``reported_at``, else the document's date where the reader knows it (``DOCUMENT_DATE``
        in the metadata), else when it was received; with where it came from (``DATE_*``)."""
        if self.reported_at is not None:
            return as_utc(self.reported_at), DATE_REPORTED
        written = self.metadata.get(DOCUMENT_DATE)
        if written:
            try:
                document = _parse_when(written)
            except ValueError:
                document = None
            if document is not None:
                return as_utc(document), DATE_DOCUMENT
        return as_utc(self.provenance.ingested_at), DATE_RECEIVED

    def page_of(self, offset: int) -> int | None:
        """1-based PDF page holding character ``offset`` of ``raw_text``, if pages are known."""
        offsets = self.provenance.page_offsets
        if not offsets:
            return None
        page = 1
        for i, start in enumerate(offsets, start=1):
            if start <= offset:
                page = i
        return page
