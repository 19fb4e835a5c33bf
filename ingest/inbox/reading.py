"""Step 2 of a file's trip: the snapshot's reports and rejects, one at a time.

:func:`read_items` reads from the bytes the snapshot took, or (CSV and JSON Lines) reads the file
again line by line as its reports are published, each line decoded as the first pass found. The
inbox and ``finpipe ingest`` on files outside it read alike; they differ only in where the file
goes afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from ingest.inbox.limits import ReadLimits
from ingest.inbox.rejects import NothingToPublish
from ingest.inbox.snapshot import Snapshot
from ingest.readers import ReadOptions, ReadResult, Reject, iter_bytes, iter_lines_of, read_bytes
from schemas.message import ReportMessage


def read_items(
    path: Path, snapshot: Snapshot, limits: ReadLimits, now: datetime
) -> Iterator[ReportMessage | Reject]:
    """The file's reports and rejects one at a time: from the bytes taken, or read again line by
    line from the file (see :class:`Snapshot`). :class:`UnreadableFile` before the first."""
    options = _options(snapshot.sha256, path.name, limits, now)
    if snapshot.data is not None or snapshot.scan is None:
        return iter_bytes(snapshot.data or b"", options)

    def raw_lines() -> Iterator[bytes]:
        with path.open("rb") as fh:
            yield from fh

    return iter_lines_of(snapshot.scan, raw_lines, options)


def parse(data: bytes, sha256: str, name: str, limits: ReadLimits, now: datetime) -> ReadResult:
    """Bytes held whole to reports and rejects (the benchmark's way of reading)."""
    return read_bytes(data, _options(sha256, name, limits, now))


def read_reports(
    data: bytes, sha256: str, name: str, limits: ReadLimits, now: datetime
) -> ReadResult:
    """``parse``, but a file without a single good report raises :class:`NothingToPublish`."""
    result = parse(data, sha256, name, limits, now)
    if not result.messages:
        raise NothingToPublish(result.rejects)
    return result


def _options(sha256: str, name: str, limits: ReadLimits, now: datetime) -> ReadOptions:
    return ReadOptions(
        file_name=name,
        file_sha256=sha256,
        ingested_at=now,
        max_report_bytes=limits.max_report_bytes,
        text_column=limits.text_column,
        pdf_time_s=limits.pdf_time_s,
        pdf_memory_bytes=limits.pdf_memory_bytes,
    )
