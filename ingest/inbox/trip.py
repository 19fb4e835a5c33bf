"""One file's trip through the inbox, top to bottom.

:meth:`Trip.process` takes one complete file through four steps, each in a module of its own:

0. refuse what must not be read (a link out of the inbox or in a loop; not a regular file);
1. take a stable snapshot (``snapshot``): its hash, size and time, within the size limit;
   a file whose content is in the ledger is a duplicate and goes straight to step 4;
2. read its reports and rejects (``reading``), one at a time;
3. publish the reports (``publishing``), a confirmed chunk at a time, collecting the rejects;
4. settle it (``landing``): rejects listed, file moved, ledger entry, log line; or ``failed/``.

The file is moved only while it still holds what was read. One that changed meanwhile is read
and published again (harmless: report ids are hashes of the text, so the reports read before are
the same reports); one that keeps changing is left for later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from ingest.inbox.landing import Landing
from ingest.inbox.limits import ReadLimits
from ingest.inbox.names import DROP_ADVICE, is_within, quote_name
from ingest.inbox.outcome import FileOutcome
from ingest.inbox.publishing import Progress, ReportPublisher, publish_reports
from ingest.inbox.reading import read_items
from ingest.inbox.snapshot import FileTooLarge, Snapshot, take_snapshot
from ingest.readers import UnreadableFile
from schemas.errors import TransientError

log = logging.getLogger(__name__)

#: readings of a file that keeps changing before it is left for later
READ_ATTEMPTS = 3


class Trip:
    """Takes one file of the inbox at ``root`` from where it was dropped to where it lands."""

    def __init__(
        self, root: Path, limits: ReadLimits, landing: Landing, clock: Callable[[], datetime]
    ) -> None:
        self.root = root
        self.limits = limits
        self.landing = landing
        self.clock = clock

    def process(
        self, path: Path, publisher: ReportPublisher, progress: Progress | None = None
    ) -> FileOutcome:
        """Publish one complete inbox file and move it; ``TransientError`` leaves it in place.

        No file stops the inbox: whatever else goes wrong with one (a bug, a file system error)
        fails that file with the reason, and the caller goes on with the next."""
        try:
            return self._travel(path, publisher, progress)
        except TransientError:
            raise
        except Exception as exc:
            log.exception("unexpected error on %s", quote_name(path))
            reason = f"unexpected error while reading the file: {type(exc).__name__}: {exc}"
            return self.landing.failed_anyway(path, reason)

    def _travel(
        self, path: Path, publisher: ReportPublisher, progress: Progress | None
    ) -> FileOutcome:
        refused = self._refuse(path)  # step 0
        if refused is not None:
            return refused
        for _ in range(READ_ATTEMPTS):
            try:
                snapshot = take_snapshot(path, self.limits)  # step 1
            except FileTooLarge as exc:
                return self.landing.failed(path, exc.reason, None, exc.size_bytes)
            except FileNotFoundError:
                return FileOutcome(path, "skipped", reason="file disappeared")
            except OSError as exc:  # no permission to read it, an I/O error
                reason = f"cannot read the file: {exc.strerror or exc}"
                return self.landing.failed(path, reason, None)
            outcome = self._read_publish_settle(path, snapshot, publisher, progress)
            if outcome is not None:
                return outcome
            _warn_changed(path, snapshot)
        log.warning("%s kept changing while it was read; left in the inbox", quote_name(path.name))
        return FileOutcome(path, "left", reason="still being written")

    def _refuse(self, path: Path) -> FileOutcome | None:
        """Links out of the inbox and link loops fail; anything but a regular file is skipped."""
        if path.is_symlink():
            try:
                target = path.resolve()
            except (RuntimeError, OSError) as exc:  # RuntimeError: a loop, before Python 3.13
                reason = f"symbolic link that cannot be followed (a loop?): {exc}"
                return self.landing.failed(path, reason, None)
            if not is_within(target, self.root.resolve()):
                reason = f"symbolic link to {quote_name(target)}, outside the inbox; not followed"
                return self.landing.failed(path, reason, None)
        if not path.is_file():
            return FileOutcome(path, "skipped", reason="not a regular file")
        return None

    def _read_publish_settle(
        self,
        path: Path,
        snapshot: Snapshot,
        publisher: ReportPublisher,
        progress: Progress | None,
    ) -> FileOutcome | None:
        """Steps 2 to 4 on one snapshot; ``None`` when the file changed before it could be
        moved (nothing was moved then)."""
        seen = self.landing.ledger.get(snapshot.sha256)
        if seen is not None:
            if not snapshot.matches(path):
                return None
            return self.landing.duplicate(path, snapshot, seen, progress)
        now = self.clock()
        try:
            items = read_items(path, snapshot, self.limits, now)  # step 2
            done = publish_reports(items, publisher, progress)  # step 3
        except UnreadableFile as exc:
            if not snapshot.matches(path):
                return None
            return self.landing.unreadable(path, snapshot, exc)  # step 4, failed
        if not snapshot.matches(path):
            return None
        return self.landing.published(path, snapshot, now, done, progress)  # step 4


def _warn_changed(path: Path, snapshot: Snapshot) -> None:
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
