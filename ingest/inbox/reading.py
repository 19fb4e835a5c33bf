"""Reading one file into messages and handing them to a publisher; the steps every caller shares.

``take_snapshot`` takes the bytes (within the size limit) with the size and modification time
they were read under, so a caller can tell whether the file changed before it moves it;
``read_reports`` turns the bytes into messages
(a file with none raises :class:`NothingToPublish`), ``publish_messages`` hands them over in
chunks. The inbox and ``finpipe ingest`` on files outside it differ only in where the file goes
afterwards.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from ingest.inbox.names import quote_name
from ingest.inbox.settling import FileStamp
from ingest.readers import (
    STREAMED,
    ReadOptions,
    ReadResult,
    Reject,
    UnreadableFile,
    iter_bytes,
    iter_lines_of,
    read_bytes,
)
from ingest.readers.lines import LineScanner
from schemas.message import ReportMessage
from schemas.settings import Settings

log = logging.getLogger(__name__)

#: messages handed to the publisher per call; progress is reported after each chunk. Each call
#: waits for all its confirms, so a chunk is several confirm windows long (500 stalled the
#: publisher on every chunk and halved its throughput).
PUBLISH_CHUNK = 10_000
#: a PDF's time and memory budget: a real report of hundreds of pages reads in seconds
PDF_TIME_S = 60.0
PDF_MEMORY_BYTES = 2 * 2**30
#: rejects written to the log per file (all of them go to the rejects file)
LOGGED_REJECTS = 10

#: ``progress(reports_published, bytes_done)``, both increments
Progress = Callable[[int, int], None]


class ReportPublisher(Protocol):
    """What the inbox needs from the RabbitMQ publisher: publish with confirms, say how many."""

    def publish_many(self, messages: Iterable[ReportMessage]) -> int: ...


@dataclass(frozen=True)
class ReadLimits:
    max_file_bytes: int = 100_000_000
    max_report_bytes: int = 1_000_000
    text_column: str | None = None
    #: seconds and bytes of address space a PDF may take to read (in a child process)
    pdf_time_s: float = PDF_TIME_S
    pdf_memory_bytes: int = PDF_MEMORY_BYTES

    @classmethod
    def from_settings(cls, settings: Settings, text_column: str | None = None) -> ReadLimits:
        return cls(settings.max_file_bytes, settings.max_report_bytes, text_column)


class NothingToPublish(UnreadableFile):
    """A file that was read but holds no valid report; ``rejects`` says why, row by row."""

    def __init__(self, rejects: Sequence[Reject]) -> None:
        super().__init__(no_reports_reason(rejects))
        self.rejects = list(rejects)


@dataclass(frozen=True)
class Snapshot:
    """A file's bytes as read, their sha256, and the file's size and modification time after the
    read. ``steady`` is false when the file changed while it was being read (the bytes may mix
    old and new content).

    A CSV or JSON Lines file is not held: ``data`` is ``None``, ``scan`` says how its lines
    decode, and :func:`read_items` reads it again line by line as its reports are published."""

    data: bytes | None
    sha256: str
    stamp: FileStamp
    steady: bool = True
    scan: LineScanner | None = None
    size_bytes: int = 0

    @property
    def size(self) -> int:
        return len(self.data) if self.data is not None else self.size_bytes

    def matches(self, path: Path) -> bool:
        """``path`` still holds what was read: it was steady then and is unchanged since."""
        try:
            return self.steady and FileStamp.of(path.stat()) == self.stamp
        except FileNotFoundError:
            return False


class FileTooLarge(UnreadableFile):
    """A file over ``FINPIPE_MAX_FILE_BYTES``; it is not read, ``size_bytes`` says how big it is."""

    def __init__(self, size_bytes: int, limit: int, *, grew: bool = False) -> None:
        what = "grew to" if grew else "is"
        super().__init__(
            f"file {what} {size_bytes} bytes, over the limit of {limit} bytes "
            "(FINPIPE_MAX_FILE_BYTES)"
        )
        self.size_bytes = size_bytes


def take_snapshot(path: Path, limits: ReadLimits) -> Snapshot:
    """Hash the file and take its bytes, or for CSV and JSON Lines learn how its lines decode
    (one pass, line by line); :class:`FileTooLarge` when it is over the size limit."""
    with path.open("rb") as fh:
        before = FileStamp.of(os.fstat(fh.fileno()))
        if before.size > limits.max_file_bytes:
            raise FileTooLarge(before.size, limits.max_file_bytes)
        if path.suffix.lower() in STREAMED:
            scanned = _scan_lines(fh, limits, before)
            if scanned is not None:
                return scanned
            fh.seek(0)
        data = fh.read(limits.max_file_bytes + 1)
        after = FileStamp.of(os.fstat(fh.fileno()))
    if len(data) > limits.max_file_bytes:
        raise FileTooLarge(max(after.size, len(data)), limits.max_file_bytes, grew=True)
    return Snapshot(data, hashlib.sha256(data).hexdigest(), after, steady=before == after)


def _scan_lines(fh: BinaryIO, limits: ReadLimits, before: FileStamp) -> Snapshot | None:
    """The first pass over a line-based file; ``None`` when it must be decoded whole."""
    sha, scanner, size = hashlib.sha256(), LineScanner(), 0
    for raw in fh:
        size += len(raw)
        if size > limits.max_file_bytes:
            raise FileTooLarge(size, limits.max_file_bytes, grew=True)
        sha.update(raw)
        scanner.feed(raw)
    after = FileStamp.of(os.fstat(fh.fileno()))
    if scanner.whole_file_only():
        return None
    return Snapshot(None, sha.hexdigest(), after, before == after, scan=scanner, size_bytes=size)


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


def load_file(path: Path, limits: ReadLimits) -> tuple[bytes, str]:
    """The file's bytes and sha256, read whole."""
    with path.open("rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > limits.max_file_bytes:
            raise FileTooLarge(size, limits.max_file_bytes)
        data = fh.read(limits.max_file_bytes + 1)
    if len(data) > limits.max_file_bytes:
        raise FileTooLarge(len(data), limits.max_file_bytes, grew=True)
    return data, hashlib.sha256(data).hexdigest()


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


def parse(data: bytes, sha256: str, name: str, limits: ReadLimits, now: datetime) -> ReadResult:
    return read_bytes(data, _options(sha256, name, limits, now))


def read_reports(
    data: bytes, sha256: str, name: str, limits: ReadLimits, now: datetime
) -> ReadResult:
    """``parse``, but a file without a single good report raises :class:`NothingToPublish`."""
    result = parse(data, sha256, name, limits, now)
    if not result.messages:
        raise NothingToPublish(result.rejects)
    return result


@dataclass
class Published:
    """What :func:`publish_reports` did with a file: reports confirmed, rows rejected."""

    reports: int = 0
    rejects: list[Reject] = field(default_factory=list)


def publish_reports(
    items: Iterable[ReportMessage | Reject],
    publisher: ReportPublisher,
    progress: Progress | None = None,
) -> Published:
    """Publish a file's reports as they are read (see :func:`read_items`), ``PUBLISH_CHUNK`` at a
    time, each chunk confirmed before the next is read, so memory does not grow with the file's
    rows. A file without a single good report raises :class:`NothingToPublish` (nothing was
    published then). ``TransientError`` propagates; the chunks confirmed before stay published
    (report ids make publishing them again harmless)."""
    done = Published()
    chunk: list[ReportMessage] = []
    good = 0
    for item in items:
        if isinstance(item, Reject):
            done.rejects.append(item)
            continue
        good += 1
        chunk.append(item)
        if len(chunk) >= PUBLISH_CHUNK:
            done.reports += publish_messages(chunk, publisher, progress)
            chunk = []
    if not good:
        raise NothingToPublish(done.rejects)
    if chunk:
        done.reports += publish_messages(chunk, publisher, progress)
    return done


def publish_messages(
    messages: Sequence[ReportMessage],
    publisher: ReportPublisher,
    progress: Progress | None = None,
) -> int:
    """Publish in chunks; returns how many were confirmed. ``TransientError`` propagates."""
    confirmed = 0
    for start in range(0, len(messages), PUBLISH_CHUNK):
        chunk = messages[start : start + PUBLISH_CHUNK]
        confirmed += publisher.publish_many(chunk)
        if progress:
            progress(len(chunk), 0)
    return confirmed


def no_reports_reason(rejects: Sequence[Reject]) -> str:
    if not rejects:
        return "no reports in file"
    first = rejects[0]
    return f"no valid reports: all {len(rejects)} rejected (first, {_where(first)}: {first.reason})"


def log_rejects(name: str, rejects: Sequence[Reject]) -> None:
    for r in rejects[:LOGGED_REJECTS]:
        log.warning("rejected %s %s: %s", quote_name(name), _where(r), r.reason)
    if len(rejects) > LOGGED_REJECTS:
        log.warning("rejected %d more rows of %s", len(rejects) - LOGGED_REJECTS, quote_name(name))


def rejects_lines(file_name: str, rejects: Sequence[Reject]) -> str:
    """The rejects file's content: one JSON object per rejected row or line."""
    return "".join(
        json.dumps({"file": file_name, **r.to_json()}, ensure_ascii=False) + "\n" for r in rejects
    )


def _where(r: Reject) -> str:
    return f"line {r.line}" if r.line else f"row {r.row}" if r.row else "file"
