"""``finpipe extract`` and ``finpipe normalize``: what finpipe makes of a text or an amount.

Neither command needs RabbitMQ or MongoDB. ``extract`` reads JSONL ``{"id", "text"|"raw_text"}``
and writes one JSONL line per input; ``normalize`` prints the value, currency and unit the standard
gives each amount, or the reason it cannot.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from decimal import Decimal
from typing import IO, Any

import click

from schemas.errors import FinpipeError, NormalizationError
from schemas.fact import Fact
from schemas.numbers import plain_decimal

log = logging.getLogger(__name__)

FACT_FIELDS = ("company", "metric", "value", "currency", "unit", "quarter", "value_text")


def dumps(obj: Any) -> str:
    """``json.dumps`` that writes ``Decimal`` values as exact JSON numbers."""
    marks: dict[str, str] = {}

    def default(o: object) -> str:
        if isinstance(o, Decimal):
            key = f"\x00{len(marks)}\x00"
            marks[key] = plain_decimal(o)
            return key
        raise TypeError(f"{type(o).__name__} is not JSON serializable")

    text = json.dumps(obj, ensure_ascii=False, default=default)
    for key, number in marks.items():
        text = text.replace(json.dumps(key), number)
    return text


def fact_record(fact: Fact) -> dict[str, Any]:
    data = fact.model_dump()
    return {k: data[k] for k in FACT_FIELDS}


def _parse_line(line: str) -> tuple[Any, str, str | None]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(obj, dict):
        raise ValueError("expected a JSON object")
    text = obj.get("text", obj.get("raw_text"))
    if not isinstance(text, str):
        raise ValueError('needs a string "text" (or "raw_text")')
    hint = obj.get("company_hint")
    return obj.get("id"), text, hint if isinstance(hint, str) else None


#: one input report: (key, text, company_hint); the key is the input line number
Item = tuple[str, str, str | None]


def _rules(items: list[Item], min_confidence: float | None = None) -> dict[str, list[Fact]]:
    from worker.rules import DEFAULT_MIN_CONFIDENCE, extract_facts

    least = DEFAULT_MIN_CONFIDENCE if min_confidence is None else min_confidence
    return {
        key: [rf.fact for rf in extract_facts(text, hint, min_confidence=least)]
        for key, text, hint in items
    }


def _openai_entry() -> Any:
    """``worker.llm.extract_reports``, or a clear error when the model path is not installed."""
    try:
        from worker import llm
    except ImportError as exc:
        raise click.ClickException("the openai provider is not available") from exc
    entry = getattr(llm, "extract_reports", None)
    if entry is None:
        raise click.ClickException("the openai provider is not available")
    return entry


def _openai(items: list[Item]) -> dict[str, list[Fact]]:
    from schemas.settings import Settings

    entry = _openai_entry()
    ctx = click.get_current_context(silent=True)
    settings = getattr(ctx.obj, "settings", None) if ctx is not None else None
    settings = settings or Settings.from_env()
    if settings.llm_mode == "batch":
        found = entry(settings, items, progress=progress_line)
    else:
        found = entry(settings, items)
    return {key: [ff.fact for ff in found.get(key, [])] for key, _, _ in items}


def progress_line(jobs: list[object]) -> None:
    """``finpipe extract``'s progress while it waits for its batch job: one line on stderr."""
    from worker.batch_api.jobs import BatchJob

    done = total = 0
    states = []
    for job in jobs:
        if not isinstance(job, BatchJob):
            continue
        for part in job.parts:
            total += part.requests
            done += part.counts.get("completed", part.answered)
            states.append(str(part.outcome or part.remote_status or part.state))
    end = "\r" if sys.stderr.isatty() else "\n"
    sys.stderr.write(f"batch: {', '.join(states) or 'submitting'} {done}/{total} answered{end}")
    sys.stderr.flush()


