"""Scenario 8: ``finpipe serve`` under a long run of requests. Eight keep-alive clients alternate
posting a distinct report to ``/submit`` and ``GET /healthz`` against a server with four threads;
the server's threads, open files and established connections to RabbitMQ and MongoDB are read from
``/proc`` after a warm-up and again at the end. The reference is the same figure after warm-up: a
server that leaked would grow with every request."""

from __future__ import annotations

from bench.common import Proc, Row, bench_settings, cleaned, free_port, process_env, say
from fakes.soak import Resources, drive, resources, wait_listening

NAME = "serve"
THREADS = 4
CLIENTS = 8
WARM_UP = 400


def run(quick: bool) -> list[Row]:
    n = 5_000 if quick else 20_000
    settings = bench_settings(NAME)
    port = free_port()
    with cleaned(settings):
        api = Proc(
            "serve",
            ["serve", "--port", str(port), "--threads", str(THREADS)],
            process_env(settings),
        )
        try:
            wait_listening(port)
            drive(port, WARM_UP, clients=CLIENTS, salt="warm")
            before = resources(api.pid)
            counts, seconds = drive(port, n, clients=CLIENTS)
            after = resources(api.pid)
        finally:
            api.stop()
    ok = counts.get(200, 0) + counts.get(202, 0)
    rate = n / seconds
    say(f"  serve: {n:,} requests in {seconds:.1f} s ({rate:.0f}/s); {before} -> {after}")
    params = f"{n:,} requests (half posts, half health checks), {CLIENTS} clients, "
    params += f"{THREADS} threads"
    note = f"{_shown(before)} -> {_shown(after)}; {rate:.0f} requests/s, {ok:,} answered 2xx"
    flat = (
        after.threads <= before.threads + 1
        and after.broker_connections <= max(before.broker_connections, THREADS)
        and ok == n
    )
    return [
        Row(
            "8 serve",
            params,
            "open files at the end",
            after.fds,
            "",
            before.fds,
            "after warm-up",
            "no growth",
            flat and after.fds <= before.fds + 4,
            ratio_unit="x",
            note=note,
        )
    ]


def _shown(r: Resources) -> str:
    return (
        f"{r.threads} threads, {r.fds} files, {r.broker_connections} broker and "
        f"{r.database_connections} database connections"
    )
