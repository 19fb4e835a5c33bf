"""What every subcommand receives from the ``finpipe`` group: the validated settings."""

from __future__ import annotations

import click

from schemas.settings import Settings


class Context:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings


pass_ctx = click.make_pass_decorator(Context)
