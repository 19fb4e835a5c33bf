"""Answers that came back from elsewhere (a Batch API job) read as the engine reads its own. Pure.

A batch request line holds the engine's first call for a group of snippets
(:meth:`worker.model.engine.OpenAIExtractor.first_body`), so its answer is read exactly like the
answer of that call: a truncated, refused or filtered answer is set aside as a whole; each
snippet's facts are validated and grounded; a snippet whose facts all stand is final. Everything
else (a snippet missing from the answer, a fact that does not ground) is left out, so the engine
asks about it synchronously, with its re-ask, split and fallback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, cast

from pydantic import ValidationError

from worker.model.cache import cache_key, entry_from_final
from worker.model.client import ChatCompletion
from worker.model.formats import FormatMode, Variant
from worker.model.grounding import SnippetRequest, ground_all
from worker.model.ledger import CallUsage
from worker.model.profiles import ProfileTable
from worker.model.prompt import system_prompt
from worker.model.reask import EXTRACTOR_OPENAI, Final, cut_off_reason
from worker.model.schema import parse_answer
from worker.model.usage import call_usage


def format_mode(body: Mapping[str, Any]) -> str:
    """The output format a request body asks for (part of the cache key)."""
    fmt = body.get("response_format")
    if isinstance(fmt, Mapping) and fmt.get("type") in ("json_schema", "json_object"):
        return str(fmt["type"])
    return "prompt"


def variant_of(body: Mapping[str, Any]) -> Variant:
    """The output format a request body asks for, as the engine names it."""
    fmt = body.get("response_format")
    mode = format_mode(body)
    field = mode == "json_object" and isinstance(fmt, Mapping) and "schema" in fmt
    return Variant(cast(FormatMode, mode), schema_field=field)


def model_of(body: Mapping[str, Any], default: str) -> str:
    """The model a request body asks (an answer belongs to it, whatever the setting is now)."""
    model = body.get("model")
    return model if isinstance(model, str) and model else default


@cache
def _system_prompts() -> frozenset[str]:
    return frozenset(
        system_prompt(schema, examples=examples)
        for schema in (False, True)
        for examples in (True, False)
    )


def this_prompt(body: Mapping[str, Any]) -> bool:
    """Whether a request body was asked with this version's prompt (:data:`PROMPT_VERSION`, part
    of the cache key): a job submitted before an upgrade holds an older one."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not isinstance(messages[0], Mapping):
        return False
    return messages[0].get("role") == "system" and messages[0].get("content") in _system_prompts()


def read_completion(completion: Mapping[str, Any] | ChatCompletion) -> ChatCompletion | None:
    """The SDK's object for a completion body; None when the body is no chat completion."""
    if isinstance(completion, ChatCompletion):
        return completion
    try:
        return ChatCompletion.model_validate(dict(completion))
    except ValidationError:
        return None


def finals_of(
    completion: Mapping[str, Any] | ChatCompletion,
    group: Sequence[SnippetRequest],
    mode: str,
) -> dict[str, Final]:
    """The final answer of each snippet of ``group`` (by request id) that the completion of
    its first call settles; the snippets left out need a synchronous call."""
    read = read_completion(completion)
    if read is None or not read.choices:
        return {}
    choice = read.choices[0]
    why, _ = cut_off_reason(choice)
    if why is not None:
        return {}
    sids = [f"s{i}" for i in range(1, len(group) + 1)]
    parsed = parse_answer(choice.message.content, sids)
    out: dict[str, Final] = {}
    for sid, request in zip(sids, group, strict=True):
        if sid not in parsed.facts:
            continue
        kept, rejected = ground_all(request, parsed.facts[sid])
        if not rejected:
            out[request.id] = Final(EXTRACTOR_OPENAI, [c for _, c in kept], mode=mode)
    return out


def cache_entries(
    group: Sequence[SnippetRequest],
    body: Mapping[str, Any],
    completion: Mapping[str, Any],
    default_model: str,
) -> dict[str, dict[str, Any]]:
    """Cache entries (by cache key) for the snippets of ``group`` that the ``completion`` of
    ``body`` settles (:func:`finals_of`), under the model and output format ``body`` asked."""
    mode = format_mode(body)
    finals = finals_of(completion, group, mode)
    model = model_of(body, default_model)
    return {
        cache_key(r.text, model, mode): entry_from_final(finals[r.id])
        for r in group
        if r.id in finals
    }


def batch_usage(
    body: Mapping[str, Any],
    completion: Mapping[str, Any],
    n_snippets: int,
    *,
    default_model: str,
    profiles: ProfileTable,
) -> CallUsage | None:
    """One answered batch request (``body`` and its ``completion``) as a billed call, priced at
    the batch rate of the model ``body`` asked; None when the answer is no chat completion."""
    read = read_completion(completion)
    if read is None:
        return None
    model = model_of(body, default_model)
    profile = profiles.lookup(model)
    effort = body.get("reasoning_effort")
    return call_usage(
        read,
        model=model,
        price=profile.price if profile is not None else None,
        purpose="batch-api",
        snippets=n_snippets,
        latency_ms=0,
        response_format=format_mode(body),
        reasoning_effort=effort if isinstance(effort, str) else None,
        tier="batch",
    )
