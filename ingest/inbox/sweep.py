"""The managed inbox: which files to take, when they are complete, and where they go afterwards.

:meth:`Inbox.process` takes one complete file through named steps: refuse what must not be read,
load it, set a duplicate aside, read its reports, publish them, then move the file to
``processed/`` (or ``failed/`` with the reason). :meth:`Inbox.sweep` does that for every settled
file of the inbox.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ingest.inbox.ledger import Ledger
from ingest.inbox.names import DROP_ADVICE, is_within, quote_name
from ingest.inbox.outcome import FileOutcome, Summary
from ingest.inbox.placement import Placement
from ingest.inbox.reading import (
    FileTooLarge,
    NothingToPublish,
    Progress,
    Published,
    ReadLimits,
    ReportPublisher,
    Snapshot,
    log_rejects,
    publish_reports,
    read_items,
    take_snapshot,
)
from ingest.inbox.selection import Selection, wait_settled
from ingest.readers import UnreadableFile
from ingest.readers.base import clip
from schemas.errors import TransientError
from schemas.message import ReportMessage
from schemas.settings import Settings

log = logging.getLogger(__name__)

#: readings of a file that keeps changing before it is left for later
READ_ATTEMPTS = 3


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
        """Publish one complete inbox file and move it; ``TransientError`` leaves it in place.

        The file is moved only while it still holds what was read. One that changed meanwhile is
        read and published again (harmless: report ids are hashes of the text, so the reports
        read before are the same reports); one that keeps changing is left for later.

        No file stops the inbox: whatever else goes wrong with one (a bug, a file system error)
        fails that file with the reason, and the caller goes on with the next."""
        try:
            return self._process(path, publisher, progress)
        except TransientError:
            raise
        except Exception as exc:
            log.exception("unexpected error on %s", quote_name(path))
            reason = f"unexpected error while reading the file: {type(exc).__name__}: {exc}"
            return self._fail_anyway(path, reason)

    def _process(
        self, path: Path, publisher: ReportPublisher, progress: Progress | None
    ) -> FileOutcome:
        refused = self._refuse(path)
        if refused is not None:
            return refused
        for _ in range(READ_ATTEMPTS):
            try:
                snapshot = take_snapshot(path, self.limits)
            except FileTooLarge as exc:
                return self._fail(path, exc.reason, None, exc.size_bytes)
            except FileNotFoundError:
                return FileOutcome(path, "skipped", reason="file disappeared")
            except OSError as exc:  # no permission to read it, an I/O error
                return self._fail(path, f"cannot read the file: {exc.strerror or exc}", None)
            outcome = self._take(path, snapshot, publisher, progress)
            if outcome is not None:
                return outcome
            self._warn_changed(path, snapshot)
        log.warning("%s kept changing while it was read; left in the inbox", quote_name(path.name))
        return FileOutcome(path, "left", reason="still being written")

    def _take(
        self,
        path: Path,
        snapshot: Snapshot,
        publisher: ReportPublisher,
        progress: Progress | None,
    ) -> FileOutcome | None:
        """Set the file aside, fail it or publish it, as its bytes say; ``None`` when the file
        changed before it could be moved (nothing was moved then)."""
        seen = self.ledger.get(snapshot.sha256)
        if seen is not None:
            if not snapshot.matches(path):
                return None
            return self._set_aside_duplicate(path, snapshot, seen, progress)
        now = self.clock()
        try:
            items = read_items(path, snapshot, self.limits, now)
            done = publish_reports(items, publisher, progress)
        except UnreadableFile as exc:
            return self._fail_read(path, snapshot, exc) if snapshot.matches(path) else None
        if not snapshot.matches(path):
            return None
        return self._finish_published(path, snapshot, now, done, progress)

    def reclaim_if_changed(self, outcome: FileOutcome) -> Path | None:
        """A file moved to ``processed/`` that changed since it was read (its writer still had it
        open) goes back to the inbox under its old name, to be read again whole. Returns where
        it went, or ``None`` when it is unchanged."""
        if outcome.status not in ("published", "duplicate"):
            return None
        return self.placement.return_if_changed(outcome)

    def _warn_changed(self, path: Path, snapshot: Snapshot) -> None:
        try:
            now_bytes: int | str = path.stat().st_size
        except FileNotFoundError:
            now_bytes = "gone"
        log.warning(
            "%s changed while it was read (%d bytes read, %s now); reading it again. %s",
            quote_name(path.name),
            snapshot.size,
            now_bytes,
            DROP_ADVICE,
        )

    def _refuse(self, path: Path) -> FileOutcome | None:
        """Links out of the inbox and link loops fail; anything but a regular file is skipped."""
        if path.is_symlink():
            try:
                target = path.resolve()
            except (RuntimeError, OSError) as exc:  # RuntimeError: a loop, before Python 3.13
                reason = f"symbolic link that cannot be followed (a loop?): {exc}"
                return self._fail(path, reason, None)
            if not is_within(target, self.root.resolve()):
                reason = f"symbolic link to {quote_name(target)}, outside the inbox; not followed"
                return self._fail(path, reason, None)
        if not path.is_file():
            return FileOutcome(path, "skipped", reason="not a regular file")
        return None

    def _set_aside_duplicate(
        self, path: Path, snapshot: Snapshot, seen: dict[str, Any], progress: Progress | None
    ) -> FileOutcome:
        size = snapshot.size
        moved = self.placement.to_processed(path)
        log.info(
            "%s has the same content as %s, already ingested at %s; moved to %s without "
            "publishing it again",
            quote_name(path.name),
            quote_name(seen.get("file")),
            seen.get("processed_at", "an earlier run"),
            quote_name(moved),
        )
        if progress:
            progress(0, size)
        return FileOutcome(path, "duplicate", size_bytes=size, moved_to=moved, stamp=snapshot.stamp)

    def _finish_published(
        self,
        path: Path,
        snapshot: Snapshot,
        now: datetime,
        done: Published,
        progress: Progress | None,
    ) -> FileOutcome:
        """Every report was confirmed: list the rejects, move the file, record it in the ledger."""
        name, size, published, rejects = path.name, snapshot.size, done.reports, done.rejects
        try:
            rejects_file = self.placement.write_rejects(name, rejects)
        except OSError as exc:  # the reports are out: the file must still be moved
            log.error("cannot list the rejected rows of %s: %s", quote_name(name), exc)
            rejects_file = None
        moved = self.placement.to_processed(path)
        self.ledger.record(
            {
                "sha256": snapshot.sha256,
                "file": name,
                "processed_at": now.isoformat(),
                "moved_to": str(moved.relative_to(self.root)),
                "reports": published,
                "rejects": len(rejects),
            }
        )
        if progress:
            progress(0, size)
        if rejects:
            log_rejects(name, rejects)
            log.warning(
                "published %s: %d reports; %d rejected rows listed in %s; moved to %s",
                quote_name(name),
                published,
                len(rejects),
                quote_name(rejects_file),
                quote_name(moved),
            )
        else:
            log.info(
                "published %s: %d reports; moved to %s",
                quote_name(name),
                published,
                quote_name(moved),
            )
        return FileOutcome(
            path,
            "published",
            reports=published,
            rejects=len(rejects),
            size_bytes=size,
            moved_to=moved,
            stamp=snapshot.stamp,
        )

    def _fail_read(self, path: Path, snapshot: Snapshot, exc: UnreadableFile) -> FileOutcome:
        """The bytes hold no report to publish: list the rejected rows, if any, and fail."""
        rejects = exc.rejects if isinstance(exc, NothingToPublish) else []
        self.placement.write_rejects(path.name, rejects)
        outcome = self._fail(path, exc.reason, snapshot.sha256, snapshot.size)
        outcome.rejects = len(rejects)
        return outcome

    def _fail_anyway(self, path: Path, reason: str) -> FileOutcome:
        """Fail a file after an unexpected error; one that cannot even be moved stays put."""
        try:
            return self._fail(path, reason, None)
        except OSError as exc:
            log.error("cannot move %s to failed/: %s", quote_name(path), exc)
            return FileOutcome(path, "failed", reason=clip(reason))

    def _fail(self, path: Path, reason: str, sha256: str | None, size: int = 0) -> FileOutcome:
        reason = clip(reason)
        error = {
            "file": path.name,
            "reason": reason,
            "sha256": sha256,
            "size_bytes": size,
            "failed_at": self.clock().isoformat(),
        }
        moved = self.placement.to_failed(path, error)
        log.error(
            "cannot ingest %s: %s; moved to %s", quote_name(path.name), reason, quote_name(moved)
        )
        return FileOutcome(path, "failed", size_bytes=size, moved_to=moved, reason=reason)

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
