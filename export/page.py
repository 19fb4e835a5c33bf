"""The export folder's ``index.html``: what the export covers, the files, the values reports
disagree about, the largest year-over-year moves, the charts and the start of the summary. Pure:
data in, HTML text out."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from export.cells import format_cell
from export.charts import ChartSpec

RUN_REPORT = "run_report.json"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 70rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; } td, th { padding: .2rem .8rem; text-align: left; }
td { vertical-align: top; } th { background: #f2f2f2; white-space: nowrap; vertical-align: top; }
td.num { white-space: nowrap; text-align: right; }
figure { margin: 1.5rem 0; } img { max-width: 100%; height: auto; }
.empty { color: #a33; }
"""


def render_index(
    *,
    title: str,
    csv_files: Sequence[str],
    charts: Sequence[ChartSpec],
    report: Mapping[str, Any],
    summary: pd.DataFrame | None = None,
    summary_rows: int = 200,
    moves: pd.DataFrame | None = None,
    workbook: str | None = None,
    conflicts: pd.DataFrame | None = None,
) -> str:
    """The folder's ``index.html``: what the export covers, links to the ``workbook`` and the
    CSVs, the values in ``conflicts`` (rows of ``conflicts.csv``, as many as ``summary_rows``),
    the largest year-over-year ``moves`` (rows of ``period_over_period``), the charts and the
    first ``summary_rows`` rows of the summary by company and period."""
    e = html.escape
    cov = report.get("covers", {})
    pipe = report.get("pipeline", {})
    reports = pipe.get("reports", {})
    filters = report.get("filters", {})
    shown_filters = ", ".join(f"{k} {v}" for k, v in filters.items() if v) or "none"
    facts = cov.get("facts", 0)
    rows = [
        ("Generated at", report.get("generated_at", "")),
        ("Filters", shown_filters),
        ("Facts in this export", facts),
        ("Companies", ", ".join(cov.get("companies", [])) or "none"),
        ("Periods", ", ".join(cov.get("periods", [])) or "none"),
        ("Figures reports disagree about", report.get("conflicts", {}).get("figures", 0)),
        ("Queue drained before export", _yes_no(report.get("queue_drained"))),
        (
            "Still outstanding at export",
            (report.get("outstanding") or {}).get("summary", "not checked"),
        ),
        (
            "Reports received / done / failed / dead",
            " / ".join(str(reports.get(k, 0)) for k in ("received", "done", "failed", "dead")),
        ),
        ("Facts stored", pipe.get("facts_stored", 0)),
        ("Model calls", pipe.get("model_calls", 0)),
        ("Cache hits", pipe.get("cache_hits", 0)),
        ("Estimated model cost (USD)", _unknown(pipe.get("estimated_cost_usd"))),
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        "<table>",
        *(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in rows),
        "</table>",
        "<h2>Files</h2><ul>",
        *(
            [f'<li><a href="{e(workbook)}">{e(workbook)}</a>: every table in one workbook</li>']
            if workbook
            else []
        ),
        *(f'<li><a href="{e(name)}">{e(name)}</a></li>' for name in csv_files),
        f'<li><a href="{RUN_REPORT}">{RUN_REPORT}</a></li>',
        "</ul>",
    ]
    if conflicts is not None:
        parts.extend(_conflicts(conflicts, summary_rows))
    if moves is not None:
        parts.extend(_moves(moves))
    parts.append("<h2>Charts</h2>")
    if not facts:
        parts.append('<p class="empty">No facts matched this export.</p>')
    elif not charts:
        parts.append("<p>No metric has two or more periods for a company yet, so no charts.</p>")
    for c in charts:
        parts.append(
            f'<figure><img src="{e(c.filename)}" alt="{e(c.title)}" width="800" height="450">'
            f"<figcaption>{e(c.title)}: {e(c.ylabel)}</figcaption></figure>"
        )
    if summary is not None and len(summary):
        parts.extend(_summary(summary, summary_rows))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _summary(summary: pd.DataFrame, summary_rows: int) -> list[str]:
    """The first ``summary_rows`` rows of the summary by company and period."""
    e = html.escape
    parts = ["<h2>Summary by company and period</h2>"]
    if len(summary) > summary_rows:
        parts.append(
            f"<p>First {summary_rows} of {len(summary)} rows; "
            '<a href="summary_by_company_period.csv">all rows</a>.</p>'
        )
    parts.append("<table><tr>" + "".join(f"<th>{e(str(c))}</th>" for c in summary.columns))
    for rec in summary.head(summary_rows).itertuples(index=False):
        cells = "".join(f"<td>{e(format_cell(x, text=False))}</td>" for x in rec)
        parts.append(f"<tr>{cells}</tr>")
    parts.append("</table>")
    return parts


