"""``finpipe facts`` and ``finpipe companies`` through click, on a store held in memory; the
filters they hand to the store; a bad aliases file stopping a command (``finpipe schedule``
too)."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from adapters.mongo.queries import fact_filter, facts_query
from finpipe import cmd_export, cmd_facts, cmd_inbox
from finpipe.context import Context
from schemas.settings import Settings

AT = datetime(2024, 10, 30, 6, 0, tzinfo=UTC)
DATED = datetime(2024, 10, 29, tzinfo=UTC)  # the reports' own date, given as a day


def stored(
    fid: str, company: str | None, metric: str, value: str, period: str, text: str
) -> dict[str, Any]:
    number = float(value) if "." in value else int(value)
    return {
        "_id": fid,
        "report_id": f"rep-{fid}",
        "company": company,
        "metric": metric,
        "value": number,
        "value_decimal": value,
        "currency": "USD",
        "unit": "currency",
        "quarter": period,
        "value_text": text,
        "extractor": "rules",
        "snippet": f"{company} reported {metric} of {text} for {period}.",
        "extracted_at": AT,
        "report_date": DATED,
        "report_date_source": "reported",
    }


DOCS = [
    stored("o1", "Orion Outdoor Gear", "revenue", "73400000", "Q3 2024", "$73.4 million"),
    stored("o2", "Orion Outdoor Gear", "revenue", "66000000", "Q3 2023", "$66.0 million"),
    stored("o3", "Orion Outdoor Gear plc", "net income", "8900000", "Q3 2024", "$8.9 million"),
    stored("a1", "Acme Corp", "revenue", "12400000", "Q2 2024", "$12.4 million"),
    stored("k1", "Kestrel Labs", "revenue", "1.5", "FY 2024", "=1.5"),
    stored("b1", "Brightwater Analytics", "revenue", "2", "FY 2024", "$2"),
]


def _matches(doc: dict[str, Any], query: dict[str, Any]) -> bool:
    """Enough of MongoDB's query language for ``fact_filter``: equality, ``$in``, ``$regex``."""
    for field, cond in query.items():
        value = doc.get(field)
        if isinstance(cond, dict) and "$in" in cond:
            if value not in cond["$in"]:
                return False
        elif isinstance(cond, dict) and "$regex" in cond:
            flags = re.IGNORECASE if "i" in cond.get("$options", "") else 0
            if not isinstance(value, str) or not re.search(cond["$regex"], value, flags):
                return False
        elif value != cond:
            return False
    return True


class MemoryStore:
    """The reads ``finpipe facts`` and ``finpipe companies`` make, on documents in memory."""

    def __init__(self, docs: list[dict[str, Any]]) -> None:
        self.docs = docs
        self.queries: list[dict[str, Any]] = []
        self.closed = False

    def running_counts(self) -> MemoryStore:
        return self

    def company_totals(self) -> dict[str, int]:
        return dict(Counter(d["company"] for d in self.docs if isinstance(d["company"], str)))

    def facts(self, query: dict[str, Any], limit: int = 0) -> list[dict[str, Any]]:
        self.queries.append(query)
        found = sorted(
            (d for d in self.docs if _matches(d, query)),
            key=lambda d: (d["company"] or "", d["quarter"] or "", d["metric"], d["_id"]),
        )
        return found[:limit] if limit else found

    def close(self) -> None:
        self.closed = True


class MemoryContext(Context):
    def __init__(self, settings: Settings, store: MemoryStore) -> None:
        super().__init__(settings)
        self._store = store

    def store(self, *, timeout_ms: int = 5000) -> Any:
        return self._store


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore([dict(d) for d in DOCS])


@pytest.fixture
def run(store: MemoryStore) -> Iterator[Any]:
    def invoke(*args: str, aliases: Path | None = None) -> Result:
        @click.group()
        @click.pass_context
        def cli(ctx: click.Context) -> None:
            ctx.obj = MemoryContext(Settings.from_env({}, company_aliases=aliases), store)

        cmd_facts.register(cli)
        cmd_export.register(cli)
        cmd_inbox.register(cli)
        return CliRunner().invoke(cli, list(args))

    yield invoke


