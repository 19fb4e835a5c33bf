"""The record of what ``POST /submit`` accepted (``submissions``), written off the request path.

A request hands its report ids to ``SubmissionLog.add`` and answers at once; one thread writes
everything added since its last write in one insert, at most once every ``WRITE_EVERY_S`` (a busy
server makes twenty inserts a second, not one per request nor one per database round trip: each
insert costs the serving process CPU that the requests need). Until an id is written,
``queued_at`` answers for it, so ``GET /reports/<id>`` says ``queued`` from the moment ``/submit``
answered. The record is advisory (the report itself is safe on the broker once confirmed): a write
that fails is logged and dropped, and the report's status comes when a worker stores it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from schemas.errors import FinpipeError

log = logging.getLogger(__name__)

#: the shortest time between two writes of the log (``flush`` and ``close`` do not wait for it)
WRITE_EVERY_S = 0.05


class SubmissionStore(Protocol):
    """What the log needs from the store (``adapters.mongo.MongoStore``)."""

    def mark_queued(self, received: Mapping[str, datetime], **fields: Any) -> None: ...


class SubmissionLog:
    """Report ids accepted through ``channel``, written to ``store()`` by a thread of its own
    (started by the first ``add``). ``close`` writes what is left and stops the thread."""

    def __init__(
        self,
        store: Callable[[], SubmissionStore],
        *,
        channel: str = "api",
        write_every_s: float = WRITE_EVERY_S,
    ) -> None:
        self._store = store
        self._channel = channel
        self._write_every_s = write_every_s
        self._flushing = 0
        self._cond = threading.Condition()
        self._pending: dict[str, datetime] = {}
        self._writing: dict[str, datetime] = {}
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, report_ids: Iterable[str], now: datetime) -> None:
        """Record ``report_ids`` as received at ``now`` (an id already waiting keeps its time)."""
        with self._cond:
            for rid in report_ids:
                self._pending.setdefault(rid, now)
            if self._closed:  # a request finishing during shutdown: write it here
                self._write_pending()
                return
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="submission-log", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def queued_at(self, report_id: str) -> datetime | None:
        """When ``report_id`` was received, if it is not written yet."""
        with self._cond:
            return self._pending.get(report_id) or self._writing.get(report_id)

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until everything added so far is written (or dropped); whether it was in time."""
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(
                    lambda: not self._pending and not self._writing, timeout_s
                )
            finally:
                self._flushing -= 1

    def close(self, timeout_s: float = 10.0) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._pending) or self._closed)
                if not self._pending:
                    return
                self._write_pending()
                # what comes in meanwhile waits for the next write, unless someone waits for it
                self._cond.wait_for(self._write_now, self._write_every_s)

    def _write_now(self) -> bool:
        return self._closed or (self._flushing > 0 and bool(self._pending))

    def _write_pending(self) -> None:
        """Write what is pending; called holding the lock, which is released while writing."""
        self._writing, self._pending = self._pending, {}
        batch = self._writing
        self._cond.release()
        try:
            self._store().mark_queued(batch, channel=self._channel)
        except FinpipeError as exc:
            log.warning("submit: could not record %d report(s) as queued: %s", len(batch), exc)
        except Exception:  # the thread must go on: the next batch may be written
            log.exception("submit: unexpected error recording %d report(s) as queued", len(batch))
        finally:
            self._cond.acquire()
            self._writing = {}
            self._cond.notify_all()
