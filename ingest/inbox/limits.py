"""What one file may take: bytes on disk, bytes per report, and a PDF's time and memory."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.settings import Settings

#: a PDF's time and memory budget: a real report of hundreds of pages reads in seconds
PDF_TIME_S = 60.0
PDF_MEMORY_BYTES = 2 * 2**30


@dataclass(frozen=True)
class ReadLimits:
    max_file_bytes: int = 100_000_000
    max_report_bytes: int = 1_000_000
    text_column: str | None = None
    #: seconds and bytes of address space a PDF may take to read (in a child process)
    pdf_time_s: float = PDF_TIME_S
    pdf_memory_bytes: int = PDF_MEMORY_BYTES

    @classmethod
    def from_settings(cls, settings: Settings, text_column: str | None = None) -> ReadLimits:
        return cls(settings.max_file_bytes, settings.max_report_bytes, text_column)
