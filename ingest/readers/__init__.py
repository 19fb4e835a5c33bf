"""File readers, one module per format, chosen by extension.

A reader takes the file's bytes and :class:`ReadOptions` and returns a :class:`ReadResult`: the
good reports as ready-to-publish messages and the rejected rows or lines with their reasons. A file
that cannot be read at all raises :class:`UnreadableFile`. Readers never touch the file system and
never publish.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import PurePath

from ingest.readers.base import (
    REASON_CHARS,
    ReadOptions,
    ReadResult,
    Reject,
    UnreadableFile,
    clip,
    collect,
    excerpt,
)
from ingest.readers.csvfile import iter_csv, iter_csv_lines, read_csv
from ingest.readers.jsonl import iter_jsonl, iter_jsonl_lines, read_json, read_jsonl
from ingest.readers.lines import Lines, LineScanner
from ingest.readers.pdf import read_pdf
from ingest.readers.text import read_text
from schemas.message import ReportMessage

Reader = Callable[[bytes, ReadOptions], ReadResult]

READERS: dict[str, Reader] = {
    ".csv": read_csv,
    ".jsonl": read_jsonl,
    ".ndjson": read_jsonl,
    ".json": read_json,
    ".txt": read_text,
    ".pdf": read_pdf,
}

#: readers that hand out one item at a time (see :func:`iter_bytes`)
STREAMED: dict[str, Callable[[bytes, ReadOptions], Iterator[ReportMessage | Reject]]] = {
    ".csv": iter_csv,
    ".jsonl": iter_jsonl,
    ".ndjson": iter_jsonl,
}

STREAMED_LINES: dict[str, Callable[[Lines, ReadOptions], Iterator[ReportMessage | Reject]]] = {
    ".csv": iter_csv_lines,
    ".jsonl": iter_jsonl_lines,
    ".ndjson": iter_jsonl_lines,
}

SUPPORTED_SUFFIXES = tuple(READERS)

__all__ = [
    "READERS",
    "STREAMED",
    "SUPPORTED_SUFFIXES",
    "ReadOptions",
    "ReadResult",
    "Reader",
    "Reject",
    "UnreadableFile",
    "iter_bytes",
    "iter_lines_of",
    "read_bytes",
    "reader_for",
]


def reader_for(name: str | PurePath) -> Reader | None:
    """The reader for a file name by its extension (case-insensitive), or ``None``."""
    return READERS.get(PurePath(name).suffix.lower())


def read_bytes(data: bytes, options: ReadOptions) -> ReadResult:
    """Read a whole file's bytes with the reader its name calls for. Every reason, of the file or
    of a row, is at most ``REASON_CHARS`` long, whatever input it quotes."""
    return collect(iter_bytes(data, options))


def iter_bytes(data: bytes, options: ReadOptions) -> Iterator[ReportMessage | Reject]:
    """:func:`read_bytes` one message or reject at a time: CSV and JSON Lines are read as they
    are consumed, so a caller that publishes as it goes never holds every message of a file.
    :class:`UnreadableFile` comes before the first item."""
    suffix = PurePath(options.file_name).suffix.lower()
    streamed = STREAMED.get(suffix)
    reader = reader_for(options.file_name)
    if reader is None:
        shown = PurePath(options.file_name).suffix or "(no extension)"
        raise UnreadableFile(
            f"unsupported file type {excerpt(shown)}; finpipe reads {', '.join(SUPPORTED_SUFFIXES)}"
        )
    try:
        if streamed is not None:
            items = streamed(data, options)
            first = next(items, None)  # a file-level error is raised here
            rest: Iterable[ReportMessage | Reject] = () if first is None else [first]
            items = itertools.chain(rest, items)
        else:
            whole = reader(data, options)
            items = itertools.chain(whole.messages, whole.rejects)
    except UnreadableFile as exc:
        if len(exc.reason) <= REASON_CHARS:
            raise
        raise UnreadableFile(clip(exc.reason)) from None
    return (_clipped(item) for item in items)


def iter_lines_of(
    scan: LineScanner, raw_lines: Callable[[], Iterable[bytes]], options: ReadOptions
) -> Iterator[ReportMessage | Reject]:
    """:func:`iter_bytes` for a CSV or JSON Lines file read line by line from ``raw_lines()``
    (a second pass over the file), decoded as the first pass, ``scan``, found."""
    reader = STREAMED_LINES[PurePath(options.file_name).suffix.lower()]
    try:
        items = reader(scan.lines(raw_lines), options)
        first = next(items, None)  # a file-level error is raised here
    except UnreadableFile as exc:
        if len(exc.reason) <= REASON_CHARS:
            raise
        raise UnreadableFile(clip(exc.reason)) from None
    rest: Iterable[ReportMessage | Reject] = () if first is None else [first]
    return (_clipped(item) for item in itertools.chain(rest, items))


def _clipped(item: ReportMessage | Reject) -> ReportMessage | Reject:
    if isinstance(item, Reject) and len(item.reason) > REASON_CHARS:
        return replace(item, reason=clip(item.reason))
    return item
