"""The managed inbox: which files to take, when they are complete, and the sweep over them.

:meth:`Inbox.process` hands one complete file to its trip (``trip``: snapshot, read, publish,
settle); :meth:`Inbox.sweep` does that for every settled file of the inbox, and
:meth:`Inbox.pending_reports` reads ahead what the next sweep is about to publish.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ingest.inbox.landing import Landing
from ingest.inbox.ledger import Ledger
from ingest.inbox.limits import ReadLimits
from ingest.inbox.names import quote_name
from ingest.inbox.outcome import FileOutcome, Summary
from ingest.inbox.placement import Placement
from ingest.inbox.publishing import Progress, ReportPublisher
from ingest.inbox.reading import read_items
from ingest.inbox.selection import Selection, wait_settled
from ingest.inbox.snapshot import take_snapshot
from ingest.inbox.trip import Trip
from ingest.readers import UnreadableFile
from schemas.errors import TransientError
from schemas.message import ReportMessage
from schemas.settings import Settings

log = logging.getLogger(__name__)


class Inbox:
    """A managed inbox folder: selection, settling, publishing, moving."""

    def __init__(
        self,
        root: Path,
        limits: ReadLimits | None = None,
        *,
        timezone: str = "UTC",
        settle_s: float = 2.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.root = Path(root).absolute()
        self.limits = limits or ReadLimits()
        self.tz = ZoneInfo(timezone)
        self.settle_s = settle_s
        self.clock = clock
        self.selection = Selection(self.root)
        self.placement = Placement(self.root, self.tz, clock)
        self.processed = self.placement.processed
        self.failed = self.placement.failed
        self.ledger = Ledger(self.root)
        landing = Landing(self.root, self.placement, self.ledger, clock)
        self.trip = Trip(self.root, self.limits, landing, clock)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, text_column: str | None = None, settle_s: float = 2.0
    ) -> Inbox:
        return cls(
            settings.inbox,
            ReadLimits.from_settings(settings, text_column),
            timezone=settings.timezone,
            settle_s=settle_s,
        )

    def ensure_layout(self) -> None:
        for folder in (self.root, self.processed, self.failed):
            folder.mkdir(parents=True, exist_ok=True)

    # --- selection -----------------------------------------------------------------------------

    def manages(self, path: Path) -> bool:
        """``path`` lies in the inbox, outside ``processed/`` and ``failed/``."""
        return self.selection.manages(path)

    def is_candidate(self, path: Path) -> bool:
        """A file (or link) in the managed part of the inbox with no ignored part in its name."""
        return self.selection.is_candidate(path)

    def candidates(self) -> list[Path]:
        """Files waiting in the inbox, oldest name first; links to folders are not followed."""
        return self.selection.candidates()

    def age_s(self, stamp_mtime_ns: int) -> float:
        return self.clock().timestamp() - stamp_mtime_ns / 1e9

    # --- processing one file -------------------------------------------------------------------

    def process(
        self, path: Path, publisher: ReportPublisher, progress: Progress | None = None
    ) -> FileOutcome:
        """Publish one complete inbox file and move it (see :class:`Trip`); ``TransientError``
        leaves it in place, anything else that goes wrong fails that file alone."""
        return self.trip.process(path, publisher, progress)

    def reclaim_if_changed(self, outcome: FileOutcome) -> Path | None:
        """A file moved to ``processed/`` that changed since it was read (its writer still had it
        open) goes back to the inbox under its old name, to be read again whole. Returns where
        it went, or ``None`` when it is unchanged."""
        if outcome.status not in ("published", "duplicate"):
            return None
        return self.placement.return_if_changed(outcome)

    # --- reading ahead --------------------------------------------------------------------------

    def pending_reports(self) -> list[ReportMessage]:
        """The reports of the files waiting in the inbox now, read without moving or recording
        anything: what the next sweep is about to publish, for a step that prepares it. Files
        already processed, unreadable or gone are left out (the sweep deals with them)."""
        out: list[ReportMessage] = []
        now = self.clock()
        for path in self.candidates():
            try:
                snapshot = take_snapshot(path, self.limits)
                if self.ledger.get(snapshot.sha256) is not None:
                    continue
                items = read_items(path, snapshot, self.limits, now)
                out.extend(m for m in items if isinstance(m, ReportMessage))
            except (OSError, UnreadableFile):
                continue
        return out

    # --- sweeping the inbox --------------------------------------------------------------------

    def sweep(
        self,
        publisher: ReportPublisher,
        *,
        paths: Iterable[Path] | None = None,
        progress: Progress | None = None,
        max_wait_s: float | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> Summary:
        """Process every complete candidate (default: all of the inbox); files still being written
        after ``max_wait_s`` are left for the next run. A broker failure stops the sweep. Files
        that changed after they were moved to ``processed/`` go back to the inbox, left too."""
        self.ensure_layout()
        summary = Summary()
        todo = list(self.candidates() if paths is None else paths)
        stopped: str | None = None
        for path in self.settled(todo, max_wait_s=max_wait_s, sleep=sleep):
            try:
                outcome = self.process(path, publisher, progress)
            except TransientError as exc:
                log.error("broker did not take %s, left in the inbox: %s", quote_name(path), exc)
                summary.add(FileOutcome(path, "left", reason=str(exc)))
                stopped = f"run stopped: {exc}"
                break
            summary.add(outcome)
        done = {o.path for o in summary.outcomes}
        for path in todo:
            if path not in done:
                if stopped is None:
                    log.info("%s is still being written; left for the next run", quote_name(path))
                summary.add(FileOutcome(path, "left", reason=stopped or "still being written"))
        for outcome in list(summary.outcomes):
            back = self.reclaim_if_changed(outcome)
            if back is not None:
                summary.add(FileOutcome(back, "left", reason="changed after it was read"))
        return summary

    def settled(
        self,
        paths: Sequence[Path],
        *,
        max_wait_s: float | None = None,
        sleep: Callable[[float], None] | None = None,
        poll_s: float = 0.2,
    ) -> Iterator[Path]:
        """Each path once it has settled (see :func:`wait_settled`)."""
        return wait_settled(
            paths, self.settle_s, self.age_s, max_wait_s=max_wait_s, sleep=sleep, poll_s=poll_s
        )
