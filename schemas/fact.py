"""Facts: what an extractor proposes, and the normalized fact the standard accepts."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from schemas.numbers import json_number
from schemas.periods import is_period_label
from schemas.standards import CURRENCIES, Unit, is_known_metric, unit_of

FACT_SCHEMA_VERSION = 1

#: the least confidence a rules fact needs to be stored (``FINPIPE_MIN_CONFIDENCE``); chosen from
#: the precision/recall curve in docs/extraction-accuracy.md
DEFAULT_MIN_CONFIDENCE = 0.7

#: A stored fact's ``extractor`` in model mode: the model's, or the rules' on a snippet the model
#: failed (``rules-fallback``; exports can leave those out). The rules extractor's facts say
#: ``rules``.
EXTRACTOR_OPENAI = "openai"
EXTRACTOR_FALLBACK = "rules-fallback"

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class Fact(BaseModel):
    """One normalized fact. ``quarter`` holds the period label (the seed's field name)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    company: Name | None = None
    metric: Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1)]
    metric_known: bool = True
    value: Decimal = Field(allow_inf_nan=False)
    currency: str | None = None
    unit: Unit
    quarter: str | None = None
    value_text: Annotated[str, StringConstraints(min_length=1)]
    #: character span of ``value_text`` in the snippet it came from
    start: int | None = Field(None, ge=0)
    end: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _check_standard(self) -> Fact:
        known = is_known_metric(self.metric)
        if self.metric_known and not known:
            raise ValueError(f"metric {self.metric!r} is not in the vocabulary; mark it unknown")
        if known and not self.metric_known:
            raise ValueError(f"metric {self.metric!r} is in the vocabulary but marked unknown")
        expected = unit_of(self.metric)
        if expected is not None and expected != self.unit:
            raise ValueError(f"metric {self.metric!r} is reported in {expected}, not {self.unit}")
        if self.unit in (Unit.CURRENCY, Unit.CURRENCY_PER_SHARE):
            if self.currency not in CURRENCIES:
                raise ValueError(
                    f"unit {self.unit} needs an ISO 4217 currency, got {self.currency!r}"
                )
        elif self.currency is not None:
            raise ValueError(f"unit {self.unit} takes no currency, got {self.currency!r}")
        if self.quarter is not None and not is_period_label(self.quarter):
            raise ValueError(f"period {self.quarter!r} does not match the period grammar")
        return self

    def json_value(self) -> int | float:
        """The value as stored: an int when whole, else the shortest float equal to the decimal."""
        return json_number(self.value)
