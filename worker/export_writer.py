"""Write an export folder: CSVs, PNG charts, ``index.html`` and ``run_report.json``.

Every file is written to a temporary name in the same folder, flushed to disk and renamed over the
old one (``os.replace``), so a reader sees the old file or the new one, never half of one.
``run_report.json`` is written last; then ``<root>/latest`` is swapped (a new symlink renamed over
the old) to point at the folder, so it always names a complete export.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from worker.export import ChartSpec, ExportFrames, format_cell

log = logging.getLogger(__name__)

LATEST = "latest"
RUN_REPORT = "run_report.json"
INDEX = "index.html"


# -- atomic files -------------------------------------------------------------------------------
def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open a directory
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary sibling and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def point_latest(root: Path, folder: Path) -> None:
    """Make ``root/latest`` a relative symlink to ``folder`` by renaming a new link over it."""
    link = root / LATEST
    if link.exists() and not link.is_symlink():
        log.warning("%s exists and is not a symlink; leaving it alone", link)
        return
    tmp = root / f".{LATEST}.{uuid.uuid4().hex[:12]}.tmp"
    os.symlink(os.path.relpath(folder, root), tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(root)


# -- charts -------------------------------------------------------------------------------------
def render_chart(spec: ChartSpec) -> bytes:
    """A PNG line chart, one line per company across the periods (matplotlib, Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    fig = Figure(figsize=(8, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x = list(range(len(spec.periods)))
    for company, values in spec.series.items():
        # Periods a company did not report are skipped, so its points stay joined by a line.
        points = [
            (i, float(v / spec.scale)) for i, v in zip(x, values, strict=True) if v is not None
        ]
        ax.plot(
            [i for i, _ in points], [y for _, y in points], marker="o", linewidth=2, label=company
        )
    every = max(1, -(-len(x) // 16))  # at most 16 period labels
    ax.set_xticks(
        x[::every],
        spec.periods[::every],
        rotation=30 if len(x) > 6 else 0,
        ha="right" if len(x) > 6 else "center",
    )
    ax.set_title(spec.title)
    ax.set_ylabel(spec.ylabel)
    ax.set_xlabel("period")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.10g}"))
    ax.axhline(0, color="#999999", linewidth=0.8)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


# -- index.html ---------------------------------------------------------------------------------
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
) -> str:
    """The folder's ``index.html``: what the export covers, links to the CSVs, the charts and
    the first ``summary_rows`` rows of the summary by company and period."""
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
        ("Queue drained before export", _yes_no(report.get("queue_drained"))),
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
        *(f'<li><a href="{e(name)}">{e(name)}</a></li>' for name in csv_files),
        f'<li><a href="{RUN_REPORT}">{RUN_REPORT}</a></li>',
        "</ul>",
        "<h2>Charts</h2>",
    ]
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
        parts.append("<h2>Summary by company and period</h2>")
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
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _yes_no(v: object) -> str:
    return "unknown" if v is None else ("yes" if v else "no")


def _unknown(v: object) -> str:
    return "unknown" if v is None else str(v)


# -- the folder ---------------------------------------------------------------------------------
def write_export(
    root: Path,
    day: date,
    frames: ExportFrames,
    charts: Sequence[ChartSpec],
    report: dict[str, Any],
) -> Path:
    """Write the dated folder ``root/YYYY-MM-DD`` and point ``root/latest`` at it."""
    folder = root / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    csvs = frames.csv_files()
    for name, text in csvs.items():
        atomic_write_text(folder / name, text)
    chart_names = set()
    for spec in charts:
        atomic_write_bytes(folder / spec.filename, render_chart(spec))
        chart_names.add(spec.filename)
    report = {**report, "files": [*csvs, *(c.filename for c in charts), INDEX, RUN_REPORT]}
    atomic_write_text(
        folder / INDEX,
        render_index(
            title=f"finpipe export {day.isoformat()}",
            csv_files=list(csvs),
            charts=charts,
            report=report,
            summary=frames.summary,
        ),
    )
    for old in folder.glob("chart-*.png"):  # charts of an earlier export of the same day
        if old.name not in chart_names:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()
    atomic_write_text(
        folder / RUN_REPORT,
        json.dumps(report, indent=2, ensure_ascii=False, sort_keys=False) + "\n",
    )
    point_latest(root, folder)
    return folder
