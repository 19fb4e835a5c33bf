"""A real ``finpipe serve`` process: resources stay flat however many requests it serves, and
every error, including those the WSGI server gives itself, is answered as JSON."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from fakes.soak import drive, resources, wait_listening
from schemas.settings import Settings
from tests.integration.conftest import ROOT, queue_depth, settings_env

TOKEN = "soak-token"
SOAK_REQUESTS = 5000
THREADS = 4


class Server:
    def __init__(self, settings: Settings, log_path: Path, threads: int, **env: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "finpipe", "serve"),
                *("--port", str(self.port), "--threads", str(threads)),
            ],
            env=settings_env(settings, **env),
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_listening(self.port)

    def request(
        self, method: str, target: str, body: bytes | None = None, **headers: str
    ) -> tuple[http.client.HTTPResponse, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.putrequest(method, target, skip_accept_encoding=True)
            for name, value in headers.items():
                conn.putheader(name.replace("_", "-"), value)
            chunked = headers.get("Transfer_Encoding") == "chunked"
            if body is not None and not chunked:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders()
            if body is not None and chunked:
                for i in range(0, len(body), 4096):
                    part = body[i : i + 4096]
                    conn.send(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                conn.send(b"0\r\n\r\n")
            elif body is not None:
                conn.send(body)
            resp = conn.getresponse()
            assert resp.getheader("Content-Type", "").startswith("application/json")
            return resp, json.loads(resp.read())
        finally:
            conn.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        finally:
            self._log.close()


@pytest.fixture
def start_server(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(threads: int = THREADS, **env: str) -> Server:
        server = Server(settings, tmp_path / f"serve{len(started)}.log", threads, **env)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


def test_serve_holds_threads_files_and_connections_flat_over_5000_requests(
    settings: Settings, start_server: Callable[..., Server]
) -> None:
    server = start_server(FINPIPE_API_TOKEN=TOKEN)
    warm, _ = drive(server.port, 400, clients=THREADS * 2, token=TOKEN, salt="warm")
    assert set(warm) == {200, 202}, warm
    ports = {
        "broker_port": urlsplit(settings.amqp_urls[0]).port or 5672,
        "database_port": urlsplit(settings.mongo_uri).port or 27017,
    }
    before = resources(server.proc.pid, **ports)
    counts, seconds = drive(server.port, SOAK_REQUESTS, clients=THREADS * 2, token=TOKEN)
    after = resources(server.proc.pid, **ports)
    print(f"\n{SOAK_REQUESTS} requests in {seconds:.1f} s: before {before}, after {after}")

    assert counts == {202: SOAK_REQUESTS // 2, 200: SOAK_REQUESTS // 2}
    assert queue_depth(settings)[0] == (400 + SOAK_REQUESTS) // 2
    assert after.threads <= before.threads + 1
    assert after.fds <= before.fds + 4
    assert 1 <= after.broker_connections <= THREADS  # one publisher per serving thread at most
    assert after.broker_connections <= before.broker_connections + 1
    assert before.database_connections >= 1  # the counts watch the server's own connections
    assert after.database_connections <= before.database_connections + 2
    assert server.stop() == 0
    assert "Traceback" not in server.log()


def test_every_error_is_answered_as_json_with_the_headers_it_calls_for(
    start_server: Callable[..., Server],
) -> None:
    server = start_server(FINPIPE_API_TOKEN=TOKEN, FINPIPE_MAX_BODY_BYTES="10000")
    auth = {"Authorization": f"Bearer {TOKEN}", "Content_Type": "application/json"}

    resp, body = server.request("POST", "/submit", b"{}", Content_Type="application/json")
    assert resp.status == 401
    assert resp.getheader("WWW-Authenticate", "").startswith("Bearer")
    resp, body = server.request("DELETE", "/submit", Authorization=auth["Authorization"])
    assert resp.status == 405
    assert set(resp.getheader("Allow", "").split(", ")) == {"POST", "OPTIONS"}
    resp, body = server.request("GET", "/healthz?" + "a" * 9000)
    assert resp.status == 414
    resp, body = server.request("GET", "/healthz", X_Big="a" * 70_000)
    assert resp.status == 431
    resp, body = server.request("GET", "/nowhere", Authorization=auth["Authorization"])
    assert resp.status == 404

    text = {"raw_text": "Company XYZ reported a net income of $5.3 million for Q1 2024."}
    over = json.dumps({"raw_text": "x" * 20_000}).encode()
    padded = json.dumps(text).encode() + b" " * 20_000  # a cut would fall in the whitespace
    for body_bytes in (over, padded):
        for chunked in (True, False):
            extra = {"Transfer_Encoding": "chunked"} if chunked else {}
            resp, body = server.request("POST", "/submit", body_bytes, **auth, **extra)
            assert resp.status == 413, (chunked, body)
            assert "FINPIPE_MAX_BODY_BYTES" in body["error"]
    resp, body = server.request("POST", "/submit", json.dumps(text).encode(), **auth)
    assert resp.status == 202
    assert server.stop() == 0
