"""The project's own labelled set is well formed: the conventions the scorer relies on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.periods import is_period_label

DATA = Path(__file__).resolve().parents[1] / "data"
OWN = DATA / "rules_snippets.jsonl"
SETS = [OWN, DATA / "rules_fresh_snippets.jsonl"]
UNITS = {"currency", "currency_per_share", "percent"}


def _records(path: Path = OWN) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def test_own_set_has_at_least_sixty_snippets_each_with_a_kind() -> None:
    records = _records()
    assert len(records) >= 60
    assert all(r.get("kind") for r in records)
    assert len({r["id"] for r in records}) == len(records)
    assert len({r["text"] for r in records}) == len(records)


@pytest.mark.parametrize("path", SETS, ids=lambda p: p.name)
def test_every_labelled_fact_is_well_formed(path: Path) -> None:
    for r in _records(path):
        for f in r["facts"]:
            assert f["value_text"] in r["text"], r["id"]
            assert f["unit"] in UNITS, r["id"]
            assert (f["currency"] is None) == (f["unit"] == "percent"), r["id"]
            assert f["period"] is None or is_period_label(f["period"]), (r["id"], f["period"])
