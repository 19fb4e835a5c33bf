"""Where a file goes once it has been read: ``processed/<day>/`` or ``failed/`` with its reason,
under the folder it lay in within the inbox (``inbox/sub/a.csv`` goes to ``processed/<day>/sub/``).

Files are only ever renamed (moved), never altered, deleted or overwritten: a name that is taken
gets a numbered suffix. That holds for the files written next to a moved file too: a file goes to
``failed/`` under a name whose sidecar name is free as well, and sidecars are created exclusively,
so a user's file named like a sidecar (``zz.txt.error.json``) is never replaced by one. Every name
fits the file system's 255 bytes: a long name is cut short and marked (see ``fit_name``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path, PurePath
from typing import Any
from zoneinfo import ZoneInfo

from ingest.inbox.names import (
    DROP_ADVICE,
    FAILED_DIR,
    NAME_MAX,
    PROCESSED_DIR,
    folder_within,
    quote_name,
    unique_name,
)
from ingest.inbox.outcome import FileOutcome
from ingest.inbox.settling import FileStamp

log = logging.getLogger(__name__)

ERROR_SUFFIX = ".error.json"


def processed_day_dir(root: Path, day: date) -> Path:
    return root / PROCESSED_DIR / day.isoformat()


class Placement:
    """Moves files of the inbox at ``root`` out of the way and writes what goes with them."""

    def __init__(self, root: Path, tz: ZoneInfo, clock: Callable[[], datetime]) -> None:
        self.root = root
        self.tz = tz
        self.clock = clock
        self.processed = root / PROCESSED_DIR
        self.failed = root / FAILED_DIR

    def today(self) -> date:
        return self.clock().astimezone(self.tz).date()

    def processed_folder(self, path: Path) -> Path:
        """Where ``path`` goes once published: ``processed/<today>/`` plus the folder it lies in
        within the inbox (``inbox/sub/a.csv`` goes to ``processed/<today>/sub/``)."""
        return processed_day_dir(self.root, self.today()) / self._folder_of(path)

    def failed_folder(self, path: Path) -> Path:
        """Where ``path`` and the files written about it go when it fails: ``failed/`` plus the
        folder it lies in within the inbox."""
        return self.failed / self._folder_of(path)

    def to_processed(self, path: Path) -> Path:
        """Move ``path`` into today's folder under ``processed/``; returns where it went."""
        return self._move(path, self.processed_folder(path))

    def to_failed(self, path: Path, error: dict[str, Any]) -> Path:
        """Move ``path`` into ``failed/`` with ``<name>.error.json`` holding ``error``."""
        moved = self._move(path, self.failed_folder(path), sidecar=ERROR_SUFFIX)
        text = json.dumps(error, indent=2, ensure_ascii=False) + "\n"
        create_file(moved.parent, f"{moved.name}{ERROR_SUFFIX}", text)
        return moved

    def _folder_of(self, path: Path) -> PurePath:
        return folder_within(Path(os.path.abspath(path)), self.root)

    def return_if_changed(self, outcome: FileOutcome) -> Path | None:
        """A moved file that changed since it was read goes back to where it was found (numbered
        if that name is taken again); returns where it went, or ``None`` when it is unchanged."""
        moved, read = outcome.moved_to, outcome.stamp
        if moved is None or read is None:
            return None
        try:
            now = FileStamp.of(moved.stat())
        except FileNotFoundError:
            return None
        if now == read:
            return None
        back = self._move(moved, outcome.path.parent, name=outcome.path.name)
        log.warning(
            "%s changed after it was read and moved to %s (%d bytes when read, %d now): moved "
            "back to the inbox as %s to be read again whole. %s",
            quote_name(outcome.path.name),
            quote_name(moved),
            read.size,
            now.size,
            quote_name(back),
            DROP_ADVICE,
        )
        return back

    @staticmethod
    def _move(
        path: Path, folder: Path, sidecar: str | None = None, name: str | None = None
    ) -> Path:
        """Rename ``path`` into ``folder`` under a free name whose ``sidecar`` name is free too."""
        folder.mkdir(parents=True, exist_ok=True)

        def taken(n: str) -> bool:
            return os.path.lexists(folder / n) or (
                sidecar is not None and os.path.lexists(folder / f"{n}{sidecar}")
            )

        room = NAME_MAX - len(sidecar or "")
        dest = folder / unique_name(name or path.name, taken, room)
        os.rename(path, dest)
        return dest


def create_file(folder: Path, name: str, text: str) -> Path:
    """Write a new file ``folder/name`` (numbered if taken); an existing file is never opened."""
    while True:
        target = folder / unique_name(name, lambda n: os.path.lexists(folder / n))
        try:
            with target.open("x", encoding="utf-8") as fh:
                fh.write(text)
            return target
        except FileExistsError:
            continue  # taken between the look and the write: try the next free name
