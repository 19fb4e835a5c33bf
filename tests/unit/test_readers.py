"""Readers: every format and every bad input, from bytes, without touching the file system."""

from __future__ import annotations

import io
import json
import time
from datetime import UTC, datetime

import pytest

from ingest.readers import (
    READERS,
    ReadOptions,
    ReadResult,
    Reject,
    UnreadableFile,
    read_bytes,
    reader_for,
)
from ingest.readers.base import (
    ENVELOPE_BYTES,
    REASON_CHARS,
    build_message,
    excerpt,
    max_message_bytes,
    provenance,
)
from ingest.readers.csvfile import find_text_column, sniff_delimiter
from ingest.readers.decoding import decode_text, looks_binary
from ingest.readers.pdf import join_pages
from schemas.message import report_id_for

NOW = datetime(2024, 8, 1, 9, 30, tzinfo=UTC)
SHA = "ab" * 32
SEED = "Company XYZ reported a net income of $5.3 million for Q1 2024."


OPTIONS = ReadOptions("t.txt", SHA, NOW, max_report_bytes=20_000)


def read(name: str, data: bytes, **kw: object) -> ReadResult:
    return read_bytes(data, ReadOptions(name, SHA, NOW, **kw))  # type: ignore[arg-type]


def reasons(result: ReadResult) -> list[str]:
    return [r.reason for r in result.rejects]


# --- dispatch and decoding ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "known"),
    [
        ("a.csv", True),
        ("A.CSV", True),
        ("feed.jsonl", True),
        ("feed.ndjson", True),
        ("one.json", True),
        ("dump.txt", True),
        ("q3.PDF", True),
        ("notes.docx", False),
        ("README", False),
    ],
)
def test_reader_is_chosen_by_extension(name: str, known: bool) -> None:
    assert (reader_for(name) is not None) is known


def test_unsupported_extension_is_unreadable_with_the_supported_list() -> None:
    with pytest.raises(UnreadableFile, match=r"unsupported file type '\.docx'.*\.csv"):
        read("notes.docx", b"hello")


def test_utf8_bom_is_stripped() -> None:
    assert decode_text("\ufeffrevenue".encode()) == ("revenue", "utf-8")


def test_windows_1252_is_the_fallback_for_invalid_utf8() -> None:
    text, encoding = decode_text("Café Noir reported revenue of €3 million".encode("cp1252"))
    assert encoding == "cp1252"
    assert "Café" in text
    assert "€3" in text


def test_bytes_neither_utf8_nor_cp1252_are_rejected_with_the_offset() -> None:
    with pytest.raises(UnreadableFile, match=r"neither UTF-8 nor Windows-1252.*0x81 at offset 4"):
        decode_text(b"abcd\x81\x8d\x90 end")


def _jsonl_line(text: str) -> bytes:
    return json.dumps({"raw_text": text}, ensure_ascii=False).encode("utf-8") + b"\n"


GOOD_1 = "Café Noir reported revenue of €3 million for Q1 2024."
GOOD_3 = "Zoë Ltd reported revenue of €4 million for Q1 2024."


def test_one_bad_byte_rejects_its_line_and_the_other_lines_stay_utf8() -> None:
    bad = b'{"raw_text": "Caf\xe9 Blanc reported revenue of \x803 million."}\n'
    result = read("feed.jsonl", _jsonl_line(GOOD_1) + bad + _jsonl_line(GOOD_3))
    assert [m.raw_text for m in result.messages] == [GOOD_1, GOOD_3]
    assert [(r.line, r.row) for r in result.rejects] == [(2, None)]
    assert "not UTF-8" in result.rejects[0].reason and "0xe9" in result.rejects[0].reason
    assert all("encoding" not in m.metadata for m in result.messages)


def test_a_utf8_character_with_a_byte_windows_1252_lacks_does_not_refuse_the_file() -> None:
    good = "Ácme reported revenue of €3 million for Q1 2024."  # Á is C3 81 in UTF-8
    data = _jsonl_line(good) + b'{"raw_text": "\xff"}\n'
    result = read("feed.jsonl", data)
    assert [m.raw_text for m in result.messages] == [good]
    assert [r.line for r in result.rejects] == [2]


