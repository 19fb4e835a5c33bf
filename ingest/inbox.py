"""The inbox: which files to take, when they are complete, and where they go afterwards.

Layout (all inside the inbox folder)::

    inbox/                      drop files here (sub-folders are fine)
    inbox/processed/YYYY-MM-DD/ files whose reports were all confirmed by the broker
    inbox/failed/               files that cannot be read, with <name>.error.json giving the reason,
                                and <name>.rejects.jsonl listing the bad rows of partly good files
    inbox/.finpipe-ledger.jsonl content hashes of processed files, to recognise a file dropped again

Files are only ever renamed (moved), never altered or deleted. The top of this module is pure
(names, settling, summaries); :class:`Inbox` and :func:`publish_file` do the file-system work and
hand messages to a publisher.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal, Protocol
from zoneinfo import ZoneInfo

from ingest.readers import (
    SUPPORTED_SUFFIXES,
    ReadOptions,
    ReadResult,
    Reject,
    UnreadableFile,
    read_bytes,
)
from schemas.errors import TransientError
from schemas.message import ReportMessage
from schemas.settings import Settings

log = logging.getLogger(__name__)

PROCESSED_DIR = "processed"
FAILED_DIR = "failed"
LEDGER_NAME = ".finpipe-ledger.jsonl"
#: suffixes of files that are still being downloaded or written
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".download", ".swp")
#: messages handed to the publisher per call; progress is reported after each chunk. Each call
#: waits for all its confirms, so a chunk is several confirm windows long (500 stalled the
#: publisher on every chunk and halved its throughput).
PUBLISH_CHUNK = 10_000
#: rejects written to the log per file (all of them go to the rejects file)
LOGGED_REJECTS = 10

#: ``progress(reports_published, bytes_done)``, both increments
Progress = Callable[[int, int], None]


class ReportPublisher(Protocol):
    """What the inbox needs from the publisher (``ingest.publisher.Publisher``)."""

    def publish_many(self, messages: Iterable[ReportMessage]) -> int: ...


# --- pure helpers ------------------------------------------------------------------------------


def is_ignored_name(name: str) -> bool:
    """Hidden files, editor and office lock files, and partial downloads are never taken."""
    lowered = name.lower()
    return (
        not name
        or name.startswith((".", "~$"))
        or name.endswith("~")
        or lowered.endswith(PARTIAL_SUFFIXES)
    )


def unique_name(name: str, taken: Callable[[str], bool]) -> str:
    """``name`` if free, else ``stem-1.ext``, ``stem-2.ext``, ... (never overwrite)."""
    if not taken(name):
        return name
    dot = name.rfind(".")
    stem, ext = (name[:dot], name[dot:]) if dot > 0 else (name, "")
    n = 1
    while taken(f"{stem}-{n}{ext}"):
        n += 1
    return f"{stem}-{n}{ext}"


def processed_day_dir(root: Path, day: date) -> Path:
    return root / PROCESSED_DIR / day.isoformat()


def is_within(path: Path, folder: Path) -> bool:
    """``path`` is ``folder`` or below it (both already resolved)."""
    return path == folder or folder in path.parents


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


Status = Literal["published", "duplicate", "failed", "left", "skipped"]


@dataclass
class FileOutcome:
    """What happened to one file."""

    path: Path
    status: Status
    reports: int = 0
    rejects: int = 0
    size_bytes: int = 0
    moved_to: Path | None = None
    reason: str | None = None


@dataclass
class Summary:
    """Totals of a run; ``line()`` is what ``finpipe ingest`` prints at the end."""

    files: int = 0
    reports_published: int = 0
    rows_rejected: int = 0
    files_failed: int = 0
    duplicates: int = 0
    left: int = 0
    outcomes: list[FileOutcome] = field(default_factory=list)

    def add(self, outcome: FileOutcome) -> None:
        self.outcomes.append(outcome)
        if outcome.status == "skipped":
            return
        self.files += 1
        self.reports_published += outcome.reports
        self.rows_rejected += outcome.rejects
        if outcome.status == "failed":
            self.files_failed += 1
        elif outcome.status == "duplicate":
            self.duplicates += 1
        elif outcome.status == "left":
            self.left += 1

    def line(self) -> str:
        text = (
            f"files: {self.files}, reports published: {self.reports_published}, "
            f"rows rejected: {self.rows_rejected}, files failed: {self.files_failed}"
        )
        if self.duplicates:
            text += f", already ingested: {self.duplicates}"
        if self.left:
            text += f", left for the next run: {self.left}"
        return text


def rejects_lines(file_name: str, rejects: Sequence[Reject]) -> str:
    """The rejects file's content: one JSON object per rejected row or line."""
    return "".join(
        json.dumps({"file": file_name, **r.to_json()}, ensure_ascii=False) + "\n" for r in rejects
    )


