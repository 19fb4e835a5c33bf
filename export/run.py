"""One export run: read the facts, build the tables and charts, write the dated folder, record the
run. ``export_after_drain`` is the scheduled export; the store and the queue depth are given."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import pandas as pd

from adapters import metrics
from adapters.mongo import LAST_EXPORT
from export import charts as charts_mod
from export import tables
from export.cells import iso_utc, missing
from export.companies import configured_aliases, matching_names
from export.conflicts import conflict_counts
from export.coverage import coverage
from export.source import FactReader, read_facts
from export.writer import check_writable, write_export, writing_into
from schemas.errors import BrokerUnavailable
from schemas.settings import Settings

log = logging.getLogger(__name__)


class Depth(Protocol):
    """A queue's depth as ``adapters.rabbitmq.QueueDepth`` gives it."""

    @property
    def name(self) -> str: ...

    @property
    def messages(self) -> int: ...


def run_export(
    settings: Settings,
    store: FactReader,
    *,
    out: Path | str | None = None,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    company: str | None = None,
    without_fallback: bool = False,
    queue_drained: bool | None = None,
    now: datetime | None = None,
    aliases: Mapping[str, str] | None = None,
) -> Path:
    """Read the matching facts, write ``<out or FINPIPE_EXPORT_DIR>/YYYY-MM-DD/`` (the day in
    ``FINPIPE_TIMEZONE``), point ``latest`` at it, record ``runs/last_export``; return the folder.
    ``company`` selects every written form of one company; companies are folded to one name each
    with ``aliases`` (``None``: read ``FINPIPE_COMPANY_ALIASES`` now). ``without_fallback``
    leaves out the facts the rules gave where the model failed (``rules-fallback``).
    ``queue_drained`` is what the caller knows about the work queue (``None``: not checked).
    Raises ``StoreUnavailable`` when MongoDB cannot be read, ``AliasesFileError`` for a bad
    aliases file, ``OutputNotWritable`` when the folder cannot be written (checked first)."""
    now = now or datetime.now(UTC)
    root = Path(out) if out is not None else settings.export_dir
    check_writable(root)
    day = now.astimezone(ZoneInfo(settings.timezone)).date()
    if aliases is None:
        aliases = configured_aliases(settings.company_aliases)
    raw = read_facts(
        store,
        since=since,
        until=until,
        companies=_written(store, company, aliases),
        without_fallback=without_fallback,
    )
    frames = tables.build_frames(raw, aliases)
    charts = charts_mod.chart_specs(frames.facts)
    report: dict[str, Any] = {
        "export_date": day.isoformat(),
        "generated_at": iso_utc(now),
        "filters": _filters(since, until, company, without_fallback),
        "queue_drained": queue_drained,
        "covers": coverage(frames.facts),
        "conflicts": conflict_counts(frames.conflicts),
        "unassigned_amounts": _unassigned(store, frames.facts, since, until, company),
        "pipeline": store.pipeline_counts(),
    }
    with writing_into(root):
        folder = write_export(root, day, frames, charts, report)
    n = len(frames.facts)
    if n == 0:
        log.warning(
            "export: no facts matched (since=%s, until=%s, company=%s); wrote headers-only "
            "files to %s",
            _iso(since),
            _iso(until),
            company,
            folder,
        )
    else:
        log.info(
            "export: %d fact(s), %d summary row(s), %d change(s), %d chart(s) written to %s",
            n,
            len(frames.summary),
            len(frames.pop),
            len(charts),
            folder,
        )
    metrics.facts_exported(n)
    store.record_run(
        LAST_EXPORT,
        now,
        path=str(folder),
        facts=n,
        charts=len(charts),
        queue_drained=queue_drained,
        filters=report["filters"],
    )
    return folder


def wait_for_drain(
    depth: Callable[[], Depth],
    timeout_s: float,
    *,
    poll_s: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Poll the work queue until it holds no ready message (True) or ``timeout_s`` passes (False).
    A queue that does not exist holds nothing. Broker errors are logged and polling goes on.
    Messages a worker holds unacknowledged are not counted by the broker's passive declare."""
    deadline = clock() + timeout_s
    name = "the work queue"
    while True:
        try:
            work = depth()
        except BrokerUnavailable as exc:
            log.warning("drain check: %s", exc)
        else:
            name = work.name
            if work.messages == 0:
                log.info("drain check: queue %s is empty", work.name)
                return True
            log.info("drain check: queue %s holds %d message(s)", work.name, work.messages)
        remaining = deadline - clock()
        if remaining <= 0:
            log.warning("drain check: queue %s not drained after %.0f s", name, timeout_s)
            return False
        sleep(min(poll_s, remaining))


def export_after_drain(
    settings: Settings,
    store: FactReader,
    depth: Callable[[], Depth],
    *,
    aliases: Mapping[str, str] | None = None,
) -> str:
    """The scheduled export: wait up to ``FINPIPE_EXPORT_WAIT_S`` for the work queue to drain,
    then export everything; the run report says whether the queue was drained. ``aliases`` are
    the company aliases read when the scheduler started (``None``: read the file now)."""
    drained = wait_for_drain(depth, settings.export_wait_s)
    folder = run_export(settings, store, queue_drained=drained, aliases=aliases)
    return f"export written to {folder} (queue drained: {'yes' if drained else 'no'})"


def _written(
    store: FactReader, company: str | None, aliases: Mapping[str, str]
) -> list[str] | None:
    """The stored names of ``company`` (every written form, its aliases), ``None`` for all."""
    if not company:
        return None
    names = matching_names(company, store.company_counts(), aliases)
    log.info(
        "export: company %r is stored as %s", company, ", ".join(map(repr, names)) or "no name"
    )
    return names


def _unassigned(
    store: FactReader,
    facts: pd.DataFrame,
    since: date | datetime | None,
    until: date | datetime | None,
    company: str | None,
) -> dict[str, int]:
    """Amounts the rules left unassigned in the reports the export covers: those processed
    between ``since`` and ``until``; for one company, the reports its ``facts`` come from (a
    report has no company of its own)."""
    report_ids = None
    if company:
        report_ids = sorted({r for r in facts["report_id"].tolist() if not missing(r)})
    return store.unassigned_amounts(since=since, until=until, report_ids=report_ids)


def _filters(
    since: date | datetime | None,
    until: date | datetime | None,
    company: str | None,
    without_fallback: bool,
) -> dict[str, Any]:
    return {
        "since": _iso(since),
        "until": _iso(until),
        "company": company,
        "without_fallback": without_fallback,
    }


def _iso(d: date | datetime | None) -> str | None:
    if d is None:
        return None
    if isinstance(d, datetime):
        return iso_utc(d)
    return d.isoformat()
