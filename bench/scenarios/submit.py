"""Scenario 10: ``POST /submit`` at the speed of the broker. ``finpipe serve`` (default threads)
answers ``202`` only after RabbitMQ confirmed; keep-alive clients post one report per request, or a
JSON array of 100, one request after the other. Measured: latency per post (p50, p99) and posts
per second with 1, 8 and 32 clients. The same-run baseline is a bare pika loop doing what a post
must wait for: publish one persistent message to the same quorum queue and wait for its confirm
(one connection per client, the messages as large as finpipe's)."""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pika

from adapters.rabbitmq import declare_topology
from bench.common import Proc, Row, bench_settings, cleaned, free_port, process_env, say
from bench.scenarios.latency import percentile, wait_http
from schemas.message import Provenance, ReportMessage, SubmitReport
from schemas.settings import Settings
from schemas.topology import Topology

NAME = "submit"
CLIENTS = (1, 8, 32)
ARRAY = 100
HEADERS = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Run:
    """``n`` requests (or publishes) from ``clients`` at once: seconds each, and the whole time."""

    clients: int
    latencies_s: list[float]
    wall_s: float

    @property
    def per_s(self) -> float:
        return len(self.latencies_s) / self.wall_s

    def p(self, q: float) -> float:
        return percentile(self.latencies_s, q)


def _drive(clients: int, n: int, one: Callable[[int], Callable[[int], None]]) -> Run:
    """``n`` calls spread over ``clients`` threads; ``one(client)`` gives that client's call."""
    lock = threading.Lock()
    latencies: list[float] = []
    ready = threading.Barrier(clients + 1)

    def client(c: int) -> None:
        call = one(c)
        ready.wait()
        mine = []
        for i in range(c, n, clients):
            t0 = time.perf_counter()
            call(i)
            mine.append(time.perf_counter() - t0)
        with lock:
            latencies.extend(mine)

    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(client, c) for c in range(clients)]
        ready.wait()
        started = time.perf_counter()
        for f in futures:
            f.result()
        wall = time.perf_counter() - started
    return Run(clients, latencies, wall)


def _text(salt: str, i: int, j: int = 0) -> str:
    return f"Submit{salt} Corp {i}-{j} reported revenue of ${i + j + 1} million for Q1 2024."


def posts(port: int, clients: int, n: int, *, array: int = 0) -> Run:
    """``n`` posts to ``/submit``: one report each, or a JSON array of ``array`` reports."""
    salt = uuid.uuid4().hex[:8]

    def one(_client: int) -> Callable[[int], None]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

        def post(i: int) -> None:
            if array:
                body = json.dumps([{"raw_text": _text(salt, i, j)} for j in range(array)])
            else:
                body = json.dumps({"raw_text": _text(salt, i)})
            conn.request("POST", "/submit", body=body, headers=HEADERS)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 202:
                raise RuntimeError(f"/submit answered {resp.status}")

        return post

    return _drive(clients, n, one)


def bare_confirms(settings: Settings, clients: int, n: int) -> Run:
    """``n`` persistent messages published one at a time, each waiting for its confirm."""
    body = ReportMessage.build(
        SubmitReport(raw_text=_text("bare", 0)), Provenance(channel="api")
    ).to_body()
    props = pika.BasicProperties(delivery_mode=2, content_type="application/json", type="report")
    conns: list[pika.BlockingConnection] = []

    def one(_client: int) -> Callable[[int], None]:
        conn = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
        conns.append(conn)
        ch = conn.channel()
        ch.confirm_delivery()

        def publish(_i: int) -> None:
            ch.basic_publish("", settings.queue, body, props, mandatory=True)

        return publish

    try:
        return _drive(clients, n, one)
    finally:
        for conn in conns:
            conn.close()


def _ms(run: Run) -> str:
    return f"p50 {run.p(0.5) * 1000:.2f} ms, p99 {run.p(0.99) * 1000:.2f} ms"


def run(quick: bool) -> list[Row]:
    scale = 4 if quick else 1
    single, many = 1000 // scale, 4000 // scale
    arrays = {1: 100 // scale, 8: 240 // scale, 32: 320 // scale}
    settings = bench_settings(NAME)
    port = free_port()
    with cleaned(settings):
        conn = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
        declare_topology(conn.channel(), Topology.for_settings(settings))
        conn.close()
        bare = {c: bare_confirms(settings, c, single if c == 1 else many) for c in CLIENTS}
        api = Proc(NAME, ["serve", "--port", str(port)], process_env(settings))
        try:
            wait_http(port, api)
            posts(port, 8, 400)  # warm-up: every serving thread has its publisher
            one = {c: posts(port, c, single if c == 1 else many) for c in CLIENTS}
            big = {c: posts(port, c, arrays[c], array=ARRAY) for c in CLIENTS}
        finally:
            api.stop()
    for c in CLIENTS:
        say(f"  {c} client(s): bare {bare[c].per_s:,.0f}/s {_ms(bare[c])}; ")
        say(f"    /submit {one[c].per_s:,.0f} posts/s {_ms(one[c])}")
        say(f"    /submit x{ARRAY} {big[c].per_s * ARRAY:,.0f} reports/s {_ms(big[c])}")
    return _rows(bare, one, big)


def _rows(bare: dict[int, Run], one: dict[int, Run], big: dict[int, Run]) -> list[Row]:
    b1, s1 = bare[1], one[1]
    rows = [
        Row(
            "10 submit",
            f"one client posting one report at a time, {len(s1.latencies_s):,} posts",
            "p50 per post",
            s1.p(0.5) * 1000,
            "ms",
            b1.p(0.5) * 1000,
            "bare pika: publish one persistent message, wait for its confirm",
            "p50 ≤ 5 ms",
            s1.p(0.5) <= 0.005,
            ratio_unit="x",
            note=f"p99 {s1.p(0.99) * 1000:.2f} ms (bare pika p99 {b1.p(0.99) * 1000:.2f} ms)",
        )
    ]
    for c in CLIENTS:
        s, b = one[c], bare[c]
        rows.append(
            Row(
                "10 submit",
                f"{c} keep-alive client(s), one report per post, {len(s.latencies_s):,} posts",
                "posts/s",
                s.per_s,
                "",
                b.per_s,
                f"bare pika confirm loops, {c} connection(s)",
                "≥ 1,000 posts/s" if c == 8 else "",
                s.per_s >= 1000 if c == 8 else None,
                note=f"{_ms(s)}; bare pika {_ms(b)}",
            )
        )
    for c in CLIENTS:
        s = big[c]
        rows.append(
            Row(
                "10 submit",
                f"{c} client(s), JSON arrays of {ARRAY} reports, {len(s.latencies_s):,} posts",
                "reports/s",
                s.per_s * ARRAY,
                "",
                bare[c].per_s,
                f"bare pika confirm loops (one message each), {c} connection(s)",
                note=f"{s.per_s:,.1f} posts/s, {_ms(s)}",
            )
        )
    return rows
