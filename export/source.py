"""The stored facts as a DataFrame: the query and the reading are the store's, the frame is ours."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol

import pandas as pd

from export.tables import STORED_FIELDS
from schemas.fact import EXTRACTOR_FALLBACK


class FactReader(Protocol):
    """What the export reads from the store (``adapters.mongo.MongoStore``)."""

    def fact_documents(
        self,
        *,
        since: date | datetime | None,
        until: date | datetime | None,
        companies: Sequence[str] | None,
        without_extractors: Sequence[str],
        fields: tuple[str, ...],
    ) -> list[dict[str, Any]]: ...

    def company_counts(self) -> dict[str, int]: ...

    def unassigned_amounts(
        self,
        *,
        since: date | datetime | None,
        until: date | datetime | None,
        report_ids: Sequence[str] | None,
    ) -> dict[str, int]: ...

    def pipeline_counts(self) -> dict[str, Any]: ...

    def record_run(self, name: str, now: datetime, **fields: Any) -> None: ...


def read_facts(
    store: FactReader,
    *,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    companies: Sequence[str] | None = None,
    without_fallback: bool = False,
) -> pd.DataFrame:
    """Matching facts as an object-dtype frame with the columns ``STORED_FIELDS``; ``companies``
    are names exactly as stored (``export.companies.matching_names``), ``None`` for all;
    ``without_fallback`` leaves out the facts the rules gave where the model failed."""
    docs = store.fact_documents(
        since=since,
        until=until,
        companies=companies,
        without_extractors=(EXTRACTOR_FALLBACK,) if without_fallback else (),
        fields=STORED_FIELDS,
    )
    return stored_frame(docs)


def stored_frame(docs: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Stored fact documents as an object-dtype frame with the columns ``STORED_FIELDS``."""
    return pd.DataFrame(
        {f: pd.Series([d.get(f) for d in docs], dtype=object) for f in STORED_FIELDS},
        columns=list(STORED_FIELDS),
    )
