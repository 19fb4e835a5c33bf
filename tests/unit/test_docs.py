"""The README and docs/ say what is there: every relative link resolves (file and heading), and
every command and option in the README's commands table exists in that command's ``--help``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from finpipe.cli import cli

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    in_code = False
    found: set[str] = set()
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            found.add(slug(line.lstrip("#")))
    return found


def relative_links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


def test_the_readme_is_a_front_page() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_slug_follows_github() -> None:
    assert slug(" Batch and flex modes") == "batch-and-flex-modes"
    assert slug("`finpipe extract`") == "finpipe-extract"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_relative_link_resolves(doc: Path) -> None:
    broken = []
    for target in relative_links(doc):
        file_part, _, anchor = target.partition("#")
        dest = (doc.parent / file_part).resolve() if file_part else doc
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor}")
    assert not broken, f"{doc.name}: {broken}"


def commands_table() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Commands", 1)[1].split("\n## ", 1)[0]
    return [
        cell
        for row in section.splitlines()
        if row.startswith("| `finpipe")
        for cell in re.findall(r"`(finpipe [^`]*)`", row.split(" | ")[0])
    ]


def test_the_table_names_the_commands() -> None:
    rows = commands_table()
    assert len(rows) >= 15
    assert any(r.startswith("finpipe dlq purge") for r in rows)


@pytest.mark.parametrize("row", commands_table())
def test_each_command_and_option_in_the_table_is_in_its_help(row: str) -> None:
    words = row.split()[1:]
    path = [w for w in words[:2] if re.fullmatch(r"[a-z]+", w)]
    if path[1:] and CliRunner().invoke(cli, [path[0], "--help"]).output.find(path[1]) < 0:
        path = path[:1]
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, f"finpipe {' '.join(path)} --help: {result.output}"
    for option in re.findall(r"--[a-z][a-z-]*", row):
        assert option in result.output, f"{row}: {option} not in `finpipe {' '.join(path)} --help`"
