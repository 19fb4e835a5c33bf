"""File readers, one module per format, chosen by extension.

A reader takes the file's bytes and :class:`ReadOptions` and returns a :class:`ReadResult`: the
good reports as ready-to-publish messages and the rejected rows or lines with their reasons. A file
that cannot be read at all raises :class:`UnreadableFile`. Readers never touch the file system and
never publish.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import PurePath

from ingest.readers.base import (
    REASON_CHARS,
    ReadOptions,
    ReadResult,
    Reject,
    UnreadableFile,
    clip,
    excerpt,
)
from ingest.readers.csvfile import read_csv
from ingest.readers.jsonl import read_json, read_jsonl
from ingest.readers.pdf import read_pdf
from ingest.readers.text import read_text

Reader = Callable[[bytes, ReadOptions], ReadResult]

READERS: dict[str, Reader] = {
    ".csv": read_csv,
    ".jsonl": read_jsonl,
    ".ndjson": read_jsonl,
    ".json": read_json,
    ".txt": read_text,
    ".pdf": read_pdf,
}

SUPPORTED_SUFFIXES = tuple(READERS)

__all__ = [
    "READERS",
    "SUPPORTED_SUFFIXES",
    "ReadOptions",
    "ReadResult",
    "Reader",
    "Reject",
    "UnreadableFile",
    "read_bytes",
    "reader_for",
]


def reader_for(name: str | PurePath) -> Reader | None:
    """The reader for a file name by its extension (case-insensitive), or ``None``."""
    return READERS.get(PurePath(name).suffix.lower())


def read_bytes(data: bytes, options: ReadOptions) -> ReadResult:
    """Read a whole file's bytes with the reader its name calls for. Every reason, of the file or
    of a row, is at most ``REASON_CHARS`` long, whatever input it quotes."""
    reader = reader_for(options.file_name)
    if reader is None:
        suffix = PurePath(options.file_name).suffix or "(no extension)"
        raise UnreadableFile(
            f"unsupported file type {excerpt(suffix)}; "
            f"finpipe reads {', '.join(SUPPORTED_SUFFIXES)}"
        )
    try:
        result = reader(data, options)
    except UnreadableFile as exc:
        if len(exc.reason) <= REASON_CHARS:
            raise
        raise UnreadableFile(clip(exc.reason)) from None
    result.rejects = [
        r if len(r.reason) <= REASON_CHARS else replace(r, reason=clip(r.reason))
        for r in result.rejects
    ]
    return result