def extract_stream(
    lines: Iterable[str],
    out: IO[str],
    err: IO[str],
    *,
    provider: str,
    min_confidence: float | None = None,
) -> int:
    """Extract facts for each JSONL input line and write one JSONL line per good input.

    A bad line is reported on ``err`` with its line number and skipped; returns how many were bad.
    The rules provider streams line by line; the openai provider sends all reports as one batch.
    ``min_confidence`` is the least confidence of a rules fact (default: the project default).
    """

    def rules(items: list[Item]) -> dict[str, list[Fact]]:
        return _rules(items, min_confidence)

    run = rules if provider == "rules" else _openai
    if provider != "rules":
        _openai_entry()
    bad = 0
    pending: list[tuple[Any, Item]] = []

    def flush() -> None:
        nonlocal bad
        if not pending:
            return
        try:
            results = run([item for _, item in pending])
        except FinpipeError as exc:
            for _, (key, _, _) in pending:
                err.write(f"finpipe extract: line {key}: {exc}\n")
            bad += len(pending)
        else:
            for doc_id, (key, _, _) in pending:
                facts = [fact_record(f) for f in results.get(key, [])]
                out.write(dumps({"id": doc_id, "facts": facts}) + "\n")
        pending.clear()

    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            doc_id, text, hint = _parse_line(line)
        except ValueError as exc:
            bad += 1
            err.write(f"finpipe extract: line {number}: {exc}\n")
            continue
        pending.append((doc_id, (str(number), text, hint)))
        if provider == "rules":
            flush()
    flush()
    return bad


def normalize_record(raw: str) -> dict[str, Any]:
    from worker.normalize import parse_amount

    try:
        amount = parse_amount(raw)
    except NormalizationError as exc:
        return {"input": raw, "value": None, "currency": None, "unit": None, "error": exc.reason}
    return {
        "input": raw,
        "value": amount.value,
        "currency": amount.currency,
        "unit": str(amount.unit),
        "error": None,
    }


@click.command("extract")
@click.option(
    "--provider",
    type=click.Choice(["rules", "openai"]),
    default="rules",
    show_default=True,
    help="rules: offline deterministic extractor; openai: the model path.",
)
@click.option(
    "--min-confidence",
    type=click.FloatRange(0, 1),
    envvar="FINPIPE_MIN_CONFIDENCE",
    default=None,
    help="Least confidence of a rules fact (default 0.7; env FINPIPE_MIN_CONFIDENCE).",
)
@click.argument("file", type=click.File("r", encoding="utf-8"), default="-")
def extract(provider: str, min_confidence: float | None, file: IO[str]) -> None:
    """Extract facts from JSONL {"id", "text"} lines (FILE or stdin) to JSONL on stdout.

    Needs neither RabbitMQ nor MongoDB. A bad input line is reported on stderr with its line
    number; the other lines still go through (exit status 1 if any line was bad).
    """
    bad = extract_stream(
        file, sys.stdout, sys.stderr, provider=provider, min_confidence=min_confidence
    )
    if bad:
        sys.exit(1)


@click.command("normalize")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per input.")
@click.argument("amounts", nargs=-1)
def normalize(as_json: bool, amounts: tuple[str, ...]) -> None:
    """Show the value, currency and unit the standard gives each AMOUNT (or stdin lines).

    Example: finpipe normalize '$(9.8) million' 15.94p '₹1,234 crore' 'EUR 2.01 mn'
    """
    inputs = list(amounts) or [x.rstrip("\n") for x in sys.stdin if x.strip()]
    failed = False
    for raw in inputs:
        rec = normalize_record(raw)
        failed = failed or rec["error"] is not None
        if as_json:
            click.echo(dumps(rec))
        elif rec["error"] is not None:
            click.echo(f"{raw}\terror: {rec['error']}")
        else:
            currency = rec["currency"] or "-"
            click.echo(f"{raw}\t{plain_decimal(rec['value'])}\t{currency}\t{rec['unit']}")
    if failed:
        sys.exit(1)


def register(cli: click.Group) -> None:
    for command in (extract, normalize):
        cli.add_command(command)
