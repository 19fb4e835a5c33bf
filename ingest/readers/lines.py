"""A line-based file (CSV, JSON Lines) as a source of decoded lines, so that it can be read in one
pass over its bytes without holding them: ``LineScanner`` learns in a first pass what decoding
the lines need (the rules of ``decoding.decode_lines``), ``Lines`` hands them out decoded in a
second. Pure: the caller supplies the raw lines (from bytes in memory or from the file).
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from ingest.readers.decoding import SNIFF_BYTES, Decoded, bad_line_reason, iter_lines, looks_binary
from schemas.errors import UnreadableFile

#: bytes Windows-1252 leaves undefined: a line holding one cannot be read as Windows-1252
_NOT_CP1252 = frozenset(b"\x81\x8d\x8f\x90\x9d")


@dataclass(frozen=True)
class Lines:
    """A file's lines, decoded, each with its line end; ``bad_lines`` maps the number of each
    line that is not text in the file's encoding to the reason (see :class:`Decoded`)."""

    encoding: str
    bad_lines: dict[int, str]
    #: number of the last line (a final line without a line end counts)
    last: int
    ends_with_newline: bool
    #: some line ends are a lone carriage return (old Mac files)
    lone_cr: bool
    open: Callable[[], Iterator[str]]

    def bad_between(self, first: int, last: int) -> tuple[int, str] | None:
        """The first bad line among lines ``first`` to ``last``, with its reason."""
        for line in range(first, last + 1):
            if line in self.bad_lines:
                return line, self.bad_lines[line]
        return None

    @classmethod
    def of(cls, decoded: Decoded) -> Lines:
        """The lines of a text decoded whole."""
        text = decoded.text
        ends = text.endswith("\n")
        return cls(
            decoded.encoding,
            decoded.bad_lines,
            text.count("\n") + (0 if ends else 1),
            ends,
            text.count("\r") != text.count("\r\n"),
            lambda: iter_lines(text, keepends=True),
        )


@dataclass
class LineScanner:
    """The first pass: fed each raw line (with its ``\\n``), it says how to decode them all."""

    head: bytes = b""
    count: int = 0
    blank: bool = True
    ends_with_newline: bool = False
    lone_cr: bool = False
    beyond_ascii: bool = False
    cp1252_ok: bool = True
    bad_lines: dict[int, str] = field(default_factory=dict)

    def feed(self, raw: bytes) -> None:
        self.count += 1
        if len(self.head) < SNIFF_BYTES:
            self.head += raw[: SNIFF_BYTES - len(self.head)]
        self.blank = self.blank and not raw.strip()
        self.ends_with_newline = raw.endswith(b"\n")
        self.lone_cr = self.lone_cr or raw.count(b"\r") != raw.count(b"\r\n")
        self.cp1252_ok = self.cp1252_ok and _NOT_CP1252.isdisjoint(raw)
        try:
            line = raw.decode("utf-8-sig" if self.count == 1 else "utf-8")
        except UnicodeDecodeError:
            self.bad_lines[self.count] = bad_line_reason(raw)
            return
        self.beyond_ascii = self.beyond_ascii or not line.isascii()

    def whole_file_only(self) -> bool:
        """UTF-16, or lone carriage returns: such a file is decoded whole, from its bytes."""
        return self.head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or self.lone_cr

    def lines(self, raw_lines: Callable[[], Iterable[bytes]]) -> Lines:
        """The second pass over ``raw_lines()``, decoded as the first found they must be;
        :class:`UnreadableFile` for an empty or binary file, or one with no line of text."""
        if self.blank:
            raise UnreadableFile("file is empty")
        if looks_binary(self.head):
            raise UnreadableFile(
                "file looks binary (NUL or control bytes), not text; check that the extension "
                "matches the content"
            )
        bad = self.bad_lines
        if bad and not self.beyond_ascii and self.cp1252_ok:
            encoding, bad = "cp1252", {}
        else:
            encoding = "utf-8"
        if bad and len(bad) == self.count:
            raise UnreadableFile(f"text is not UTF-8 nor Windows-1252: {bad[1]}")

        def decoded() -> Iterator[str]:
            for number, raw in enumerate(raw_lines(), start=1):
                if encoding == "cp1252":
                    yield raw.decode("cp1252")
                elif number in bad:
                    yield raw.decode("utf-8", "replace")
                else:
                    yield raw.decode("utf-8-sig" if number == 1 else "utf-8")

        return Lines(encoding, bad, self.count, self.ends_with_newline, self.lone_cr, decoded)
