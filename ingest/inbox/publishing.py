"""Step 3 of a file's trip: its reports handed to the publisher, a chunk at a time, each chunk
confirmed before the next is read."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ingest.inbox.rejects import NothingToPublish, collect
from ingest.readers import Reject
from schemas.message import ReportMessage

#: messages handed to the publisher per call; progress is reported after each chunk. Each call
#: waits for all its confirms, so a chunk is several confirm windows long (500 stalled the
#: publisher on every chunk and halved its throughput).
PUBLISH_CHUNK = 10_000

#: ``progress(reports_published, bytes_done)``, both increments
Progress = Callable[[int, int], None]


class ReportPublisher(Protocol):
    """What the inbox needs from the RabbitMQ publisher: publish with confirms, say how many."""

    def publish_many(self, messages: Iterable[ReportMessage]) -> int: ...


@dataclass
class Published:
    """What :func:`publish_reports` did with a file: reports confirmed, rows rejected."""

    reports: int = 0
    rejects: list[Reject] = field(default_factory=list)


def publish_reports(
    items: Iterable[ReportMessage | Reject],
    publisher: ReportPublisher,
    progress: Progress | None = None,
) -> Published:
    """Publish a file's reports as they are read (see
    :func:`~ingest.inbox.reading.read_items`), ``PUBLISH_CHUNK`` at a time, each chunk confirmed
    before the next is read, so memory does not grow with the file's rows. A file without a
    single good report raises :class:`NothingToPublish` (nothing was published then).
    ``TransientError`` propagates; the chunks confirmed before stay published (report ids make
    publishing them again harmless)."""
    done = Published()
    chunk: list[ReportMessage] = []
    good = 0
    for message in collect(items, done.rejects):
        good += 1
        chunk.append(message)
        if len(chunk) >= PUBLISH_CHUNK:
            done.reports += publish_messages(chunk, publisher, progress)
            chunk = []
    if not good:
        raise NothingToPublish(done.rejects)
    if chunk:
        done.reports += publish_messages(chunk, publisher, progress)
    return done


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