def json_lines(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


# -- finpipe facts ------------------------------------------------------------------------------
def test_facts_are_json_lines_as_before_with_the_canonical_name_beside(
    run: Any, store: MemoryStore
) -> None:
    lines = json_lines(run("facts", "--report", "rep-o3"))
    assert lines == [
        {
            "company": "Orion Outdoor Gear plc",
            "company_canonical": "Orion Outdoor Gear",
            "metric": "net income",
            "value": 8900000,
            "currency": "USD",
            "unit": "currency",
            "quarter": "Q3 2024",
            "value_text": "$8.9 million",
            "report_id": "rep-o3",
            "report_date": "2024-10-29",
            "extractor": "rules",
        }
    ]
    assert store.queries == [{"report_id": "rep-o3"}] and store.closed
    full = json_lines(run("facts", "--report", "rep-o3", "--full"))[0]
    assert full["snippet"].startswith("Orion Outdoor Gear plc reported")
    assert list(full)[:3] == ["_id", "report_id", "company"]
    assert full["company_canonical"] == "Orion Outdoor Gear"


@pytest.mark.parametrize(
    "name", ["Orion Outdoor Gear", "orion outdoor gear plc", "ORION OUTDOOR GEAR PLC."]
)
def test_a_company_is_matched_in_every_written_form(
    run: Any, store: MemoryStore, name: str
) -> None:
    lines = json_lines(run("facts", "--company", name))
    assert [(d["company"], d["quarter"]) for d in lines] == [
        ("Orion Outdoor Gear", "Q3 2023"),
        ("Orion Outdoor Gear", "Q3 2024"),
        ("Orion Outdoor Gear plc", "Q3 2024"),
    ]
    assert {d["company_canonical"] for d in lines} == {"Orion Outdoor Gear"}
    assert store.queries[-1] == {
        "company": {"$in": ["Orion Outdoor Gear", "Orion Outdoor Gear plc"]}
    }


def test_metric_and_period_ignore_case_and_spacing(run: Any) -> None:
    lines = json_lines(run("facts", "--metric", " NET  income"))
    assert [(d["company"], d["metric"]) for d in lines] == [
        ("Orion Outdoor Gear plc", "net income")
    ]
    lines = json_lines(
        run(
            "facts", "--company", "Orion Outdoor Gear", "--metric", "REVENUE", "--period", "q3 2023"
        )
    )
    assert [(d["metric"], d["quarter"], d["value"]) for d in lines] == [
        ("revenue", "Q3 2023", 66000000)
    ]


def test_an_unknown_company_exits_1_saying_so(run: Any) -> None:
    result = run("facts", "--company", "Nowhere Ltd")
    assert result.exit_code == 1
    assert result.stderr == (
        "finpipe facts: no stored company matches 'Nowhere Ltd' (finpipe companies lists them)\n"
    )


def test_csv_has_exact_values_and_neutralized_text(run: Any) -> None:
    result = run("facts", "--format", "csv", "--period", "FY 2024", "--limit", "10")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "company,company_canonical,period,metric,value,currency,unit,value_text,report_id,"
        "report_date\n"
        "Brightwater Analytics,Brightwater Analytics,FY 2024,revenue,2,USD,currency,$2,rep-b1,"
        "2024-10-29\n"
        "Kestrel Labs,Kestrel Labs,FY 2024,revenue,1.5,USD,currency,'=1.5,rep-k1,2024-10-29\n"
    )
    empty = run("facts", "--format", "csv", "--period", "FY 1999")
    assert empty.stdout.splitlines() == [
        "company,company_canonical,period,metric,value,currency,unit,value_text,report_id,"
        "report_date"
    ]


def test_table_is_aligned_for_reading(run: Any) -> None:
    result = run("facts", "--format", "table", "--company", "acme")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "company    company_canonical  period   metric      value  currency  unit      "
        "value_text     report_id  report_date",
        "Acme Corp  Acme Corp          Q2 2024  revenue  12400000  USD       currency  "
        "$12.4 million  rep-a1     2024-10-29",
    ]
    assert run("facts", "--format", "table", "--period", "Q1 1999").stdout == "no facts match\n"


