"""`finpipe export` and `finpipe status` against the real MongoDB server and RabbitMQ."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pika
import pytest
from click.testing import CliRunner

from adapters.mongo import LAST_SWEEP, MongoStore
from adapters.rabbitmq import Broker, read_queues
from export import night
from export import run as export_run
from export.cells import iso_utc
from export.night import Outstanding
from schemas.settings import Settings
from schemas.topology import Topology
from tests.integration.conftest import ROOT, finpipe_cli, settings_env, wait_until
from tests.unit.test_export import assert_workbook_equals_csvs

pytestmark = pytest.mark.integration

NOW = datetime(2024, 7, 2, 3, 0, tzinfo=UTC)
T1 = datetime(2024, 7, 1, 6, 0, tzinfo=UTC)
T0 = datetime(2024, 6, 15, 6, 0, tzinfo=UTC)
DAY = "2024-07-02"


def fact(
    fid: str,
    company: str | None,
    metric: str,
    value: str,
    currency: str | None,
    period: str | None,
    value_text: str,
    *,
    unit: str = "currency",
    at: datetime = T1,
    row: int | None = None,
    snippet: str | None = None,
) -> dict[str, Any]:
    d = Decimal(value)
    return {
        "_id": fid,
        "report_id": f"rep-{company}",
        "company": company,
        "metric": metric,
        "metric_known": True,
        "value": int(d) if d == d.to_integral_value() else float(value),
        "value_decimal": value,
        "currency": currency,
        "unit": unit,
        "quarter": period,
        "value_text": value_text,
        "snippet": snippet or f"{company} {metric} {value_text} {period}.",
        "snippet_start": 0,
        "snippet_end": 40,
        "page": None,
        "source": "inbox/results.csv" if row else "api",
        "file_name": "results.csv" if row else None,
        "line": None,
        "row": row,
        "extractor": "rules",
        "model": None,
        "prompt_version": None,
        "extracted_at": at,
        "schema_version": 1,
    }


FACTS = [
    fact("x1", "XYZ", "net income", "5300000", "USD", "Q1 2024", "$5.3 million"),
    fact("x2", "XYZ", "net income", "-1200000", "USD", "Q2 2024", "$1.2 million"),
    fact(
        "x3",
        "XYZ",
        "earnings per share",
        "0.45",
        "USD",
        "Q1 2024",
        "$0.45",
        unit="currency_per_share",
    ),
    fact(
        "x4",
        "XYZ",
        "earnings per share",
        "-0.1",
        "USD",
        "Q2 2024",
        "-$0.10",
        unit="currency_per_share",
    ),
    fact("x5", "XYZ", "gross margin", "42.1", None, "Q1 2024", "42.1%", unit="percent"),
    fact("x6", "XYZ", "gross margin", "39.8", None, "Q2 2024", "39.8%", unit="percent"),
    fact("n1", "Nokia", "revenue", "5100000000", "EUR", "Q4 2023", "EUR 5.1 billion", row=2),
    fact("n2", "Nokia", "revenue", "4900000000", "EUR", "Q1 2024", "EUR 4.9 billion", row=3),
    fact("s1", "Sony", "revenue", "13020768000000", "JPY", "FY 2023", "¥13.02 trillion", at=T0),
    fact("s2", "Sony", "revenue", "12957000000000", "JPY", "FY 2024", "¥12.957 trillion"),
    fact(
        "a1",
        "Acme",
        "revenue",
        "2.5E+8",
        "GBP",
        "Q4 FY2024",
        "£250m",
        snippet='=HYPERLINK("http://x") Acme revenue £250m',
    ),
]


def seed(mongo_client: Any, settings: Settings, facts: list[dict[str, Any]]) -> Any:
    db = mongo_client[settings.mongo_db]
    if facts:
        db.financial_data.insert_many([dict(f) for f in facts])
    return db


def seed_pipeline(db: Any) -> None:
    db.reports.insert_many(
        [
            {"_id": "rep-XYZ", "status": "done", "fact_count": 6},
            {"_id": "rep-Nokia", "status": "done", "fact_count": 2},
            {"_id": "rep-Sony", "status": "done", "fact_count": 2},
            {"_id": "rep-Acme", "status": "done", "fact_count": 1},
            {"_id": "rep-bad", "status": "failed", "error": "no text"},
            {"_id": "rep-dead", "status": "dead", "error": "undecodable"},
            {"_id": "rep-new", "status": "queued"},
        ]
    )
    db.llm_usage.insert_many(
        [
            {
                "_id": "u1",
                "at": T1,
                "model": "m",
                "prompt_tokens": 1000,
                "completion_tokens": 200,
                "cached_tokens": 100,
                "cost_usd": 0.0015,
                "snippets": 4,
            },
            {
                "_id": "u2",
                "at": T1,
                "model": "m",
                "prompt_tokens": 500,
                "completion_tokens": 50,
                "cached_tokens": 0,
                "cost_usd": 0.00075,
                "snippets": 2,
            },
            {
                "_id": "u3",
                "at": T1,
                "model": "m",
                "prompt_tokens": 10,
                "completion_tokens": 1,
                "cached_tokens": 0,
                "cost_usd": None,
                "snippets": 1,
            },
        ]
    )
    db.counters.insert_one({"_id": "counters", "cache_hits": 7})


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """The CLI configures logging; put the test run's handlers back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def run_export(settings: Settings, **options: Any) -> Path:
    """``export.run.run_export`` with a store of its own, as ``finpipe export`` runs it."""
    store = MongoStore.from_settings(settings)
    try:
        return export_run.run_export(settings, store, **options)
    finally:
        store.close()


