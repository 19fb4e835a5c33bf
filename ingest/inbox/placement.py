"""Where a file goes once it has been read: ``processed/<day>/`` or ``failed/`` with its reason.

Files are only ever renamed (moved), never altered, deleted or overwritten: a name that is taken
gets a numbered suffix.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ingest.inbox.names import FAILED_DIR, PROCESSED_DIR, unique_name
from ingest.inbox.reading import rejects_lines
from ingest.readers import Reject


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

    def to_processed(self, path: Path) -> Path:
        """Move ``path`` into today's folder under ``processed/``; returns where it went."""
        return self._move(path, processed_day_dir(self.root, self.today()))

    def to_failed(self, path: Path, error: dict[str, Any]) -> Path:
        """Move ``path`` into ``failed/`` with ``<name>.error.json`` holding ``error``."""
        moved = self._move(path, self.failed)
        sidecar = self.failed / f"{moved.name}.error.json"
        sidecar.write_text(json.dumps(error, indent=2, ensure_ascii=False) + "\n", "utf-8")
        return moved

    def write_rejects(self, name: str, rejects: Sequence[Reject]) -> Path | None:
        """``failed/<name>.rejects.jsonl`` listing the rejected rows, if there are any."""
        if not rejects:
            return None
        self.failed.mkdir(parents=True, exist_ok=True)
        target = self.failed / unique_name(
            f"{name}.rejects.jsonl", lambda n: os.path.lexists(self.failed / n)
        )
        target.write_text(rejects_lines(name, rejects), "utf-8")
        return target

    @staticmethod
    def _move(path: Path, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        name = unique_name(path.name, lambda n: os.path.lexists(folder / n))
        dest = folder / name
        os.rename(path, dest)
        return dest
