"""Step 4 of a file's trip: where it lands, with everything that goes with it, together.

A published file has its rejects listed and logged, moves to ``processed/<day>/`` and gets its
ledger entry; a duplicate moves there without being published again; a file that cannot be read
moves to ``failed/`` with its reason (and its rejected rows, if it had any). Each outcome is one
method, read top to bottom, and each writes one log line an operator can act on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from ingest.inbox.ledger import Ledger
from ingest.inbox.names import quote_name
from ingest.inbox.outcome import FileOutcome
from ingest.inbox.placement import Placement
from ingest.inbox.publishing import Progress, Published
from ingest.inbox.rejects import NothingToPublish, list_rejects, write_rejects
from ingest.inbox.snapshot import Snapshot
from ingest.readers import UnreadableFile
from ingest.readers.base import clip

log = logging.getLogger(__name__)


class Landing:
    """Settles files of the inbox at ``root``: placement, rejects and ledger together."""

    def __init__(
        self, root: Path, placement: Placement, ledger: Ledger, clock: Callable[[], datetime]
    ) -> None:
        self.root = root
        self.placement = placement
        self.ledger = ledger
        self.clock = clock

    def published(
        self,
        path: Path,
        snapshot: Snapshot,
        now: datetime,
        done: Published,
        progress: Progress | None,
    ) -> FileOutcome:
        """Every report was confirmed: list the rejects, move the file, record it in the ledger."""
        name, rejects = path.name, done.rejects
        rejects_file = list_rejects(self.placement.failed_folder(path), name, rejects)
        moved = self.placement.to_processed(path)
        self.ledger.record(
            {
                "sha256": snapshot.sha256,
                "file": name,
                "processed_at": now.isoformat(),
                "moved_to": str(moved.relative_to(self.root)),
                "reports": done.reports,
                "rejects": len(rejects),
            }
        )
        if progress:
            progress(0, snapshot.size)
        if rejects:
            log.warning(
                "published %s: %d reports; %d rejected rows listed in %s; moved to %s",
                quote_name(name),
                done.reports,
                len(rejects),
                quote_name(rejects_file),
                quote_name(moved),
            )
        else:
            log.info(
                "published %s: %d reports; moved to %s",
                quote_name(name),
                done.reports,
                quote_name(moved),
            )
        return FileOutcome(
            path,
            "published",
            reports=done.reports,
            rejects=len(rejects),
            size_bytes=snapshot.size,
            moved_to=moved,
            stamp=snapshot.stamp,
        )

    def duplicate(
        self, path: Path, snapshot: Snapshot, seen: dict[str, Any], progress: Progress | None
    ) -> FileOutcome:
        """Content already ingested: moved to ``processed/`` without publishing it again."""
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
            progress(0, snapshot.size)
        return FileOutcome(
            path, "duplicate", size_bytes=snapshot.size, moved_to=moved, stamp=snapshot.stamp
        )

    def unreadable(self, path: Path, snapshot: Snapshot, exc: UnreadableFile) -> FileOutcome:
        """The bytes hold no report to publish: list the rejected rows, if any, and fail."""
        rejects = exc.rejects if isinstance(exc, NothingToPublish) else []
        write_rejects(self.placement.failed_folder(path), path.name, rejects)
        outcome = self.failed(path, exc.reason, snapshot.sha256, snapshot.size)
        outcome.rejects = len(rejects)
        return outcome

    def failed(self, path: Path, reason: str, sha256: str | None, size: int = 0) -> FileOutcome:
        """Move the file to ``failed/`` with ``<name>.error.json`` giving the reason."""
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

    def failed_anyway(self, path: Path, reason: str) -> FileOutcome:
        """Fail a file after an unexpected error; one that cannot even be moved stays put."""
        try:
            return self.failed(path, reason, None)
        except OSError as exc:
            log.error("cannot move %s to failed/: %s", quote_name(path), exc)
            return FileOutcome(path, "failed", reason=clip(reason))