def export_after_drain(settings: Settings) -> str:
    """The scheduled export job, with its own store and broker."""
    store = MongoStore.from_settings(settings)
    try:
        return export_run.export_after_drain(settings, store, night_check(settings, store))
    finally:
        store.close()


def night_check(settings: Settings, store: MongoStore) -> Callable[[], Outstanding]:
    broker = Broker.from_settings(settings)
    queues = broker.topology.backlog_queues()
    return night.night_check(lambda: read_queues(broker.nodes, queues), store, LAST_SWEEP)


def wait_for_drain(settings: Settings, timeout_s: float, **options: Any) -> bool:
    store = MongoStore.from_settings(settings)
    try:
        return night.wait_for_night(night_check(settings, store), timeout_s, **options).done
    finally:
        store.close()


def cli_env(settings: Settings) -> dict[str, str]:
    return {
        "FINPIPE_AMQP_URL": settings.amqp_url,
        "FINPIPE_MONGO_URI": settings.mongo_uri,
        "FINPIPE_MONGO_DB": settings.mongo_db,
        "FINPIPE_QUEUE": settings.queue,
        "FINPIPE_EXPORT_DIR": str(settings.export_dir),
        "FINPIPE_PROVIDER": "rules",
        "OPENAI_API_KEY": "",
    }


def lines(folder: Path, name: str) -> list[str]:
    return (folder / name).read_text(encoding="utf-8").splitlines()