def test_a_csv_row_with_a_bad_byte_is_rejected_with_its_line_and_row() -> None:
    data = (
        f'raw_text,company\n"{GOOD_1}",Café Noir\n'.encode()
        + b'"Caf\xe9 Blanc reported\nrevenue of $1 million.",Blanc\n'
        + f'"{GOOD_3}",Zoë\n'.encode()
    )
    result = read("a.csv", data)
    assert [m.raw_text for m in result.messages] == [GOOD_1, GOOD_3]
    assert [m.company_hint for m in result.messages] == ["Café Noir", "Zoë"]
    assert [(r.line, r.row) for r in result.rejects] == [(3, 2)]
    assert "not UTF-8" in result.rejects[0].reason


def test_a_file_wholly_in_windows_1252_is_still_read_as_such() -> None:
    data = "raw_text\nCafé Noir reported revenue of €3 million.\n".encode("cp1252")
    result = read("a.csv", data)
    assert [m.raw_text for m in result.messages] == ["Café Noir reported revenue of €3 million."]
    assert result.rejects == []


def test_utf16_with_bom_is_read() -> None:
    assert decode_text("\ufeffrevenue of $1".encode("utf-16"))[0] == "revenue of $1"


@pytest.mark.parametrize("data", [b"", b"   \n\r\n\t"])
@pytest.mark.parametrize("name", ["a.csv", "a.jsonl", "a.json", "a.txt", "a.pdf"])
def test_empty_file_is_unreadable(name: str, data: bytes) -> None:
    with pytest.raises(UnreadableFile, match="file is empty"):
        read(name, data)


@pytest.mark.parametrize("name", ["a.csv", "a.jsonl", "a.json", "a.txt"])
def test_binary_junk_with_a_text_extension_is_unreadable(name: str) -> None:
    junk = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
    with pytest.raises(UnreadableFile, match="looks binary"):
        read(name, junk)


def test_text_with_a_few_control_bytes_is_not_binary() -> None:
    assert not looks_binary(b"Revenue rose.\x0c Page two.\x1b[0m" + b"x" * 200)


# --- CSV ---------------------------------------------------------------------------------------


def test_csv_yields_one_message_per_row_with_metadata_and_provenance() -> None:
    data = (
        b"date,company,text,url\n"
        b"2024-08-01,Acme Corp,Acme Corp reported revenue of $12.4 million for Q2 2024.,"
        b"https://example.com/a\n"
        b"2024-08-02,Borealis,Borealis reported a net income of $3.2 million for Q2 2024.,\n"
    )
    result = read("news.csv", data)
    assert result.rejects == []
    first, second = result.messages
    assert first.raw_text == "Acme Corp reported revenue of $12.4 million for Q2 2024."
    assert first.company_hint == "Acme Corp"
    assert first.metadata == {"date": "2024-08-01", "url": "https://example.com/a"}
    assert first.report_id == report_id_for(first.raw_text)
    prov = first.provenance
    assert (prov.channel, prov.file_name, prov.file_sha256) == ("file", "news.csv", SHA)
    assert (prov.line, prov.row, prov.ingested_at) == (2, 1, NOW)
    assert (second.provenance.line, second.provenance.row) == (3, 2)
    assert second.metadata == {"date": "2024-08-02"}


def test_csv_quoting_and_embedded_newlines_keep_line_numbers_right() -> None:
    data = (
        b"company,text\n"
        b'"Acme, Inc.","Acme said ""record quarter"".\nSecond line of the same report."\n'
        b"Borealis,Borealis reported revenue of $1 million for Q1 2024.\n"
    )
    result = read("q.csv", data)
    first, second = result.messages
    assert first.company_hint == "Acme, Inc."
    assert first.raw_text == 'Acme said "record quarter".\nSecond line of the same report.'
    assert (first.provenance.line, first.provenance.row) == (2, 1)
    assert (second.provenance.line, second.provenance.row) == (4, 2)


