"""One batch of reports through extraction, normalization and storage.

Runs off the connection's thread; returns one outcome per report and never touches the broker.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, Protocol

from adapters import metrics
from schemas.documents import FactDocument, ReportFields
from schemas.errors import FinpipeError, Interrupted, PermanentError, TransientError
from schemas.message import ReportMessage
from worker.extract import Extractor
from worker.records import fact_document, report_fields

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What the consumer should do with a report's message: ack, delay-retry, dead-letter, or
    hand back (to the work queue as it came, no attempt spent: the worker is stopping)."""

    action: Literal["ack", "retry", "dead", "handback"]
    facts: int = 0
    reason: str | None = None
    retry_after_s: float | None = None


class ResultStore(Protocol):
    """Where a batch's results go (``adapters.mongo.MongoStore``)."""

    def save_results(
        self,
        facts_by_report: Mapping[str, Sequence[FactDocument]],
        report_fields: Mapping[str, ReportFields],
        now: datetime,
    ) -> int: ...


def _since(then: datetime, now: datetime) -> float:
    """Seconds from ``then`` (naive: UTC) to ``now``."""
    return (now - (then if then.tzinfo else then.replace(tzinfo=UTC))).total_seconds()


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Pipeline:
    def __init__(
        self,
        extractor: Extractor,
        store: ResultStore,
        *,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.extractor = extractor
        self.store = store
        self.clock = clock

    def interrupt(self) -> None:
        """The worker is stopping: an extractor that waits (for a rate limit) stops waiting."""
        interrupt = getattr(self.extractor, "interrupt", None)
        if interrupt is not None:
            interrupt()

    def process(
        self, reports: Sequence[ReportMessage], *, prefilled: Collection[str] = frozenset()
    ) -> dict[str, Outcome]:
        """Outcome per ``report_id``. Duplicate reports in one batch are processed once.
        ``prefilled``: the reports whose answers the nightly batch step cached."""
        unique = list({r.report_id: r for r in reports}.values())
        try:
            extraction = self.extractor.extract(unique, prefilled=prefilled)
        except Interrupted as exc:
            log.info("batch of %d report(s) handed back: %s", len(unique), exc)
            return {r.report_id: Outcome("handback", reason=str(exc)) for r in unique}
        except TransientError as exc:
            retry_after = getattr(exc, "retry_after_s", None)
            log.warning(
                "batch of %d report(s): extraction unavailable, retry later: %s", len(unique), exc
            )
            return {
                r.report_id: Outcome("retry", reason=str(exc), retry_after_s=retry_after)
                for r in unique
            }
        except PermanentError as exc:
            if len(unique) > 1:
                log.info(
                    "batch of %d report(s) rejected (%s); processing them one by one",
                    len(unique),
                    exc,
                )
                out: dict[str, Outcome] = {}
                for r in unique:
                    out.update(self.process([r], prefilled=prefilled))
                return out
            rid = unique[0].report_id
            log.info("report %s rejected: %s", rid[:12], exc, extra={"report_id": rid})
            return {unique[0].report_id: Outcome("dead", reason=f"{type(exc).__name__}: {exc}")}

        now = self.clock()
        docs = {
            r.report_id: [fact_document(r, f, now) for f in extraction[r.report_id].facts]
            for r in unique
        }
        try:
            self.store.save_results(
                docs, {r.report_id: report_fields(r, extraction[r.report_id]) for r in unique}, now
            )
        except FinpipeError as exc:
            log.warning("batch of %d report(s): storing failed, retry later: %s", len(unique), exc)
            return {r.report_id: Outcome("retry", reason=str(exc)) for r in unique}
        for r in unique:
            found = extraction[r.report_id]
            for extractor, n in Counter(f.extractor for f in found.facts).items():
                metrics.facts_stored(extractor, n)
            metrics.snippets_without_amount(found.snippets_without_amount)
            metrics.report_stored_after(_since(r.provenance.ingested_at, now))
            log.debug(
                "report %s stored: %d fact(s) by %s",
                r.report_id[:12],
                len(docs[r.report_id]),
                self.extractor.name,
            )
        log.info(
            "stored %d report(s) with %d fact(s) by %s",
            len(unique),
            sum(len(d) for d in docs.values()),
            self.extractor.name,
        )
        return {r.report_id: Outcome("ack", facts=len(docs[r.report_id])) for r in unique}
