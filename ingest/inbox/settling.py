"""When is a file complete? When its size and modification time have stopped changing. Pure."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FileStamp:
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStamp:
        return cls(st.st_size, st.st_mtime_ns)


class Settling:
    """Tracks files until their size and modification time have not changed for ``settle_s``.

    Pure: callers pass the stamp, a monotonic ``now_s`` and, on first sight, how long ago the file
    was last modified (``age_s``), so a file that has been lying there for a while is ready at once.
    """

    def __init__(self, settle_s: float) -> None:
        self.settle_s = settle_s
        self._seen: dict[Path, tuple[FileStamp, float]] = {}

    def observe(self, path: Path, stamp: FileStamp, now_s: float, age_s: float = 0.0) -> bool:
        """Record an observation; ``True`` when the file is complete (settled)."""
        previous = self._seen.get(path)
        if previous is None or previous[0] != stamp:
            since = now_s - max(0.0, age_s) if previous is None else now_s
            self._seen[path] = (stamp, since)
        return now_s - self._seen[path][1] >= self.settle_s

    def forget(self, path: Path) -> None:
        self._seen.pop(path, None)

    def pending(self) -> list[Path]:
        return list(self._seen)
