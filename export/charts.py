"""Charts of an export: which to draw (``chart_specs``, pure) and drawing one (``render_chart``,
matplotlib on an Agg canvas, imported when first used).

A chart draws at most ``MAX_LINES`` companies, the largest by their latest value, and its legend
says how many more there are (a legend of 1,000 names would run far out of the image); every
company's figures are in ``facts.csv`` and the workbook.
"""

from __future__ import annotations

import io
import re
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

import pandas as pd

from export.tables import latest_values, metric_order
from schemas.periods import Period, parse_label


@dataclass(frozen=True)
class ChartSpec:
    """One line chart: a line per company across ``periods``; ``None`` where a company has no
    value. ``scale`` divides the values for display (millions, billions)."""

    filename: str
    title: str
    ylabel: str
    periods: list[str]
    series: dict[str, list[Decimal | None]] = field(default_factory=dict)
    scale: int = 1
    #: companies with values for this chart that are not drawn (see ``top_series``)
    left_out: int = 0

    def legend_labels(self) -> list[str]:
        """The legend's lines: the companies drawn, then how many are not."""
        labels = list(self.series)
        if self.left_out:
            labels.append(f"... and {self.left_out} more (top {len(self.series)} by latest value)")
        return labels


#: lines (companies) a chart draws at most
MAX_LINES = 10


_KIND_WORD = {
    "quarter": "quarterly",
    "half": "half-yearly",
    "nine months": "nine months",
    "year": "yearly",
    "quarter end": "at quarter end",
}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "metric"


def top_series(
    series: dict[str, list[Decimal | None]], limit: int = MAX_LINES
) -> tuple[dict[str, list[Decimal | None]], int]:
    """The ``limit`` series largest by their latest value (absolute; ties by name), in name
    order, and how many are left out."""

    def latest(values: list[Decimal | None]) -> Decimal:
        return next((abs(v) for v in reversed(values) if v is not None), Decimal(0))

    ranked = sorted(series, key=lambda name: (-latest(series[name]), name))
    kept = sorted(ranked[:limit])
    return {name: series[name] for name in kept}, len(series) - len(kept)


def chart_specs(facts: pd.DataFrame, *, min_points: int = 2) -> list[ChartSpec]:
    """A chart per metric, unit, currency and kind of period where at least one company has
    ``min_points`` values; metrics in vocabulary order."""
    groups: dict[tuple[str, str, str, str, str], dict[str, dict[Period, Decimal]]]
    groups = defaultdict(lambda: defaultdict(dict))
    for v in latest_values(facts):
        p = parse_label(v.period)
        if p.step is None:
            continue
        groups[(v.metric, v.unit, v.currency, p.kind, p.basis)][v.company or "(no company)"][p] = (
            v.value
        )
    specs = []
    for (metric, unit, currency, kind, basis), by_company in sorted(
        groups.items(), key=lambda kv: (metric_order(kv[0][0]), *kv[0][1:])
    ):
        if max(len(points) for points in by_company.values()) < min_points:
            continue
        periods = sorted({p for pts in by_company.values() for p in pts}, key=lambda p: p.step or 0)
        biggest = max(abs(v) for pts in by_company.values() for v in pts.values())
        scale, scale_word = 1, ""
        if unit == "currency":
            if biggest >= 10**12:
                scale, scale_word = 10**12, " trillions"
            elif biggest >= 10**9:
                scale, scale_word = 10**9, " billions"
            elif biggest >= 10**6:
                scale, scale_word = 10**6, " millions"
        if unit == "percent":
            ylabel = "%"
        elif unit == "count":
            ylabel = "count"
        elif unit == "currency_per_share":
            ylabel = f"{currency} per share"
        else:
            ylabel = f"{currency}{scale_word}"
        what = f"{metric[:1].upper()}{metric[1:]}"
        detail = ", ".join(
            x for x in (currency, _KIND_WORD[kind], basis if basis == "fiscal" else "") if x
        )
        name = "-".join(
            x
            for x in (
                _slug(metric),
                currency.lower(),
                "" if unit == "currency" else _slug(unit),
                _slug(kind),
                basis if basis == "fiscal" else "",
            )
            if x
        )
        series, left_out = top_series(
            {company: [pts.get(p) for p in periods] for company, pts in by_company.items()}
        )
        specs.append(
            ChartSpec(
                filename=f"chart-{name}.png",
                title=f"{what} ({detail})",
                ylabel=ylabel,
                periods=[p.label for p in periods],
                series=series,
                scale=scale,
                left_out=left_out,
            )
        )
    return specs


def render_chart(spec: ChartSpec) -> bytes:
    """A PNG line chart, one line per company across the periods (matplotlib, Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
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
    handles, _ = ax.get_legend_handles_labels()
    if spec.left_out:
        handles.append(Line2D([], [], linestyle="none"))
    ax.legend(handles, spec.legend_labels(), loc="best", fontsize="small")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
