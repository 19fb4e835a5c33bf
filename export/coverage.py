"""What an export covers, for ``run_report.json``: counts of facts, companies, metrics, periods
and currencies, the span of extraction times and the company names folded together. Pure: the
facts table in, a JSON-ready dict out."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pandas as pd

from export.cells import as_datetime, iso_utc, missing
from export.tables import by_company
from schemas.periods import sort_key


def coverage(facts: pd.DataFrame) -> dict[str, Any]:
    """What an export covers: counts of facts, companies (display names), metrics, periods and
    the span of extraction times; ``merged_names`` lists, for each company written in more than
    one way, the written forms folded into its display name."""
    times = [t for t in (as_datetime(x) for x in facts["extracted_at"].tolist()) if t is not None]
    periods = sorted(
        {p for p in facts["period"].tolist() if not missing(p)},
        key=sort_key,
    )
    return {
        "facts": len(facts),
        "companies": sorted({c for c in by_company(facts)["company"].tolist() if not missing(c)}),
        "merged_names": merged_names(facts),
        "metrics": sorted({m for m in facts["metric"].tolist() if m}),
        "periods": periods,
        "currencies": sorted({c for c in facts["currency"].tolist() if not missing(c)}),
        "first_extracted_at": iso_utc(min(times)) if times else None,
        "last_extracted_at": iso_utc(max(times)) if times else None,
    }


def merged_names(facts: pd.DataFrame) -> dict[str, list[str]]:
    """Display name -> the written forms folded into it, for companies written in more than one
    way (none when the facts carry no ``company_canonical``)."""
    if "company_canonical" not in facts.columns:
        return {}
    forms: dict[str, set[str]] = defaultdict(set)
    pairs = zip(facts["company"].tolist(), facts["company_canonical"].tolist(), strict=True)
    for written, name in pairs:
        if not missing(written) and not missing(name):
            forms[name].add(written)
    return {name: sorted(f) for name, f in sorted(forms.items()) if len(f) > 1}
