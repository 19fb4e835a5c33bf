"""``finpipe export`` of a big store: 100,000 facts of 1,000 companies (written through the store as
in the operator scenario), timed as a process of its own, with its peak RSS and the size of each
file it writes. No target: the figures say what an export of that size costs."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import Row, bench_settings, cleaned, say
from bench.scenarios.operator import COMPANIES, seed
from bench.scenarios.readmem import peak_rss_mb

NAME = "exportbig"
FILES = ("summary.xlsx", "facts.csv", "index.html")


def run(quick: bool) -> list[Row]:
    n = 10_000 if quick else 100_000
    with tempfile.TemporaryDirectory() as tmp:
        settings = bench_settings(NAME, export_dir=Path(tmp))
        with cleaned(settings):
            say(f"  exportbig: writing {n:,} facts through the store")
            seed(settings, n)
            peak, seconds = peak_rss_mb(settings, "export")
            folders = [p for p in Path(tmp).rglob("facts.csv")]
            sizes = {f: (folders[0].parent / f).stat().st_size for f in FILES} if folders else {}
    shown = ", ".join(f"{f} {size / 1e3:,.0f} KB" for f, size in sizes.items())
    say(f"  exportbig: {seconds:.0f} s, peak {peak:.0f} MB; {shown}")
    params = f"{n:,} facts of {COMPANIES:,} companies"
    return [
        Row("export", params, "`finpipe export` wall time", seconds, "s", note=shown),
        Row("export", params, "`finpipe export` peak RSS", peak, "MB"),
    ]