# ----------------------------------------------------------------------------------------------
def test_export_writes_exact_csvs_for_known_facts(mongo_client: Any, settings: Settings) -> None:
    seed_pipeline(seed(mongo_client, settings, FACTS))
    folder = run_export(settings, now=NOW, queue_drained=True)

    assert folder == settings.export_dir / DAY
    assert (settings.export_dir / "latest").resolve() == folder.resolve()
    assert lines(folder, "facts.csv") == [
        "company,company_canonical,period,metric,value,currency,unit,metric_known,value_text,"
        "report_id,report_date,report_date_source,source,"
        "file_name,page,row,line,snippet,snippet_start,snippet_end,extractor,model,"
        "prompt_version,extracted_at,fact_id",
        "Acme,Acme,Q4 FY2024,revenue,250000000,GBP,currency,true,£250m,rep-Acme,"
        "2024-07-01T06:00:00Z,extracted,api,,,,,"
        '"\'=HYPERLINK(""http://x"") Acme revenue £250m",0,40,rules,,,2024-07-01T06:00:00Z,a1',
        "Nokia,Nokia,Q4 2023,revenue,5100000000,EUR,currency,true,EUR 5.1 billion,rep-Nokia,"
        "2024-07-01T06:00:00Z,extracted,"
        "inbox/results.csv,results.csv,,2,,Nokia revenue EUR 5.1 billion Q4 2023.,0,40,rules,,,"
        "2024-07-01T06:00:00Z,n1",
        "Nokia,Nokia,Q1 2024,revenue,4900000000,EUR,currency,true,EUR 4.9 billion,rep-Nokia,"
        "2024-07-01T06:00:00Z,extracted,"
        "inbox/results.csv,results.csv,,3,,Nokia revenue EUR 4.9 billion Q1 2024.,0,40,rules,,,"
        "2024-07-01T06:00:00Z,n2",
        "Sony,Sony,FY 2023,revenue,13020768000000,JPY,currency,true,¥13.02 trillion,rep-Sony,"
        "2024-06-15T06:00:00Z,extracted,"
        "api,,,,,"
        "Sony revenue ¥13.02 trillion FY 2023.,0,40,rules,,,2024-06-15T06:00:00Z,s1",
        "Sony,Sony,FY 2024,revenue,12957000000000,JPY,currency,true,¥12.957 trillion,rep-Sony,"
        "2024-07-01T06:00:00Z,extracted,"
        "api,,,,,"
        "Sony revenue ¥12.957 trillion FY 2024.,0,40,rules,,,2024-07-01T06:00:00Z,s2",
        "XYZ,XYZ,Q1 2024,earnings per share,0.45,USD,currency_per_share,true,$0.45,rep-XYZ,"
        "2024-07-01T06:00:00Z,extracted,api,,,,,"
        "XYZ earnings per share $0.45 Q1 2024.,0,40,rules,,,2024-07-01T06:00:00Z,x3",
        "XYZ,XYZ,Q1 2024,gross margin,42.1,,percent,true,42.1%,rep-XYZ,"
        "2024-07-01T06:00:00Z,extracted,api,,,,,"
        "XYZ gross margin 42.1% Q1 2024.,0,40,rules,,,2024-07-01T06:00:00Z,x5",
        "XYZ,XYZ,Q1 2024,net income,5300000,USD,currency,true,$5.3 million,rep-XYZ,"
        "2024-07-01T06:00:00Z,extracted,api,,,,,"
        "XYZ net income $5.3 million Q1 2024.,0,40,rules,,,2024-07-01T06:00:00Z,x1",
        "XYZ,XYZ,Q2 2024,earnings per share,-0.1,USD,currency_per_share,true,'-$0.10,rep-XYZ,"
        "2024-07-01T06:00:00Z,extracted,"
        "api,,,,,"
        "XYZ earnings per share -$0.10 Q2 2024.,0,40,rules,,,2024-07-01T06:00:00Z,x4",
        "XYZ,XYZ,Q2 2024,gross margin,39.8,,percent,true,39.8%,rep-XYZ,"
        "2024-07-01T06:00:00Z,extracted,api,,,,,"
        "XYZ gross margin 39.8% Q2 2024.,0,40,rules,,,2024-07-01T06:00:00Z,x6",
        "XYZ,XYZ,Q2 2024,net income,-1200000,USD,currency,true,$1.2 million,rep-XYZ,"
        "2024-07-01T06:00:00Z,extracted,api,,,,,"
        "XYZ net income $1.2 million Q2 2024.,0,40,rules,,,2024-07-01T06:00:00Z,x2",
    ]
    assert lines(folder, "summary_by_company_period.csv") == [
        "company,period,revenue,revenue currency,net income,net income currency,"
        "earnings per share,earnings per share currency,gross margin (%),conflicts",
        "Acme,Q4 FY2024,250000000,GBP,,,,,,",
        "Nokia,Q4 2023,5100000000,EUR,,,,,,",
        "Nokia,Q1 2024,4900000000,EUR,,,,,,",
        "Sony,FY 2023,13020768000000,JPY,,,,,,",
        "Sony,FY 2024,12957000000000,JPY,,,,,,",
        "XYZ,Q1 2024,,,5300000,USD,0.45,USD,42.1,",
        "XYZ,Q2 2024,,,-1200000,USD,-0.1,USD,39.8,",
    ]
    assert lines(folder, "metric_stats.csv") == [
        "metric,unit,currency,count,companies,min,median,max,latest_period",
        "earnings per share,currency_per_share,USD,2,1,-0.1,0.175,0.45,Q2 2024",
        "gross margin,percent,,2,1,39.8,40.95,42.1,Q2 2024",
        "net income,currency,USD,2,1,-1200000,2050000,5300000,Q2 2024",
        "revenue,currency,EUR,2,1,4900000000,5000000000,5100000000,Q1 2024",
        "revenue,currency,GBP,1,1,250000000,250000000,250000000,Q4 FY2024",
        "revenue,currency,JPY,2,1,12957000000000,12988884000000,13020768000000,FY 2024",
    ]
    assert lines(folder, "period_over_period.csv") == [
        "company,metric,unit,currency,comparison,previous_period,period,previous_value,value,"
        "change,change_pct",
        "Nokia,revenue,currency,EUR,sequential,Q4 2023,Q1 2024,5100000000,4900000000,"
        "-200000000,-3.92",
        "Sony,revenue,currency,JPY,year_over_year,FY 2023,FY 2024,13020768000000,12957000000000,"
        "-63768000000,-0.49",
        # a profit turning into a loss has no percent
        "XYZ,earnings per share,currency_per_share,USD,sequential,Q1 2024,Q2 2024,0.45,-0.1,-0.55,",
        "XYZ,gross margin,percent,,sequential,Q1 2024,Q2 2024,42.1,39.8,-2.3,-5.46",
        "XYZ,net income,currency,USD,sequential,Q1 2024,Q2 2024,5300000,-1200000,-6500000,",
    ]

    report = json.loads((folder / "run_report.json").read_text(encoding="utf-8"))
    assert report["export_date"] == DAY
    assert report["generated_at"] == "2024-07-02T03:00:00Z"
    assert report["queue_drained"] is True
    assert report["filters"] == {
        "since": None,
        "until": None,
        "company": None,
        "without_fallback": False,
    }
    assert report["covers"]["facts"] == 11
    assert report["covers"]["companies"] == ["Acme", "Nokia", "Sony", "XYZ"]
    assert report["covers"]["first_extracted_at"] == "2024-06-15T06:00:00Z"
    assert report["pipeline"] == {
        "reports": {"queued": 1, "processing": 0, "done": 4, "failed": 1, "dead": 1, "received": 7},
        "facts_stored": 11,
        "model_calls": 3,
        "prompt_tokens": 1510,
        "completion_tokens": 251,
        "cached_tokens": 100,
        "cache_hits": 7,
        "estimated_cost_usd": 0.00225,
        "calls_without_cost": 1,
    }

    charts = sorted(p.name for p in folder.glob("chart-*.png"))
    assert charts == [
        "chart-earnings-per-share-usd-currency-per-share-quarter.png",
        "chart-gross-margin-percent-quarter.png",
        "chart-net-income-usd-quarter.png",
        "chart-revenue-eur-quarter.png",
        "chart-revenue-jpy-year.png",
    ]
    for name in charts:
        assert (folder / name).read_bytes().startswith(b"\x89PNG")
    page = (folder / "index.html").read_text(encoding="utf-8")
    for name in charts:
        assert f'<img src="{name}"' in page
    for name in (
        "summary.xlsx",
        "facts.csv",
        "summary_by_company_period.csv",
        "metric_stats.csv",
        "period_over_period.csv",
        "run_report.json",
    ):
        assert f'<a href="{name}">' in page
    assert "summary.xlsx" in report["files"]

    last = mongo_client[settings.mongo_db].runs.find_one({"_id": "last_export"})
    assert last["path"] == str(folder) and last["facts"] == 11 and last["queue_drained"] is True


