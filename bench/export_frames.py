"""How long the export's tables take to build from stored facts, no services needed.

    python bench/export_frames.py [--facts 100000] [--reports 5]

Builds ``--facts`` stored documents: figures (company, metric, period) each stated by
``--reports`` reports with their own dates, one figure in ten with a scale slip in one report; then
times ``export.tables.build_frames`` (facts table, summary, conflicts, statistics, changes) and,
alone, the decision of which value each figure shows (``export.conflicts.figures``).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from export import conflicts, tables  # noqa: E402
from export.source import stored_frame  # noqa: E402

METRICS = ("revenue", "net income", "operating income", "gross profit")
PERIODS = tuple(f"Q{q} {y}" for y in (2022, 2023, 2024) for q in (1, 2, 3, 4))[:10]
EXTRACTED = datetime(2024, 7, 1, tzinfo=UTC)


def documents(n_facts: int, reports: int) -> list[dict[str, Any]]:
    """``n_facts`` stored facts (rounded down to whole figures)."""
    docs: list[dict[str, Any]] = []
    company = 0
    while len(docs) + reports <= n_facts:
        for metric in METRICS:
            for period in PERIODS:
                base = 5_300_000 + company * 100_000
                for r in range(reports):
                    slip = r == reports - 1 and company % 10 == 0
                    value = base * 10 if slip else base
                    docs.append(
                        {
                            "_id": f"f{len(docs)}",
                            "report_id": f"r{company}-{r}",
                            "company": f"Company {company}",
                            "metric": metric,
                            "metric_known": True,
                            "value": value,
                            "value_decimal": str(value),
                            "currency": "USD",
                            "unit": "currency",
                            "quarter": period,
                            "value_text": f"${value / 1_000_000:.1f} million",
                            "snippet": "…",
                            "extractor": "rules",
                            "extracted_at": EXTRACTED + timedelta(seconds=len(docs)),
                            "report_date": EXTRACTED - timedelta(days=r),
                            "report_date_source": "reported",
                        }
                    )
                    if len(docs) >= n_facts:
                        return docs
        company += 1
    return docs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--facts", type=int, default=100_000)
    parser.add_argument("--reports", type=int, default=5, help="reports stating each figure")
    args = parser.parse_args()
    raw: pd.DataFrame = stored_frame(documents(args.facts, args.reports))
    started = time.perf_counter()
    frames = tables.build_frames(raw)
    built = time.perf_counter() - started
    started = time.perf_counter()
    conflicts.figures(frames.facts)
    decided = time.perf_counter() - started
    print(
        f"{len(raw)} facts: build_frames {built:.1f} s (figures alone {decided:.1f} s); "
        f"{len(frames.summary)} summary rows, {len(frames.conflicts)} values in conflict"
    )


if __name__ == "__main__":
    main()
