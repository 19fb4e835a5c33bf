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
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from fakes.batches import FakeBatches
from fakes.http_server import BackgroundServer, QuietHandler
from fakes.limits import RateLimits
from worker.model.prompt import request_snippets

Snippets = list[dict[str, str]]
MODES = ("openai", "llama-cpp-python", "json_object", "ignore", "no-format")
#: a prefix shorter than this is never cached (OpenAI's minimum)
CACHE_MIN_TOKENS = 1024
#: hidden reasoning tokens per snippet for each reasoning_effort (a stand-in, not a measurement)
REASONING_PER_SNIPPET = {"minimal": 8, "low": 32, "medium": 128, "high": 512, "xhigh": 1024}


@dataclass
class Reply:
    """Answer with this content: a dict (sent as JSON), a string (sent as is), or a function of
    the request's snippets returning either."""

    content: dict[str, Any] | str | Callable[[Snippets], dict[str, Any] | str]
    finish_reason: str = "stop"


@dataclass
class Status:
    """Answer with an HTTP error status (429 with ``retry_after``, 500, 401, 400...)."""

    code: int
    retry_after: str | None = None
    message: str = "scripted error"
    param: str | None = None
    error_code: str | None = None
    #: the ``x-should-retry`` header ("true" or "false"), when set
    should_retry: str | None = None


@dataclass
class Delay:
    """Wait ``seconds`` before answering with ``then`` (the default behaviour when None)."""

    seconds: float
    then: Action | None = None


@dataclass
class Refuse:
    text: str = "I'm sorry, I cannot help with that."


@dataclass
class Echo:
    """Answer as the rules extractor reads each snippet. ``corrupt(text)`` true: that snippet's
    facts get a ``value_text`` absent from it; ``drop(text)`` true: its entry is left out;
    ``finish_reason`` lets an echo be marked truncated."""

    corrupt: Callable[[str], bool] | None = None
    drop: Callable[[str], bool] | None = None
    finish_reason: str = "stop"


@dataclass
class Garbage:
    """Answer ``200`` with a body that is not a chat completion at all (a proxy's HTML page, a
    cut connection's half a JSON document)."""

    body: str = "<html><body>502 Bad Gateway</body></html>"
    content_type: str = "text/html"


Action = Reply | Status | Delay | Refuse | Echo | Garbage


def malformed() -> Reply:
    """Content that is not JSON at all."""
    return Reply('{"snippets": [{"id": "s1", "facts": [')


def truncated() -> Reply:
    """A cut-off answer with ``finish_reason: "length"``."""
    return Reply('{"snippets": [{"id": "s1", "facts": [{"company": "XY', finish_reason="length")


