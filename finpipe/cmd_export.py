"""``finpipe export`` and ``finpipe status``; ``run_export`` is also what the scheduler calls."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from schemas.errors import FinpipeError
from schemas.settings import Settings

log = logging.getLogger(__name__)


def run_export(
    settings: Settings,
    *,
    out: Path | str | None = None,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    company: str | None = None,
    queue_drained: bool | None = None,
    now: datetime | None = None,
) -> Path:
    """Read the matching facts, write ``<out or FINPIPE_EXPORT_DIR>/YYYY-MM-DD/`` (the day in
    ``FINPIPE_TIMEZONE``), point ``latest`` at it, record ``runs/last_export``; return the folder.
    ``queue_drained`` is what the caller knows about the work queue (``None``: not checked).
    Raises ``StoreUnavailable`` when MongoDB cannot be read."""
    from worker import export, export_source, export_writer

    now = now or datetime.now(UTC)
    root = Path(out) if out is not None else settings.export_dir
    day = now.astimezone(ZoneInfo(settings.timezone)).date()
    client = export_source.connect(settings)
    try:
        db = export_source.database(client, settings)
        raw = export_source.read_facts(db, since=since, until=until, company=company)
        counts = export_source.pipeline_counts(db)
        frames = export.build_frames(raw)
        charts = export.chart_specs(frames.facts)
        report: dict[str, Any] = {
            "export_date": day.isoformat(),
            "generated_at": export.iso_utc(now),
            "filters": {
                "since": _iso(since),
                "until": _iso(until),
                "company": company,
            },
            "queue_drained": queue_drained,
            "covers": export.coverage(frames.facts),
            "pipeline": counts,
        }
        folder = export_writer.write_export(root, day, frames, charts, report)
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
        export_source.record_export(
            db,
            now,
            path=str(folder),
            facts=n,
            charts=len(charts),
            queue_drained=queue_drained,
            filters=report["filters"],
        )
    finally:
        client.close()
    return folder


def export_after_drain(settings: Settings) -> str:
    """The scheduled export: wait up to ``FINPIPE_EXPORT_WAIT_S`` for the work queue to drain,
    then export everything; the run report says whether the queue was drained."""
    from worker.status import wait_for_drain

    drained = wait_for_drain(settings, settings.export_wait_s)
    folder = run_export(settings, queue_drained=drained)
    return f"export written to {folder} (queue drained: {'yes' if drained else 'no'})"


def _iso(d: date | datetime | None) -> str | None:
    if d is None:
        return None
    if isinstance(d, datetime):
        from worker.export import iso_utc

        return iso_utc(d)
    return d.isoformat()


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


def register(cli: click.Group) -> None:
    from finpipe.context import Context, pass_ctx

    @cli.command("export")
    @click.option(
        "--out",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Export root (default FINPIPE_EXPORT_DIR); the dated folder is made beneath it.",
    )
    @click.option(
        "--since",
        type=click.DateTime(formats=["%Y-%m-%d"]),
        default=None,
        help="Only facts extracted on or after this UTC day (YYYY-MM-DD).",
    )
    @click.option(
        "--until",
        type=click.DateTime(formats=["%Y-%m-%d"]),
        default=None,
        help="Only facts extracted on or before this UTC day (YYYY-MM-DD).",
    )
    @click.option("--company", default=None, help="Only this company (exact name, any case).")
    @pass_ctx
    def export_cmd(
        ctx: Context,
        out: Path | None,
        since: datetime | None,
        until: datetime | None,
        company: str | None,
    ) -> None:
        """Write CSV summaries, charts, index.html and run_report.json for the stored facts.

        The folder is <root>/YYYY-MM-DD/ and <root>/latest points to the newest complete one:
        facts.csv, summary_by_company_period.csv, metric_stats.csv, period_over_period.csv,
        chart-*.png, index.html (open it in a browser) and run_report.json.
        """
        if since and until and since > until:
            raise click.BadParameter("--since is after --until", param_hint="--since")
        try:
            folder = run_export(
                ctx.settings, out=out, since=_day(since), until=_day(until), company=company
            )
        except FinpipeError as exc:
            click.echo(f"finpipe export: {exc}", err=True)
            sys.exit(1)
        click.echo(str(folder))

    @cli.command("status")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
    @pass_ctx
    def status_cmd(ctx: Context, as_json: bool) -> None:
        """Show services reachable, queue depth and consumers, dead letters, reports by status,
        facts stored, last sweep and last export. Exits 1 when a service is unreachable."""
        from worker import status as status_mod

        info = status_mod.gather_status(ctx.settings)
        if as_json:
            click.echo(json.dumps(info, indent=2, default=str))
        else:
            click.echo(status_mod.format_status(info), nl=False)
        if not status_mod.healthy(info):
            sys.exit(1)
