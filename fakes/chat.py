"""How the local OpenAI server answers one chat request: the refusals of each kind of server
(:data:`fakes.openai_server.MODES`) and the chat completion, with OpenAI's token accounting
(characters / 4, a cached static prefix, hidden reasoning tokens).
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fakes.script import Action, Delay, Echo, Garbage, Refuse, Snippets, Status, echo_rules
from worker.model.prompt import request_snippets

if TYPE_CHECKING:
    from fakes.openai_server import FakeOpenAI

#: a prefix shorter than this is never cached (OpenAI's minimum)
CACHE_MIN_TOKENS = 1024
#: hidden reasoning tokens per snippet for each reasoning_effort (a stand-in, not a measurement)
REASONING_PER_SNIPPET = {"minimal": 8, "low": 32, "medium": 128, "high": 512, "xhigh": 1024}


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


def refusal(server: FakeOpenAI, body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
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