def test_csv_with_bom_semicolons_and_crlf() -> None:
    data = (
        "\ufeffRaw_Text;Source;Amount note\r\n"
        "Delta reported revenue of €215,6 million for Q2 2024.;wire;comma decimals\r\n"
        '"Echo reported EBITDA of €9 million; a record.";wire;\r\n'
    ).encode()
    result = read("eu.csv", data)
    assert reasons(result) == []
    first, second = result.messages
    assert first.raw_text == "Delta reported revenue of €215,6 million for Q2 2024."
    assert first.source == "wire"
    assert first.metadata == {"Amount note": "comma decimals"}
    assert second.raw_text == "Echo reported EBITDA of €9 million; a record."
    assert (second.provenance.line, second.provenance.row) == (3, 2)


def test_csv_text_column_can_be_named() -> None:
    data = b"headline,story\nA,Acme reported revenue of $1 million for Q1 2024.\n"
    result = read("n.csv", data, text_column="Story")
    assert result.messages[0].raw_text.startswith("Acme reported")
    assert result.messages[0].metadata == {"headline": "A"}


def test_csv_without_text_column_names_the_columns_it_saw() -> None:
    with pytest.raises(UnreadableFile, match=r"no text column.*'date', 'headline'"):
        read("n.csv", b"date,headline\n2024-01-01,Acme up\n")


def test_csv_named_text_column_that_is_missing_is_unreadable() -> None:
    with pytest.raises(UnreadableFile, match=r"no column 'story' \(--text-column\)"):
        read("n.csv", b"date,text\n2024-01-01,Acme up\n", text_column="story")


def test_csv_bad_rows_are_rejected_and_good_rows_kept() -> None:
    data = (
        b"text,company,reported_at\n"
        b"Acme reported revenue of $1 million for Q1 2024.,Acme,2024-04-01\n"
        b",Empty Co,\n"
        b"Borealis reported revenue of $2 million for Q1 2024.,Borealis,next tuesday\n"
        b"Cobalt reported revenue of $3 million for Q1 2024.,Cobalt,2024-04-02,extra\n"
        b"\n"
        b"Delta reported revenue of $4 million for Q1 2024.,Delta,\n"
    )
    result = read("mixed.csv", data)
    assert [m.company_hint for m in result.messages] == ["Acme", "Delta"]
    assert [(r.line, r.row) for r in result.rejects] == [(3, 2), (4, 3), (5, 4)]
    assert "text column 'text' is empty" in result.rejects[0].reason
    assert "'next tuesday' is not a date" in result.rejects[1].reason
    assert "row has 4 fields but the header has 3" in result.rejects[2].reason
    assert result.messages[1].provenance.line == 7


def test_csv_report_over_the_size_limit_is_rejected() -> None:
    data = b"text\nshort report of $1 million\n" + b'"' + b"x" * 500 + b'"\n'
    result = read("big.csv", data, max_report_bytes=100)
    assert len(result.messages) == 1
    assert "500 bytes, over the limit of 100 bytes" in result.rejects[0].reason


# --- sizes, measured as the worker measures them ------------------------------------------------


def test_report_size_is_that_of_the_text_the_worker_receives() -> None:
    text = "Acme reported revenue of $1 million. " * 2 + "x" * 26  # 100 bytes
    padded = ("\n" * 50 + text + " " * 50).encode()  # 200 bytes in the file
    (message,) = read("padded.txt", padded, max_report_bytes=100).messages
    assert message.raw_text == text
    with pytest.raises(UnreadableFile, match="101 bytes, over the limit of 100 bytes"):
        read("over.txt", (text + "y").encode(), max_report_bytes=100)