# --- reading and publishing one file -----------------------------------------------------------


@dataclass(frozen=True)
class ReadLimits:
    max_file_bytes: int = 100_000_000
    max_report_bytes: int = 1_000_000
    text_column: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, text_column: str | None = None) -> ReadLimits:
        return cls(settings.max_file_bytes, settings.max_report_bytes, text_column)


def load_file(path: Path, limits: ReadLimits) -> tuple[bytes, str]:
    """The file's bytes and sha256; :class:`UnreadableFile` when it is over the size limit."""
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise UnreadableFile(
            f"file is {size} bytes, over the limit of {limits.max_file_bytes} bytes "
            "(FINPIPE_MAX_FILE_BYTES)"
        )
    with path.open("rb") as fh:
        data = fh.read(limits.max_file_bytes + 1)
    if len(data) > limits.max_file_bytes:
        raise UnreadableFile(f"file grew over the limit of {limits.max_file_bytes} bytes")
    return data, hashlib.sha256(data).hexdigest()


def parse(data: bytes, sha256: str, name: str, limits: ReadLimits, now: datetime) -> ReadResult:
    options = ReadOptions(
        file_name=name,
        file_sha256=sha256,
        ingested_at=now,
        max_report_bytes=limits.max_report_bytes,
        text_column=limits.text_column,
    )
    return read_bytes(data, options)


def publish_messages(
    messages: Sequence[ReportMessage],
    publisher: ReportPublisher,
    progress: Progress | None = None,
) -> int:
    """Publish in chunks; returns how many were confirmed. ``TransientError`` propagates."""
    confirmed = 0
    for start in range(0, len(messages), PUBLISH_CHUNK):
        chunk = messages[start : start + PUBLISH_CHUNK]
        confirmed += publisher.publish_many(chunk)
        if progress:
            progress(len(chunk), 0)
    return confirmed


def _log_rejects(name: str, rejects: Sequence[Reject]) -> None:
    for r in rejects[:LOGGED_REJECTS]:
        where = f"line {r.line}" if r.line is not None else f"row {r.row}" if r.row else "file"
        log.warning("rejected %s %s: %s", name, where, r.reason)
    if len(rejects) > LOGGED_REJECTS:
        log.warning("rejected %d more rows of %s", len(rejects) - LOGGED_REJECTS, name)


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
        data, sha256 = load_file(path, limits)
        result = parse(data, sha256, path.name, limits, now)
    except UnreadableFile as exc:
        log.error("cannot read %s: %s", path, exc.reason)
        return FileOutcome(path, "failed", reason=exc.reason)
    except OSError as exc:
        log.error("cannot read %s: %s", path, exc)
        return FileOutcome(path, "failed", reason=str(exc))
    _log_rejects(path.name, result.rejects)
    if not result.messages:
        reason = _no_reports_reason(result.rejects)
        log.error("nothing to publish in %s: %s", path, reason)
        return FileOutcome(path, "failed", rejects=len(result.rejects), reason=reason)
    published = publish_messages(result.messages, publisher, progress)
    if progress:
        progress(0, len(data))
    log.info(
        "published %s: %d reports, %d rejected (file left in place)",
        path,
        published,
        len(result.rejects),
    )
    return FileOutcome(
        path, "published", reports=published, rejects=len(result.rejects), size_bytes=len(data)
    )