def test_filters_are_applied_in_the_query(
    mongo_client: Any, settings: Settings, tmp_path: Path, restore_logging: None
) -> None:
    seed(mongo_client, settings, FACTS)
    out = tmp_path / "elsewhere"
    result = CliRunner().invoke(
        __import__("finpipe.cli", fromlist=["cli"]).cli,
        [
            "export",
            "--out",
            str(out),
            "--company",
            "sony",
            "--since",
            "2024-07-01",
            "--until",
            "2024-07-01",
        ],
        env=cli_env(settings),
    )
    assert result.exit_code == 0, result.output
    folder = Path(result.stdout.strip().splitlines()[-1])
    assert folder.parent == out
    assert [ln.split(",")[:5] for ln in lines(folder, "facts.csv")[1:]] == [
        ["Sony", "Sony", "FY 2024", "revenue", "12957000000000"]
    ]
    assert len(lines(folder, "period_over_period.csv")) == 1  # FY 2023 was filtered out
    report = json.loads((folder / "run_report.json").read_text())
    assert report["filters"] == {
        "since": "2024-07-01",
        "until": "2024-07-01",
        "company": "sony",
        "without_fallback": False,
    }
    assert report["queue_drained"] is None


def test_without_fallback_leaves_out_the_facts_the_rules_gave_for_the_model(
    mongo_client: Any, settings: Settings, restore_logging: None
) -> None:
    from finpipe.cli import cli

    by_model = {**fact("m1", "Quill", "revenue", "7000000", "USD", "Q2 2024", "$7 million")}
    by_model["extractor"] = "openai"
    fallback = {**fact("f1", "Quill", "net income", "900000", "USD", "Q2 2024", "$0.9 million")}
    fallback["extractor"] = "rules-fallback"
    seed(mongo_client, settings, [by_model, fallback])

    every = CliRunner().invoke(cli, ["export"], env=cli_env(settings))
    assert every.exit_code == 0, every.output
    folder = Path(every.stdout.strip().splitlines()[-1])
    assert [ln.split(",")[3] for ln in lines(folder, "facts.csv")[1:]] == ["net income", "revenue"]

    result = CliRunner().invoke(cli, ["export", "--without-fallback"], env=cli_env(settings))
    assert result.exit_code == 0, result.output
    folder = Path(result.stdout.strip().splitlines()[-1])
    assert [ln.split(",")[3] for ln in lines(folder, "facts.csv")[1:]] == ["revenue"]
    assert "net income" not in (folder / "summary_by_company_period.csv").read_text()
    report = json.loads((folder / "run_report.json").read_text())
    assert report["filters"]["without_fallback"] is True
    assert report["covers"]["facts"] == 1


