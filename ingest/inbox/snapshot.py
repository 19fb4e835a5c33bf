"""Step 1 of a file's trip: a stable snapshot of what the file holds.

:func:`take_snapshot` hashes the file within the size limit and notes the size and modification
time it was read under, so every later step can tell whether the file changed before it is moved.
A CSV or JSON Lines file is scanned line by line instead of being held whole (step 2 reads it
again, line by line, as its reports are published).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ingest.inbox.limits import ReadLimits
from ingest.inbox.settling import FileStamp
from ingest.readers import STREAMED, UnreadableFile
from ingest.readers.lines import LineScanner


@dataclass(frozen=True)
class Snapshot:
    """A file's bytes as read, their sha256, and the file's size and modification time after the
    read. ``steady`` is false when the file changed while it was being read (the bytes may mix
    old and new content).

    A CSV or JSON Lines file is not held: ``data`` is ``None``, ``scan`` says how its lines
    decode, and :func:`~ingest.inbox.reading.read_items` reads it again line by line as its
    reports are published."""

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
