"""JSON Lines (``.jsonl``, ``.ndjson``: one report per line) and ``.json`` (one object or an
array of objects). Pure.

Objects carry ``raw_text`` and the optional ``source``, ``company_hint`` and ``reported_at`` of
``/submit``; any other key travels as metadata (non-string values as compact JSON).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ingest.readers.base import (
    REPORT_FIELDS,
    ReadOptions,
    ReadResult,
    Reject,
    UnreadableFile,
    build_message,
    collect,
    excerpt_names,
    provenance,
)
from ingest.readers.decoding import decode_lines, decode_text
from ingest.readers.lines import Lines
from schemas.message import Provenance, ReportMessage


def read_jsonl(data: bytes, options: ReadOptions) -> ReadResult:
    return collect(iter_jsonl(data, options))


def iter_jsonl(data: bytes, options: ReadOptions) -> Iterator[ReportMessage | Reject]:
    """Each line's message or reject, in order, one at a time."""
    return iter_jsonl_lines(Lines.of(decode_lines(data)), options)


def iter_jsonl_lines(lines: Lines, options: ReadOptions) -> Iterator[ReportMessage | Reject]:
    """:func:`iter_jsonl` over decoded lines (from memory or read from the file as it goes)."""
    ends_with_newline, last_no = lines.ends_with_newline, lines.last
    for line_no, raw_line in enumerate(lines.open(), start=1):
        if line_no in lines.bad_lines:
            yield Reject(lines.bad_lines[line_no], line=line_no)
            continue
        line = raw_line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            if line_no == last_no and not ends_with_newline and _is_truncated(exc, line):
                reason = "last line is truncated (incomplete JSON at end of file); was the file "
                reason += "copied before it was completely written?"
            elif _is_truncated(exc, line):
                reason = "invalid JSON: the line ends before the object is closed (missing }?)"
            else:
                reason = f"invalid JSON: {exc.msg} at column {exc.colno}"
            yield Reject(reason, line=line_no)
            continue
        except RecursionError:
            yield Reject(NESTED_TOO_DEEP, line=line_no)
            continue
        try:
            yield _object_message(obj, provenance(options, line=line_no), options)
        except ValueError as exc:
            yield Reject(str(exc), line=line_no)


NESTED_TOO_DEEP = "invalid JSON: arrays or objects nested too deep to read"


def read_json(data: bytes, options: ReadOptions) -> ReadResult:
    text, _ = decode_text(data)
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnreadableFile(
            f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise UnreadableFile(NESTED_TOO_DEEP) from None
    if isinstance(doc, dict):
        try:
            return ReadResult(messages=[_object_message(doc, provenance(options), options)])
        except ValueError as exc:
            raise UnreadableFile(str(exc)) from None
    if not isinstance(doc, list):
        raise UnreadableFile(
            f"JSON holds {_kind(doc)}; expected an object with raw_text or an array of them"
        )
    result = ReadResult()
    for index, obj in enumerate(doc):
        try:
            prov = provenance(options, row=index + 1)
            result.messages.append(_object_message(obj, prov, options))
        except ValueError as exc:
            result.rejects.append(Reject(str(exc), row=index + 1))
    return result


def _object_message(obj: Any, prov: Provenance, options: ReadOptions) -> ReportMessage:
    if not isinstance(obj, dict):
        raise ValueError(f"expected an object with raw_text, got {_kind(obj)}")
    if "raw_text" not in obj:
        raise ValueError(f"object has no raw_text field (its keys: {excerpt_names(sorted(obj))})")
    fields = {k: obj[k] for k in ("raw_text", *REPORT_FIELDS) if obj.get(k) is not None}
    metadata = {
        str(k): v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
        for k, v in obj.items()
        if k not in fields and k != "raw_text" and v is not None
    }
    return build_message(fields, metadata, prov, options)


def _is_truncated(exc: json.JSONDecodeError, line: str) -> bool:
    """The parser ran off the end of the line (rather than meeting a wrong character)."""
    return exc.pos >= len(line) - 1 or exc.msg.startswith("Unterminated")


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"
