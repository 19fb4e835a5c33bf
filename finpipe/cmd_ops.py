"""``finpipe dlq``: inspect, replay and purge dead letters. The logic is ``ops.deadletters``."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import click

from finpipe.context import Context, pass_ctx
from schemas.errors import FinpipeError

if TYPE_CHECKING:
    from ops.deadletters import DeadLetterQueue

log = logging.getLogger("finpipe")


def _queue(ctx: Context) -> DeadLetterQueue:
    from ops.deadletters import DeadLetterQueue

    return DeadLetterQueue(ctx.settings, ctx.broker().dead_letters())


@click.group()
def dlq() -> None:
    """Dead letters: reports that could not be processed, each with its reason.

    A message lands here when it is undecodable, has the wrong schema version, is over the
    size limit, was rejected by the model API as bad input, or failed after every delayed
    retry or the queue's delivery limit. Nothing here is lost until you purge it.
    """


@dlq.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--offset", default=0, type=click.IntRange(min=0), help="Skip this many first (next page)."
)
@pass_ctx
def dlq_list(ctx: Context, as_json: bool, limit: int, offset: int) -> None:
    """List dead letters, oldest first: id (report id), kind, reason, and the start of the text.
    Prints one page of --limit letters; the line at the end says how many there are in all."""
    queue = _queue(ctx)
    try:
        letters = queue.letters(limit, offset)
        total = queue.count()
    except FinpipeError as exc:
        raise click.ClickException(str(exc)) from exc
    for d in letters:
        if as_json:
            click.echo(json.dumps(d.as_dict(), ensure_ascii=False))
        else:
            click.echo(f"{d.id[:16]}  {d.kind:<17} {d.reason[:70]}  | {d.preview[:50]}")
    click.echo(page_line(offset, len(letters), total, f"{ctx.settings.queue}.dead"), err=True)


def page_line(offset: int, shown: int, total: int, queue: str) -> str:
    """``showing 1-1000 of 3000 dead letter(s) in q.dead; next page: --offset 1000``."""
    what = f"{total} dead letter(s) in {queue}"
    if not shown:
        return f"showing none of {what}"
    line = f"showing {offset + 1}-{offset + shown} of {what}"
    if offset + shown < total:
        line += f"; next page: --offset {offset + shown}"
    return line


@dlq.command("show")
@click.argument("message_id")
@pass_ctx
def dlq_show(ctx: Context, message_id: str) -> None:
    """Show one dead letter in full (headers and body); MESSAGE_ID may be a prefix."""
    try:
        letters = _queue(ctx).find(message_id)
    except FinpipeError as exc:
        raise click.ClickException(str(exc)) from exc
    if not letters:
        raise click.ClickException(f"no dead letter with id {message_id}")
    for d in letters:
        click.echo(json.dumps(d.as_dict(full=True), indent=2, ensure_ascii=False, default=str))


@dlq.command("replay")
@click.argument("message_ids", nargs=-1)
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter.")
@pass_ctx
def dlq_replay(ctx: Context, message_ids: tuple[str, ...], replay_all: bool) -> None:
    """Put dead letters back on the work queue (after fixing what made them fail)."""
    if not replay_all and not message_ids:
        raise click.UsageError("name message ids to replay, or pass --all")
    try:
        done = _queue(ctx).replay(None if replay_all else message_ids)
    except FinpipeError as exc:
        raise click.ClickException(str(exc)) from exc
    missing = set(message_ids) - set(done)
    click.echo(f"replayed {len(done)} dead letter(s)")
    if missing:
        raise click.ClickException(f"not found in the dead-letter queue: {sorted(missing)}")


@dlq.command("purge")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
def dlq_purge(ctx: Context, yes: bool) -> None:
    """Delete every dead letter for good."""
    dead = _queue(ctx)
    n = dead.count()
    if n and not yes:
        click.confirm(f"Delete {n} dead letter(s) for good?", abort=True)
    purged = dead.purge()
    log.warning("purged %d dead letter(s) from %s.dead", purged, ctx.settings.queue)
    click.echo(f"purged {purged} dead letter(s)")


def register(cli: click.Group) -> None:
    cli.add_command(dlq)
