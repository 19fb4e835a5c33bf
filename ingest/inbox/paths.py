"""``finpipe ingest PATHS``: folders are walked, files inside the inbox are processed and moved
like a sweep does, files anywhere else are published and left where they are."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from ingest.inbox.limits import ReadLimits
from ingest.inbox.names import is_ignored_name, is_within, quote_name
from ingest.inbox.outcome import FileOutcome, Summary
from ingest.inbox.publishing import Progress, ReportPublisher, publish_reports
from ingest.inbox.reading import read_items
from ingest.inbox.rejects import NothingToPublish, log_rejects
from ingest.inbox.snapshot import take_snapshot
from ingest.inbox.sweep import Inbox
from ingest.readers import SUPPORTED_SUFFIXES, UnreadableFile
from schemas.errors import TransientError

log = logging.getLogger(__name__)


def publish_file(
    path: Path,
    publisher: ReportPublisher,
    limits: ReadLimits,
    *,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> FileOutcome:
    """Publish a file outside the inbox and leave it where it is; rejects are only logged."""
    now = now or datetime.now(UTC)
    try:
        snapshot = take_snapshot(path, limits)
        done = publish_reports(read_items(path, snapshot, limits, now), publisher, progress)
    except NothingToPublish as exc:
        log_rejects(path.name, exc.rejects)
        log.error(
            "nothing to publish in %s: %s", quote_name(path), exc.reason, extra={"file": path.name}
        )
        return FileOutcome(path, "failed", rejects=len(exc.rejects), reason=exc.reason)
    except UnreadableFile as exc:
        log.error("cannot read %s: %s", quote_name(path), exc.reason, extra={"file": path.name})
        return FileOutcome(path, "failed", reason=exc.reason)
    except OSError as exc:
        log.error("cannot read %s: %s", quote_name(path), exc, extra={"file": path.name})
        return FileOutcome(path, "failed", reason=str(exc))
    except TransientError:
        raise
    except Exception as exc:  # no single file stops the run
        log.exception("unexpected error on %s", quote_name(path))
        return FileOutcome(path, "failed", reason=f"unexpected error: {type(exc).__name__}: {exc}")
    log_rejects(path.name, done.rejects)
    published = done.reports
    if progress:
        progress(0, snapshot.size)
    log.info(
        "published %s: %d reports, %d rejected (file left in place)",
        quote_name(path),
        published,
        len(done.rejects),
        extra={"file": path.name},
    )
    return FileOutcome(
        path, "published", reports=published, rejects=len(done.rejects), size_bytes=snapshot.size
    )


def ingest_paths(
    paths: Iterable[Path],
    inbox: Inbox,
    publisher: ReportPublisher,
    *,
    progress: Progress | None = None,
) -> Summary:
    """``finpipe ingest``: inbox files are processed and moved like a sweep; files elsewhere are
    published and left where they are. Folders are walked (hidden and partial files skipped)."""
    managed: list[Path] = []
    unmanaged: list[Path] = []
    for path in expand_paths(paths, inbox):
        (managed if inbox.manages(path) else unmanaged).append(path)
    summary = Summary()
    try:
        for path in unmanaged:
            summary.add(publish_file(path, publisher, inbox.limits, progress=progress))
    except TransientError as exc:
        log.error("broker failure, run stopped: %s", exc)
        done = {o.path for o in summary.outcomes}
        for path in unmanaged + managed:
            if path not in done:
                summary.add(FileOutcome(path, "left", reason=str(exc)))
        return summary
    if managed:
        inbox_summary = inbox.sweep(publisher, paths=managed, progress=progress)
        for outcome in inbox_summary.outcomes:
            summary.add(outcome)
    return summary


def expand_paths(paths: Iterable[Path], inbox: Inbox) -> list[Path]:
    """Files named and files under folders named, once each, skipping hidden and partial files
    and (inside the inbox) ``processed/`` and ``failed/``."""
    out: list[Path] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = Path(os.path.abspath(p))
        if key not in seen:
            seen.add(key)
            out.append(key)

    for path in paths:
        if not path.is_dir():
            add(path)
        elif Path(os.path.abspath(path)) == inbox.root:
            for p in inbox.candidates():
                add(p)
        else:
            for p in _walk_outside(path, inbox):
                add(p)
    return out


def _walk_outside(folder: Path, inbox: Inbox) -> Iterable[Path]:
    """Files under a folder other than the inbox root (it may still lie inside the inbox)."""
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if not is_ignored_name(d)
            and not is_within(Path(os.path.abspath(here / d)), inbox.processed)
            and not is_within(Path(os.path.abspath(here / d)), inbox.failed)
        )
        for name in sorted(filenames):
            file = here / name
            if not is_ignored_name(name) and (inbox.manages(file) or _readable_kind(name)):
                yield file


def _readable_kind(name: str) -> bool:
    """Inside folders outside the inbox, only files of a supported type are taken."""
    return Path(name).suffix.lower() in SUPPORTED_SUFFIXES