def echo_rules(
    snippets: Snippets,
    corrupt: Callable[[str], bool] | None = None,
    drop: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
    """What a careful model would answer: the rules extractor's facts of each snippet."""
    from worker.rules import extract_facts

    entries = []
    for snip in snippets:
        text = snip["text"]
        if drop is not None and drop(text):
            continue
        facts = []
        for rf in extract_facts(text):
            f = rf.fact
            value_text = f.value_text
            if corrupt is not None and corrupt(text):
                value_text = "$987.6 million"
            facts.append(
                {
                    "company": f.company,
                    "metric": _metric_as_written(f.metric, f.value, f.value_text),
                    "value_text": value_text,
                    "value": float(f.value),
                    "period": f.quarter,
                    "currency": f.currency,
                }
            )
        entries.append({"id": snip["id"], "facts": facts})
    return {"snippets": entries}


_LOSS_NAMES = {
    "net income": "net loss",
    "operating income": "operating loss",
    "profit before tax": "loss before tax",
    "earnings per share": "loss per share",
    "gross profit": "gross loss",
}


def _metric_as_written(metric: str, value: Any, value_text: str) -> str:
    """A model writes "net loss" where the text does; the rules give "net income" < 0."""
    signed = any(mark in value_text.lower() for mark in ("-", "−", "(", "negative"))
    if value < 0 and not signed:
        prefix = "adjusted " if metric.startswith("adjusted ") else ""
        return prefix + _LOSS_NAMES.get(metric.removeprefix("adjusted "), metric)
    return metric


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
        refusal = _refusal(self, body)
        if refusal is not None:
            return refusal
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


def error_body(
    code: int, message: str, param: str | None, error_code: str | None = None
) -> dict[str, Any]:
    """An error document shaped like OpenAI's."""
    kind = {400: "invalid_request_error", 401: "invalid_api_key", 429: "rate_limit"}
    return {
        "error": {
            "message": message,
            "type": kind.get(code, "server_error"),
            "param": param,
            "code": error_code,
        }
    }


def _is_reasoning(model: str) -> bool:
    return model.startswith(("gpt-5", "gpt-6", "o1", "o3", "o4"))


def _refusal(server: FakeOpenAI, body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """The error this server answers ``body`` with, if any (before any scripted action)."""
    for name in server.reject_params:
        if name in body:
            msg = f"Unsupported parameter: '{name}' is not supported with this model."
            return 400, error_body(400, msg, name, "unsupported_parameter")
    fmt = body.get("response_format") or {}
    kind = fmt.get("type")
    if server.mode == "openai":
        return _openai_refusal(body, fmt)
    if server.mode == "llama-cpp-python" and kind == "json_schema":
        msg = (
            "1 validation error for CreateChatCompletionRequest\nresponse_format.type\n  Input "
            "should be 'text' or 'json_object' [type=literal_error, input_value='json_schema']"
        )
        return 500, error_body(500, msg, None)
    if server.mode == "json_object" and kind == "json_schema":
        msg = f'response_format type must be "text" or "json_object", not "{kind}"'
        return 400, error_body(400, msg, None)
    if server.mode == "no-format" and fmt:
        return 400, error_body(400, "response_format is not supported", "response_format")
    return None


def _openai_refusal(body: dict[str, Any], fmt: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    model = str(body.get("model", ""))
    if _is_reasoning(model):
        if "temperature" in body and body["temperature"] != 1:
            msg = (
                f"Unsupported value: 'temperature' does not support {body['temperature']} with "
                "this model. Only the default (1) value is supported."
            )
            return 400, error_body(400, msg, "temperature", "unsupported_value")
        if "max_tokens" in body:
            msg = (
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead."
            )
            return 400, error_body(400, msg, "max_tokens", "unsupported_parameter")
    elif "reasoning_effort" in body:
        msg = "Unsupported parameter: 'reasoning_effort' is not supported with this model."
        return 400, error_body(400, msg, "reasoning_effort", "unsupported_parameter")
    if (
        fmt.get("type") == "json_schema"
        and (fmt.get("json_schema") or {}).get("strict") is not True
    ):
        return 400, error_body(
            400, "response_format must be a strict json_schema", "response_format"
        )
    if fmt.get("type") == "json_object" and "json" not in json.dumps(body["messages"]).lower():
        msg = (
            "'messages' must contain the word 'json' in some form to use 'response_format' of "
            "type 'json_object'."
        )
        return 400, error_body(400, msg, "messages")
    return None


def _system(body: dict[str, Any]) -> str:
    messages = body.get("messages") or []
    return (
        str(messages[0].get("content", ""))
        if messages and messages[0].get("role") == "system"
        else ""
    )


def _as_served(server: FakeOpenAI, body: dict[str, Any], content: dict[str, Any]) -> str:
    """The echo as this kind of server sends it: a server that ignores the format answers what
    the prompt asks for (a fenced JSON document when the schema is in the prompt, else prose)."""
    if server.mode != "ignore":
        return json.dumps(content)
    if '"snippets"' in _system(body) and "JSON schema" in _system(body):
        return "```json\n" + json.dumps(content, indent=1) + "\n```"
    facts = [f for e in content["snippets"] for f in e["facts"]]
    return "Here is what I found: " + "; ".join(f"{f['metric']} {f['value_text']}" for f in facts)


def _reasoning_tokens(body: dict[str, Any]) -> int:
    effort = body.get("reasoning_effort")
    if not _is_reasoning(str(body.get("model", ""))) or not effort:
        return 0
    return REASONING_PER_SNIPPET.get(str(effort), 0) * len(request_snippets(body["messages"]))


def _prompt_cache(server: FakeOpenAI, body: dict[str, Any], prompt_tokens: int) -> tuple[int, int]:
    """(cached, written) prompt tokens: the static prefix (the output format and the system
    message) is cached from its second use, in steps of 128 tokens, when it is long enough."""
    if server.cached_tokens is not None:
        return min(server.cached_tokens, prompt_tokens), 0
    if server.mode != "openai":
        return 0, 0
    prefix = json.dumps(body.get("response_format")) + _system(body)
    tokens = len(prefix) // 4
    if tokens < CACHE_MIN_TOKENS:
        return 0, 0
    tokens = min(tokens // 128 * 128, prompt_tokens)
    key = f"{body.get('model')}|{body.get('prompt_cache_key')}|{prefix}"
    with server._lock:
        if key in server.prefixes:
            return tokens, 0
        server.prefixes.add(key)
    return 0, tokens


@dataclass
class Answer:
    """What the server sends back for one chat request: a status, a body and extra headers."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> Answer:
        return cls(status, json.dumps(payload).encode("utf-8"), headers=headers or {})


def answer(server: FakeOpenAI, action: Action, body: dict[str, Any], snippets: Snippets) -> Answer:
    """The answer to one chat request ``body`` by ``action`` (the socket is the caller's)."""
    if isinstance(action, Delay):
        time.sleep(action.seconds)
        return answer(server, action.then or Echo(), body, snippets)
    if isinstance(action, Status):
        headers = {"retry-after": action.retry_after} if action.retry_after is not None else {}
        if action.should_retry is not None:
            headers["x-should-retry"] = action.should_retry
        payload = error_body(action.code, action.message, action.param, action.error_code)
        return Answer.json(action.code, payload, headers)
    if isinstance(action, Garbage):
        return Answer(200, action.body.encode("utf-8"), action.content_type)
    if isinstance(action, Refuse):
        return Answer.json(200, _completion(server, body, None, "stop", refusal=action.text))
    if isinstance(action, Echo):
        content = echo_rules(snippets, action.corrupt, action.drop)
        served = _as_served(server, body, content)
        return Answer.json(200, _completion(server, body, served, action.finish_reason))
    made = action.content(snippets) if callable(action.content) else action.content
    text = made if isinstance(made, str) else json.dumps(made)
    return Answer.json(200, _completion(server, body, text, action.finish_reason))


def _completion(
    server: FakeOpenAI,
    body: dict[str, Any],
    content: str | None,
    finish_reason: str,
    refusal: str | None = None,
) -> dict[str, Any]:
    prompt_chars = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
    prompt_chars += len(json.dumps(body.get("response_format") or ""))
    reasoning = _reasoning_tokens(body)
    completion_tokens = len(content or refusal or "") // 4 + reasoning
    prompt_tokens = prompt_chars // 4
    cached, written = _prompt_cache(server, body, prompt_tokens)
    return {
        "id": f"chatcmpl-fake-{next(_completion_ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "fake"),
        "service_tier": body.get("service_tier") or "default",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {
                "cached_tokens": cached,
                "cache_write_tokens": written,
            },
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        },
    }


_completion_ids = itertools.count(1)


def _handler_for(server: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(QuietHandler):
        def do_GET(self) -> None:
            raw = self._body()
            if self._is_batch_api():
                self._batch_api(raw)
                return
            self._error(404, "unknown path", None)

        def do_POST(self) -> None:
            raw = self._body()
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
            refusal = _refusal(server, body)
            if refusal is not None:
                self._send(refusal[0], refusal[1])
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
            if server._held("POST", self.path):
                server._released.wait(60)
            self._send_raw(out.status, out.body, out.content_type, {**limit_headers, **out.headers})

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

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
            if server._held(self.command, self.path):
                server._released.wait(60)
            content_type = headers.pop("Content-Type", "application/json")
            self._send_raw(status, data, content_type, headers)

        def _error(self, code: int, message: str, param: str | None) -> None:
            self._send(code, error_body(code, message, param))

        def _send(self, code: int, payload: Any, headers: dict[str, str] | None = None) -> None:
            self._send_raw(code, json.dumps(payload).encode("utf-8"), "application/json", headers)

        def _send_raw(
            self,
            code: int,
            data: bytes,
            content_type: str,
            headers: dict[str, str] | None = None,
        ) -> None:
            try:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

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
