"""The ``finpipe`` command: the one composition root.

The group reads the settings once; each subcommand builds the adapters it needs through its
``Context`` (``finpipe/context.py``) and hands them to the code in ``ingest``, ``worker``,
``export`` and ``ops``. Subcommands for a whole area live in ``finpipe/cmd_*.py`` as module-level
click commands, added to the group at the bottom of this file.
"""

from __future__ import annotations

import logging
import sys

import click

from finpipe.context import Context
from schemas.errors import ConfigError, FinpipeError
from schemas.settings import Settings

log = logging.getLogger("finpipe")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="finpipe")
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default=None,
    help="Override FINPIPE_LOG_LEVEL (default INFO).",
)
@click.pass_context
def cli(ctx: click.Context, log_level: str | None) -> None:
    """finpipe turns unstructured financial reports into clean, queryable numbers.

    Reports enter through the inbox (watch, ingest, schedule) or POST /submit (serve), travel as
    one RabbitMQ message each, and workers (worker) extract, normalize and store their facts in
    MongoDB collection financial_data. Configuration comes from environment variables; see
    docs/configuration.md for the full list.
    """
    from finpipe import logs

    try:
        settings = Settings.from_env(log_level=log_level.upper() if log_level else None)
    except ConfigError as exc:
        click.echo(f"finpipe: configuration error: {exc}", err=True)
        sys.exit(2)
    logs.configure(settings.log_level, settings.log_format)
    ctx.obj = Context(settings)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except ConfigError as exc:  # a setting found unusable once used (a MongoDB URL, say)
        click.echo(f"finpipe: configuration error: {exc}", err=True)
        sys.exit(2)
    except FinpipeError as exc:  # last resort, commands handle their own
        click.echo(f"finpipe: {exc}", err=True)
        sys.exit(1)


def _register() -> None:
    from finpipe import (
        cmd_batch,
        cmd_export,
        cmd_facts,
        cmd_inbox,
        cmd_ops,
        cmd_pipeline,
        cmd_standards,
    )

    for module in (
        cmd_pipeline,
        cmd_facts,
        cmd_inbox,
        cmd_standards,
        cmd_export,
        cmd_ops,
        cmd_batch,
    ):
        module.register(cli)


_register()
