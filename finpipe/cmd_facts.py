"""``finpipe facts`` and ``finpipe companies``: the stored facts and companies, read with the
canonical company names the exports use (``export/companies.py``)."""

from __future__ import annotations

import sys
from typing import Any

import click

from finpipe.context import Context, pass_ctx
from schemas.errors import FinpipeError


@click.command()
@click.option("--report", "report_id", default=None, help="Only the facts of this report.")
@click.option(
    "--company",
    default=None,
    help="Only this company: any written form, alias or canonical name (see finpipe companies).",
)
@click.option("--metric", default=None, help="Only this metric, e.g. 'net income' (any case).")
@click.option("--period", default=None, help="Only this period, e.g. 'Q2 2024' (any case).")
@click.option("--limit", default=50, show_default=True, type=int, help="At most this many.")
@click.option("--full", is_flag=True, help="Print every provenance field too.")
@click.option(
    "--conflicts",
    "only_conflicts",
    is_flag=True,
    help="List the values reports disagree about (the rows of conflicts.csv), not the facts; "
    "--limit counts values, 0 for all.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "table", "csv"]),
    default="json",
    show_default=True,
    help="json: one JSON object per line; table: aligned columns to read; csv: for a spreadsheet.",
)
@pass_ctx
def facts(
    ctx: Context,
    report_id: str | None,
    company: str | None,
    metric: str | None,
    period: str | None,
    limit: int,
    full: bool,
    only_conflicts: bool,
    fmt: str,
) -> None:
    """Print stored facts from financial_data, sorted by company, period and metric.

    Each fact shows its company as written and its canonical name (company_canonical), as in
    the exports, and its report's date. --company matches every written form of that company;
    exits 1 when no stored company matches. --conflicts lists the values reports disagree about
    instead, with the value the summary shows.
    """
    from adapters.mongo.queries import fact_filter
    from export.companies import display_names, matching_names
    from export.listing import facts_text

    if only_conflicts and report_id:
        raise click.UsageError("--conflicts compares reports; use --company, --metric, --period")
    aliases = ctx.company_aliases("facts")
    store = ctx.store()
    docs: list[dict[str, Any]] = []
    try:
        counts = store.running_counts().company_totals()
        names = matching_names(company, counts, aliases) if company else None
        if names == []:
            click.echo(
                f"finpipe facts: no stored company matches {company!r} (finpipe companies "
                "lists them)",
                err=True,
            )
            sys.exit(1)
        query = fact_filter(report_id=report_id, companies=names, metric=metric, period=period)
        docs = store.facts(query, limit=0 if only_conflicts else limit)
    except FinpipeError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()
    if only_conflicts:
        _echo_conflicts(docs, aliases, fmt, limit)
        return
    click.echo(facts_text(docs, display_names(counts, aliases), fmt=fmt, full=full), nl=False)


def _echo_conflicts(
    docs: list[dict[str, Any]], aliases: dict[str, str], fmt: str, limit: int
) -> None:
    """The values of the matching facts that reports disagree about, at most ``limit`` (0: all);
    a line on stderr says when some were left out."""
    from export.conflicts import conflicts_table
    from export.listing import conflicts_text
    from export.source import stored_frame
    from export.tables import facts_table

    table = conflicts_table(facts_table(stored_frame(docs), aliases))
    if 0 < limit < len(table):
        click.echo(
            f"finpipe facts: showing {limit} of {len(table)} values in conflict "
            "(--limit 0 for all)",
            err=True,
        )
        table = table.head(limit)
    click.echo(conflicts_text(table, fmt=fmt), nl=False)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@pass_ctx
def companies(ctx: Context, as_json: bool) -> None:
    """List the companies in the store by canonical name, with their fact counts and the
    written forms merged into each (folding and FINPIPE_COMPANY_ALIASES, as the exports do)."""
    from export.companies import company_forms
    from export.listing import companies_text

    aliases = ctx.company_aliases("companies")
    store = ctx.store()
    try:
        counts = store.running_counts().company_totals()
    except FinpipeError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()
    click.echo(companies_text(company_forms(counts, aliases), as_json=as_json), nl=False)


def register(cli: click.Group) -> None:
    for command in (facts, companies):
        cli.add_command(command)
