"""The inbox: which files to take, when they are complete, and where they go afterwards.

Layout (all inside the inbox folder)::

    inbox/                      drop files here (sub-folders are fine)
    inbox/processed/YYYY-MM-DD/ files whose reports were all confirmed by the broker
    inbox/failed/               files that cannot be read, with <name>.error.json giving the reason,
                                and <name>.rejects.jsonl listing the bad rows of partly good files
                                (a file from inbox/sub/ lands in processed/YYYY-MM-DD/sub/ or
                                failed/sub/, its sidecars beside it)
    inbox/.finpipe-ledger.jsonl content hashes of processed files, to recognise a file dropped again

Files are only ever renamed (moved), never altered, deleted or overwritten.

Modules, each owning one idea. Before the trip: ``names`` (ignored names, free names; pure),
``settling`` (when a file is complete; pure), ``selection`` (which files are waiting, and waiting
for them to settle). One file's trip, in the order it happens (``trip`` reads it top to bottom):
``snapshot`` (a stable snapshot: hash, size and time, within ``limits``), ``reading`` (its reports
and rejects), ``publishing`` (confirmed chunks to the publisher), ``landing`` (settling it:
``placement`` moves it, ``rejects`` lists and logs its bad rows, ``ledger`` records it).
Around it: ``outcome`` (what happened, totals; pure), ``sweep`` (:class:`Inbox`: the sweep over
every settled file) and ``paths`` (``finpipe ingest PATHS``, inside the inbox or not).
"""

from ingest.inbox.landing import Landing
from ingest.inbox.ledger import Ledger
from ingest.inbox.limits import ReadLimits
from ingest.inbox.names import (
    FAILED_DIR,
    LEDGER_NAME,
    PARTIAL_SUFFIXES,
    PROCESSED_DIR,
    fit_name,
    folder_within,
    is_ignored_name,
    is_within,
    quote_name,
    unique_name,
)
from ingest.inbox.outcome import FileOutcome, Status, Summary
from ingest.inbox.paths import expand_paths, ingest_paths, publish_file
from ingest.inbox.placement import Placement, processed_day_dir
from ingest.inbox.publishing import (
    PUBLISH_CHUNK,
    Progress,
    Published,
    ReportPublisher,
    publish_messages,
    publish_reports,
)
from ingest.inbox.reading import parse, read_items, read_reports
from ingest.inbox.rejects import LOGGED_REJECTS, NothingToPublish, rejects_lines
from ingest.inbox.selection import Selection, wait_settled
from ingest.inbox.settling import FileStamp, Settling
from ingest.inbox.snapshot import FileTooLarge, Snapshot, load_file, take_snapshot
from ingest.inbox.sweep import Inbox
from ingest.inbox.trip import Trip

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
    "Landing",
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
    "Trip",
    "expand_paths",
    "fit_name",
    "folder_within",
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
