"""Which files of the inbox to take, and when: in its managed part, not ignored, and settled."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ingest.inbox.names import FAILED_DIR, PROCESSED_DIR, is_ignored_name, is_within
from ingest.inbox.settling import FileStamp, Settling


class Selection:
    """The files of the inbox at ``root`` (an absolute path) that are waiting to be read."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.processed = root / PROCESSED_DIR
        self.failed = root / FAILED_DIR

    def manages(self, path: Path) -> bool:
        """``path`` lies in the inbox, outside ``processed/`` and ``failed/``."""
        where = Path(os.path.abspath(path))
        return (
            is_within(where, self.root)
            and where != self.root
            and not is_within(where, self.processed)
            and not is_within(where, self.failed)
        )

    def is_candidate(self, path: Path) -> bool:
        """A file (or link) in the managed part of the inbox with no ignored part in its name."""
        if not self.manages(path):
            return False
        rel = Path(os.path.abspath(path)).relative_to(self.root)
        return not any(is_ignored_name(part) for part in rel.parts)

    def candidates(self) -> list[Path]:
        """Files waiting in the inbox, oldest name first; links to folders are not followed."""
        found: list[Path] = []
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            here = Path(dirpath)
            dirnames[:] = sorted(
                d
                for d in dirnames
                if not is_ignored_name(d) and self.manages(here / d) and not (here / d).is_symlink()
            )
            for name in sorted(filenames):
                path = here / name
                if self.is_candidate(path) and (path.is_file() or path.is_symlink()):
                    found.append(path)
        return found


def wait_settled(
    paths: Sequence[Path],
    settle_s: float,
    age_s: Callable[[int], float],
    *,
    max_wait_s: float | None = None,
    sleep: Callable[[float], None] | None = None,
    poll_s: float = 0.2,
) -> Iterator[Path]:
    """Yield each path once its size and mtime have been stable for ``settle_s``; wait at most
    ``max_wait_s`` (default ten times ``settle_s``) for the rest. ``age_s(mtime_ns)`` says how
    long ago a file was last modified, so one lying there for a while is taken at once."""
    sleep = sleep or time.sleep
    budget_s = 10 * settle_s if max_wait_s is None else max_wait_s
    settling = Settling(settle_s)
    waiting = list(paths)
    start = time.monotonic()
    while waiting:
        now_s = time.monotonic()
        still: list[Path] = []
        for path in waiting:
            try:
                st = path.lstat() if path.is_symlink() else path.stat()
            except FileNotFoundError:
                continue
            stamp = FileStamp.of(st)
            if settling.observe(path, stamp, now_s, age_s(stamp.mtime_ns)):
                yield path
            else:
                still.append(path)
        waiting = still
        if not waiting or time.monotonic() - start >= budget_s:
            return
        sleep(poll_s)
