"""One name per company: fold written company names to a canonical key and choose a display name.

Facts keep the company as the report wrote it ("Orion Outdoor Gear plc", "ORION OUTDOOR GEAR").
Exports and queries fold those names when they read them, so changing the folding or the aliases
file never needs a re-extraction:

- ``company_key`` folds case, accents, whitespace, punctuation, a leading "The" and the legal
  suffixes in ``LEGAL_SUFFIXES`` (``schemas/STANDARDS.md``, "Company names", says which).
- An aliases mapping (alias -> canonical, from ``FINPIPE_COMPANY_ALIASES``, read by
  ``load_aliases``) joins names that folding cannot know are one company ("Brightwater" /
  "Kestrel Labs").
- The display name of a company is its most frequent written form; an aliases file that names a
  canonical form pins it instead.

Everything here is pure except ``load_aliases``, which reads the one file it is given.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from export.cells import missing
from schemas.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

#: The environment variable that names the aliases file.
ALIASES_VARIABLE = "FINPIPE_COMPANY_ALIASES"

#: Legal-form words folded away at the end of a name (after case and punctuation folding, so
#: "S.A." is ``sa``, "A/S" is ``as`` and "Co., Ltd." is ``co ltd``). Several may follow one
#: another ("Holdings plc", "AG & Co. KGaA"). Multi-word forms are word tuples.
LEGAL_SUFFIXES: frozenset[tuple[str, ...]] = frozenset(
    {
        *(
            (word,)
            for word in (
                # English-speaking
                "inc",
                "incorporated",
                "corp",
                "corporation",
                "co",
                "company",
                "plc",
                "ltd",
                "limited",
                "llc",
                "llp",
                "lp",
                "pty",
                "pte",
                # groups
                "group",
                "holding",
                "holdings",
                # Nordic
                "oyj",
                "oy",
                "abp",
                "ab",
                "publ",
                "asa",
                "as",
                "aps",
                # continental Europe
                "ag",
                "se",
                "sa",
                "nv",
                "bv",
                "gmbh",
                "kgaa",
                "spa",
                "srl",
                "sas",
                "sarl",
            )
        ),
        ("public", "limited", "company"),
        ("a", "s"),  # "A/S", the slash being a separator
    }
)

#: Connectors left dangling once a suffix is removed ("Goldman & Co" -> "goldman").
_DANGLING = frozenset({"and"})
_LEADING = frozenset({"the"})
_DELETED = re.compile(r"[.'\u2019\u02bc]")  # "S.A." -> "sa", "Kestrel's" -> "kestrels"
_SEPARATOR = re.compile(r"[\W_]+")  # anything but letters and digits (any script) separates


def _collapse(name: str) -> str:
    """Trimmed and single-spaced: the written form as a display name."""
    return " ".join(name.split())


def company_key(name: str | None) -> str:
    """Fold a written company name to its key: ``"Orion Outdoor Gear plc"``, ``"ORION OUTDOOR
    GEAR"`` and ``"Orion  Outdoor-Gear"`` are all ``"orion outdoor gear"``. ``""`` for a missing
    or blank name. At least one word always remains, so a name that is itself a legal word
    ("Group") keeps it; digits stay as written ("3M Co" -> ``"3m"``, "7-Eleven" -> ``"7 eleven"``).
    """
    if not name:
        return ""
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", name))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
    text = text.replace("&", " and ")
    text = _DELETED.sub("", text)
    words = [w for w in _SEPARATOR.split(text) if w]
    if len(words) > 1 and words[0] in _LEADING:
        words = words[1:]
    stripped = True
    while stripped:
        stripped = False
        for size in (3, 2, 1):
            if len(words) > size and tuple(words[-size:]) in LEGAL_SUFFIXES:
                words = words[:-size]
                stripped = True
                break
        while stripped and len(words) > 1 and words[-1] in _DANGLING:
            words = words[:-1]
    return " ".join(words)


def _alias_keys(aliases: Mapping[str, str] | None) -> dict[str, str]:
    """Alias key -> canonical key."""
    return {
        company_key(alias): company_key(canonical)
        for alias, canonical in (aliases or {}).items()
        if company_key(alias)
    }


def _pinned_names(aliases: Mapping[str, str] | None) -> dict[str, str]:
    """Canonical key -> the canonical name as the aliases file writes it (first spelling wins)."""
    pinned: dict[str, str] = {}
    for canonical in (aliases or {}).values():
        key = company_key(canonical)
        if key:
            pinned.setdefault(key, _collapse(canonical))
    return pinned


def canonical_key(name: str | None, aliases: Mapping[str, str] | None = None) -> str:
    """The key a company is grouped by: the folded name, or its alias's canonical key."""
    key = company_key(name)
    return _alias_keys(aliases).get(key, key)


