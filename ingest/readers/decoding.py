"""Bytes to text: UTF-8 (BOM stripped), UTF-16 with a BOM, else Windows-1252; decided per line
for files read line by line, so one bad byte cannot change the text of every other line. Pure."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass, field

from schemas.errors import UnreadableFile

SNIFF_BYTES = 8192
#: control bytes that never occur in text files (tab, newline, carriage return, form feed and
#: escape are allowed)
_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 12, 13, 27)) + b"\x7f"


def looks_binary(data: bytes) -> bool:
    """NUL bytes or many control bytes near the start: an image, archive or office file."""
    head = data[:SNIFF_BYTES]
    if not head:
        return False
    if b"\x00" in head:
        return True
    controls = sum(head.count(bytes([c])) for c in _CONTROL)
    return controls / len(head) > 0.05


def decode_text(data: bytes) -> tuple[str, str]:
    """Decode a text file: UTF-8 (BOM stripped), UTF-16 with a BOM, else Windows-1252.

    Returns ``(text, encoding)``. Raises :class:`UnreadableFile` for empty files, binary content
    and bytes that no supported encoding reads. Windows line endings are kept; readers handle them.
    """
    if not data.strip():
        raise UnreadableFile("file is empty")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise UnreadableFile(f"file has a UTF-16 mark but is not UTF-16: {exc}") from None
        return _check_text(text.lstrip("\ufeff"), "utf-16")
    if looks_binary(data):
        raise UnreadableFile(
            "file looks binary (NUL or control bytes), not text; check that the extension matches "
            "the content"
        )
    try:
        return _check_text(data.decode("utf-8-sig"), "utf-8")
    except UnicodeDecodeError as exc:
        utf8_error = exc
    try:
        return _check_text(data.decode("cp1252"), "cp1252")
    except UnicodeDecodeError:
        raise UnreadableFile(
            f"text is neither UTF-8 nor Windows-1252: invalid byte 0x{data[utf8_error.start]:02x} "
            f"at offset {utf8_error.start}; save the file as UTF-8"
        ) from None


def _check_text(text: str, encoding: str) -> tuple[str, str]:
    if not text.strip():
        raise UnreadableFile("file is empty")
    return text, encoding


@dataclass(frozen=True)
class Decoded:
    """A line-based file's text; ``bad_lines`` maps the number of each line that could not be
    decoded to the reason. Such a line's text holds U+FFFD for its bad bytes (so quotes and
    delimiters stay where they are): a reader rejects the record it belongs to."""

    text: str
    encoding: str
    bad_lines: dict[int, str] = field(default_factory=dict)

    def bad_between(self, first: int, last: int) -> tuple[int, str] | None:
        """The first bad line among lines ``first`` to ``last``, with its reason."""
        for line in range(first, last + 1):
            if line in self.bad_lines:
                return line, self.bad_lines[line]
        return None


def decode_lines(data: bytes) -> Decoded:
    """Decode a file that is read line by line (JSON Lines, CSV).

    A file that is UTF-8 throughout, or UTF-16 with a mark, is read whole. A file none of whose
    lines holds a UTF-8 character beyond ASCII but some of which are not UTF-8 is an older
    Windows file and is read as Windows-1252 (the encoding says so). Otherwise the file is
    UTF-8 with a few bad lines: each of those is listed with its reason (see :class:`Decoded`),
    and every other line keeps its UTF-8 text."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or not data.strip():
        text, encoding = decode_text(data)
        return Decoded(text, encoding)
    try:
        text, encoding = decode_text(data)
    except UnreadableFile:
        if looks_binary(data):
            raise
        text, encoding = "", ""
    if encoding == "utf-8":
        return Decoded(text, encoding)
    lines = data.split(b"\n")
    decoded: list[str | None] = []
    beyond_ascii = False
    for index, raw in enumerate(lines):
        try:
            line = raw.decode("utf-8-sig" if index == 0 else "utf-8")
        except UnicodeDecodeError:
            decoded.append(None)
            continue
        beyond_ascii = beyond_ascii or not line.isascii()
        decoded.append(line)
    if encoding == "cp1252" and not beyond_ascii:
        return Decoded(text, encoding)
    bad = {i + 1: bad_line_reason(lines[i]) for i, part in enumerate(decoded) if part is None}
    out = "\n".join(
        part if part is not None else raw.decode("utf-8", "replace")
        for part, raw in zip(decoded, lines, strict=True)
    )
    if len(bad) == len(lines):
        raise UnreadableFile(f"text is not UTF-8 nor Windows-1252: {bad[1]}")
    return Decoded(out, "utf-8", bad)


def bad_line_reason(raw: bytes) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return (
            f"line is not UTF-8 like the rest of the file: invalid byte 0x{raw[exc.start]:02x} "
            f"at byte {exc.start + 1} of the line; save the file as UTF-8"
        )
    return "line is not UTF-8 like the rest of the file; save the file as UTF-8"


def iter_lines(text: str, *, keepends: bool = False) -> Iterator[str]:
    """The lines of ``text`` split at ``\n`` one at a time, without a list of them all (a
    million-line file would hold each line twice)."""
    start = 0
    while True:
        end = text.find("\n", start)
        if end < 0:
            yield text[start:]
            return
        yield text[start : end + 1 if keepends else end]
        start = end + 1