@pytest.mark.parametrize(
    "unit",
    ["Q1\t$1.2m\n", '"', "\\", "\x01\x02 plain text around control bytes " * 2],
    ids=["tabs-and-newlines", "quotes", "backslashes", "control-bytes"],
)
def test_text_within_the_limit_makes_a_message_within_what_the_worker_allows(unit: str) -> None:
    limit = 20_000
    text = "Acme reported revenue of $1 million. " + unit * (limit // len(unit.encode()))
    text = text.encode()[:limit].decode("utf-8", "ignore").strip()
    message = build_message({"raw_text": text}, {}, provenance(OPTIONS), OPTIONS)
    body = message.to_body()
    assert len(message.raw_text.encode()) <= limit < len(body)
    assert len(body) <= max_message_bytes(limit)


def test_csv_row_whose_other_columns_would_make_an_oversized_message_is_rejected() -> None:
    note = "n" * (ENVELOPE_BYTES + 1)
    data = f"text,note\nAcme reported revenue of $1 million.,{note}\nBeta reported $2 million.,ok\n"
    result = read("notes.csv", data.encode())
    assert [m.metadata["note"] for m in result.messages] == ["ok"]
    assert "fields besides its text" in result.rejects[0].reason
    assert (result.rejects[0].line, result.rejects[0].row) == (2, 1)


@pytest.mark.parametrize(
    ("header", "delimiter"),
    [("a,b,c", ","), ("a;b;c", ";"), ("a\tb", "\t"), ("a|b", "|"), ('"x;y",b', ","), ("a", ",")],
)
def test_delimiter_is_sniffed_from_the_header(header: str, delimiter: str) -> None:
    assert sniff_delimiter(header) == delimiter


def test_text_column_candidates_are_taken_in_order_ignoring_case() -> None:
    assert find_text_column(["Body", "CONTENT", "id"], None) == 1
    assert find_text_column([" raw_text ", "text"], None) == 0


# --- JSONL and JSON ----------------------------------------------------------------------------


def test_jsonl_canonical_line_becomes_one_message() -> None:
    result = read("feed.jsonl", json.dumps({"raw_text": SEED}).encode() + b"\n")
    (message,) = result.messages
    assert message.raw_text == SEED
    assert message.report_id == report_id_for(SEED)
    assert message.provenance.line == 1


def test_jsonl_optional_fields_and_extra_keys() -> None:
    line = {
        "raw_text": SEED,
        "source": "wire",
        "company_hint": "XYZ",
        "reported_at": "2024-04-20",
        "url": "https://example.com/x",
        "tags": ["q1", "earnings"],
    }
    (message,) = read("f.ndjson", json.dumps(line).encode()).messages
    assert (message.source, message.company_hint, str(message.reported_at)) == (
        "wire",
        "XYZ",
        "2024-04-20",
    )
    assert message.metadata == {"url": "https://example.com/x", "tags": '["q1","earnings"]'}


def test_jsonl_bad_lines_are_rejected_with_line_numbers_and_good_lines_kept() -> None:
    data = (
        b'{"raw_text": "A reported revenue of $1 million for Q1 2024."}\r\n'
        b"\r\n"
        b'{"raw_text": "B reported revenue of $2 million for Q1 2024."\r\n'
        b'["not", "an", "object"]\n'
        b'{"text": "no raw_text key"}\n'
        b'{"raw_text": "   "}\n'
        b'{"raw_text": "C", "reported_at": "soon"}\n'
        b'{"raw_text": "D reported revenue of $4 million for Q1 2024."}\n'
    )
    result = read("f.jsonl", data)
    assert [m.provenance.line for m in result.messages] == [1, 8]
    assert [r.line for r in result.rejects] == [3, 4, 5, 6, 7]
    why = reasons(result)
    assert "ends before the object is closed" in why[0]
    assert "expected an object with raw_text, got an array" in why[1]
    assert "no raw_text field (its keys: 'text')" in why[2]
    assert why[3] == "raw_text is empty"
    assert "'soon' is not a date" in why[4]


def test_jsonl_truncated_last_line_is_rejected_as_truncated() -> None:
    data = b'{"raw_text": "A reported revenue of $1 million for Q1 2024."}\n{"raw_text": "B rep'
    result = read("f.jsonl", data)
    assert len(result.messages) == 1
    (reject,) = result.rejects
    assert reject.line == 2
    assert "last line is truncated" in reject.reason


def test_json_object_and_array() -> None:
    one = read("one.json", json.dumps({"raw_text": SEED}).encode())
    assert [m.raw_text for m in one.messages] == [SEED]
    many = read("many.json", json.dumps([{"raw_text": SEED}, {"raw_text": ""}, 7]).encode())
    assert [m.provenance.row for m in many.messages] == [1]
    assert [(r.row, r.reason) for r in many.rejects] == [
        (2, "raw_text is empty"),
        (3, "expected an object with raw_text, got a number"),
    ]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b'{"raw_text": ', "invalid JSON: .* line 1"),
        (b'"just a string"', "JSON holds a string"),
        (b'{"headline": "x"}', "no raw_text field"),
    ],
)
def test_json_that_cannot_be_read(data: bytes, match: str) -> None:
    with pytest.raises(UnreadableFile, match=match):
        read("x.json", data)


