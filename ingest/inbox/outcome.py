"""What happened to each file, and the totals of a run. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ingest.inbox.settling import FileStamp

Status = Literal["published", "duplicate", "failed", "left", "skipped"]


@dataclass
class FileOutcome:
    """What happened to one file."""

    path: Path
    status: Status
    reports: int = 0
    rejects: int = 0
    size_bytes: int = 0
    moved_to: Path | None = None
    reason: str | None = None
    #: size and modification time of the file when it was read (for a file that was moved)
    stamp: FileStamp | None = None


@dataclass
class Summary:
    """Totals of a run; ``line()`` is what ``finpipe ingest`` prints at the end."""

    files: int = 0
    reports_published: int = 0
    rows_rejected: int = 0
    files_failed: int = 0
    duplicates: int = 0
    left: int = 0
    outcomes: list[FileOutcome] = field(default_factory=list)

    def add(self, outcome: FileOutcome) -> None:
        self.outcomes.append(outcome)
        if outcome.status == "skipped":
            return
        self.files += 1
        self.reports_published += outcome.reports
        self.rows_rejected += outcome.rejects
        if outcome.status == "failed":
            self.files_failed += 1
        elif outcome.status == "duplicate":
            self.duplicates += 1
        elif outcome.status == "left":
            self.left += 1

    def line(self) -> str:
        text = (
            f"files: {self.files}, reports published: {self.reports_published}, "
            f"rows rejected: {self.rows_rejected}, files failed: {self.files_failed}"
        )
        if self.duplicates:
            text += f", already ingested: {self.duplicates}"
        if self.left:
            text += f", left for the next run: {self.left}"
        return text
