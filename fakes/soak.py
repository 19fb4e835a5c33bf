"""Soak a running ``finpipe serve``: many keep-alive clients posting reports and asking for
``/healthz``, and the server process's resources (threads, open files, established connections
to RabbitMQ and MongoDB) read from ``/proc`` before and after. Used by the integration test and by
the ``serve`` benchmark (``bench/scenarios/serve.py``)."""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

_ESTABLISHED = "01"


@dataclass(frozen=True)
class Resources:
    threads: int
    fds: int
    broker_connections: int
    database_connections: int


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _connections_to(pid: int, inodes: set[str], port: int) -> int:
    """Established TCP connections of the process ``pid`` to remote ``port`` (IPv4 and IPv6)."""
    count = 0
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as fh:
                rows = fh.read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for row in rows:
            fields = row.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[3] == _ESTABLISHED and fields[9] in inodes:
                count += 1
    return count


def resources(pid: int, *, broker_port: int = 5672, database_port: int = 27017) -> Resources:
    with open(f"/proc/{pid}/status") as fh:
        threads = next(int(line.split()[1]) for line in fh if line.startswith("Threads:"))
    inodes = _socket_inodes(pid)
    return Resources(
        threads=threads,
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        broker_connections=_connections_to(pid, inodes, broker_port),
        database_connections=_connections_to(pid, inodes, database_port),
    )


def drive(
    port: int, requests: int, *, clients: int = 8, token: str | None = None, salt: str = ""
) -> tuple[Counter[int], float]:
    """``requests`` requests from ``clients`` keep-alive connections, alternately a distinct
    report posted to ``/submit`` and ``GET /healthz``; the answers' status counts and the
    seconds taken."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    counts: Counter[int] = Counter()
    lock = threading.Lock()
    per_client = [range(c, requests, clients) for c in range(clients)]

    def client(numbers: range) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        seen: Counter[int] = Counter()
        try:
            for i in numbers:
                if i % 2 == 0:
                    text = f"Soak{salt} Corp {i} reported revenue of ${i + 1} million for Q1 2024."
                    body = json.dumps({"raw_text": text})
                    conn.request("POST", "/submit", body=body, headers=headers)
                else:
                    conn.request("GET", "/healthz")
                resp = conn.getresponse()
                resp.read()
                seen[resp.status] += 1
        finally:
            conn.close()
            with lock:
                counts.update(seen)

    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        for done in [pool.submit(client, numbers) for numbers in per_client]:
            done.result()
    return counts, time.monotonic() - started


def wait_listening(
    port: int, timeout_s: float = 30.0, *, gone: Callable[[], bool] | None = None
) -> None:
    """Until ``GET /healthz`` on ``port`` answers at all (the server listens); the last
    OSError after ``timeout_s``, or as soon as ``gone()`` says the server process ended."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            if time.monotonic() > deadline or (gone is not None and gone()):
                raise
            time.sleep(0.05)
