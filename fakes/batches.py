"""A local OpenAI Batch API (``/v1/files`` and ``/v1/batches``) for tests and benchmarks.

:class:`FakeBatches` is a router (``handle(method, path, headers, body)``) for any HTTP server;
:class:`FakeBatchesServer` serves it on 127.0.0.1, its ``base_url`` for ``openai.OpenAI``.

Batches go through the real status sequence: ``validating`` → ``in_progress`` → ``finalizing`` →
``completed``; ``failed`` when the input does not validate (or on request); ``expired`` with partial
output (the requests not run are in the error file as ``batch_expired``); ``cancelling`` →
``cancelled`` with what was answered before. Each request line is answered by the ``answer``
callable, ``answer(body) -> (status_code, response_body)``, so any chat answer can be reused
(:func:`echo_answer` answers as the rules extractor reads each snippet). A status other than 200
puts the line in the error file.

Batches move one step at a time: by :meth:`FakeBatches.advance`, at each retrieve
(``advance_on_retrieve=True``), or every ``step_s`` seconds of ``clock``.

    batches = FakeBatches(echo_answer, advance_on_retrieve=True)
    with FakeBatchesServer(batches) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test")
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fakes.batch_objects import FakeBatch, FakeFile
from fakes.http_server import BackgroundServer, QuietHandler
from fakes.script import echo_answer

Answer = Callable[[dict[str, Any]], tuple[int, dict[str, Any]]]
Response = tuple[int, dict[str, str], bytes]

ENDPOINTS = ("/v1/chat/completions",)
ACTIVE = ("validating", "in_progress", "finalizing", "cancelling")
TERMINAL = ("completed", "expired", "failed", "cancelled")

_ids = itertools.count(1)


def error_body(message: str, kind: str = "server_error", code: str | None = None) -> dict:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class FakeBatches:
    """The Batch API's state and its HTTP routes."""

    def __init__(
        self,
        answer: Answer = echo_answer,
        *,
        advance_on_retrieve: bool = False,
        step_s: float | None = None,
        clock: Callable[[], float] = time.time,
        requests_per_step: int | None = None,
        max_requests: int = 50_000,
        max_bytes: int = 200 * 1024 * 1024,
        enqueued_token_limit: int | None = None,
    ) -> None:
        self.answer = answer
        #: the organization's queue of batch tokens: a batch that would take it over this fails
        #: validation with ``token_limit_exceeded`` (charged as the chat limits are)
        self.enqueued_token_limit = enqueued_token_limit
        self.advance_on_retrieve = advance_on_retrieve
        self.step_s = step_s
        self.clock = clock
        self.requests_per_step = requests_per_step
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.files: dict[str, FakeFile] = {}
        self.batches: dict[str, FakeBatch] = {}
        #: times each custom_id was answered, over every batch
        self.answered: Counter[str] = Counter()
        #: every request the server received, as (method, path)
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.RLock()
        self._fail_next: list[str] = []
        self._expire_next: list[int] = []
        self._request_errors: list[tuple[Callable[[dict[str, Any]], bool], int, str]] = []

    # ------------------------------------------------------------------ controls

    def fail_next(self, message: str = "scripted validation failure") -> None:
        """The next batch created fails validation with ``message``."""
        with self._lock:
            self._fail_next.append(message)

    def expire_next(self, after_requests: int) -> None:
        """The next batch created expires once ``after_requests`` requests are answered."""
        with self._lock:
            self._expire_next.append(after_requests)

    def fail_requests(
        self, when: Callable[[dict[str, Any]], bool], status: int = 500, message: str = "scripted"
    ) -> None:
        """Every request whose body satisfies ``when`` is answered with ``status``."""
        with self._lock:
            self._request_errors.append((when, status, message))

    def advance(self, batch_id: str | None = None, steps: int = 1) -> None:
        """Move one batch (or every active one) ``steps`` steps along."""
        with self._lock:
            targets = [self.batches[batch_id]] if batch_id else list(self.batches.values())
            for _ in range(steps):
                for batch in targets:
                    self._step(batch)

    def finish(self, batch_id: str | None = None) -> None:
        """Advance until the batch (or every batch) has reached its end."""
        with self._lock:
            targets = [self.batches[batch_id]] if batch_id else list(self.batches.values())
            for batch in targets:
                while batch.status not in TERMINAL:
                    self._step(batch)

    def status(self, batch_id: str) -> str:
        with self._lock:
            return self.batches[batch_id].status

    @property
    def created(self) -> list[FakeBatch]:
        with self._lock:
            return list(self.batches.values())

    # ------------------------------------------------------------------ the state machine

    def _now(self) -> int:
        return int(self.clock())

    def _step(self, batch: FakeBatch) -> None:
        batch.last_step_at = self.clock()
        if batch.status == "validating":
            problems = self._validate(batch)
            if problems:
                batch.errors = problems
                self._end(batch, "failed")
            else:
                batch.status = "in_progress"
                batch.times["in_progress"] = self._now()
        elif batch.status == "in_progress":
            self._run_some(batch)
        elif batch.status == "finalizing":
            self._end(batch, "completed")
        elif batch.status == "cancelling":
            self._end(batch, "cancelled")

    def _validate(self, batch: FakeBatch) -> list[dict[str, Any]]:
        if batch.fail_reason is not None:
            return [{"code": "scripted_failure", "line": None, "message": batch.fail_reason}]
        data = self.files[batch.input_file_id].data
        problems: list[dict[str, Any]] = []
        if len(data) > self.max_bytes:
            problems.append({"code": "file_too_large", "line": None, "message": "over the limit"})
        seen: set[str] = set()
        models: set[str] = set()
        for n, raw in enumerate(data.decode("utf-8").splitlines(), 1):
            try:
                line = json.loads(raw)
                cid, body = line["custom_id"], line["body"]
                if line.get("method") != "POST" or line.get("url") != batch.endpoint:
                    raise ValueError("method must be POST and url the batch's endpoint")
                if cid in seen:
                    raise ValueError(f"duplicate custom_id {cid!r}")
                seen.add(cid)
                models.add(str(body["model"]))
            except (ValueError, KeyError, TypeError) as exc:
                problems.append({"code": "invalid_request", "line": n, "message": str(exc)})
                continue
            batch.lines.append(line)
        if len(batch.lines) > self.max_requests:
            problems.append({"code": "too_many_requests", "line": None, "message": "over 50,000"})
        if len(models) > 1:
            problems.append({"code": "mixed_models", "line": None, "message": "one model per file"})
        if not problems and self.enqueued_token_limit is not None:
            problems += self._over_token_limit(batch, models)
        return problems

    def _over_token_limit(self, batch: FakeBatch, models: set[str]) -> list[dict[str, Any]]:
        from fakes.limits import charge_of

        batch.tokens = sum(charge_of(line["body"]) for line in batch.lines)
        enqueued = sum(
            b.tokens for b in self.batches.values() if b.status in ("in_progress", "finalizing")
        )
        limit = self.enqueued_token_limit or 0
        if enqueued + batch.tokens <= limit:
            return []
        batch.lines.clear()
        message = (
            f"Enqueued token limit reached for {','.join(sorted(models))} in organization "
            f"org-fake. Limit: {limit:,} enqueued tokens. Please try submitting an earlier batch "
            "or wait for your batches to complete."
        )
        return [{"code": "token_limit_exceeded", "line": None, "message": message}]

    def _run_some(self, batch: FakeBatch) -> None:
        todo = batch.lines[len(batch.done) :]
        if self.requests_per_step is not None:
            todo = todo[: self.requests_per_step]
        for line in todo:
            if batch.expire_after is not None and len(batch.done) >= batch.expire_after:
                self._end(batch, "expired")
                return
            status, body = self._answer_one(line["body"])
            batch.done.append((line["custom_id"], status, body))
            self.answered[line["custom_id"]] += 1
        if len(batch.done) == len(batch.lines):
            batch.status = "finalizing"
            batch.times["finalizing"] = self._now()
        elif batch.expire_after is not None and len(batch.done) >= batch.expire_after:
            self._end(batch, "expired")

    def _answer_one(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        for when, status, message in self._request_errors:
            if when(body):
                return status, error_body(message)
        try:
            return self.answer(body)
        except Exception as exc:  # a broken answer function: say so in the error file
            return 500, error_body(f"fake answer failed: {exc!r}")

    def _end(self, batch: FakeBatch, status: str) -> None:
        batch.status = status
        batch.times[status] = self._now()
        if status == "failed":
            return
        out: list[dict[str, Any]] = []
        err: list[dict[str, Any]] = []
        for n, (cid, code, body) in enumerate(batch.done):
            line = {
                "id": f"batch_req_{batch.id}_{n}",
                "custom_id": cid,
                "response": {"status_code": code, "request_id": f"req_{n}", "body": body},
                "error": None,
            }
            (out if code == 200 else err).append(line)
        if status == "expired":
            answered = {cid for cid, _, _ in batch.done}
            for line in batch.lines:
                if line["custom_id"] not in answered:
                    err.append(
                        {
                            "id": f"batch_req_{batch.id}_x{len(err)}",
                            "custom_id": line["custom_id"],
                            "response": None,
                            "error": {
                                "code": "batch_expired",
                                "message": "This request could not be executed before the "
                                "completion window expired.",
                            },
                        }
                    )
        if out:
            batch.output_file_id = self._store_file(f"{batch.id}_output.jsonl", out).id
        if err:
            batch.error_file_id = self._store_file(f"{batch.id}_error.jsonl", err).id

    def _store_file(self, name: str, lines: list[dict[str, Any]]) -> FakeFile:
        data = "".join(json.dumps(line) + "\n" for line in lines).encode("utf-8")
        f = FakeFile(f"file-{next(_ids)}", name, "batch_output", data, self._now())
        self.files[f.id] = f
        return f

    def _tick(self) -> None:
        if self.step_s is None:
            return
        now = self.clock()
        for batch in self.batches.values():
            while batch.status not in TERMINAL and now - batch.last_step_at >= self.step_s:
                last = batch.last_step_at
                self._step(batch)
                batch.last_step_at = last + self.step_s

    # ------------------------------------------------------------------ HTTP

    def handle(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Answer one HTTP request; ``path`` may carry a query string."""
        parts = urlsplit(path)
        route = parts.path.rstrip("/").removeprefix("/v1").strip("/").split("/")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self.calls.append((method, parts.path))
            self._tick()
            try:
                return self._route(method, route, query, headers, body)
            except _HTTPError as exc:
                return _json(exc.status, error_body(exc.message, exc.kind))

    def _route(
        self,
        method: str,
        route: list[str],
        query: dict[str, str],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Response:
        match (method, route):
            case ("POST", ["files"]):
                return self._upload(headers, body)
            case ("GET", ["files"]):
                files = sorted(self.files.values(), key=lambda f: f.created_at, reverse=True)
                purpose = query.get("purpose")
                data = [f.obj() for f in files if purpose is None or f.purpose == purpose]
                return _json(200, {"object": "list", "data": data, "has_more": False})
            case ("GET", ["files", file_id]):
                return _json(200, self._file(file_id).obj())
            case ("GET", ["files", file_id, "content"]):
                return 200, {"Content-Type": "application/octet-stream"}, self._file(file_id).data
            case ("POST", ["batches"]):
                return self._create(body)
            case ("GET", ["batches"]):
                return self._list(query)
            case ("GET", ["batches", batch_id]):
                batch = self._batch(batch_id)
                if self.advance_on_retrieve:
                    self._step(batch)
                return _json(200, batch.obj())
            case ("POST", ["batches", batch_id, "cancel"]):
                batch = self._batch(batch_id)
                if batch.status not in ("validating", "in_progress", "finalizing"):
                    raise _HTTPError(400, f"cannot cancel a batch that is {batch.status}")
                batch.status = "cancelling"
                batch.times["cancelling"] = self._now()
                return _json(200, batch.obj())
        raise _HTTPError(404, f"no route {method} /v1/{'/'.join(route)}", "not_found")

    def _upload(self, headers: Mapping[str, str], body: bytes) -> Response:
        ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        if not ctype.startswith("multipart/form-data"):
            raise _HTTPError(400, "expected multipart/form-data")
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + body
        )
        fields: dict[str, tuple[str | None, bytes]] = {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            fields[str(name)] = (part.get_filename(), data)
        if "file" not in fields or "purpose" not in fields:
            raise _HTTPError(400, "file and purpose are required")
        purpose = fields["purpose"][1].decode("utf-8")
        if purpose != "batch":
            raise _HTTPError(400, f"purpose {purpose!r} is not supported here")
        filename, data = fields["file"]
        f = FakeFile(f"file-{next(_ids)}", filename or "upload.jsonl", purpose, data, self._now())
        self.files[f.id] = f
        return _json(200, f.obj())

    def _create(self, body: bytes) -> Response:
        try:
            params = json.loads(body)
        except json.JSONDecodeError as exc:
            raise _HTTPError(400, f"body is not JSON: {exc}") from exc
        file_id = str(params.get("input_file_id"))
        self._file(file_id)
        if params.get("endpoint") not in ENDPOINTS:
            raise _HTTPError(400, f"endpoint {params.get('endpoint')!r} is not supported")
        if params.get("completion_window") != "24h":
            raise _HTTPError(400, "completion_window must be 24h")
        metadata = params.get("metadata")
        if metadata is not None and len(metadata) > 16:
            raise _HTTPError(400, "metadata has more than 16 keys")
        batch = FakeBatch(
            id=f"batch_{next(_ids)}",
            input_file_id=file_id,
            endpoint=params["endpoint"],
            completion_window="24h",
            metadata=metadata,
            created_at=self._now(),
            last_step_at=self.clock(),
        )
        if self._fail_next:
            batch.fail_reason = self._fail_next.pop(0)
        if self._expire_next:
            batch.expire_after = self._expire_next.pop(0)
        self.batches[batch.id] = batch
        return _json(200, batch.obj())

    def _list(self, query: dict[str, str]) -> Response:
        limit = max(1, min(int(query.get("limit", "20")), 100))
        ordered = list(reversed(self.batches.values()))  # newest first
        after = query.get("after")
        if after is not None:
            ids = [b.id for b in ordered]
            ordered = ordered[ids.index(after) + 1 :] if after in ids else []
        page = ordered[:limit]
        return _json(
            200,
            {
                "object": "list",
                "data": [b.obj() for b in page],
                "first_id": page[0].id if page else None,
                "last_id": page[-1].id if page else None,
                "has_more": len(ordered) > limit,
            },
        )

    def _file(self, file_id: str) -> FakeFile:
        if file_id not in self.files:
            raise _HTTPError(404, f"no file {file_id}", "not_found")
        return self.files[file_id]

    def _batch(self, batch_id: str) -> FakeBatch:
        if batch_id not in self.batches:
            raise _HTTPError(404, f"no batch {batch_id}", "not_found")
        return self.batches[batch_id]


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


def _json(status: int, payload: Any) -> Response:
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode("utf-8")


class FakeBatchesServer(BackgroundServer):
    """:class:`FakeBatches` on a real socket. ``base_url`` is what ``OPENAI_BASE_URL`` takes."""

    def __init__(self, batches: FakeBatches, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.batches = batches
        super().__init__(_handler_for(batches), host, port)


def _handler_for(batches: FakeBatches) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def _serve(self) -> None:
            raw = self.read_body()
            status, headers, data = batches.handle(
                self.command, self.path, dict(self.headers.items()), raw
            )
            self.send_bytes(status, data, headers)

        do_GET = do_POST = do_DELETE = _serve

    return Handler
