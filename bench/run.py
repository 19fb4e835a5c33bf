"""Run the benchmarks and print one table; every figure beside a ceiling or baseline measured in
the same run, as a ratio (the machines are shared and noisy).

    python bench/run.py                  # every scenario (make bench)
    python bench/run.py --only latency   # one scenario (repeat --only for more)
    python bench/run.py --only ratelimit # 2,000 reports under a 200,000 TPM limit
    python bench/run.py --quick          # smaller counts, for a quick look

Needs the services of ``scripts/services.sh up``. The table is printed as Markdown and written as
JSON to ``bench/results/latest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import Row, fmt, say, wait_for_services  # noqa: E402
from bench.scenarios import (  # noqa: E402
    batchmode,
    exportbig,
    ingest,
    latency,
    memory,
    model,
    operator,
    pipeline,
    ratelimit,
    readmem,
    serve,
    submit,
    tokens,
)

SCENARIOS: dict[str, Callable[[bool], list[Row]]] = {
    "ingest": ingest.run,
    "pipeline": pipeline.run,
    "pipeline-rules": pipeline.run_rules,  # 100,000 reports
    "model": model.run,  # scenarios 3 and 4
    "rerun": lambda quick: model.run(quick, rerun_only=True),
    "latency": latency.run,
    "memory": memory.run,
    "tokens": tokens.run,
    "batchmode": batchmode.run,
    "serve": serve.run,
    "operator": operator.run,  # finpipe status, companies, facts at 100,000 facts
    "readmem": readmem.run,  # peak RSS of finpipe ingest, 10k to 1M CSV rows
    "exportbig": exportbig.run,  # finpipe export of 100,000 facts
    "submit": submit.run,
    "ratelimit": ratelimit.run,  # 2,000 reports under 200,000 TPM, 4 workers then 1
}
#: what a full run executes ("rerun" alone is part of "model")
DEFAULT = [
    "ingest",
    "pipeline",
    "model",
    "latency",
    "memory",
    "tokens",
    "batchmode",
    "serve",
    "operator",
    "readmem",
    "submit",
    "ratelimit",
    "pipeline-rules",
]
#: runs of a scenario before it counts as failed (a server restarted under it, say)
ATTEMPTS = 3
RESULTS = ROOT / "bench" / "results" / "latest.json"


def table(rows: list[Row]) -> str:
    head = (
        "| scenario | parameters | figure | same-run ceiling or baseline | ratio | target | holds |"
    )
    lines = [head, "|---|---|---|---|---|---|---|"]
    for r in rows:
        figure = f"{r.metric}: {fmt(r.figure, r.unit)}"
        if r.note:
            figure += f" ({r.note})"
        ref = (
            f"{fmt(r.reference, r.unit)} ({r.reference_label})" if r.reference is not None else "-"
        )
        holds = "-" if r.holds is None else ("yes" if r.holds else "**no**")
        ratio = fmt(r.ratio, r.ratio_unit)
        lines.append(
            f"| {r.scenario} | {r.params} | {figure} | {ref} | {ratio} | {r.target or '-'} | "
            f"{holds} |"
        )
    return "\n".join(lines)


def machine() -> str:
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {mem_gib:.0f} GiB, Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(SCENARIOS),
        help="run this scenario only (repeatable)",
    )
    parser.add_argument("--quick", action="store_true", help="smaller counts (a quick look)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args(argv)
    names = args.only or DEFAULT
    rows: list[Row] = []
    failed: list[str] = []
    started = time.monotonic()
    for name in names:
        say(f"== {name}{' (quick)' if args.quick else ''}")
        t0 = time.monotonic()
        for attempt in range(1, ATTEMPTS + 1):
            try:
                wait_for_services()
                rows += SCENARIOS[name](args.quick)
                break
            except Exception:  # one broken scenario must not hide the others' figures
                traceback.print_exc()
                # other work on a shared machine may restart the servers: try again
                say(f"   {name} failed (attempt {attempt} of {ATTEMPTS})")
        else:
            failed.append(name)
        say(f"   {name} took {time.monotonic() - t0:.0f} s")
    text = table(rows)
    print(f"\nfinpipe benchmarks ({machine()}; {'quick' if args.quick else 'full'} run)\n")
    print(text)
    if failed:
        print(f"\nscenarios that failed to run: {', '.join(failed)}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        json.dumps(
            {
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": machine(),
                "quick": args.quick,
                "scenarios": names,
                "failed": failed,
                "seconds": round(time.monotonic() - started),
                "rows": [r.as_dict() for r in rows],
                "table": text,
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"\nwritten to {args.output}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
