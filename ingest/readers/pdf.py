"""``.pdf``: text extracted with pypdf, one report per document. Pure (bytes in).

Pages are joined with a blank line; ``Provenance.page_offsets`` holds the character offset where
each page starts in the report text, so a fact can be traced to its page. The document's creation
date, where the file states one, travels as the metadata ``document_date``: the report's date when
it has no ``reported_at``.

A small PDF can cost pypdf hours (pages sharing one big compressed content stream are parsed once
per page, and its decompression cap is per stream): with ``ReadOptions.pdf_time_s`` set, as the
inbox sets it, the text is extracted in a child process under a time and a memory budget, and a
PDF over either fails with the reason (:func:`extract_pages_within`).
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import resource
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

from ingest.readers.base import (
    ReadOptions,
    ReadResult,
    UnreadableFile,
    build_message,
    excerpt,
    provenance,
)
from schemas.message import DOCUMENT_DATE

log = logging.getLogger(__name__)

PAGE_SEPARATOR = "\n\n"


def join_pages(pages: list[str]) -> tuple[str, list[int]]:
    """Join page texts and return ``(text, page_offsets)``; the text is stripped at both ends and
    the offsets point into the stripped text (an empty page starts where the next one does)."""
    parts = [p.strip() for p in pages]
    offsets: list[int] = []
    pos = 0
    for i, part in enumerate(parts):
        offsets.append(pos)
        pos += len(part) + (len(PAGE_SEPARATOR) if i < len(parts) - 1 else 0)
    text = PAGE_SEPARATOR.join(parts)
    lead = len(text) - len(text.lstrip())
    text = text.strip()
    return text, [min(max(0, o - lead), len(text)) for o in offsets]


def _creation_date(reader: Any) -> str | None:
    """The document's creation date (ISO 8601), if the file states a readable one."""
    try:
        when = reader.metadata.creation_date if reader.metadata is not None else None
    except Exception:  # a malformed date string or information dictionary
        return None
    return when.isoformat() if isinstance(when, datetime) else None


def extract_pages(data: bytes) -> tuple[list[str], str | None]:
    """Text of each page and the creation date; raises :class:`UnreadableFile` for encrypted or
    corrupt documents."""
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PyPdfError

    if not data.strip():
        raise UnreadableFile("file is empty")
    if not data.lstrip().startswith(b"%PDF-"):
        raise UnreadableFile("not a PDF (no %PDF- header); check that the extension matches")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except (FileNotDecryptedError, NotImplementedError, PyPdfError) as exc:
                reason = f"PDF is encrypted and cannot be opened: {excerpt(str(exc), 200)}"
                raise UnreadableFile(reason) from None
            if not ok:
                raise UnreadableFile(
                    "PDF is encrypted with a password; save an unprotected copy and drop that"
                )
        return [page.extract_text() or "" for page in reader.pages], _creation_date(reader)
    except (UnreadableFile, MemoryError):
        raise
    except FileNotDecryptedError:
        raise UnreadableFile(
            "PDF is encrypted with a password; save an unprotected copy and drop that"
        ) from None
    except Exception as exc:  # pypdf raises many kinds on damaged files
        reason = f"PDF is corrupt or unsupported: {type(exc).__name__}: {excerpt(str(exc), 200)}"
        raise UnreadableFile(reason) from None


def extract_pages_within(
    data: bytes, time_s: float, memory_bytes: int
) -> tuple[list[str], str | None]:
    """:func:`extract_pages` in a child process that may take ``time_s`` seconds and
    ``memory_bytes`` more memory than it started with; :class:`UnreadableFile` saying which it
    exceeded."""
    # A fork of a small server process started once (with pypdf imported): quick to start, and
    # holding neither the caller's threads nor its heap (which would hide the memory it uses).
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["ingest.readers.pdf"])
    receiving, sending = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_extract_child, args=(data, memory_bytes, sending), daemon=True)
    child.start()
    sending.close()
    try:
        if not receiving.poll(time_s):
            raise UnreadableFile(
                f"PDF took more than {time_s:g} s to read and was stopped (a PDF built to be "
                "slow, such as pages sharing one huge content stream?)"
            )
        kind, value = receiving.recv()
    except EOFError:  # the child died without a word: killed for its memory
        kind, value = "unreadable", _over_memory(memory_bytes)
    finally:
        receiving.close()
        if child.is_alive():
            child.kill()
        child.join()
    if kind != "pages":
        raise UnreadableFile(str(value))
    pages, created = value
    return list(pages), created


def _over_memory(memory_bytes: int) -> str:
    return f"PDF needs more than {memory_bytes // 2**20} MB to read and was stopped"


def _extract_child(data: bytes, memory_bytes: int, sending: Connection) -> None:
    """In the child: at most ``memory_bytes`` more address space than the fork started with."""
    with open("/proc/self/statm", encoding="ascii") as fh:
        start_bytes = int(fh.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (start_bytes + memory_bytes, start_bytes + memory_bytes))
    try:
        answer: tuple[str, object] = ("pages", extract_pages(data))
    except UnreadableFile as exc:
        answer = ("unreadable", exc.reason)
    except MemoryError:
        answer = ("unreadable", _over_memory(memory_bytes))
    sending.send(answer)
    sending.close()


def read_pdf(data: bytes, options: ReadOptions) -> ReadResult:
    if options.pdf_time_s is None:
        pages, created = extract_pages(data)
    else:
        pages, created = extract_pages_within(data, options.pdf_time_s, options.pdf_memory_bytes)
    text, offsets = join_pages(pages)
    if not text:
        raise UnreadableFile(
            f"PDF has {len(pages)} page(s) but no extractable text (a scan?); OCR is not supported"
        )
    metadata = {"pages": str(len(pages))}
    if created:
        metadata[DOCUMENT_DATE] = created
    try:
        message = build_message(
            {"raw_text": text}, metadata, provenance(options, page_offsets=offsets), options
        )
    except ValueError as exc:
        raise UnreadableFile(str(exc)) from None
    return ReadResult(messages=[message])
