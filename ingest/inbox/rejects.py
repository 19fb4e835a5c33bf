"""The rejected rows and lines of a file, in one place: collected while its reports are published
(:func:`collect`), logged (the first ``LOGGED_REJECTS``) and listed in full in the sidecar
``<name>.rejects.jsonl`` beside where failed files go (:func:`list_rejects`); ``landing`` counts
them in the file's ledger entry in the same step. A file with no good report at all is
:class:`NothingToPublish`, its reason naming the first reject.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from ingest.inbox.names import NAME_MAX, fit_name, quote_name
from ingest.inbox.placement import create_file
from ingest.readers import Reject, UnreadableFile
from schemas.message import ReportMessage

log = logging.getLogger(__name__)

#: rejects written to the log per file (all of them go to the rejects file)
LOGGED_REJECTS = 10
REJECTS_SUFFIX = ".rejects.jsonl"


class NothingToPublish(UnreadableFile):
    """A file that was read but holds no valid report; ``rejects`` says why, row by row."""

    def __init__(self, rejects: Sequence[Reject]) -> None:
        super().__init__(no_reports_reason(rejects))
        self.rejects = list(rejects)


def no_reports_reason(rejects: Sequence[Reject]) -> str:
    if not rejects:
        return "no reports in file"
    first = rejects[0]
    return f"no valid reports: all {len(rejects)} rejected (first, {_where(first)}: {first.reason})"


def collect(items: Iterable[ReportMessage | Reject], into: list[Reject]) -> Iterator[ReportMessage]:
    """The reports of ``items``, as they come; each reject is appended to ``into`` on the way."""
    for item in items:
        if isinstance(item, Reject):
            into.append(item)
        else:
            yield item


def log_rejects(name: str, rejects: Sequence[Reject]) -> None:
    for r in rejects[:LOGGED_REJECTS]:
        log.warning("rejected %s %s: %s", quote_name(name), _where(r), r.reason)
    if len(rejects) > LOGGED_REJECTS:
        log.warning("rejected %d more rows of %s", len(rejects) - LOGGED_REJECTS, quote_name(name))


def rejects_lines(file_name: str, rejects: Sequence[Reject]) -> str:
    """The rejects file's content: one JSON object per rejected row or line."""
    return "".join(
        json.dumps({"file": file_name, **r.to_json()}, ensure_ascii=False) + "\n" for r in rejects
    )


def write_rejects(folder: Path, name: str, rejects: Sequence[Reject]) -> Path | None:
    """``folder/<name>.rejects.jsonl`` listing the rejected rows, if there are any (a new file,
    numbered if the name is taken, never one that exists)."""
    if not rejects:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    stem = fit_name(name, NAME_MAX - len(REJECTS_SUFFIX))
    return create_file(folder, f"{stem}{REJECTS_SUFFIX}", rejects_lines(name, rejects))


def list_rejects(folder: Path, name: str, rejects: Sequence[Reject]) -> Path | None:
    """The rejects of a file whose reports are out: listed in the sidecar and logged. A sidecar
    that cannot be written is logged too (``None`` then): the file must still be moved."""
    try:
        listed = write_rejects(folder, name, rejects)
    except OSError as exc:
        log.error("cannot list the rejected rows of %s: %s", quote_name(name), exc)
        listed = None
    log_rejects(name, rejects)
    return listed


def _where(r: Reject) -> str:
    return f"line {r.line}" if r.line else f"row {r.row}" if r.row else "file"
