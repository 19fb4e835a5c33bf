"""What the consumer records of a report it gave up on or will retry: its status in the store
(``dead`` with the reason, ``failed`` with the attempt), shown by ``GET /reports/<id>`` and
``finpipe status``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from adapters.mongo import MongoStore
from schemas.errors import FinpipeError

log = logging.getLogger(__name__)


def report_status_hooks(
    store: MongoStore,
) -> tuple[Callable[[str, str], None], Callable[[str, str, int], None]]:
    """``(on_dead, on_retry)``, called by the consumer (off its thread) when a report is
    dead-lettered or retried: record the status; a failure to record is logged, never raised
    (the database may be what failed)."""

    def on_dead(report_id: str, reason: str) -> None:
        try:
            store.mark_reports([report_id], "dead", datetime.now(UTC), error=reason)
        except FinpipeError as exc:
            log.warning("could not record dead status of %s: %s", report_id[:12], exc)

    def on_retry(report_id: str, reason: str, attempt: int) -> None:
        try:
            store.mark_reports(
                [report_id], "failed", datetime.now(UTC), error=reason, attempts=attempt
            )
        except FinpipeError as exc:
            log.debug("could not record failed status of %s: %s", report_id[:12], exc)

    return on_dead, on_retry
