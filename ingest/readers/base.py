"""What every reader shares: its options, its result, file-level errors; text decoding lives in
``decoding``. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from schemas.errors import UnreadableFile as UnreadableFile
from schemas.errors import validation_errors
from schemas.message import Provenance, ReportMessage, SubmitReport

#: SubmitReport fields besides ``raw_text`` that a row or object may carry
REPORT_FIELDS = ("source", "company_hint", "reported_at")
#: bytes of a message body besides its text's JSON string: field names, metadata, provenance.
#: Intake refuses a report that needs more, so a body is never over max_message_bytes().
ENVELOPE_BYTES = 64_000
#: bytes JSON may write for one byte of text at most (a control character becomes \u0001)
JSON_ESCAPE_FACTOR = 6
#: bytes the fields besides text and metadata can take at most, escaped: source and
#: company_hint (500 characters each), the file name, hash, line, row, times and field names
FIELDS_BYTES = 16_384
#: characters of input that a reason quotes at most, per value and per whole reason
EXCERPT_CHARS = 60
REASON_CHARS = 1000
#: column names or keys that a reason lists at most
LISTED_NAMES = 10


@dataclass(frozen=True)
class ReadOptions:
    """What a reader needs besides the bytes; the caller hashes the file and picks the clock."""

    file_name: str
    file_sha256: str
    ingested_at: datetime
    max_report_bytes: int = 1_000_000
    text_column: str | None = None
    #: a PDF is read in a child process within these budgets when ``pdf_time_s`` is set
    pdf_time_s: float | None = None
    pdf_memory_bytes: int = 2**31


@dataclass(frozen=True)
class Reject:
    """One row, line or array item that was not published, and why (in words a user understands)."""

    reason: str
    line: int | None = None
    row: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.line is not None:
            out["line"] = self.line
        if self.row is not None:
            out["row"] = self.row
        out["reason"] = self.reason
        return out


@dataclass
class ReadResult:
    """The good reports of a file as ready-to-publish messages, plus the rejects."""

    messages: list[ReportMessage] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


def collect(items: Iterable[ReportMessage | Reject]) -> ReadResult:
    """A reader's items gathered into one result (for callers that want them all at once)."""
    result = ReadResult()
    for item in items:
        if isinstance(item, Reject):
            result.rejects.append(item)
        else:
            result.messages.append(item)
    return result


def provenance(
    options: ReadOptions,
    *,
    line: int | None = None,
    row: int | None = None,
    page_offsets: list[int] | None = None,
) -> Provenance:
    return Provenance(
        channel="file",
        file_name=options.file_name,
        file_sha256=options.file_sha256,
        line=line,
        row=row,
        page_offsets=page_offsets,
        ingested_at=options.ingested_at,
    )


# --- quoting input in reasons ------------------------------------------------------------------


def excerpt(value: object, limit: int = EXCERPT_CHARS) -> str:
    """``value`` quoted for a reason: escaped like ``repr`` (no raw newline or control character
    gets through) and cut to ``limit`` characters, saying how long it was."""
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}... ({len(value)} characters)"
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def excerpt_names(names: Sequence[object]) -> str:
    """Column names or keys for a reason: the first few, each an excerpt, and how many more."""
    shown = ", ".join(excerpt(n) for n in names[:LISTED_NAMES]) or "none"
    more = len(names) - LISTED_NAMES
    return f"{shown} and {more} more" if more > 0 else shown


def clip(reason: str, limit: int = REASON_CHARS) -> str:
    """A whole reason cut to ``limit`` characters: the last guard before it is written."""
    return reason if len(reason) <= limit else f"{reason[:limit]}... (cut at {limit} characters)"


def check_report_size(text: str, options: ReadOptions) -> str | None:
    """A reason when ``text`` (a validated report's text, as the worker will see it) is over the
    report limit, else ``None``. The quantity is the text's UTF-8 size, the one ``/submit`` and the
    worker check too; what JSON escaping adds to the message is not counted against it."""
    size = len(text.encode("utf-8"))
    if size > options.max_report_bytes:
        return (
            f"report text is {size} bytes, over the limit of {options.max_report_bytes} bytes "
            "(FINPIPE_MAX_REPORT_BYTES)"
        )
    return None


def max_message_bytes(max_report_bytes: int) -> int:
    """The largest message body a report within the limit can make: every byte of its text
    escaped (a control character is written as six, ``\\u0001``) plus the envelope."""
    return JSON_ESCAPE_FACTOR * max_report_bytes + ENVELOPE_BYTES


def check_envelope_size(message: ReportMessage) -> str | None:
    """A reason when the message's other fields (metadata above all) would take more than
    ``ENVELOPE_BYTES`` of its body, so the whole could exceed :func:`max_message_bytes`."""
    metadata_chars = sum(len(k) + len(v) for k, v in message.metadata.items())
    offsets = len(message.provenance.page_offsets or ())
    bound = JSON_ESCAPE_FACTOR * metadata_chars + 21 * offsets + FIELDS_BYTES
    if bound <= ENVELOPE_BYTES:
        return None  # cannot be over: no need to serialise
    size = len(message.model_copy(update={"raw_text": ""}).to_body())
    if size > ENVELOPE_BYTES:
        return (
            f"the report's fields besides its text (metadata, other columns, page offsets) take "
            f"{size} bytes of its message, over the {ENVELOPE_BYTES} bytes allowed"
        )
    return None


def describe_validation_error(exc: ValidationError) -> str:
    """``field reported_at: 'autumn' is not a date ...`` for the first error, plus a count."""
    first = exc.errors()[0]
    # the top-level field of each error; "report" when it is about the report as a whole
    fields = [(f.partition(".")[0], m) for f, m in validation_errors(exc, whole="report")]
    name, message = fields[0]
    if name == "reported_at":
        when = excerpt(first["input"])
        msg = f"field reported_at: {when} is not a date (use YYYY-MM-DD or ISO 8601)"
    elif name == "raw_text" and first["type"] == "string_too_short":
        msg = "raw_text is empty"
    elif first["type"] == "extra_forbidden":
        msg = f"unknown field {name}"
    else:
        msg = f"field {name}: {message}"
    others = {f for f, _ in fields[1:]} - {name, "report"}
    if others:
        msg += f" (also: {', '.join(sorted(others))})"
    return msg


def build_message(
    fields: dict[str, Any],
    metadata: dict[str, str],
    prov: Provenance,
    options: ReadOptions,
) -> ReportMessage:
    """Validate one report like ``/submit`` does; raises ``ValueError`` with a readable reason.

    Sizes are checked as the worker will check them: the validated text's UTF-8 size against
    ``max_report_bytes``, and the rest of the message against ``ENVELOPE_BYTES``."""
    try:
        report = SubmitReport(**fields)
    except ValidationError as exc:
        raise ValueError(describe_validation_error(exc)) from None
    too_big = check_report_size(report.raw_text, options)
    if too_big:
        raise ValueError(too_big)
    message = ReportMessage.build(report, prov, metadata)
    too_big = check_envelope_size(message)
    if too_big:
        raise ValueError(too_big)
    return message
