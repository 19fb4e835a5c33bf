"""Totals of the store for an operator: running counts of facts in all, facts per company and
reports per status, kept in one document that the writers update as they go.

On FerretDB v1 a count or a ``$group`` reads the whole collection (20 s at 100,000 facts), while
one document read by ``_id`` takes milliseconds: ``finpipe status``, ``finpipe companies`` and
``finpipe facts --company`` read the running counts. The writers apply each change with one
``$inc`` on the document (:func:`apply_changes`) and never create it that way; when it is missing
(a store written before the counts existed, or filled by other means) the reader counts the
collections once and stores the result (:class:`RunningCounts`, over the store's client).
Company names are field names there, escaped (``escape_key``) since a name may hold ``.``, ``$``
or anything else. Model usage is added up here too (``usage_totals_of``): FerretDB v1 returns 0
for ``{"$sum": "$field"}``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from adapters.mongo.client import Connection, upsert_one
from adapters.mongo.names import COUNTERS

log = logging.getLogger(__name__)

#: ``_id`` of the running counts in the counters collection
SUMMARY_ID = "summary"
#: characters a field name cannot hold as they are, and ``%`` itself
_ESCAPED = {"%": "%25", ".": "%2E", "$": "%24", "\x00": "%00"}


def escape_key(name: str) -> str:
    """A company name as a field name: never empty, never starting with ``$``, without ``.``."""
    return "c" + "".join(_ESCAPED.get(ch, ch) for ch in name)


def unescape_key(key: str) -> str:
    out, i, text = [], 0, key[1:]
    reverse = {v: k for k, v in _ESCAPED.items()}
    while i < len(text):
        if text[i] == "%" and text[i : i + 3] in reverse:
            out.append(reverse[text[i : i + 3]])
            i += 3
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


class Changes:
    """Changes to the running counts gathered during one write; ``update()`` is the ``$inc``."""

    def __init__(self) -> None:
        self.facts = 0
        self.companies: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()

    def facts_added(self, docs: Iterable[Mapping[str, Any]], sign: int = 1) -> None:
        for doc in docs:
            self.facts += sign
            company = doc.get("company")
            if isinstance(company, str):
                self.companies[company] += sign

    def company_changed(self, old: Any, new: Any) -> None:
        if old == new:
            return
        if isinstance(old, str):
            self.companies[old] -= 1
        if isinstance(new, str):
            self.companies[new] += 1

    def status_changed(self, old: Any, new: str) -> None:
        """A report went from ``old`` (``None``: it is new) to ``new``."""
        if old == new:
            return
        if isinstance(old, str):
            self.statuses[old] -= 1
        self.statuses[new] += 1

    def update(self) -> dict[str, Any] | None:
        """The ``$inc`` update, or ``None`` when nothing changed."""
        inc: dict[str, int] = {}
        if self.facts:
            inc["facts"] = self.facts
        inc.update({f"companies.{escape_key(c)}": n for c, n in self.companies.items() if n})
        inc.update({f"reports.{s}": n for s, n in self.statuses.items() if n})
        return {"$inc": inc} if inc else None


def apply_changes(conn: Connection, changes: Changes) -> None:
    """Add ``changes`` to the running counts, if they exist (see :meth:`RunningCounts.document`);
    pymongo's errors are the caller's to translate (it is in the middle of a write)."""
    update = changes.update()
    if update is not None:
        conn.db[COUNTERS].update_one({"_id": SUMMARY_ID}, update)


class ExactCounts(Protocol):
    """The full counts of the collections that the running counts start from."""

    def report_counts(self) -> dict[str, int]: ...

    def count_facts(self) -> int: ...

    def company_counts(self) -> dict[str, int]: ...


class RunningCounts:
    """The running counts, kept in the counters collection of ``conn``; ``exact`` counts the
    collections when they are missing or asked to be counted again."""

    def __init__(self, conn: Connection, exact: ExactCounts) -> None:
        self.conn = conn
        self.exact = exact

    def document(self) -> dict[str, Any]:
        """The counts; counted from the collections (and kept) when there are none yet."""
        with self.conn.translated("running count read"):
            doc: dict[str, Any] | None = self.conn.db[COUNTERS].find_one({"_id": SUMMARY_ID})
        if doc is not None:
            return doc
        log.info("counting facts and reports once, to keep running counts from now on")
        return self.recount(keep_newer=True)

    def recount(self, *, keep_newer: bool = False) -> dict[str, Any]:
        """Count the collections (a full read of each) and keep the result as the running counts
        (``finpipe status --recount``); ``keep_newer`` keeps counts stored meanwhile."""
        statuses = {k: n for k, n in self.exact.report_counts().items() if k != "received"}
        doc = summary_document(self.exact.count_facts(), self.exact.company_counts(), statuses)
        counts = self.conn.db[COUNTERS]
        with self.conn.translated("running count write"):
            fields = {k: v for k, v in doc.items() if k != "_id"}
            # several workers starting on a store without counts count at once: the first kept
            # wins with keep_newer, the last with a recount
            upsert_one(counts, SUMMARY_ID, {"$setOnInsert" if keep_newer else "$set": fields})
        return doc

    def counted(self, collection: str, field: str) -> dict[Any, int]:
        """Documents of ``collection`` per value of ``field``: one ``$group`` (a full read)."""
        group = {"$group": {"_id": f"${field}", "n": {"$sum": 1}}}
        with self.conn.translated(f"{collection} count"):
            return {g["_id"]: int(g["n"]) for g in self.conn.db[collection].aggregate([group])}

    def status_counts(self, statuses: Iterable[str]) -> dict[str, Any]:
        """Reports by status (``statuses`` always present) and facts stored."""
        doc = self.document()
        return {"reports": report_counts_of(doc, statuses), "facts_stored": facts_of(doc)}

    def company_totals(self) -> dict[str, int]:
        """Facts per company name as stored."""
        return company_counts_of(self.document())


def summary_document(
    facts: int, companies: Mapping[str, int], statuses: Mapping[str, int]
) -> dict[str, Any]:
    """The running counts as counted from the collections."""
    return {
        "_id": SUMMARY_ID,
        "facts": facts,
        "companies": {escape_key(c): n for c, n in companies.items() if n > 0},
        "reports": {str(s): n for s, n in statuses.items() if n > 0},
    }


def company_counts_of(doc: Mapping[str, Any]) -> dict[str, int]:
    """Facts per company name from the running counts (companies with none left out)."""
    stored = doc.get("companies") or {}
    return {unescape_key(k): int(n) for k, n in stored.items() if _count(n) > 0}


def report_counts_of(doc: Mapping[str, Any], known: Iterable[str]) -> dict[str, int]:
    """Reports per status (every known status present) and ``received``, their sum."""
    counts = dict.fromkeys(known, 0)
    for status, n in (doc.get("reports") or {}).items():
        if _count(n) > 0 or status in counts:
            counts[str(status)] = max(0, _count(n))
    counts["received"] = sum(counts.values())
    return counts


def facts_of(doc: Mapping[str, Any]) -> int:
    return max(0, _count(doc.get("facts")))


def _count(n: Any) -> int:
    return int(n) if isinstance(n, int | float) and not isinstance(n, bool) else 0


def usage_totals_of(calls: Iterable[Mapping[str, Any]], cache_hits: Any) -> dict[str, Any]:
    """Model calls, tokens, cache hits and the estimated cost where known (calls without a cost
    are counted in ``calls_without_cost``), from the usage records."""
    n = 0
    tokens = {"prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0}
    cost = 0.0
    unknown_cost = 0
    for doc in calls:
        n += 1
        for k in tokens:
            v = doc.get(k)
            if isinstance(v, int | float) and not isinstance(v, bool):
                tokens[k] += int(v)
        c = doc.get("cost_usd")
        if isinstance(c, int | float) and not isinstance(c, bool):
            cost += float(c)
        else:
            unknown_cost += 1
    return {
        "model_calls": n,
        **tokens,
        "cache_hits": int(cache_hits) if isinstance(cache_hits, int | float) else 0,
        "estimated_cost_usd": round(cost, 6) if n == 0 or n > unknown_cost else None,
        "calls_without_cost": unknown_cost,
    }
