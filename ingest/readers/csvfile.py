"""CSV: one report per data row. Pure.

The text column is ``--text-column`` or the first of ``raw_text``, ``text``, ``content``, ``body``
(case-insensitive). ``source``, ``company_hint`` (or ``company``) and ``reported_at`` fill the
report's fields; every other non-empty column travels as metadata. The delimiter (``,``, ``;``,
tab or ``|``) is taken from the header line; quoting, embedded newlines, a BOM and Windows line
endings are handled.
"""

from __future__ import annotations

import csv
import io
import itertools
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from ingest.readers.base import (
    ReadOptions,
    ReadResult,
    Reject,
    UnreadableFile,
    build_message,
    collect,
    excerpt,
    excerpt_names,
    provenance,
)
from ingest.readers.decoding import decode_lines
from ingest.readers.lines import Lines
from schemas.message import ReportMessage

TEXT_COLUMNS = ("raw_text", "text", "content", "body")
DELIMITERS = (",", ";", "\t", "|")
_FIELD_ALIASES = {
    "source": "source",
    "company_hint": "company_hint",
    "company": "company_hint",
    "reported_at": "reported_at",
}


def sniff_delimiter(header_line: str) -> str:
    """The delimiter that occurs most often outside quotes in the header line (``,`` on a tie)."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for ch in header_line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def find_text_column(header: list[str], wanted: str | None) -> int:
    """Index of the text column; raises :class:`UnreadableFile` naming the columns it saw."""
    folded = [h.strip().casefold() for h in header]
    names = [wanted] if wanted else list(TEXT_COLUMNS)
    for name in names:
        if name.strip().casefold() in folded:
            return folded.index(name.strip().casefold())
    shown = excerpt_names(header)
    if wanted:
        raise UnreadableFile(
            f"CSV has no column {excerpt(wanted)} (--text-column); its columns: {shown}"
        )
    raise UnreadableFile(
        f"CSV has no text column: expected one of {', '.join(TEXT_COLUMNS)} (any case) or "
        f"--text-column NAME; its columns: {shown}"
    )


def read_csv(data: bytes, options: ReadOptions) -> ReadResult:
    return collect(iter_csv(data, options))


def iter_csv(data: bytes, options: ReadOptions) -> Iterator[ReportMessage | Reject]:
    """Each row's message or reject, in order, one at a time; a file that cannot be read at
    all raises :class:`UnreadableFile` before the first."""
    return iter_csv_lines(Lines.of(decode_lines(data)), options)


def iter_csv_lines(decoded: Lines, options: ReadOptions) -> Iterator[ReportMessage | Reject]:
    """:func:`iter_csv` over decoded lines (from memory or read from the file as it goes)."""
    if 1 in decoded.bad_lines:
        raise UnreadableFile(f"CSV header: {decoded.bad_lines[1]}")
    source = decoded.open()
    skipped: list[str] = []
    for line in source:  # blank lines before the header
        skipped.append(line)
        if line.strip("\r\n"):
            break
    delimiter = sniff_delimiter(skipped[-1].rstrip("\r\n") if skipped else "")
    _raise_field_limit(options.max_report_bytes)
    lines: Iterable[str] = itertools.chain(skipped, source)
    if decoded.lone_cr:  # old Mac line ends: let io split them
        lines = io.StringIO("".join(lines), newline="")
    reader = csv.reader(lines, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise UnreadableFile("file is empty") from None
    except csv.Error as exc:
        raise UnreadableFile(f"CSV header cannot be parsed: {exc}") from None
    header = [h.strip() for h in header]
    text_idx = find_text_column(header, options.text_column)
    names = [h or f"column_{i + 1}" for i, h in enumerate(header)]

    row_no = 0
    line_no = reader.line_num + 1  # physical line where the next record starts
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            yield Reject(f"CSV cannot be parsed from here on: {exc}; rest of file skipped", line_no)
            break
        start_line, line_no = line_no, reader.line_num + 1
        bad = decoded.bad_between(start_line, line_no - 1)
        if bad is not None:
            row_no += 1
            yield Reject(bad[1], bad[0], row_no)
            continue
        if not cells or all(not c.strip() for c in cells):
            continue  # blank line
        row_no += 1
        try:
            yield _row_message(cells, names, text_idx, start_line, row_no, options)
        except ValueError as exc:
            yield Reject(str(exc), start_line, row_no)


def _row_message(
    cells: list[str],
    names: list[str],
    text_idx: int,
    line: int,
    row: int,
    options: ReadOptions,
) -> ReportMessage:
    if len(cells) > len(names):
        raise ValueError(
            f"row has {len(cells)} fields but the header has {len(names)}; "
            "check quoting of the text column"
        )
    if text_idx >= len(cells) or not cells[text_idx].strip():
        raise ValueError(f"text column {excerpt(names[text_idx])} is empty")
    fields: dict[str, Any] = {"raw_text": cells[text_idx]}
    metadata: dict[str, str] = {}
    for i, value in enumerate(cells):
        if i == text_idx or not value.strip():
            continue
        target = _FIELD_ALIASES.get(names[i].casefold())
        if target and target not in fields:
            fields[target] = value.strip()
        else:
            metadata[names[i]] = value.strip()
    return build_message(fields, metadata, provenance(options, line=line, row=row), options)


def _raise_field_limit(max_report_bytes: int) -> None:
    """Let a cell be as large as a report may be (the csv module's default is 128 KiB)."""
    wanted = min(sys.maxsize, max_report_bytes * 4 + 1024)
    if csv.field_size_limit() < wanted:
        csv.field_size_limit(wanted)
