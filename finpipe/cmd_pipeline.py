"""``finpipe serve`` and ``finpipe worker``: the core path's commands (``finpipe facts`` reads
what they store: ``finpipe/cmd_facts.py``)."""

from __future__ import annotations

import faulthandler
import logging
import signal
import sys

import click

from finpipe.context import Context, pass_ctx
from schemas.errors import ConfigError, FinpipeError
from schemas.settings import redact_url

log = logging.getLogger("finpipe")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--threads",
    default=8,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Requests served at once (each holds one broker connection while it runs).",
)
@pass_ctx
def serve(ctx: Context, host: str, port: int, threads: int) -> None:
    """Run the HTTP shim: POST /submit, GET /healthz, GET /reports/<id>.

    POST /submit takes {"raw_text": "...", "source", "company_hint", "reported_at"} or a
    JSON array of those, publishes one message per report and answers 202 with its
    report_id once the broker has confirmed it. Served by waitress with a fixed pool of
    threads; SIGTERM or SIGINT stops it and closes its connections.
    """
    from adapters import metrics
    from ingest import server
    from ingest.app import body_too_large, create_app

    settings = ctx.settings
    broker = ctx.broker()
    metrics.watch_queues(metrics.queue_reading(broker))
    store = ctx.store()  # one MongoDB client for the process, shared by the serving threads
    # A request must not wait for reconnects: one try, then 503 and the client retries.
    app = create_app(
        settings,
        publisher_factory=lambda: broker.publisher(reconnect_attempts=1, timeout_s=10),
        store_factory=lambda: store,
        pool_size=threads,
    )
    try:
        server.serve(
            app,
            host=host,
            port=port,
            threads=threads,
            max_body_bytes=settings.max_body_bytes,
            too_large_message=body_too_large(settings.max_body_bytes),
            on_listening=lambda where: log.info(
                "serving on %s with %d threads (broker %s)",
                where,
                threads,
                redact_url(settings.amqp_url),
            ),
        )
    except ConfigError as exc:  # the address is taken or cannot be bound
        raise click.ClickException(str(exc)) from exc
    finally:
        app.extensions["finpipe.close"]()
    log.info("server stopped")


@click.command()
@click.option(
    "--burst",
    is_flag=True,
    help="Process what is queued, then exit once the queue stays empty.",
)
@pass_ctx
def worker(ctx: Context, burst: bool) -> None:
    """Consume reports, extract and normalize their facts, store them in MongoDB.

    A message is acknowledged only after its facts are written. Transient failures go to
    delayed-retry queues, permanent ones to the dead-letter queue with their reason.
    SIGTERM/SIGINT finish the batch in hand and exit 0; a second signal exits at once.
    """
    from adapters import metrics
    from worker.consumer import Consumer
    from worker.pipeline import Pipeline
    from worker.provider import build_extractor
    from worker.report_status import report_status_hooks

    settings = ctx.settings
    store = ctx.store()
    try:
        metrics.serve_configured(settings)
        store.ping()
        store.ensure_indexes()
        store.running_counts().document()  # counted once if the store has none yet
        extractor = build_extractor(settings, store)
    except FinpipeError as exc:
        log.error("%s", exc)
        sys.exit(1)
    if settings.effective_provider == "openai":
        metrics.model_configured(settings.model, settings.max_cost_usd)
    on_dead, on_retry = report_status_hooks(store)
    consumer = Consumer(
        settings,
        Pipeline(extractor, store),
        ctx.broker(),
        on_dead=on_dead,
        on_retry=on_retry,
        burst=burst,
    )
    consumer.install_signal_handlers()
    # `kill -USR1 <pid>` prints every thread's stack to stderr: what is it doing right now?
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    code = consumer.run()
    if hasattr(extractor, "close"):
        extractor.close()
    store.close()
    sys.exit(code)


def register(cli: click.Group) -> None:
    for command in (serve, worker):
        cli.add_command(command)
