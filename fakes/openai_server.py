"""A local OpenAI-compatible chat completions server for tests and benchmarks.

A real HTTP server on 127.0.0.1 (stdlib ``http.server`` in a thread) answering
``POST /v1/chat/completions``, and the Batch API (``/v1/files``, ``/v1/batches``: a
:class:`fakes.batches.FakeBatches` whose request lines get the same answers as chat calls,
in :attr:`FakeOpenAI.batches`). It records every request and answers from a per-test script
(a queue of actions) or, when the script is empty, by "echo rules": it runs the rules extractor
over each snippet of the request and answers with those facts, so pipelines and benchmarks get
correct answers without a model.

``mode`` makes it behave like a kind of server (:data:`MODES`):

- ``openai`` (default): strict ``json_schema``, ``json_object`` (when a message says "JSON") or
  no format; reasoning models (``gpt-5*``, ``gpt-6*``, ``o*``) refuse ``temperature`` and
  ``max_tokens``, other models refuse ``reasoning_effort``, with OpenAI's 400 error bodies; a
  static prefix of 1,024 tokens or more is cached (``cached_tokens``, ``cache_write_tokens``);
- ``llama-cpp-python``: ``json_schema`` is answered 500 with a validation error naming
  ``response_format.type``; ``json_object`` (with a ``schema`` field or not) works;
- ``json_object``: ``json_schema`` is refused with a 400 naming it; only ``json_object`` works;
- ``ignore``: ``response_format`` is ignored; the "model" answers prose unless the schema is in
  its system prompt, and then a JSON document in a Markdown code fence;
- ``no-format``: any ``response_format`` is refused with a 400.

``reject_params`` names parameters refused with a 400 "Unsupported parameter" in any mode.
Tokens are counted as characters / 4. ``tpm`` / ``rpm`` enforce rate limits as OpenAI does
(:mod:`fakes.limits`, in :attr:`FakeOpenAI.limits`).

    with FakeOpenAI() as server:
        server.script(Status(429, retry_after="1"), Reply({"snippets": []}))
        settings = Settings(openai_base_url=server.base_url, openai_api_key="test", ...)

Standalone: ``python -m fakes.openai_server --port 8099 --base-ms 0``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from fakes.batches import FakeBatches
from fakes.chat import answer, error_body, refusal
from fakes.http_server import BackgroundServer, QuietHandler
from fakes.limits import RateLimits
from fakes.script import Action, Echo, Snippets
from worker.model.prompt import request_snippets

MODES = ("openai", "llama-cpp-python", "json_object", "ignore", "no-format")


@dataclass
class Recorded:
    """One request as received."""

    body: dict[str, Any]
    snippets: Snippets
    headers: dict[str, str] = field(default_factory=dict)


class FakeOpenAI(BackgroundServer):
    """The server. ``base_url`` is what ``OPENAI_BASE_URL`` should be set to."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        base_ms: float = 0.0,
        per_snippet_ms: float = 0.0,
        api_key: str | None = None,
        cached_tokens: int | None = None,
        mode: str = "openai",
        reject_params: tuple[str, ...] = (),
        batch_api: bool = True,
        batch_options: dict[str, Any] | None = None,
        tpm: int | None = None,
        rpm: int | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.mode = mode
        self.reject_params = reject_params
        #: the organization's rate limits (None: no limit)
        self.limits = RateLimits(tpm, rpm) if tpm or rpm else None
        self.prefixes: set[str] = set()
        self.base_ms = base_ms
        self.per_snippet_ms = per_snippet_ms
        self.api_key = api_key
        self.cached_tokens = cached_tokens
        self.requests: list[Recorded] = []
        self._script: deque[Action] = deque()
        self._rules: list[tuple[Callable[[Snippets], bool], Action]] = []
        self._lock = threading.Lock()
        #: the Batch API (``/v1/files``, ``/v1/batches``); each request line is answered as a
        #: chat request would be (rules set with :meth:`always` apply, the script does not)
        self.batches = FakeBatches(
            self.batch_answer, **(batch_options or {"advance_on_retrieve": True})
        )
        #: False: a server without the Batch API (404 on ``/v1/files`` and ``/v1/batches``)
        self.batch_api = batch_api
        #: request lines the Batch API answered (never counted in ``calls``)
        self.batch_lines = 0
        self._holds: list[tuple[str, str, threading.Event]] = []
        self._released = threading.Event()
        super().__init__(_handler_for(self), host, port)

    # ------------------------------------------------------------------ lifecycle

    def worker_env(self, key: str = "test") -> dict[str, str]:
        """The environment that points a ``finpipe`` process at this server."""
        return {
            "FINPIPE_PROVIDER": "openai",
            "OPENAI_API_KEY": key,
            "OPENAI_BASE_URL": self.base_url,
        }

    # ------------------------------------------------------------------ scripting and records

    def script(self, *actions: Action) -> None:
        """Queue actions, one per coming request; when the queue is empty, echo rules."""
        with self._lock:
            self._script.extend(actions)

    def always(self, when: Callable[[Snippets], bool], action: Action) -> None:
        """Answer every coming request whose snippets satisfy ``when`` with ``action``, before
        the script is consulted (a report the model always fails on)."""
        with self._lock:
            self._rules.append((when, action))

    def next_action(self, snippets: Snippets | None = None) -> Action:
        with self._lock:
            for when, action in self._rules:
                if snippets is not None and when(snippets):
                    return action
            return self._script.popleft() if self._script else Echo()

    def hold(self, method: str, path_part: str) -> threading.Event:
        """Hold the answer to the next request ``method`` whose path contains ``path_part``,
        after the server acted on it, until :meth:`release`: a client killed meanwhile never
        learns what happened. Returns an event set once such a request is held."""
        held = threading.Event()
        with self._lock:
            self._holds.append((method, path_part, held))
        return held

    def release(self) -> None:
        self._released.set()

    def _held(self, method: str, path: str) -> bool:
        with self._lock:
            for i, (m, part, event) in enumerate(self._holds):
                if m == method and part in path:
                    del self._holds[i]
                    event.set()
                    return True
        return False

    def wait_if_held(self, method: str, path: str) -> None:
        """A held request waits (up to a minute) for :meth:`release` before it is answered."""
        if self._held(method, path):
            self._released.wait(60)

    def batch_answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The answer to one request line of a batch: what a synchronous call would get, with no
        latency, no script and no record in :attr:`requests`."""
        try:
            snippets = request_snippets(body.get("messages") or [])
        except (ValueError, KeyError, TypeError) as exc:
            return 400, error_body(400, f"cannot read the request: {exc}", "messages")
        with self._lock:
            self.batch_lines += 1
            action = next((a for when, a in self._rules if when(snippets)), Echo())
        refused = refusal(self, body)
        if refused is not None:
            return refused
        out = answer(self, action, body, snippets)
        try:
            return out.status, json.loads(out.body)
        except ValueError:
            return out.status, {"raw": out.body.decode("utf-8", "replace")}

    def record(self, rec: Recorded) -> None:
        with self._lock:
            self.requests.append(rec)

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.requests)

    @property
    def snippets_per_call(self) -> list[int]:
        with self._lock:
            return [len(r.snippets) for r in self.requests]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._script.clear()
            self._rules.clear()
            self.prefixes.clear()
            self.batch_lines = 0


def _handler_for(server: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_GET(self) -> None:
            raw = self.read_body()
            if self._is_batch_api():
                self._batch_api(raw)
                return
            self._error(404, "unknown path", None)

        def do_POST(self) -> None:
            raw = self.read_body()
            if self._is_batch_api():
                self._batch_api(raw)
                return
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._error(404, "unknown path", None)
                return
            if not self._authorized():
                return
            try:
                body = json.loads(raw)
                snippets = request_snippets(body.get("messages") or [])
            except (ValueError, KeyError, TypeError) as exc:
                self._error(400, f"cannot read the request: {exc}", "messages")
                return
            server.record(Recorded(body, snippets, dict(self.headers.items())))
            refused = refusal(server, body)
            if refused is not None:
                self._send(refused[0], refused[1])
                return
            limit_headers: dict[str, str] = {}
            if server.limits is not None:
                status, error, limit_headers = server.limits.admit(body)
                if error is not None:
                    self._send(status, error, limit_headers)
                    return
            delay_s = (server.base_ms + server.per_snippet_ms * len(snippets)) / 1000.0
            if delay_s > 0:
                time.sleep(delay_s)
            try:
                out = answer(server, server.next_action(snippets), body, snippets)
            except Exception as exc:  # a broken script or echo: say so instead of hanging up
                self._error(500, f"fake server failed: {exc!r}", None)
                return
            server.wait_if_held("POST", self.path)
            headers = {"Content-Type": out.content_type, **limit_headers, **out.headers}
            self.send_bytes(out.status, out.body, headers)

        def _is_batch_api(self) -> bool:
            if not server.batch_api:
                return False
            path = self.path.split("?", 1)[0].rstrip("/")
            return "/files" in path or "/batches" in path

        def _authorized(self) -> bool:
            if server.api_key is not None and (
                self.headers.get("Authorization") != f"Bearer {server.api_key}"
            ):
                self._error(401, "Incorrect API key provided", None)
                return False
            return True

        def _batch_api(self, raw: bytes) -> None:
            if not self._authorized():
                return
            status, headers, data = server.batches.handle(
                self.command, self.path, dict(self.headers.items()), raw
            )
            server.wait_if_held(self.command, self.path)
            headers.setdefault("Content-Type", "application/json")
            self.send_bytes(status, data, headers)

        def _error(self, code: int, message: str, param: str | None) -> None:
            self._send(code, error_body(code, message, param))

        def _send(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            json_headers = {"Content-Type": "application/json", **(headers or {})}
            self.send_bytes(code, json.dumps(payload).encode("utf-8"), json_headers)

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--base-ms", type=float, default=0.0, help="latency of every answer")
    parser.add_argument("--per-snippet-ms", type=float, default=0.0, help="latency per snippet")
    parser.add_argument("--api-key", default=None, help="answer 401 unless this key is sent")
    parser.add_argument("--mode", default="openai", choices=MODES, help="the kind of server")
    parser.add_argument(
        "--reject-param", action="append", default=[], help="refuse this parameter (repeatable)"
    )
    parser.add_argument("--tpm", type=int, default=None, help="enforce tokens per minute")
    parser.add_argument("--rpm", type=int, default=None, help="enforce requests per minute")
    args = parser.parse_args(argv)
    server = FakeOpenAI(
        host=args.host,
        port=args.port,
        base_ms=args.base_ms,
        per_snippet_ms=args.per_snippet_ms,
        api_key=args.api_key,
        mode=args.mode,
        reject_params=tuple(args.reject_param),
        tpm=args.tpm,
        rpm=args.rpm,
    )
    print(f"fake OpenAI server on {server.base_url} ({args.mode}, echo rules)", flush=True)
    server._httpd.serve_forever()


if __name__ == "__main__":
    main()
