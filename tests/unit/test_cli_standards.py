"""``finpipe extract`` and ``finpipe normalize`` through click, without any service."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from finpipe import cmd_standards

SEED = "Company XYZ reported a net income of $5.3 million for Q1 2024."


@pytest.fixture
def cli() -> click.Group:
    group = click.Group("finpipe")
    cmd_standards.register(group)
    return group


def test_seed_example_end_to_end_through_extract(cli: click.Group) -> None:
    result = CliRunner().invoke(cli, ["extract"], input=json.dumps({"id": "r1", "text": SEED}))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "id": "r1",
        "facts": [
            {
                "company": "XYZ",
                "metric": "net income",
                "value": 5300000,
                "currency": "USD",
                "unit": "currency",
                "quarter": "Q1 2024",
                "value_text": "$5.3 million",
            }
        ],
    }


def test_extract_reads_a_file_with_raw_text_and_reports_bad_lines(
    cli: click.Group, tmp_path: Path
) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text(
        json.dumps({"id": 1, "raw_text": "Sales were EUR 2.01 mn in H1 2024."})
        + "\nnot json\n"
        + json.dumps({"id": 3})
        + "\n"
        + json.dumps({"id": 4, "text": "No numbers here."})
        + "\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["extract", str(path)])
    assert result.exit_code == 1
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [x["id"] for x in lines] == [1, 4]
    assert lines[0]["facts"][0]["value"] == 2010000
    assert lines[1]["facts"] == []
    assert "line 2" in result.stderr
    assert "line 3" in result.stderr


def test_openai_provider_reports_when_it_is_unavailable(
    cli: click.Group, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing() -> object:
        raise click.ClickException("the openai provider is not available")

    monkeypatch.setattr(cmd_standards, "_openai_entry", missing)
    result = CliRunner().invoke(
        cli, ["extract", "--provider", "openai"], input=json.dumps({"id": 1, "text": SEED})
    )
    assert result.exit_code != 0
    assert "the openai provider is not available" in result.stderr


def test_normalize_json_prints_exact_values(cli: click.Group) -> None:
    result = CliRunner().invoke(
        cli, ["normalize", "--json", "$(9.8) million", "15.94p", "₹1,234 crore", "45.2%", "abc"]
    )
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[1] == (
        '{"input": "15.94p", "value": 0.1594, "currency": "GBP", "unit": "currency", "error": null}'
    )
    records = [json.loads(x) for x in lines]
    assert [r["value"] for r in records] == [-9800000, 0.1594, 12340000000, 45.2, None]
    assert records[2]["currency"] == "INR"
    assert records[3]["unit"] == "percent"
    assert records[4]["error"]


def test_normalize_reads_stdin_when_no_amount_is_given(cli: click.Group) -> None:
    result = CliRunner().invoke(cli, ["normalize"], input="EUR 2.01 mn\n$5.3 million\n")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "EUR 2.01 mn\t2010000\tEUR\tcurrency",
        "$5.3 million\t5300000\tUSD\tcurrency",
    ]


def test_dumps_writes_decimals_without_float_artefacts() -> None:
    assert cmd_standards.dumps({"v": Decimal("0.1") + Decimal("0.2")}) == '{"v": 0.3}'
    assert cmd_standards.dumps({"v": Decimal("5.300E+6")}) == '{"v": 5300000}'


def test_extract_applies_the_minimum_confidence_from_option_or_environment(
    cli: click.Group,
) -> None:
    line = json.dumps({"id": "r1", "text": "Net sales for 2019 were EUR 84.6 ."})
    default = CliRunner().invoke(cli, ["extract"], input=line)
    assert json.loads(default.output)["facts"] == []
    lowered = CliRunner().invoke(cli, ["extract", "--min-confidence", "0.1"], input=line)
    assert [f["value"] for f in json.loads(lowered.output)["facts"]] == [84.6]
    env = CliRunner().invoke(cli, ["extract"], input=line, env={"FINPIPE_MIN_CONFIDENCE": "0.1"})
    assert len(json.loads(env.output)["facts"]) == 1
    bad = CliRunner().invoke(cli, ["extract", "--min-confidence", "2"], input=line)
    assert bad.exit_code == 2
