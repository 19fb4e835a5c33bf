"""The inbox: which files to take, when they are complete, and where they go afterwards.

Layout (all inside the inbox folder)::

    inbox/                      drop files here (sub-folders are fine)
    inbox/processed/YYYY-MM-DD/ files whose reports were all confirmed by the broker
    inbox/failed/               files that cannot be read, with <name>.error.json giving the reason,
                                and <name>.rejects.jsonl listing the bad rows of partly good files
    inbox/.finpipe-ledger.jsonl content hashes of processed files, to recognise a file dropped again

Files are only ever renamed (moved), never altered, deleted or overwritten.

Modules, each owning one idea: ``names`` (ignored names, free names; pure), ``settling`` (when
a file is complete; pure), ``outcome`` (what happened, totals; pure), ``selection`` (which files
are waiting, and waiting for them to settle), ``reading`` (bytes to messages to the publisher),
``ledger`` (files already processed), ``placement`` (moves and the files written next to them),
``sweep`` (:class:`Inbox`: one file's steps, the sweep) and ``paths`` (``finpipe ingest PATHS``,
inside the inbox or not).
"""

from ingest.inbox.ledger import Ledger
from ingest.inbox.names import (
    FAILED_DIR,
    LEDGER_NAME,
    PARTIAL_SUFFIXES,
    PROCESSED_DIR,
    fit_name,
    is_ignored_name,
    is_within,
    quote_name,
    unique_name,
)
from ingest.inbox.outcome import FileOutcome, Status, Summary
from ingest.inbox.paths import expand_paths, ingest_paths, publish_file
from ingest.inbox.placement import Placement, processed_day_dir
from ingest.inbox.reading import (
    LOGGED_REJECTS,
    PUBLISH_CHUNK,
    FileTooLarge,
    NothingToPublish,
    Progress,
    Published,
    ReadLimits,
    ReportPublisher,
    Snapshot,
    load_file,
    parse,
    publish_messages,
    publish_reports,
    read_items,
    read_reports,
    rejects_lines,
    take_snapshot,
)
from ingest.inbox.selection import Selection, wait_settled
from ingest.inbox.settling import FileStamp, Settling
from ingest.inbox.sweep import Inbox

__all__ = [
    "FAILED_DIR",
    "LEDGER_NAME",
    "LOGGED_REJECTS",
    "PARTIAL_SUFFIXES",
    "PROCESSED_DIR",
    "PUBLISH_CHUNK",
    "FileOutcome",
    "FileStamp",
    "FileTooLarge",
    "Inbox",
    "Ledger",
    "NothingToPublish",
    "Placement",
    "Progress",
    "Published",
    "ReadLimits",
    "ReportPublisher",
    "Selection",
    "Settling",
    "Snapshot",
    "Status",
    "Summary",
    "expand_paths",
    "fit_name",
    "ingest_paths",
    "is_ignored_name",
    "is_within",
    "load_file",
    "parse",
    "processed_day_dir",
    "publish_file",
    "publish_messages",
    "publish_reports",
    "quote_name",
    "read_items",
    "read_reports",
    "rejects_lines",
    "take_snapshot",
    "unique_name",
    "wait_settled",
]
