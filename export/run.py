"""One export run: read the facts, build the tables and charts, write the dated folder, record the
run. ``export_after_drain`` is the scheduled export; the store and the check of the night's work
are given."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
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
from export.night import Outstanding, wait_for_night
from export.source import FactReader, read_facts
from export.writer import check_writable, write_export, writing_into
from schemas.settings import Settings

log = logging.getLogger(__name__)


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
    outstanding: Outstanding | None = None,
    now: datetime | None = None,
    aliases: Mapping[str, str] | None = None,
) -> Path:
    """Read the matching facts, write ``<out or FINPIPE_EXPORT_DIR>/YYYY-MM-DD/`` (the day in
    ``FINPIPE_TIMEZONE``), point ``latest`` at it, record ``runs/last_export``; return the folder.
    ``company`` selects every written form of one company; companies are folded to one name each
    with ``aliases`` (``None``: read ``FINPIPE_COMPANY_ALIASES`` now). ``without_fallback``
    leaves out the facts the rules gave where the model failed (``rules-fallback``).
    ``queue_drained`` is whether the night's work was done (``None``: not checked), and
    ``outstanding`` what was left of it (``export.night``).
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
        "outstanding": outstanding.as_dict() if outstanding is not None else None,
        "covers": coverage(frames.facts),
        "conflicts": conflict_counts(frames.conflicts),
        "unassigned_amounts": _unassigned(store, frames.facts, since, until, company),
        "pipeline": store.pipeline_counts(),
    }
    with writing_into(root):
        folder = write_export(root, day, frames, charts, report)
    n = len(frames.facts)
    _log_written(frames, len(charts), folder, (since, until, company))
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


def _log_written(
    frames: tables.ExportFrames, charts: int, folder: Path, filters: tuple[Any, Any, str | None]
) -> None:
    """One line for the operator: what was written where, or that nothing matched."""
    since, until, company = filters
    if len(frames.facts) == 0:
        log.warning(
            "export: no facts matched (since=%s, until=%s, company=%s); wrote headers-only "
            "files to %s",
            _iso(since),
            _iso(until),
            company,
            folder,
        )
        return
    log.info(
        "export: %d fact(s), %d summary row(s), %d change(s), %d chart(s) written to %s",
        len(frames.facts),
        len(frames.summary),
        len(frames.pop),
        charts,
        folder,
    )


def export_after_drain(
    settings: Settings,
    store: FactReader,
    check: Callable[[], Outstanding],
    *,
    aliases: Mapping[str, str] | None = None,
) -> str:
    """The scheduled export: wait up to ``FINPIPE_EXPORT_WAIT_S`` for the night's work to be
    done (``check``, see ``export.night``), then export everything; the run report says what
    was still outstanding. ``aliases`` are the company aliases read when the scheduler started
    (``None``: read the file now)."""
    left = wait_for_night(check, settings.export_wait_s)
    folder = run_export(settings, store, queue_drained=left.done, outstanding=left, aliases=aliases)
    if left.done:
        return f"export written to {folder} (queue drained: yes)"
    return f"export written to {folder} (queue drained: no; outstanding: {left.line()})"


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