# --- text ----------------------------------------------------------------------------------------


def test_text_file_is_one_report() -> None:
    text = "ACME CORP Q2 2024\r\n\r\nAcme Corp reported revenue of $12.4 million for Q2 2024.\r\n"
    (message,) = read("acme.txt", text.encode()).messages
    assert message.raw_text.startswith("ACME CORP Q2 2024")
    assert message.provenance.line is None
    assert message.metadata == {}


def test_text_in_windows_1252_is_read_and_says_so() -> None:
    (message,) = read(
        "cafe.txt", "Café Noir reported revenue of €3 million.".encode("cp1252")
    ).messages
    assert message.raw_text == "Café Noir reported revenue of €3 million."
    assert message.metadata == {"encoding": "cp1252"}


def test_text_over_the_report_limit_is_unreadable() -> None:
    with pytest.raises(UnreadableFile, match="over the limit of 50 bytes"):
        read("big.txt", b"y" * 51, max_report_bytes=50)


# --- PDF -----------------------------------------------------------------------------------------


#: when the test PDFs say they were made
PDF_CREATED = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)


def make_pdf(pages: list[str], *, password: str | None = None) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_creation_date(PDF_CREATED)
    for text in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=12)
        if text:
            pdf.multi_cell(0, 8, text)
    if password is not None:
        pdf.set_encryption(owner_password="owner-secret", user_password=password)
    out = io.BytesIO()
    pdf.output(out)
    return out.getvalue()


