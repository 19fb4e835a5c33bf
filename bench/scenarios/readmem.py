"""Reading streams: peak resident memory of ``finpipe ingest FILE`` for CSV files of 10,000,
100,000 and 1,000,000 rows (about 64 bytes a row, 64 MB at a million), each run as a process of
its own that publishes every row to the scenario's queue with confirms.

Memory should stay flat in the number of rows: the reports are read, published and confirmed
``PUBLISH_CHUNK`` at a time (before, every message was built before the first was published:
2.9 GB at a million rows). The figure is the process's peak RSS (``ru_maxrss``); the baseline is
the same process started without a file (``finpipe --help``).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, Row, bench_settings, cleaned, process_env, queue_depth, say
from schemas.settings import Settings

NAME = "readmem"
#: peak RSS at the largest file may exceed the smallest file's by at most this factor
FLAT_LIMIT = 1.5

#: runs ``finpipe ARGS`` in this process and prints its peak RSS in KiB last, on stderr
_MEASURED = """
import resource, sys
from finpipe.cli import cli
try:
    cli(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("maxrss", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code or 0)
"""


def write_csv(path: Path, rows: int) -> int:
    """A CSV of ``rows`` one-sentence reports; returns its size in bytes."""
    with path.open("w", encoding="utf-8") as fh:
        fh.write("raw_text,company\n")
        for i in range(rows):
            fh.write(f"Co {i:07d} reported revenue of ${i % 900 + 10}.5 million in Q2,Co {i:07d}\n")
    return path.stat().st_size


def peak_rss_mb(settings: Settings, *args: str) -> tuple[float, float]:
    """Peak RSS in MB and seconds of ``finpipe ARGS`` as a process of its own."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _MEASURED, *args],
        env=process_env(settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    seconds = time.perf_counter() - started
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("maxrss ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"finpipe {' '.join(args)} exited {done.returncode}: {done.stderr[-800:]}"
        )
    return int(lines[-1].split()[1]) / 1024, seconds


def run(quick: bool) -> list[Row]:
    sizes = [10_000, 100_000] if quick else [10_000, 100_000, 1_000_000]
    settings = bench_settings(NAME)
    rows: list[Row] = []
    peaks: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp, cleaned(settings):
        base_mb, _ = peak_rss_mb(settings, "--help")
        for n in sizes:
            path = Path(tmp) / f"reports-{n}.csv"
            size = write_csv(path, n)
            peak, seconds = peak_rss_mb(settings, "ingest", str(path))
            queued = queue_depth(settings)
            say(f"  readmem: {n:,} rows ({size / 1e6:.0f} MB): peak {peak:.0f} MB, {seconds:.0f} s")
            if queued < n:
                raise RuntimeError(f"{queued} reports queued for {n} rows")
            peaks[n] = peak
            path.unlink()
            rows.append(
                Row(
                    "reading streams",
                    f"`finpipe ingest` of a {n:,}-row CSV ({size / 1e6:.1f} MB)",
                    "peak RSS",
                    peak,
                    "MB",
                    base_mb,
                    "`finpipe --help`",
                    "-",
                    ratio_unit="x",
                    note=f"{seconds:.0f} s, {n / seconds:,.0f} rows/s",
                )
            )
            cleaned_queue(settings)
    small, large = peaks[sizes[0]], peaks[sizes[-1]]
    rows.append(
        Row(
            "reading streams",
            f"{sizes[-1]:,} rows against {sizes[0]:,}",
            "peak RSS growth",
            large / small,
            "x",
            target=f"≤ {FLAT_LIMIT}x (flat in the file's size)",
            holds=large / small <= FLAT_LIMIT,
        )
    )
    return rows


def cleaned_queue(settings: Settings) -> None:
    """Empty the scenario's queues between files (the next count starts at zero)."""
    from bench.common import delete_queues

    delete_queues(settings)
