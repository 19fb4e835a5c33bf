"""``finpipe watch``: a watchdog observer on the inbox that publishes every completed file.

Events (created, modified, closed, moved in) only nominate a path; a loop in the calling thread
stats the nominated files and processes each once its size and modification time have settled, so
a file still being written is read once, when complete. Whatever is in the inbox at start-up is
swept first, and the inbox is rescanned now and then in case an event was lost.

A writer that keeps a file open past the settle time and writes again after the file was moved to
``processed/`` would leave unpublished rows there: for ``recheck_s`` after a move, the watcher
compares the moved file with what it read, and a file that changed goes back to the inbox to be
read again whole.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from ingest.inbox import (
    FileOutcome,
    FileStamp,
    Inbox,
    ReportPublisher,
    Settling,
    Summary,
    quote_name,
)
from schemas.errors import TransientError

log = logging.getLogger(__name__)

#: files moved lately that are compared with what was read, at most (the oldest drop out first)
RECHECKED_FILES = 1000


class _Nominate(FileSystemEventHandler):
    """Runs in the observer thread: hands paths to the loop, does nothing else."""

    def __init__(self, paths: queue.SimpleQueue[Path]) -> None:
        self.paths = paths

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("deleted", "opened", "closed_no_write"):
            return
        target = event.dest_path if event.event_type == "moved" else event.src_path
        if target:
            self.paths.put(Path(os.fsdecode(target)))


class InboxWatcher:
    """Watches ``inbox`` and publishes through ``publisher`` (used from the calling thread only)."""

    def __init__(
        self,
        inbox: Inbox,
        publisher: ReportPublisher,
        *,
        poll_s: float = 0.25,
        rescan_s: float = 60.0,
        retry_s: float = 5.0,
        recheck_s: float = 60.0,
    ) -> None:
        self.inbox = inbox
        self.publisher = publisher
        self.poll_s = poll_s
        self.rescan_s = rescan_s
        self.retry_s = retry_s
        self.recheck_s = recheck_s
        self.summary = Summary()
        self._events: queue.SimpleQueue[Path] = queue.SimpleQueue()
        self._settling = Settling(inbox.settle_s)
        self._not_before: dict[Path, float] = {}
        #: files moved to processed/ lately, with when to stop comparing them to what was read
        self._moved: dict[Path, tuple[FileOutcome, float]] = {}
        self.started = threading.Event()

    def run(self, stop: threading.Event) -> Summary:
        """Watch until ``stop`` is set; returns the totals of what was processed."""
        self.inbox.ensure_layout()
        observer = Observer()
        observer.schedule(_Nominate(self._events), str(self.inbox.root), recursive=True)
        observer.start()
        log.info(
            "watching %s (files settle after %.1f s)",
            quote_name(self.inbox.root),
            self.inbox.settle_s,
        )
        try:
            self.nominate_all()  # start-up sweep, after the observer so nothing slips through
            self.started.set()
            next_rescan = time.monotonic() + self.rescan_s
            while not stop.is_set():
                self._drain_events()
                if time.monotonic() >= next_rescan:
                    self.nominate_all()
                    next_rescan = time.monotonic() + self.rescan_s
                self.tick()
                stop.wait(self.poll_s)
        finally:
            observer.stop()
            observer.join(timeout=10)
        log.info("watch stopped: %s", self.summary.line())
        return self.summary

    def tick(self) -> None:
        """Process every nominated file that has settled; recheck the files moved lately."""
        self._recheck_moved()
        now_s = time.monotonic()
        for path in self._settling.pending():
            if self._not_before.get(path, 0.0) > now_s:
                continue
            try:
                st = path.lstat() if path.is_symlink() else path.stat()
            except FileNotFoundError:
                self._forget(path)
                continue
            if not (path.is_file() or path.is_symlink()) or not self.inbox.is_candidate(path):
                self._forget(path)
                continue
            stamp = FileStamp.of(st)
            if not self._settling.observe(path, stamp, now_s, self.inbox.age_s(stamp.mtime_ns)):
                continue
            try:
                outcome = self.inbox.process(path, self.publisher)
            except TransientError as exc:
                log.warning(
                    "broker did not take %s, retry in %.0f s: %s",
                    quote_name(path),
                    self.retry_s,
                    exc,
                )
                self._not_before[path] = time.monotonic() + self.retry_s
                continue
            if outcome.status == "left":
                continue  # it changed while it was read: it settles again first
            self.summary.add(outcome)
            self._forget(path)
            if outcome.moved_to is not None and outcome.stamp is not None:
                self._moved[outcome.moved_to] = (outcome, time.monotonic() + self.recheck_s)
                if len(self._moved) > RECHECKED_FILES:
                    del self._moved[next(iter(self._moved))]

    def _recheck_moved(self) -> None:
        """A file moved lately that changed since it was read goes back to the inbox."""
        now_s = time.monotonic()
        for moved, (outcome, until_s) in list(self._moved.items()):
            back = self.inbox.reclaim_if_changed(outcome)
            if back is not None:
                self.nominate(back)
            if back is not None or now_s >= until_s:
                del self._moved[moved]

    def nominate(self, path: Path) -> None:
        """Consider ``path`` (a file, or a folder moved in) for processing once it settles."""
        if path.is_dir() and not path.is_symlink():
            # a folder moved in brings files without events of their own
            if self.inbox.manages(path):
                for dirpath, _dirs, files in os.walk(path, followlinks=False):
                    for name in files:
                        self.nominate(Path(dirpath) / name)
            return
        if self.inbox.is_candidate(path) and path not in self._settling.pending():
            try:
                st = path.lstat()
            except FileNotFoundError:
                return
            stamp = FileStamp.of(st)
            self._settling.observe(path, stamp, time.monotonic(), self.inbox.age_s(stamp.mtime_ns))

    def nominate_all(self) -> None:
        """Consider every file waiting in the inbox."""
        for path in self.inbox.candidates():
            self.nominate(path)

    def _drain_events(self) -> None:
        while True:
            try:
                path = self._events.get_nowait()
            except queue.Empty:
                return
            self.nominate(path)

    def _forget(self, path: Path) -> None:
        self._settling.forget(path)
        self._not_before.pop(path, None)