def quillon(store: MemoryStore) -> None:
    """Three reports about Quillon's Q1 2024 revenue: the second a typo, the third a restatement."""
    for fid, value, text, day in (
        ("q1", "5300000", "$5.3 million", datetime(2024, 5, 1, tzinfo=UTC)),
        ("q2", "53000000", "$53 million", datetime(2024, 5, 2, tzinfo=UTC)),
        ("q3", "5100000", "$5.1 million", datetime(2024, 6, 15, tzinfo=UTC)),
    ):
        doc = stored(fid, "Quillon Corp", "revenue", value, "Q1 2024", text)
        store.docs.append({**doc, "report_date": day})


def test_conflicts_lists_the_values_reports_disagree_about(run: Any, store: MemoryStore) -> None:
    quillon(store)
    lines = json_lines(run("facts", "--conflicts"))
    assert [(d["value"], d["report_date"], d["kind"]) for d in lines] == [
        (5300000, "2024-05-01", "differs"),
        (53000000, "2024-05-02", "scale slip"),
        (5100000, "2024-06-15", "shown"),
    ]
    assert lines[0]["company"] == "Quillon Corp" and lines[0]["report_id"] == "rep-q1"
    assert store.queries[-1] == {}  # every fact: a figure's values are compared together

    table = run("facts", "--conflicts", "--format", "table", "--company", "quillon")
    assert table.exit_code == 0, table.output
    assert table.stdout.splitlines()[0].split() == [
        "company", "period", "metric", "value", "currency", "value_text", "report_date", "kind",
        "report_id", "note",
    ]  # fmt: skip
    assert "53000000  USD       $53 million   2024-05-02   scale slip" in table.stdout

    csv_out = run("facts", "--conflicts", "--format", "csv", "--metric", "revenue")
    assert csv_out.stdout.splitlines()[0].startswith("company,period,metric,unit,currency,value,")
    assert len(csv_out.stdout.splitlines()) == 4

    limited = run("facts", "--conflicts", "--limit", "2")
    assert len(limited.stdout.splitlines()) == 2
    assert limited.stderr == (
        "finpipe facts: showing 2 of 3 values in conflict (--limit 0 for all)\n"
    )


def test_conflicts_when_reports_agree_and_with_one_report(run: Any) -> None:
    result = run("facts", "--conflicts", "--format", "table")
    assert result.exit_code == 0, result.output
    assert result.stdout == "no two reports disagree\n"
    assert run("facts", "--conflicts").stdout == ""
    one_report = run("facts", "--conflicts", "--report", "rep-q1")
    assert one_report.exit_code == 2
    assert "--conflicts compares reports" in one_report.output


HOSTILE = "Evil\x1b]0;pwned\x07\x1b[2J Corp\u202e\x9b31m"


def test_terminal_escapes_in_a_company_name_are_shown_escaped(store: MemoryStore, run: Any) -> None:
    store.docs.append(stored("e1", HOSTILE, "revenue", "5", "FY 2024", "$5\x1b[1A"))
    outputs = {
        "facts --format table": run("facts", "--format", "table").stdout,
        "companies": run("companies").stdout,
        "facts": run("facts").stdout,
    }
    for command, out in outputs.items():
        assert not any(c in out for c in "\x1b\x07\x9b\u202e"), command
    escaped = "Evil\\x1b]0;pwned\\x07\\x1b[2J Corp\\u202e\\x9b31m"
    assert (
        escaped in outputs["facts --format table"]
        and "$5\\x1b[1A" in outputs["facts --format table"]
    )
    assert f"{escaped}      1  {escaped} (1)" in outputs["companies"]
    assert {d["company"] for d in map(json.loads, outputs["facts"].splitlines())} >= {HOSTILE}