_CONFLICT_HEADERS = (
    "Company",
    "Period",
    "Metric",
    "Value",
    "As written",
    "Report date",
    "Kind",
    "Note",
    "Report",
)


def _conflicts(conflicts: pd.DataFrame, max_rows: int) -> list[str]:
    """The values reports disagree about (``conflicts.csv``), a figure's values together."""
    e = html.escape
    parts = ['<h2 id="conflicts">Values reports disagree about</h2>']
    if not len(conflicts):
        parts.append("<p>No two reports disagree about a figure.</p>")
        return parts
    parts.append(
        "<p>The summary shows the value of the most recent report by its own date; these are "
        "all the values of the figures where reports disagree beyond rounding "
        '(<a href="conflicts.csv">conflicts.csv</a>).</p>'
    )
    if len(conflicts) > max_rows:
        parts.append(f"<p>First {max_rows} of {len(conflicts)} values.</p>")
    parts.append(
        '<table class="conflicts"><tr>' + "".join(f"<th>{h}</th>" for h in _CONFLICT_HEADERS)
    )
    for r in conflicts.head(max_rows).to_dict("records"):
        unit = r.get("currency") or ""
        texts = [format_cell(r.get(c), text=False) for c in ("company", "period", "metric")]
        cells = [f"<td>{e(t)}</td>" for t in texts]
        cells.append(f'<td class="num">{e(_amount(r.get("value"), unit))}</td>')
        for c in ("value_text", "report_date", "kind", "note"):
            cells.append(f"<td>{e(format_cell(r.get(c), text=False))}</td>")
        cells.append(f"<td>{e(format_cell(r.get('report_id'), text=False)[:12])}</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</table>")
    return parts


_MOVE_HEADERS = ("Company", "Metric", "Period", "Value", "A year earlier", "Change", "Change %")


def _moves(moves: pd.DataFrame) -> list[str]:
    """The largest year-over-year moves as a table (``export.comparisons.largest_moves``)."""
    e = html.escape
    parts = ['<h2 id="largest-moves">Largest year-over-year moves</h2>']
    if not len(moves):
        parts.append(
            "<p>No year-over-year change yet: no company has a value for the same period a "
            "year earlier (or only across a sign change, which has no percent).</p>"
        )
        return parts
    parts.append('<table class="moves"><tr>' + "".join(f"<th>{h}</th>" for h in _MOVE_HEADERS))
    for r in moves.to_dict("records"):
        unit = r.get("currency") or ""
        earlier = _amount(r.get("previous_value"), unit)
        earlier += f" ({format_cell(r.get('previous_period'), text=False)})"
        cells = [
            f"<td>{e(format_cell(r.get('company'), text=False))}</td>",
            f"<td>{e(format_cell(r.get('metric'), text=False))}</td>",
            f"<td>{e(format_cell(r.get('period'), text=False))}</td>",
            f'<td class="num">{e(_amount(r.get("value"), unit))}</td>',
            f'<td class="num">{e(earlier)}</td>',
            f'<td class="num">{e(_signed(_amount(r.get("change"), unit)))}</td>',
            f'<td class="num">{e(_signed(format_cell(r.get("change_pct"), text=False)))} %</td>',
        ]
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</table>")
    parts.append(
        "<p>A change across a sign (a loss turning into a profit) has no percent and is not "
        'ranked here; <a href="period_over_period.csv">period_over_period.csv</a> lists every '
        "change.</p>"
    )
    return parts


def _amount(x: object, unit: str) -> str:
    """An exact amount with its thousands grouped (``8,900,000 USD``)."""
    text = format_cell(x, text=False)
    whole, dot, fraction = text.partition(".")
    if whole.lstrip("-").isdigit():
        sign = "-" if whole.startswith("-") else ""
        text = f"{sign}{int(whole.lstrip('-')):,}{dot}{fraction}"
    return f"{text} {unit}" if text and unit else text


def _signed(text: str) -> str:
    return f"+{text}" if text and not text.startswith("-") else text


def _yes_no(v: object) -> str:
    return "unknown" if v is None else ("yes" if v else "no")


def _unknown(v: object) -> str:
    return "unknown" if v is None else str(v)