def _no_reports_reason(rejects: Sequence[Reject]) -> str:
    if not rejects:
        return "no reports in file"
    first = rejects[0]
    where = f"line {first.line}" if first.line else f"row {first.row}" if first.row else "file"
    return f"no valid reports: all {len(rejects)} rejected (first, {where}: {first.reason})"


# --- the managed inbox -------------------------------------------------------------------------


class Ledger:
    """Content hashes of files already processed, kept in ``inbox/.finpipe-ledger.jsonl``.

    When the ledger is missing it is rebuilt from the files under ``processed/``.
    """

    def __init__(self, root: Path) -> None:
        self.path = root / LEDGER_NAME
        self._root = root
        self._entries: dict[str, dict[str, Any]] | None = None

    def _load(self) -> dict[str, dict[str, Any]]:
        if self._entries is not None:
            return self._entries
        entries: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            for raw in self.path.read_text("utf-8").splitlines():
                try:
                    entry = json.loads(raw)
                    entries[entry["sha256"]] = entry
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a crash
        else:
            processed = self._root / PROCESSED_DIR
            for p in sorted(processed.rglob("*")) if processed.is_dir() else []:
                if p.is_file() and not p.is_symlink():
                    sha = hashlib.sha256(p.read_bytes()).hexdigest()
                    entries[sha] = {"sha256": sha, "file": p.name, "moved_to": str(p)}
            if entries:
                log.info("rebuilt the inbox ledger from %d processed files", len(entries))
                self.path.write_text(
                    "".join(json.dumps(e) + "\n" for e in entries.values()), "utf-8"
                )
        self._entries = entries
        return entries

    def get(self, sha256: str) -> dict[str, Any] | None:
        return self._load().get(sha256)

    def record(self, entry: dict[str, Any]) -> None:
        self._load()[entry["sha256"]] = entry
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")


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
        self.processed = self.root / PROCESSED_DIR
        self.failed = self.root / FAILED_DIR
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

    # selection

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

    def age_s(self, stamp_mtime_ns: int) -> float:
        return self.clock().timestamp() - stamp_mtime_ns / 1e9

    # processing

    def process(
        self, path: Path, publisher: ReportPublisher, progress: Progress | None = None
    ) -> FileOutcome:
        """Publish one complete inbox file and move it; ``TransientError`` leaves it in place."""
        name = path.name
        if path.is_symlink():
            target = path.resolve()
            if not is_within(target, self.root.resolve()):
                reason = f"symbolic link to {target}, outside the inbox; links out are not followed"
                return self._fail(path, reason, None)
        if not path.is_file():
            return FileOutcome(path, "skipped", reason="not a regular file")
        try:
            data, sha256 = load_file(path, self.limits)
        except UnreadableFile as exc:
            return self._fail(path, exc.reason, None)
        except FileNotFoundError:
            return FileOutcome(path, "skipped", reason="file disappeared")

        seen = self.ledger.get(sha256)
        if seen is not None:
            moved = self._move(path, processed_day_dir(self.root, self._today()))
            log.info(
                "%s has the same content as %s, already ingested at %s; moved to %s without "
                "publishing it again",
                name,
                seen.get("file"),
                seen.get("processed_at", "an earlier run"),
                moved,
            )
            if progress:
                progress(0, len(data))
            return FileOutcome(path, "duplicate", size_bytes=len(data), moved_to=moved)

        now = self.clock()
        try:
            result = parse(data, sha256, name, self.limits, now)
        except UnreadableFile as exc:
            return self._fail(path, exc.reason, sha256, size=len(data))
        if not result.messages:
            self._write_rejects(name, result.rejects)
            outcome = self._fail(path, _no_reports_reason(result.rejects), sha256, len(data))
            outcome.rejects = len(result.rejects)
            return outcome

        published = publish_messages(result.messages, publisher, progress)
        rejects_file = self._write_rejects(name, result.rejects)
        moved = self._move(path, processed_day_dir(self.root, self._today()))
        self.ledger.record(
            {
                "sha256": sha256,
                "file": name,
                "processed_at": now.isoformat(),
                "moved_to": str(moved.relative_to(self.root)),
                "reports": published,
                "rejects": len(result.rejects),
            }
        )
        if progress:
            progress(0, len(data))
        if result.rejects:
            _log_rejects(name, result.rejects)
            log.warning(
                "published %s: %d reports; %d rejected rows listed in %s; moved to %s",
                name,
                published,
                len(result.rejects),
                rejects_file,
                moved,
            )
        else:
            log.info("published %s: %d reports; moved to %s", name, published, moved)
        return FileOutcome(
            path,
            "published",
            reports=published,
            rejects=len(result.rejects),
            size_bytes=len(data),
            moved_to=moved,
        )

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
        after ``max_wait_s`` are left for the next run. A broker failure stops the sweep."""
        self.ensure_layout()
        summary = Summary()
        todo = list(self.candidates() if paths is None else paths)
        stopped: str | None = None
        for path in self.settled(todo, max_wait_s=max_wait_s, sleep=sleep):
            try:
                outcome = self.process(path, publisher, progress)
            except TransientError as exc:
                log.error("broker did not take %s, left in the inbox: %s", path, exc)
                summary.add(FileOutcome(path, "left", reason=str(exc)))
                stopped = f"run stopped: {exc}"
                break
            summary.add(outcome)
        done = {o.path for o in summary.outcomes}
        for path in todo:
            if path not in done:
                if stopped is None:
                    log.info("%s is still being written; left for the next run", path)
                summary.add(FileOutcome(path, "left", reason=stopped or "still being written"))
        return summary

    def settled(
        self,
        paths: Sequence[Path],
        *,
        max_wait_s: float | None = None,
        sleep: Callable[[float], None] | None = None,
        poll_s: float = 0.2,
    ) -> Iterator[Path]:
        """Yield each path once its size and mtime have been stable for ``settle_s``; wait at most
        ``max_wait_s`` (default ten times ``settle_s``) for the rest."""
        import time

        sleep = sleep or time.sleep
        budget_s = 10 * self.settle_s if max_wait_s is None else max_wait_s
        settling = Settling(self.settle_s)
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
                if settling.observe(path, stamp, now_s, self.age_s(stamp.mtime_ns)):
                    yield path
                else:
                    still.append(path)
            waiting = still
            if not waiting or time.monotonic() - start >= budget_s:
                return
            sleep(poll_s)

    # moving

    def _today(self) -> date:
        return self.clock().astimezone(self.tz).date()

    def _move(self, path: Path, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        name = unique_name(path.name, lambda n: os.path.lexists(folder / n))
        dest = folder / name
        os.rename(path, dest)
        return dest

    def _fail(self, path: Path, reason: str, sha256: str | None, size: int = 0) -> FileOutcome:
        moved = self._move(path, self.failed)
        sidecar = self.failed / f"{moved.name}.error.json"
        sidecar.write_text(
            json.dumps(
                {
                    "file": path.name,
                    "reason": reason,
                    "sha256": sha256,
                    "size_bytes": size,
                    "failed_at": self.clock().isoformat(),
                },
                indent=2,
                ensure_ascii=False,
            )
            + "\n",
            "utf-8",
        )
        log.error("cannot ingest %s: %s; moved to %s", path.name, reason, moved)
        return FileOutcome(path, "failed", size_bytes=size, moved_to=moved, reason=reason)

    def _write_rejects(self, name: str, rejects: Sequence[Reject]) -> Path | None:
        if not rejects:
            return None
        self.failed.mkdir(parents=True, exist_ok=True)
        target = self.failed / unique_name(
            f"{name}.rejects.jsonl", lambda n: os.path.lexists(self.failed / n)
        )
        target.write_text(rejects_lines(name, rejects), "utf-8")
        return target


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
        if path.is_dir():
            if Path(os.path.abspath(path)) == inbox.root:
                for p in inbox.candidates():
                    add(p)
                continue
            for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
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
                    if is_ignored_name(name):
                        continue
                    if inbox.manages(file) or _readable_kind(name):
                        add(file)
        else:
            add(path)
    return out


def _readable_kind(name: str) -> bool:
    """Inside folders outside the inbox, only files of a supported type are taken."""
    return Path(name).suffix.lower() in SUPPORTED_SUFFIXES