def _display_rank(form: str, count: int) -> tuple[int, int, bool, str]:
    """Most frequent first; then the shortest, mixed case before all capitals, code points."""
    return (-count, len(form), form.isupper(), form)


def display_names(
    counts: Mapping[str, int], aliases: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Written name -> the display name of its company, given how many facts use each written
    name. The display name is the company's most frequent written form (whitespace collapsed;
    ties: the shortest, then mixed case before all capitals, then code-point order), unless the
    aliases mapping names the canonical form. Blank names are left out."""
    alias_keys = _alias_keys(aliases)
    pinned = _pinned_names(aliases)
    key_of: dict[str, str] = {}
    forms: dict[str, Counter[str]] = defaultdict(Counter)
    for name, n in counts.items():
        key = company_key(name)
        if not key:
            continue
        key = alias_keys.get(key, key)
        key_of[name] = key
        forms[key][_collapse(name)] += n
    chosen = {
        key: pinned.get(key) or min(c.items(), key=lambda kv: _display_rank(*kv))[0]
        for key, c in forms.items()
    }
    return {name: chosen[key] for name, key in key_of.items()}


def add_company_canonical(
    facts: pd.DataFrame, aliases: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """A copy of ``facts`` with ``company_canonical`` (the display name of the company, chosen
    across these facts) right after the written ``company`` column, which is kept as it is.
    Facts without a company have no canonical name (``None``)."""
    written = [None if missing(c) else str(c) for c in facts["company"].tolist()]
    names = display_names(Counter(c for c in written if c is not None), aliases)
    import pandas as pd  # here, not at the top: the operator commands start without it (cells.py)

    out = facts.copy()
    column = pd.Series(
        [names.get(c) if c is not None else None for c in written], index=facts.index, dtype=object
    )
    if "company_canonical" in out.columns:
        out = out.drop(columns="company_canonical")
    out.insert(out.columns.get_loc("company") + 1, "company_canonical", column)
    return out


def company_as_canonical(facts: pd.DataFrame) -> pd.DataFrame:
    """A copy whose ``company`` is the canonical name (from ``add_company_canonical``), for the
    builders that group by company: summaries, statistics, charts."""
    return facts.assign(company=facts["company_canonical"])


@dataclass(frozen=True, slots=True)
class CompanyForms:
    """One company as ``finpipe companies`` lists it: its canonical (display) name, its key, how
    many facts name it, and each written form with its count, most frequent first."""

    name: str
    key: str
    facts: int
    forms: tuple[tuple[str, int], ...]


def company_forms(
    counts: Mapping[str, int], aliases: Mapping[str, str] | None = None
) -> list[CompanyForms]:
    """Canonical companies with the written forms merged into each, from fact counts per
    written name (as stored, not collapsed), sorted by name. Blank names are left out."""
    names = display_names(counts, aliases)
    alias_keys = _alias_keys(aliases)
    grouped: dict[str, list[tuple[str, int]]] = defaultdict(list)
    keys: dict[str, str] = {}
    for written, display in names.items():
        grouped[display].append((written, counts[written]))
        key = company_key(written)
        keys[display] = alias_keys.get(key, key)
    return [
        CompanyForms(
            name=display,
            key=keys[display],
            facts=sum(n for _, n in forms),
            forms=tuple(sorted(forms, key=lambda kv: (-kv[1], kv[0]))),
        )
        for display, forms in sorted(grouped.items(), key=lambda kv: (kv[0].casefold(), kv[0]))
    ]


def matching_names(
    query: str, written: Iterable[str], aliases: Mapping[str, str] | None = None
) -> list[str]:
    """The written names that are the same company as ``query`` (any written form, alias or
    canonical name), sorted: what a store query by company should ask for."""
    alias_keys = _alias_keys(aliases)
    wanted = company_key(query)
    wanted = alias_keys.get(wanted, wanted)
    if not wanted:
        return []
    found = set()
    for name in written:
        key = company_key(name)
        if key and alias_keys.get(key, key) == wanted:
            found.add(name)
    return sorted(found)


# -- the aliases file ---------------------------------------------------------------------------
class AliasesFileError(ConfigError):
    """The company aliases file cannot be read or has a bad entry; names the file, the line
    (1-based, when known) and the field (``alias`` or ``canonical``, when one is to blame)."""

    def __init__(
        self, path: Path | str, reason: str, *, line: int | None = None, field: str | None = None
    ) -> None:
        where = f"{ALIASES_VARIABLE} file {path}"
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f", field {field}"
        super().__init__(f"{where}: {reason}")
        self.path = str(path)
        self.line = line
        self.field = field
        self.reason = reason


_CSV_HEADER = ["alias", "canonical"]


def configured_aliases(path: Path | str | None) -> dict[str, str]:
    """The aliases of the file ``FINPIPE_COMPANY_ALIASES`` names (``load_aliases``), or none when
    it is unset."""
    return load_aliases(path) if path else {}


def load_aliases(path: Path | str) -> dict[str, str]:
    """Read the aliases file: YAML (``.yaml``/``.yml``, a mapping ``alias: canonical``) or CSV
    (``.csv``, rows ``alias,canonical``, an optional header row of those two words, ``#``
    comment lines). Returns alias -> canonical as written (whitespace collapsed). Raises
    ``AliasesFileError`` for an unreadable file, a syntax error, an empty or nameless field, an
    alias given two different canonical names, or a canonical name that is itself an alias of
    another company (name the final one)."""
    path = Path(path)
    suffix = path.suffix.casefold()
    if suffix not in (".yaml", ".yml", ".csv"):
        raise AliasesFileError(path, "unknown format; name it .yaml, .yml or .csv")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AliasesFileError(path, f"cannot read it: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise AliasesFileError(path, "is not UTF-8 text", line=line) from exc
    entries = _yaml_entries(path, text) if suffix != ".csv" else _csv_entries(path, text)
    return _checked(path, entries)


def _yaml_entries(path: Path, text: str) -> list[tuple[int, str, str]]:
    import yaml

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise AliasesFileError(path, f"not valid YAML: {reason}", line=line) from exc
    if root is None:
        return []
    if not isinstance(root, yaml.MappingNode):
        raise AliasesFileError(
            path,
            "expected a mapping of alias: canonical name",
            line=root.start_mark.line + 1,
        )
    entries = []
    for key_node, value_node in root.value:
        line = key_node.start_mark.line + 1
        for field, node in (("alias", key_node), ("canonical", value_node)):
            if not isinstance(node, yaml.ScalarNode):
                raise AliasesFileError(path, "expected a single name", line=line, field=field)
        entries.append((line, str(key_node.value), str(value_node.value)))
    return entries


def _csv_entries(path: Path, text: str) -> list[tuple[int, str, str]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    entries = []
    first = True
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row) or row[0].lstrip().startswith("#"):
                continue
            if first and [c.strip().casefold() for c in row] == _CSV_HEADER:
                first = False
                continue
            first = False
            if len(row) != 2:
                raise AliasesFileError(
                    path, f"expected 2 fields (alias,canonical), found {len(row)}", line=line
                )
            entries.append((line, row[0], row[1]))
    except csv.Error as exc:
        raise AliasesFileError(path, f"not valid CSV: {exc}", line=reader.line_num) from exc
    return entries


def _checked(path: Path, entries: list[tuple[int, str, str]]) -> dict[str, str]:
    aliases: dict[str, str] = {}
    target: dict[str, tuple[str, int]] = {}  # alias key -> (canonical key, line)
    for line, alias, canonical in entries:
        for field, name in (("alias", alias), ("canonical", canonical)):
            if not name.strip():
                raise AliasesFileError(path, "is empty", line=line, field=field)
            if not company_key(name):
                raise AliasesFileError(
                    path, f"{name!r} has no letters or digits", line=line, field=field
                )
        a, c = company_key(alias), company_key(canonical)
        if a in target and target[a][0] != c:
            raise AliasesFileError(
                path,
                f"{alias!r} is already an alias of another company (line {target[a][1]})",
                line=line,
                field="alias",
            )
        target[a] = (c, line)
        aliases[_collapse(alias)] = _collapse(canonical)
    for line, alias, canonical in entries:
        a, c = company_key(alias), company_key(canonical)
        if a != c and c in target and target[c][0] != c:
            raise AliasesFileError(
                path,
                f"{canonical!r} is itself an alias (line {target[c][1]}); "
                "give the final canonical name",
                line=line,
                field="canonical",
            )
    return aliases