def test_run_report_counts_the_amounts_the_rules_left_unassigned(settings: Settings) -> None:
    from schemas.message import Provenance, ReportMessage, SubmitReport
    from worker.extract import RulesExtractor
    from worker.pipeline import Pipeline

    def report(text: str) -> ReportMessage:
        return ReportMessage.build(SubmitReport(raw_text=text), Provenance(channel="api"))

    texts = [
        "Company XYZ reported a net income of $5.3 million for Q1 2024.",  # nothing left
        # a level and a change: the change is an amount the rules store as no fact
        "Northwind reported a net income of $4.1 million for Q2 2024. Its services revenue grew "
        "by $6.1 million.",
        "Quill said its services revenue grew by $6.1 million and product revenue grew by "
        "$2.0 million.",  # no fact at all, two amounts left
    ]
    store = MongoStore.from_settings(settings)
    try:
        outcomes = Pipeline(RulesExtractor(), store, clock=lambda: T1).process(
            [report(t) for t in texts]
        )
    finally:
        store.close()
    assert [o.facts for o in outcomes.values()] == [1, 1, 0]

    report_json = json.loads((run_export(settings, now=NOW) / "run_report.json").read_text())
    assert report_json["unassigned_amounts"] == {"total": 3, "reports_with_any": 2}
    assert report_json["pipeline"]["reports"]["done"] == 3

    # one company: the reports its facts come from
    folder = run_export(settings, now=NOW, company="Northwind")
    assert json.loads((folder / "run_report.json").read_text())["unassigned_amounts"] == {
        "total": 1,
        "reports_with_any": 1,
    }
    # a window after the reports were processed covers none of them
    folder = run_export(settings, now=NOW, since=date(2024, 7, 2))
    assert json.loads((folder / "run_report.json").read_text())["unassigned_amounts"] == {
        "total": 0,
        "reports_with_any": 0,
    }


