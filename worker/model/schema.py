"""The answer the model must give, and reading it. Pure: no network, no clock.

The model answers :class:`ExtractionAnswer`, keyed by snippet id, under a strict JSON schema
generated from the pydantic models below. Per fact it copies what the text says (company, metric,
amount, period, currency as written); the normalization code decides what those mean. Bump
:data:`ANSWER_SCHEMA_VERSION` (and the prompt version) whenever these models change.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.errors import validation_summary

#: Version of the answer schema below; part of the cache key with the prompt version.
ANSWER_SCHEMA_VERSION = 1
SCHEMA_NAME = "financial_facts"


class LLMFact(BaseModel):
    """One fact as the model reads it, every field copied from the text."""

    model_config = ConfigDict(extra="forbid")

    company: str | None = Field(
        description="The company the figure belongs to, exactly as named in the snippet; "
        "null when the snippet does not name it."
    )
    metric: str = Field(
        description="The metric exactly as written, e.g. 'net income', 'net sales'."
    )
    value_text: str = Field(
        description="The amount exactly as written in the snippet, character for character, "
        "with its currency symbol and scale word, e.g. '$5.3 million'."
    )
    value: float | None = Field(
        description="The amount as a plain number with its scale applied, e.g. 5300000 for "
        "'$5.3 million'; negative for losses; null when unsure."
    )
    period: str | None = Field(
        description="The period exactly as written, e.g. 'Q1 2024', 'first quarter of 2024'; "
        "null when the snippet states none."
    )
    currency: str | None = Field(
        description="The currency as written (symbol, code or word), e.g. '$', 'EUR', 'pence'; "
        "null for percentages or when absent."
    )


class SnippetAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="The id of the snippet, as given.")
    facts: list[LLMFact] = Field(description="The facts of this snippet; empty when it has none.")


class ExtractionAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    snippets: list[SnippetAnswer] = Field(description="One entry per snippet given, same ids.")


def strict_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of ``model`` in the form OpenAI's strict structured outputs accept.

    Every object gets ``additionalProperties: false`` and lists all its properties as required
    (optional fields stay nullable through ``anyOf [..., {"type": "null"}]``); ``title`` and
    ``default`` keys are dropped, ``$defs`` and ``$ref`` are kept.
    """
    return _strictify(copy.deepcopy(model.model_json_schema()))


def _strictify(node: Any) -> Any:
    if isinstance(node, dict):
        node.pop("title", None)
        node.pop("default", None)
        for key, value in list(node.items()):
            if key == "properties" and isinstance(value, dict):
                for prop in value.values():
                    _strictify(prop)
            else:
                _strictify(value)
        if node.get("type") == "object" or "properties" in node:
            node["additionalProperties"] = False
            node["required"] = list(node.get("properties", {}))
    elif isinstance(node, list):
        for item in node:
            _strictify(item)
    return node


@dataclass
class ParsedAnswer:
    """A completion read per snippet: the facts of each snippet that answered validly, and the
    validation error of each snippet that did not (missing, malformed)."""

    facts: dict[str, list[LLMFact]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    unknown_ids: list[str] = field(default_factory=list)

    def answer_for(self, ids: Sequence[str]) -> str:
        """The valid part of the answer for ``ids``, as JSON (the re-ask shows it to the model)."""
        entries = [
            {"id": sid, "facts": [f.model_dump() for f in self.facts[sid]]}
            for sid in ids
            if sid in self.facts
        ]
        return json.dumps({"snippets": entries}, ensure_ascii=False)


def parse_answer(content: str | None, expected_ids: Sequence[str]) -> ParsedAnswer:
    """Read a completion's content; one snippet's bad entry never spoils the others."""
    out = ParsedAnswer()
    try:
        doc = json.loads(_unfenced(content or ""))
    except json.JSONDecodeError as exc:
        reason = f"answer is not valid JSON ({exc.msg} at char {exc.pos})"
        out.errors = dict.fromkeys(expected_ids, reason)
        return out
    entries = doc.get("snippets") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        out.errors = dict.fromkeys(expected_ids, 'answer has no "snippets" list')
        return out
    expected = set(expected_ids)
    for entry in entries:
        sid = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(sid, str) or sid not in expected:
            out.unknown_ids.append(str(sid))
            continue
        if sid in out.facts or sid in out.errors:
            out.facts.pop(sid, None)
            out.errors[sid] = "snippet id answered more than once"
            continue
        try:
            out.facts[sid] = SnippetAnswer.model_validate(entry).facts
        except ValidationError as exc:
            out.errors[sid] = validation_summary(exc, limit=5)
    for sid in expected_ids:
        if sid not in out.facts and sid not in out.errors:
            out.errors[sid] = "no answer for this snippet id"
    return out


def _unfenced(content: str) -> str:
    """The JSON inside a Markdown code fence, which plain-text answers often wrap it in."""
    stripped = content.strip()
    if stripped.startswith("```") and stripped.endswith("```") and "\n" in stripped:
        return stripped[stripped.index("\n") + 1 : -3]
    return content
