"""Output-format negotiation: strict ``json_schema``, else ``json_object``, else plain text.

``FINPIPE_RESPONSE_FORMAT=auto`` starts with strict ``json_schema``. When a server rejects a
format (a 400, 422 or 500 whose body names ``response_format`` or ``json_schema``) or ignores it
(answers that are not JSON at all), the run falls back, with one log line, to ``json_object``
with the schema in the system prompt (and in a ``schema`` field, which llama.cpp's servers use
and others may refuse), then to plain text with the schema in the prompt. Validation,
grounding, re-ask and split are the same in every mode. A fixed setting uses its one mode.

A format that has worked (a JSON answer came back in it) is not dropped for one bad answer: a
prose answer is then an invalid answer (asked again once, as any other), and the format is
dropped only after :data:`STRIKES` refusals or prose answers in a row. A dropped format that had
worked is tried again after :data:`RETRY_AFTER` answers in the next one (the interval doubling
each time it is dropped again, up to :data:`RETRY_AFTER_MAX`): a bad spell of a server does not
cost the schema for the rest of the process.
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


#: refusals or prose answers in a row after which a format that has worked is dropped
STRIKES = 3
#: answers in a lower format after which a dropped format that had worked is tried again
RETRY_AFTER = 50
RETRY_AFTER_MAX = 800

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
        #: variants a JSON answer came back in; refusals of the current one in a row
        self._worked: set[Variant] = set()
        self._strikes = 0
        #: drops of variants that had worked, and answers since the last one
        self._drops = 0
        self._since_drop = 0
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

    def worked(self, variant: Variant) -> None:
        """A usable answer came back in ``variant``. After enough of them in a lower variant, a
        better one that had worked before is tried again."""
        with self._lock:
            self._worked.add(variant)
            current = self._variants[self._index]
            if variant != current:
                return
            self._strikes = 0
            better = [i for i, v in enumerate(self._variants[: self._index]) if v in self._worked]
            if not better:
                return
            self._since_drop += 1
            if self._since_drop < min(RETRY_AFTER << (self._drops - 1), RETRY_AFTER_MAX):
                return
            self._index, self._since_drop = better[0], 0
            again = self._variants[self._index]
        log.info("output format: trying %s again (it worked before)", again)

    def fall_back(self, failed: Variant, why: str) -> bool:
        """A refusal of ``failed`` (or a prose answer in it): move past it, unless it has worked
        and this is not yet the :data:`STRIKES`-th refusal in a row. True when the call is worth
        asking again (in the next variant, or in the same one it keeps); False when there is
        nothing left to try."""
        with self._lock:
            if self._variants[self._index] != failed:
                return True  # another thread moved already
            if failed in self._worked:
                self._strikes += 1
                if self._strikes < STRIKES:
                    log.info("output format %s: %s (%d in a row); kept", failed, why, self._strikes)
                    return True
            if self._index + 1 >= len(self._variants):
                return False
            self._index += 1
            self._strikes = 0
            if failed in self._worked:
                self._drops += 1
                self._since_drop = 0
            now = self._variants[self._index]
        log.warning(
            "output format: %s does not work here (%s); using %s from now on", failed, why, now
        )
        return True
