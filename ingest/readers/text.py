"""``.txt``: a PDF-text dump or press release; the whole file is one report. Pure."""

from __future__ import annotations

from ingest.readers.base import (
    ReadOptions,
    ReadResult,
    UnreadableFile,
    build_message,
    provenance,
)
from ingest.readers.decoding import decode_text


def read_text(data: bytes, options: ReadOptions) -> ReadResult:
    text, encoding = decode_text(data)
    metadata = {"encoding": encoding} if encoding != "utf-8" else {}
    try:
        message = build_message({"raw_text": text}, metadata, provenance(options), options)
    except ValueError as exc:
        raise UnreadableFile(str(exc)) from None
    return ReadResult(messages=[message])