def shared_stream_pdf(pages: int, text_ops: int) -> bytes:
    """A small PDF whose pages all point at one compressed content stream of ``text_ops`` text
    operators: a few KB on disk that pypdf parses once per page."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    font = writer._add_object(
        DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
            }
        )
    )
    stream = DecodedStreamObject()
    stream.set_data(b"BT /F1 12 Tf 72 720 Td " + b"(x) Tj " * text_ops + b"ET")
    content = writer._add_object(stream.flate_encode())
    for _ in range(pages):
        page = writer.add_blank_page(612, 792)
        fonts = DictionaryObject({NameObject("/F1"): font})
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): fonts})
        page[NameObject("/Contents")] = content
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_small_pdf_that_reads_slowly_is_stopped_at_its_time_budget() -> None:
    data = shared_stream_pdf(8, 20_000)
    assert len(data) < 5000
    started = time.monotonic()
    with pytest.raises(UnreadableFile, match=r"took more than 0\.5 s to read and was stopped"):
        read("slow.pdf", data, pdf_time_s=0.5)
    assert time.monotonic() - started < 5


def test_a_pdf_over_its_memory_budget_is_stopped_with_the_reason() -> None:
    data = shared_stream_pdf(1, 200_000)
    with pytest.raises(UnreadableFile, match=r"needs more than 1 MB to read"):
        read("big.pdf", data, pdf_time_s=60.0, pdf_memory_bytes=2**20)


def test_a_pdf_within_its_budget_is_read_as_in_process() -> None:
    data = make_pdf(["Orion reported revenue of $73.4 million for Q3 2024."])
    budgeted = read("ok.pdf", data, pdf_time_s=30.0).messages
    assert [m.raw_text for m in budgeted] == [m.raw_text for m in read("ok.pdf", data).messages]


def test_pdf_is_one_report_with_page_offsets() -> None:
    pages = [
        "Orion reported revenue of $73.4 million for Q3 2024.",
        "Orion reported a net income of $8.9 million for Q3 2024.",
    ]
    (message,) = read("orion.pdf", make_pdf(pages)).messages
    offsets = message.provenance.page_offsets
    assert offsets is not None and len(offsets) == 2 and offsets[0] == 0
    assert message.raw_text[offsets[1] :].startswith("Orion reported a net income")
    assert message.page_of(message.raw_text.index("net income")) == 2
    assert message.page_of(message.raw_text.index("revenue")) == 1
    assert message.metadata == {"pages": "2", "document_date": "2024-05-01T08:30:00+00:00"}
    assert message.report_date() == (PDF_CREATED, "document")


class _Info:
    @property
    def creation_date(self) -> datetime:
        raise ValueError("D:2024-13-45 is no date")


@pytest.mark.parametrize("info", [None, _Info()])
def test_a_pdf_without_a_readable_creation_date_has_none(info: object) -> None:
    from types import SimpleNamespace

    from ingest.readers.pdf import _creation_date

    assert _creation_date(SimpleNamespace(metadata=info)) is None


def test_pdf_with_an_empty_user_password_is_opened() -> None:
    data = make_pdf(["Orion reported revenue of $1 million for Q3 2024."], password="")
    (message,) = read("restricted.pdf", data).messages
    assert "Orion reported revenue" in message.raw_text


def test_encrypted_pdf_is_unreadable() -> None:
    data = make_pdf(["secret numbers"], password="s3cret")
    with pytest.raises(UnreadableFile, match="encrypted with a password"):
        read("locked.pdf", data)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage", "corrupt or unsupported"),
        (b"this is a text file named .pdf", "not a PDF"),
    ],
)
def test_corrupt_pdf_is_unreadable(data: bytes, match: str) -> None:
    with pytest.raises(UnreadableFile, match=match):
        read("broken.pdf", data)


def test_truncated_pdf_is_unreadable() -> None:
    data = make_pdf(["Orion reported revenue of $73.4 million for Q3 2024."])
    with pytest.raises(UnreadableFile):
        read("cut.pdf", data[: len(data) // 3])


def test_pdf_without_text_is_unreadable() -> None:
    with pytest.raises(UnreadableFile, match="no extractable text"):
        read("scan.pdf", make_pdf(["", ""]))


def test_join_pages_offsets_point_into_the_stripped_text() -> None:
    text, offsets = join_pages(["", "  page two  ", "page three"])
    assert text == "page two\n\npage three"
    assert offsets == [0, 0, 10]
    assert text[offsets[2] :] == "page three"


# --- what a reason quotes of the input -----------------------------------------------------------

#: 10 KB of bytes that Windows-1252 decodes (no NUL, no undefined byte, no newline)
HIGH_BYTES = bytes(0xA0 + (i * 37) % 0x60 for i in range(10_000))


def test_excerpt_is_escaped_and_cut_saying_how_long_the_value_was() -> None:
    assert excerpt("date") == "'date'"
    assert excerpt("a\nERROR forged") == "'a\\nERROR forged'"
    cut = excerpt("x" * 10_000)
    assert cut == f"{'x' * 60!r}... (10000 characters)"
    assert excerpt(list(range(1000))).endswith("... (4890 characters)")


def test_csv_of_high_bytes_quotes_a_short_excerpt_of_its_header() -> None:
    with pytest.raises(UnreadableFile) as err:
        read("garbage.csv", HIGH_BYTES)
    assert "no text column" in err.value.reason
    assert "... (9999 characters)" in err.value.reason  # the header, stripped
    assert len(err.value.reason) < 400


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("keys.jsonl", json.dumps({f"key{i}": i for i in range(5000)}).encode() + b"\n"),
        ("date.jsonl", json.dumps({"raw_text": SEED, "reported_at": "9" * 20_000}).encode()),
        ("cols.csv", (",".join(f"column{i}" for i in range(5000)) + "\nx\n").encode()),
        ("named.csv", b"date,text\n2024-01-01,Acme up\n"),
    ],
)
def test_reasons_quote_at_most_an_excerpt_of_the_input(name: str, data: bytes) -> None:
    try:
        result = read(name, data, text_column="t" * 5000 if name == "named.csv" else None)
        why = reasons(result)
    except UnreadableFile as exc:
        why = [exc.reason]
    assert why and all(len(r) < 1000 for r in why), why


def test_any_reason_is_cut_at_the_reason_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    def careless(data: bytes, options: ReadOptions) -> ReadResult:
        if data == b"whole":
            raise UnreadableFile("bad file: " + "x" * 5000)
        return ReadResult(rejects=[Reject("bad row: " + "y" * 5000, line=1)])

    monkeypatch.setitem(READERS, ".new", careless)
    with pytest.raises(UnreadableFile) as err:
        read("a.new", b"whole")
    assert len(err.value.reason) <= REASON_CHARS + 40
    (row,) = reasons(read("a.new", b"rows"))
    assert len(row) <= REASON_CHARS + 40 and row.endswith("(cut at 1000 characters)")
