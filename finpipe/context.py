"""What every subcommand receives from the ``finpipe`` group: the validated settings, and the
adapters built from them. Building an adapter connects nothing; the first call that needs the
server does."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from schemas.errors import ConfigError
from schemas.settings import Settings

if TYPE_CHECKING:
    from adapters.mongo import MongoStore
    from adapters.rabbitmq import Broker

# The adapters are imported when a command asks for one, so that ``finpipe --help``, or a command
# that only reads MongoDB, does not load pika (or pymongo) first (tests/unit/test_startup.py).


class Context:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def broker(self) -> Broker:
        """RabbitMQ for the configured work queue: publishers, consumers, queue depths, dead
        letters."""
        from adapters.rabbitmq import Broker

        return Broker.from_settings(self.settings)

    def store(self, *, timeout_ms: int = 5000, validate: bool = True) -> MongoStore:
        """MongoDB: every collection finpipe reads or writes. Callers close it. ``ConfigError``
        at once if the URL is unusable (unless ``validate`` is false: ``status`` shows it)."""
        from adapters.mongo import MongoStore

        store = MongoStore.from_settings(self.settings, timeout_ms=timeout_ms)
        if validate:
            store.validate()
        return store

    def company_aliases(self, command: str) -> dict[str, str]:
        """The aliases file ``FINPIPE_COMPANY_ALIASES`` names, read once when a command starts; a
        bad file stops the command with one line naming the file, the line and the field (exit 2,
        as for any configuration error)."""
        from export.companies import configured_aliases

        try:
            return configured_aliases(self.settings.company_aliases)
        except ConfigError as exc:
            click.echo(f"finpipe {command}: {exc}", err=True)
            sys.exit(2)


pass_ctx = click.make_pass_decorator(Context)
