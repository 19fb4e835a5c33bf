"""``finpipe export`` and ``finpipe status``. The export itself is ``export.run``."""

from __future__ import annotations

import json
import logging
import sys
from datetime import date, datetime
from pathlib import Path

import click

from finpipe.context import Context, pass_ctx
from schemas.errors import FinpipeError

log = logging.getLogger(__name__)


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


@click.command("export")
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
@click.option(
    "--company",
    default=None,
    help="Only this company: any written form, alias or canonical name (see finpipe companies).",
)
@click.option(
    "--without-fallback",
    is_flag=True,
    help="Leave out facts the rules gave where the model failed (extractor rules-fallback).",
)
@pass_ctx
def export_cmd(
    ctx: Context,
    out: Path | None,
    since: datetime | None,
    until: datetime | None,
    company: str | None,
    without_fallback: bool,
) -> None:
    """Write CSV summaries, charts, index.html and run_report.json for the stored facts.

    The folder is <root>/YYYY-MM-DD/ and <root>/latest points to the newest complete one:
    facts.csv, summary_by_company_period.csv, metric_stats.csv, period_over_period.csv,
    summary.xlsx (the four tables in one workbook), chart-*.png, index.html (open it in a
    browser) and run_report.json. Companies are shown by one canonical name each (folding and
    FINPIPE_COMPANY_ALIASES; see finpipe companies).
    """
    from export.run import run_export

    if since and until and since > until:
        raise click.BadParameter("--since is after --until", param_hint="--since")
    aliases = ctx.company_aliases("export")
    store = ctx.store()
    try:
        folder = run_export(
            ctx.settings,
            store,
            out=out,
            since=_day(since),
            until=_day(until),
            company=company,
            without_fallback=without_fallback,
            aliases=aliases,
        )
    except FinpipeError as exc:
        click.echo(f"finpipe export: {exc}", err=True)
        sys.exit(1)
    finally:
        store.close()
    click.echo(str(folder))


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.option(
    "--recount",
    is_flag=True,
    help="Count reports and facts anew (reads every document) and keep the new running counts.",
)
@pass_ctx
def status_cmd(ctx: Context, as_json: bool, recount: bool) -> None:
    """Show services reachable, queue depth and consumers, dead letters, reports by status,
    facts stored, last sweep and last export. Exits 1 when a service is unreachable.

    Reports and facts are running counts that the workers keep, read in one lookup."""
    from ops import status

    store = ctx.store(timeout_ms=3000, validate=False)  # a bad URL is shown as unreachable
    try:
        info = status.gather_status(ctx.settings, ctx.broker(), store, recount=recount)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(info, indent=2, default=str))
    else:
        click.echo(status.format_status(info), nl=False)
    if not status.healthy(info):
        sys.exit(1)


def register(cli: click.Group) -> None:
    for command in (export_cmd, status_cmd):
        cli.add_command(command)
