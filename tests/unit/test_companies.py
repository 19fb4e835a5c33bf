"""Company names: folding written forms, display names, aliases and the aliases file."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from export.companies import (
    AliasesFileError,
    CompanyForms,
    add_company_canonical,
    canonical_key,
    company_as_canonical,
    company_forms,
    company_key,
    display_names,
    load_aliases,
    matching_names,
)
from schemas.errors import ConfigError


@pytest.mark.parametrize(
    ("written", "key"),
    [
        # one company, many spellings
        ("Halvorsen Marine", "halvorsen marine"),
        ("Halvorsen Marine Oyj", "halvorsen marine"),
        ("Halvorsen Marine Corporation", "halvorsen marine"),
        ("HALVORSEN MARINE", "halvorsen marine"),
        ("  Halvorsen   Marine ", "halvorsen marine"),
        ("Halvorsen-Marine Oy", "halvorsen marine"),
        # legal suffixes, alone and stacked
        ("Orion Outdoor Gear plc", "orion outdoor gear"),
        ("Orion Outdoor Gear PLC", "orion outdoor gear"),
        ("Orion Outdoor Gear Public Limited Company", "orion outdoor gear"),
        ("Tamarind Foods, Inc.", "tamarind foods"),
        ("Tamarind Foods Incorporated", "tamarind foods"),
        ("Tamarind Foods Corp.", "tamarind foods"),
        ("Tamarind Foods Co., Ltd.", "tamarind foods"),
        ("Tamarind Foods Limited", "tamarind foods"),
        ("Tamarind Foods LLC", "tamarind foods"),
        ("Tamarind Foods L.P.", "tamarind foods"),
        ("Tamarind Holdings plc", "tamarind"),
        ("Tamarind Group", "tamarind"),
        ("Brekke Industri ASA", "brekke industri"),
        ("Brekke Industri AS", "brekke industri"),
        ("Brekke Industri A/S", "brekke industri"),
        ("Lindqvist AB (publ)", "lindqvist"),
        ("Vaskor AG", "vaskor"),
        ("Vaskor AG & Co. KGaA", "vaskor"),
        ("Vaskor SE", "vaskor"),
        ("Vaskor GmbH", "vaskor"),
        ("Moreau S.A.", "moreau"),
        ("Moreau SA", "moreau"),
        ("Dekker N.V.", "dekker"),
        ("Dekker B.V.", "dekker"),
        ("Ferraro S.p.A.", "ferraro"),
        ("The Quillon Company", "quillon"),
        ("Pellworth & Co.", "pellworth"),
        # punctuation, accents, ampersands
        ("Bjørn & Søn", "bjørn and søn"),
        ("Crème Végétale", "creme vegetale"),
        ("Creme Vegetale", "creme vegetale"),
        ("R&B Logistics", "r and b logistics"),
        ("R & B Logistics", "r and b logistics"),
        ("Marlow's Bakeries", "marlows bakeries"),
        ("Marlow’s Bakeries", "marlows bakeries"),
        # digits are kept as written
        ("4K Optics Inc.", "4k optics"),
        ("4K Optics", "4k optics"),
        ("9-Lives Pet Care", "9 lives pet care"),
        ("9 Lives Pet Care Ltd", "9 lives pet care"),
        ("21st Harbor Co", "21st harbor"),
        # names that are a legal word, or end in one twice, keep their last word
        ("Group", "group"),
        ("Holdings Ltd", "holdings"),
        ("SE", "se"),
        ("The Company", "company"),
        ("Co", "co"),
        # a suffix word inside a name is not a suffix
        ("Group Seven Metals", "group seven metals"),
        ("AB Nordfjell", "ab nordfjell"),
        # nothing to fold
        (None, ""),
        ("", ""),
        ("   ", ""),
        ("...", ""),
    ],
)
def test_written_forms_fold_to_one_key(written: str | None, key: str) -> None:
    assert company_key(written) == key


def test_different_companies_keep_different_keys() -> None:
    keys = {company_key(n) for n in ("Orion Outdoor Gear", "Orion Outdoor", "Orion Gear", "Orion")}
    assert len(keys) == 4


def test_display_name_is_the_most_frequent_written_form() -> None:
    counts = {"Halvorsen Marine Oyj": 5, "Halvorsen Marine": 2, "HALVORSEN MARINE": 1}
    assert set(display_names(counts).values()) == {"Halvorsen Marine Oyj"}


@pytest.mark.parametrize(
    ("counts", "display"),
    [
        ({"Orion Outdoor Gear": 2, "Orion Outdoor Gear plc": 2}, "Orion Outdoor Gear"),
        ({"NORDVIK": 3, "Nordvik": 3}, "Nordvik"),
        ({"nordvik": 3, "Nordvik": 3}, "Nordvik"),
        ({"Nordvik": 1, "Nordvik  ": 1, "NORDVIK": 1}, "Nordvik"),  # whitespace forms count as one
    ],
)
def test_ties_are_broken_the_same_way_every_time(counts: dict[str, int], display: str) -> None:
    assert set(display_names(counts).values()) == {display}
    assert set(display_names(dict(reversed(counts.items()))).values()) == {display}


def test_aliases_join_what_folding_cannot_and_pin_the_display_name() -> None:
    aliases = {"Kestrel Labs": "Brightwater"}
    counts = {"Kestrel Labs Inc.": 7, "Brightwater Inc.": 2, "Other Co": 1}
    names = display_names(counts, aliases)
    assert names == {
        "Kestrel Labs Inc.": "Brightwater",
        "Brightwater Inc.": "Brightwater",
        "Other Co": "Other Co",
    }
    assert canonical_key("KESTREL LABS", aliases) == "brightwater"
    assert canonical_key("Kestrel Labs") == "kestrel labs"


def test_facts_get_a_canonical_column_beside_the_written_one() -> None:
    facts = pd.DataFrame(
        {
            "company": pd.Series(
                ["Orion Outdoor Gear", "Orion Outdoor Gear plc", "Orion Outdoor Gear", None],
                dtype=object,
            ),
            "period": ["Q2 2024"] * 4,
            "value": [Decimal(1), Decimal(2), Decimal(3), Decimal(4)],
        }
    )
    out = add_company_canonical(facts)
    assert list(out.columns) == ["company", "company_canonical", "period", "value"]
    assert out["company"].tolist() == facts["company"].tolist()
    assert out["company_canonical"].tolist() == [
        "Orion Outdoor Gear",
        "Orion Outdoor Gear",
        "Orion Outdoor Gear",
        None,
    ]
    assert "company_canonical" not in facts.columns  # the input is left alone
    assert company_as_canonical(out)["company"].tolist() == out["company_canonical"].tolist()
    assert add_company_canonical(out).columns.tolist() == out.columns.tolist()  # idempotent


def test_an_empty_facts_table_gets_the_column_too() -> None:
    empty = pd.DataFrame({"company": pd.Series([], dtype=object), "value": []})
    assert add_company_canonical(empty).columns.tolist() == [
        "company",
        "company_canonical",
        "value",
    ]


def test_companies_listing_shows_what_was_merged() -> None:
    counts = {"Halvorsen Marine": 4, "HALVORSEN MARINE": 1, "Halvorsen Marine Oyj": 2, "Zeta": 1}
    assert company_forms(counts) == [
        CompanyForms(
            name="Halvorsen Marine",
            key="halvorsen marine",
            facts=7,
            forms=(("Halvorsen Marine", 4), ("Halvorsen Marine Oyj", 2), ("HALVORSEN MARINE", 1)),
        ),
        CompanyForms(name="Zeta", key="zeta", facts=1, forms=(("Zeta", 1),)),
    ]


def test_a_query_by_any_form_finds_every_written_form() -> None:
    written = ["Kestrel Labs Inc.", "Brightwater", "BRIGHTWATER INC", "Other Co"]
    aliases = {"Kestrel Labs": "Brightwater"}
    assert matching_names("brightwater", written, aliases) == [
        "BRIGHTWATER INC",
        "Brightwater",
        "Kestrel Labs Inc.",
    ]
    assert matching_names("Kestrel Labs", written) == ["Kestrel Labs Inc."]
    assert matching_names("  ", written) == []


# -- the aliases file ---------------------------------------------------------------------------
def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_aliases_from_yaml(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "aliases.yaml",
        "# names folding cannot join\nKestrel Labs: Brightwater\n'7 Seas': Seven Seas Shipping\n"
        "Yes: Affirm Corp\n",
    )
    assert load_aliases(path) == {
        "Kestrel Labs": "Brightwater",
        "7 Seas": "Seven Seas Shipping",
        "Yes": "Affirm Corp",  # names are text, never YAML booleans
    }


def test_aliases_from_csv_with_or_without_header(tmp_path: Path) -> None:
    with_header = write(
        tmp_path,
        "aliases.csv",
        "alias,canonical\n# joined by hand\nKestrel Labs,Brightwater\n\n"
        '"Pellworth, Marlow & Co",Pellworth\n',
    )
    without = write(tmp_path, "plain.CSV", "Kestrel Labs , Brightwater\n")
    assert load_aliases(with_header) == {
        "Kestrel Labs": "Brightwater",
        "Pellworth, Marlow & Co": "Pellworth",
    }
    assert load_aliases(without) == {"Kestrel Labs": "Brightwater"}


def test_an_empty_aliases_file_is_no_aliases(tmp_path: Path) -> None:
    assert load_aliases(write(tmp_path, "a.yml", "")) == {}
    assert load_aliases(write(tmp_path, "a.csv", "alias,canonical\n")) == {}


@pytest.mark.parametrize(
    ("name", "text", "line", "field", "reason"),
    [
        ("a.csv", "alias,canonical\nKestrel Labs\n", 2, None, "expected 2 fields"),
        ("a.csv", "Kestrel Labs,Brightwater,extra\n", 1, None, "found 3"),
        ("a.csv", "alias,canonical\nKestrel Labs,\n", 2, "canonical", "is empty"),
        ("a.csv", "alias,canonical\n ,Brightwater\n", 2, "alias", "is empty"),
        ("a.csv", "Kestrel Labs,---\n", 1, "canonical", "no letters or digits"),
        (
            "a.csv",
            "Kestrel Labs,Brightwater\nKestrel Labs Inc,Other\n",
            2,
            "alias",
            "already an alias",
        ),
        ("a.csv", "Kestrel,Brightwater\nBrightwater,Norland\n", 1, "canonical", "itself an alias"),
        ("a.yaml", "Kestrel Labs: Brightwater\nOther:\n", 2, "canonical", "is empty"),
        ("a.yaml", "Kestrel Labs: [Brightwater, X]\n", 1, "canonical", "single name"),
        ("a.yaml", "- Kestrel Labs\n- Brightwater\n", 1, None, "expected a mapping"),
        ("a.yaml", "Kestrel Labs: Brightwater\nOther: 'unclosed\n", 3, None, "not valid YAML"),
    ],
)
def test_a_bad_aliases_file_names_file_line_and_field(
    tmp_path: Path, name: str, text: str, line: int, field: str | None, reason: str
) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(AliasesFileError) as caught:
        load_aliases(path)
    err = caught.value
    assert isinstance(err, ConfigError)
    assert (err.path, err.line, err.field) == (str(path), line, field)
    assert reason in err.reason
    message = str(err)
    assert "FINPIPE_COMPANY_ALIASES" in message
    assert str(path) in message and f"line {line}" in message
    if field:
        assert f"field {field}" in message


def test_an_aliases_file_that_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(AliasesFileError, match="cannot read"):
        load_aliases(tmp_path / "missing.yaml")
    with pytest.raises(AliasesFileError, match="unknown format"):
        load_aliases(write(tmp_path, "aliases.txt", "a,b\n"))
    bad = tmp_path / "latin.csv"
    bad.write_bytes(b"alias,canonical\nM\xfcller,Mueller\n")
    with pytest.raises(AliasesFileError, match="line 2: is not UTF-8"):
        load_aliases(bad)