def test_aliases_file_joins_companies_in_facts_and_companies(
    run: Any, tmp_path: Path, store: MemoryStore
) -> None:
    aliases = tmp_path / "aliases.csv"
    aliases.write_text(
        "alias,canonical\n# the lab was renamed\nKestrel Labs,Brightwater\n"
        "Brightwater Analytics,Brightwater\n",
        encoding="utf-8",
    )
    lines = json_lines(run("facts", "--company", "brightwater", aliases=aliases))
    assert [(d["company"], d["company_canonical"]) for d in lines] == [
        ("Brightwater Analytics", "Brightwater"),
        ("Kestrel Labs", "Brightwater"),
    ]
    listing = run("companies", aliases=aliases)
    assert listing.exit_code == 0, listing.output
    assert listing.stdout.splitlines() == [
        "company             facts  written as",
        "Acme Corp               1  Acme Corp (1)",
        "Brightwater             2  Brightwater Analytics (1), Kestrel Labs (1)",
        "Orion Outdoor Gear      3  Orion Outdoor Gear (2), Orion Outdoor Gear plc (1)",
    ]


def test_companies_as_json(run: Any) -> None:
    result = run("companies", "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [c["name"] for c in listed] == [
        "Acme Corp",
        "Brightwater Analytics",
        "Kestrel Labs",
        "Orion Outdoor Gear",
    ]
    assert listed[-1] == {
        "name": "Orion Outdoor Gear",
        "key": "orion outdoor gear",
        "facts": 3,
        "written": [
            {"name": "Orion Outdoor Gear", "facts": 2},
            {"name": "Orion Outdoor Gear plc", "facts": 1},
        ],
    }


@pytest.mark.parametrize("command", [["export"], ["facts"], ["companies"], ["schedule"]])
def test_a_bad_aliases_file_stops_the_command_with_one_line(
    run: Any, tmp_path: Path, store: MemoryStore, command: list[str]
) -> None:
    aliases = tmp_path / "aliases.yaml"
    aliases.write_text("Kestrel Labs: Brightwater\nGoogle: ''\n", encoding="utf-8")
    result = run(*command, aliases=aliases)
    assert result.exit_code == 2
    assert result.stderr == (
        f"finpipe {command[0]}: FINPIPE_COMPANY_ALIASES file {aliases}, line 2, field canonical: "
        "is empty\n"
    )
    assert store.queries == []  # nothing was read from the store


def test_the_aliases_file_is_an_optional_setting(tmp_path: Path) -> None:
    assert Settings.from_env({}).company_aliases is None
    s = Settings.from_env({"FINPIPE_COMPANY_ALIASES": str(tmp_path / "aliases.yaml")})
    assert s.company_aliases == tmp_path / "aliases.yaml"
    assert s.to_env()["FINPIPE_COMPANY_ALIASES"] == str(tmp_path / "aliases.yaml")
    assert Settings.from_env(s.to_env()) == s


# -- the store's filters ------------------------------------------------------------------------
def test_fact_filter_asks_for_written_names_and_labels_as_written() -> None:
    assert fact_filter() == {}
    q = fact_filter(
        report_id="r1",
        companies=["Orion Outdoor Gear", "Orion Outdoor Gear plc"],
        metric="Net income",
        period="Q2  2024",
    )
    assert q["report_id"] == "r1"
    assert q["company"] == {"$in": ["Orion Outdoor Gear", "Orion Outdoor Gear plc"]}
    for field, stored_label, other in (
        ("metric", "net income", "net income margin"),
        ("quarter", "Q2 2024", "Q2 20245"),
    ):
        pattern = re.compile(q[field]["$regex"], re.IGNORECASE)
        assert q[field]["$options"] == "i"
        assert pattern.search(stored_label) and not pattern.search(other)
    assert fact_filter(companies=[]) == {"company": {"$in": []}}  # no written form: no facts
    assert fact_filter(metric="  ", period="") == {}


def test_facts_query_takes_the_written_names_of_one_company() -> None:
    names = ["Nokia", "Nokia Oyj"]
    assert facts_query(companies=names) == {"company": {"$in": names}}
    assert facts_query(company="x", companies=names) == {"company": {"$in": names}}