def test_empty_database_gives_headers_only_and_a_clear_log_line(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        folder = run_export(settings, now=NOW)
    assert lines(folder, "facts.csv") == [
        "company,company_canonical,period,metric,value,currency,unit,metric_known,value_text,"
        "report_id,report_date,report_date_source,source,"
        "file_name,page,row,line,snippet,snippet_start,snippet_end,extractor,model,"
        "prompt_version,extracted_at,fact_id"
    ]
    assert lines(folder, "summary_by_company_period.csv") == ["company,period,conflicts"]
    assert len(lines(folder, "conflicts.csv")) == 1
    assert lines(folder, "metric_stats.csv") == [
        "metric,unit,currency,count,companies,min,median,max,latest_period"
    ]
    assert len(lines(folder, "period_over_period.csv")) == 1
    assert not list(folder.glob("*.png"))
    assert "No facts matched" in (folder / "index.html").read_text()
    report = json.loads((folder / "run_report.json").read_text())
    assert report["covers"]["facts"] == 0
    assert report["unassigned_amounts"] == {"total": 0, "reports_with_any": 0}
    assert report["pipeline"]["model_calls"] == 0 and report["pipeline"]["cache_hits"] == 0
    assert report["pipeline"]["estimated_cost_usd"] == 0  # no model call, no cost
    assert any(
        r.levelno == logging.WARNING and "no facts matched" in r.getMessage()
        for r in caplog.records
    )


# -- what make demo stores: year-over-year changes, one name per company ------------------------
DEMO = [
    fact("ac23", "Acme Corp", "revenue", "10100000", "USD", "Q2 2023", "$10.1 million"),
    fact("ac24", "Acme Corp", "revenue", "12400000", "USD", "Q2 2024", "$12.4 million"),
    fact("nw23", "Northwind Robotics", "net income", "-1300000", "USD", "Q2 2023", "$1.3 million"),
    fact("nw24", "Northwind Robotics", "net income", "4100000", "USD", "Q2 2024", "$4.1 million"),
    fact("or23", "Orion Outdoor Gear", "revenue", "66000000", "USD", "Q3 2023", "$66.0 million"),
    fact("or24", "Orion Outdoor Gear", "revenue", "73400000", "USD", "Q3 2024", "$73.4 million"),
    fact("on23", "Orion Outdoor Gear", "net income", "6100000", "USD", "Q3 2023", "$6.1 million"),
    fact(
        "on24", "Orion Outdoor Gear plc", "net income", "8900000", "USD", "Q3 2024", "$8.9 million"
    ),
]


def test_year_over_year_changes_and_one_name_per_company(
    mongo_client: Any, settings: Settings
) -> None:
    seed(mongo_client, settings, DEMO)
    folder = run_export(settings, now=NOW)
    assert lines(folder, "period_over_period.csv")[1:] == [
        "Acme Corp,revenue,currency,USD,year_over_year,Q2 2023,Q2 2024,10100000,12400000,"
        "2300000,22.77",
        "Northwind Robotics,net income,currency,USD,year_over_year,Q2 2023,Q2 2024,-1300000,"
        "4100000,5400000,",
        "Orion Outdoor Gear,net income,currency,USD,year_over_year,Q3 2023,Q3 2024,6100000,"
        "8900000,2800000,45.9",
        "Orion Outdoor Gear,revenue,currency,USD,year_over_year,Q3 2023,Q3 2024,66000000,"
        "73400000,7400000,11.21",
    ]
    facts = [ln.split(",")[:3] for ln in lines(folder, "facts.csv")[1:]]
    assert [f for f in facts if f[0].startswith("Orion")] == [
        ["Orion Outdoor Gear", "Orion Outdoor Gear", "Q3 2023"],
        ["Orion Outdoor Gear", "Orion Outdoor Gear", "Q3 2023"],
        ["Orion Outdoor Gear plc", "Orion Outdoor Gear", "Q3 2024"],  # kept as written
        ["Orion Outdoor Gear", "Orion Outdoor Gear", "Q3 2024"],
    ]
    for name in ("summary_by_company_period.csv", "metric_stats.csv", "period_over_period.csv"):
        assert "plc" not in (folder / name).read_text(encoding="utf-8"), name
    assert lines(folder, "metric_stats.csv")[1] == (
        "net income,currency,USD,4,2,-1300000,5100000,8900000,Q3 2024"  # two companies, not 3
    )
    report = json.loads((folder / "run_report.json").read_text(encoding="utf-8"))
    assert report["covers"]["companies"] == [
        "Acme Corp",
        "Northwind Robotics",
        "Orion Outdoor Gear",
    ]
    assert report["covers"]["merged_names"] == {
        "Orion Outdoor Gear": ["Orion Outdoor Gear", "Orion Outdoor Gear plc"]
    }
    charts = sorted(p.name for p in folder.glob("chart-*.png"))
    assert charts == ["chart-net-income-usd-quarter.png", "chart-revenue-usd-quarter.png"]
    page = (folder / "index.html").read_text(encoding="utf-8")
    assert "Acme Corp, Northwind Robotics, Orion Outdoor Gear</td>" in page
    assert "plc" not in page
    csvs = {
        name: (folder / name).read_text(encoding="utf-8")
        for name in report["files"]
        if name.endswith(".csv")
    }
    assert len(csvs) == 5
    assert_workbook_equals_csvs((folder / "summary.xlsx").read_bytes(), csvs)


def test_company_filters_match_every_written_form_and_the_aliases_file(
    mongo_client: Any, settings: Settings, tmp_path: Path, restore_logging: None
) -> None:
    seed(mongo_client, settings, DEMO)
    from finpipe.cli import cli

    aliases = tmp_path / "aliases.yaml"
    aliases.write_text("Orion: Orion Outdoor Gear\n", encoding="utf-8")
    env = {**cli_env(settings), "FINPIPE_COMPANY_ALIASES": str(aliases)}

    result = CliRunner().invoke(cli, ["export", "--company", "ORION OUTDOOR GEAR PLC"], env=env)
    assert result.exit_code == 0, result.output
    folder = Path(result.stdout.strip().splitlines()[-1])
    assert {ln.split(",")[0] for ln in lines(folder, "facts.csv")[1:]} == {
        "Orion Outdoor Gear",
        "Orion Outdoor Gear plc",
    }
    assert len(lines(folder, "facts.csv")) == 5
    by_alias = CliRunner().invoke(cli, ["export", "--company", "orion"], env=env)
    assert by_alias.exit_code == 0, by_alias.output
    folder = Path(by_alias.stdout.strip().splitlines()[-1])
    assert len(lines(folder, "facts.csv")) == 5  # the alias names the same company
    assert json.loads((folder / "run_report.json").read_text())["filters"]["company"] == "orion"
    without = CliRunner().invoke(cli, ["export", "--company", "orion"], env=cli_env(settings))
    assert without.exit_code == 0, without.output
    folder = Path(without.stdout.strip().splitlines()[-1])
    assert len(lines(folder, "facts.csv")) == 1  # "Orion" alone is no stored company

    found = CliRunner().invoke(
        cli,
        [
            *("facts", "--company", "orion", "--metric", "Net Income"),
            *("--period", "q3  2024", "--format", "csv"),
        ],
        env=env,
    )
    assert found.exit_code == 0, found.output
    assert found.stdout.splitlines() == [
        "company,company_canonical,period,metric,value,currency,unit,value_text,report_id,"
        "report_date",
        "Orion Outdoor Gear plc,Orion Outdoor Gear,Q3 2024,net income,8900000,USD,currency,"
        "$8.9 million,rep-Orion Outdoor Gear plc,",
    ]
    listed = CliRunner().invoke(cli, ["companies"], env=env)
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.splitlines() == [
        "company             facts  written as",
        "Acme Corp               2  Acme Corp (2)",
        "Northwind Robotics      2  Northwind Robotics (2)",
        "Orion Outdoor Gear      4  Orion Outdoor Gear (3), Orion Outdoor Gear plc (1)",
    ]


def test_a_reader_during_a_rewrite_sees_the_old_or_the_new_file(
    mongo_client: Any, settings: Settings
) -> None:
    db = seed(mongo_client, settings, FACTS)
    folder = run_export(settings, now=NOW)
    old = (folder / "facts.csv").read_bytes()
    big = [  # the same figure from 3000 reports: a large facts.csv, small summaries
        fact(
            f"b{i:05d}",
            "Bulk",
            "revenue",
            "1000",
            "USD",
            "Q1 2024",
            "$1000",
            snippet="padding " * 40,
        )
        for i in range(3000)
    ]
    db.financial_data.insert_many(big)
    run_export(settings, now=NOW)
    new = (folder / "facts.csv").read_bytes()
    assert len(new) > 10 * len(old)

    seen: set[bytes] = set()
    reads = 0
    stop = threading.Event()

    def reader() -> None:
        nonlocal reads
        while not stop.is_set():
            for path in (folder / "facts.csv", settings.export_dir / "latest" / "facts.csv"):
                seen.add(path.read_bytes())
                reads += 1

    t = threading.Thread(target=reader)
    t.start()
    try:
        for _ in range(2):
            db.financial_data.delete_many({"company": "Bulk"})
            run_export(settings, now=NOW)
            db.financial_data.insert_many(big)
            run_export(settings, now=NOW)
    finally:
        stop.set()
        t.join(timeout=30)
    assert reads > 10
    assert seen <= {old, new}, "a reader saw a partial facts.csv"
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_status_json_reports_services_queues_reports_and_runs(
    mongo_client: Any, settings: Settings, restore_logging: None
) -> None:
    seed_pipeline(seed(mongo_client, settings, FACTS))
    declare_and_publish(settings, 2)
    run_export(settings, now=NOW)

    result = CliRunner().invoke(
        __import__("finpipe.cli", fromlist=["cli"]).cli,
        ["status", "--json"],
        env=cli_env(settings),
    )
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["services"]["rabbitmq"]["reachable"] is True
    assert info["services"]["mongodb"]["reachable"] is True
    assert info["queue"] == {"name": settings.queue, "exists": True, "messages": 2, "consumers": 0}
    assert info["dead_letters"] == {
        "name": f"{settings.queue}.dead",
        "exists": True,
        "messages": 0,
        "consumers": 0,
    }
    assert info["reports"] == {
        "queued": 1,
        "processing": 0,
        "done": 4,
        "failed": 1,
        "dead": 1,
        "received": 7,
    }
    assert info["facts_stored"] == 11
    assert info["last_sweep"] is None  # no sweep ran
    assert info["last_export"]["at"] == "2024-07-02T03:00:00Z"
    assert info["last_export"]["path"] == str(settings.export_dir / DAY)

    text = CliRunner().invoke(
        __import__("finpipe.cli", fromlist=["cli"]).cli, ["status"], env=cli_env(settings)
    )
    assert text.exit_code == 0
    assert f"queue         {settings.queue}: 2 waiting, 0 consumer(s)" in text.stdout
    assert "reports       7 received: queued 1, processing 0, done 4, failed 1, dead 1" in (
        text.stdout
    )


def test_status_says_when_the_broker_is_unreachable(
    settings: Settings, restore_logging: None
) -> None:
    env = {**cli_env(settings), "FINPIPE_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/%2F"}
    result = CliRunner().invoke(
        __import__("finpipe.cli", fromlist=["cli"]).cli, ["status", "--json"], env=env
    )
    assert result.exit_code == 1
    info = json.loads(result.stdout)
    assert info["services"]["rabbitmq"]["reachable"] is False
    assert info["services"]["mongodb"]["reachable"] is True
    assert info["queue"] is None


def test_status_shows_the_sweep_that_finpipe_schedule_ran(
    mongo_client: Any, settings: Settings, tmp_path: Path
) -> None:
    settings.inbox.mkdir(parents=True, exist_ok=True)
    (settings.inbox / "q2.txt").write_text(
        "Company XYZ reported a net income of $5.3 million for Q1 2024.", encoding="utf-8"
    )
    runs = mongo_client[settings.mongo_db].runs
    before = datetime.now(UTC).replace(microsecond=0)
    with open(tmp_path / "schedule.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "finpipe", "schedule", "--run-now"],
            env=settings_env(settings.model_copy(update={"export_wait_s": 0.0})),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(lambda: runs.find_one({"_id": "last_export"}), 60, "the nightly jobs")
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, (tmp_path / "schedule.log").read_text()

    result = finpipe_cli(settings, "status", "--json", check=True)
    sweep = json.loads(result.stdout)["last_sweep"]
    at = datetime.fromisoformat(sweep.pop("at").replace("Z", "+00:00"))
    assert before <= at <= datetime.now(UTC)
    assert sweep == {"files": 1, "reports": 1, "failed": 0, "left": 0}
    text = finpipe_cli(settings, "status", check=True).stdout
    assert f"  last sweep    {iso_utc(at)} 1\n" in text


def declare_and_publish(settings: Settings, n: int) -> None:
    topo = Topology(settings.queue, delivery_limit=settings.delivery_limit)
    conn = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        ch = conn.channel()
        ch.exchange_declare(topo.dlx, "direct", durable=True)
        for spec in (topo.work_spec(), topo.dead_spec()):
            ch.queue_declare(spec.name, durable=True, arguments=spec.arguments)
        ch.queue_bind(topo.dead_queue, topo.dlx, routing_key=topo.dead_queue)
        for i in range(n):
            ch.basic_publish(
                "", settings.queue, f"m{i}".encode(), pika.BasicProperties(delivery_mode=2)
            )
    finally:
        conn.close()


def test_wait_for_drain_sees_the_work_queue_empty_or_times_out(settings: Settings) -> None:
    assert wait_for_drain(settings, 0)  # no queue yet: nothing to wait for
    declare_and_publish(settings, 1)
    assert not wait_for_drain(settings, 0.6, poll_s=0.2)
    conn = pika.BlockingConnection(pika.URLParameters(settings.amqp_url))
    try:
        conn.channel().queue_purge(settings.queue)
    finally:
        conn.close()
    assert wait_for_drain(settings, 5, poll_s=0.2)


# -- the page in a real browser -----------------------------------------------------------------
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

_CHECK_SCRIPT = """
<script>
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; });
  var m = document.createElement("div");
  m.id = "chart-check";
  m.textContent = "charts " + ok.length + "/" + imgs.length + " loaded, widths " +
    ok.map(function (i) { return i.naturalWidth; }).join(" ");
  document.body.appendChild(m);
});
</script>
"""


def chromium(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    assert os.path.exists(CHROMIUM), "Chromium is missing: apt-get install -y chromium"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--allow-file-access-from-files",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1200,2000",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)


def test_index_html_shows_the_charts_in_headless_chromium(
    mongo_client: Any, settings: Settings, tmp_path: Path
) -> None:
    seed(mongo_client, settings, FACTS)
    folder = run_export(settings, now=NOW)
    n_charts = len(list(folder.glob("chart-*.png")))
    assert n_charts == 5

    # a copy of the page beside it, with a script that reports which images loaded
    page = (folder / "index.html").read_text(encoding="utf-8")
    probe = folder / "_probe.html"
    probe.write_text(page.replace("</body>", _CHECK_SCRIPT + "</body>"), encoding="utf-8")
    try:
        dom = chromium(["--virtual-time-budget=5000", "--dump-dom", probe.as_uri()], tmp_path)
    finally:
        probe.unlink()
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert f"charts {n_charts}/{n_charts} loaded, widths 800 800 800 800 800" in dom.stdout
    # the largest year-over-year moves, above the charts: Sony's FY revenue is the only one
    moves = dom.stdout[dom.stdout.index('id="largest-moves"') : dom.stdout.index("<h2>Charts")]
    assert "Largest year-over-year moves" in moves
    assert moves.count("<tr>") == 2 and "<td>Sony</td>" in moves and "-0.49 %" in moves

    # and the real page, as a person sees it: the charts' lines are drawn on the screenshot
    shot = tmp_path / "index.png"
    res = chromium([f"--screenshot={shot}", (folder / "index.html").as_uri()], tmp_path)
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    from matplotlib.image import imread

    pixels = imread(shot)[:, :, :3]
    # matplotlib's first line colour, #1f77b4
    blue = (
        (abs(pixels[:, :, 0] - 0x1F / 255) < 0.06)
        & (abs(pixels[:, :, 1] - 0x77 / 255) < 0.06)
        & (abs(pixels[:, :, 2] - 0xB4 / 255) < 0.06)
    )
    assert blue.sum() > 2000, f"only {blue.sum()} chart-line pixels on the rendered page"


def test_export_date_follows_the_configured_time_zone(settings: Settings) -> None:
    tokyo = settings.model_copy(update={"timezone": "Asia/Tokyo"})
    folder = run_export(tokyo, now=datetime(2024, 7, 1, 20, 0, tzinfo=UTC))
    assert folder.name == date(2024, 7, 2).isoformat()


def test_scheduled_export_waits_for_the_queue_and_says_so(
    mongo_client: Any, settings: Settings
) -> None:
    seed(mongo_client, settings, FACTS)
    declare_and_publish(settings, 1)
    line = export_after_drain(settings.model_copy(update={"export_wait_s": 0.0}))
    assert line.endswith(f"(queue drained: no; outstanding: 1 message(s) in {settings.queue})")
    report = json.loads((settings.export_dir / "latest" / "run_report.json").read_text())
    assert report["queue_drained"] is False and report["covers"]["facts"] == 11
    assert report["filters"]["without_fallback"] is False  # the nightly export keeps them all
