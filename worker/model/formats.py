"""Output-format negotiation: strict ``json_schema``, else ``json_object``, else plain text.

``FINPIPE_RESPONSE_FORMAT=auto`` starts with strict ``json_schema``. When a server rejects a
format (a 400, 422 or 500 whose body names ``response_format`` or ``json_schema``) or ignores it
(answers that are not JSON at all), the run falls back, with one log line, to ``json_object``
with the schema in the system prompt (and in a ``schema`` field, which llama.cpp's servers use
and others may refuse), then to plain text with the schema in the prompt. Validation,
grounding, re-ask and split are the same in every mode. A fixed setting uses its one mode.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from worker.model.schema import SCHEMA_NAME, ExtractionAnswer, strict_json_schema

log = logging.getLogger(__name__)

FormatMode = Literal["json_schema", "json_object", "prompt"]
MODES: tuple[FormatMode, ...] = ("json_schema", "json_object", "prompt")


@dataclass(frozen=True, slots=True)
class Variant:
    """One way of asking: the mode, and for ``json_object`` whether to send a ``schema`` field."""

    mode: FormatMode
    schema_field: bool = False

    def __str__(self) -> str:
        return f"{self.mode} with a schema field" if self.schema_field else self.mode


#: the order of fallback
VARIANTS = (
    Variant("json_schema"),
    Variant("json_object", schema_field=True),
    Variant("json_object"),
    Variant("prompt"),
)


def response_format(variant: Variant) -> dict[str, Any] | None:
    """The ``response_format`` argument for ``variant``; None in ``prompt`` mode."""
    schema = strict_json_schema(ExtractionAnswer)
    if variant.mode == "json_schema":
        return {
            "type": "json_schema",
            "json_schema": {"name": SCHEMA_NAME, "strict": True, "schema": schema},
        }
    if variant.mode == "json_object":
        return (
            {"type": "json_object", "schema": schema}
            if variant.schema_field
            else {"type": "json_object"}
        )
    return None


def names_format(text: str) -> bool:
    """Whether an error text is about the output format."""
    lowered = text.lower()
    return "response_format" in lowered or "json_schema" in lowered


def looks_like_json(content: str | None) -> bool:
    """An answer that at least tries to be a JSON document (a fenced block counts)."""
    stripped = (content or "").strip()
    if stripped.startswith("```"):
        stripped = stripped.strip("`").removeprefix("json").strip()
    return stripped.startswith(("{", "["))


class Negotiator:
    """The variant in use for this run, shared by the engine's threads."""

    def __init__(self, setting: str) -> None:
        allowed = MODES if setting == "auto" else (setting,)
        self.modes: tuple[FormatMode, ...] = tuple(m for m in MODES if m in allowed)
        self.setting = setting
        self._variants = [v for v in VARIANTS if v.mode in self.modes]
        self._index = 0
        self._lock = threading.Lock()
        self._probe = threading.Lock()
        # a fixed setting has nothing to find out
        self._settled = setting != "auto"

    @contextmanager
    def probing(self) -> Iterator[None]:
        """Until a call has gone through, one call at a time: a server that refuses the first
        format refuses it once, not once per call in flight."""
        if self._settled:
            yield
            return
        with self._probe:
            yield

    def settle(self) -> None:
        """A call went through in the current format: calls may run side by side again."""
        self._settled = True

    @property
    def current(self) -> Variant:
        with self._lock:
            return self._variants[self._index]

    def fall_back(self, failed: Variant, why: str) -> bool:
        """Move past ``failed``; False when there is nothing left to try."""
        with self._lock:
            if self._variants[self._index] != failed:
                return True  # another thread moved already
            if self._index + 1 >= len(self._variants):
                return False
            self._index += 1
            now = self._variants[self._index]
        log.warning(
            "output format: %s does not work here (%s); using %s from now on", failed, why, now
        )
        return True
